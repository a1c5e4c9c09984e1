//! Reads for the search apiserver: a [`SearchQuery`] compiled into parameterised SQL per
//! backend (`compiler`, pure), keyset pagination with opaque continue tokens, remaining counts,
//! metadata-only reads, and single-object gets.

mod compiler;

use api_types::search::SearchQuery;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use serde_json::Value;

use crate::config::Backend;
use crate::db::{self, with_conn};
use crate::error::StorageError;
use crate::labels;
use crate::object::RawObject;
use crate::runner::Runner;
use crate::sql::Sql;
use crate::store::Storage;
use api_types::Gvr;
pub(crate) use compiler::LabelScan;
use compiler::{
    ObjectColumns, ObjectRow, compile, encode_cursor, filters, keyset, narrowest_first, order_terms,
    ordered_scan_applies, positive_labels,
};

/// What to list: one resource, or the resource types of a collection, and the search.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub gvr: Option<Gvr>,
    /// Collection queries: rows of any of these types (ignored when `gvr` is set).
    pub resource_types: Vec<api_types::search::ResourceType>,
    pub query: SearchQuery,
}

/// One stored object and the cluster it comes from.
#[derive(Debug, Clone)]
pub struct Item {
    pub cluster: String,
    /// The object's JSON as stored (pruned at write time), not decoded.
    pub object: RawObject,
}

impl Item {
    /// The object as a JSON value.
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        crate::object::decode(&self.object)
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.cluster == other.cluster && self.object.get() == other.object.get()
    }
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items follow.
    pub continue_token: Option<String>,
    /// Items after this page, when asked for (`withRemainingCount`).
    pub remaining: Option<i64>,
    /// The change log head read before the query: the page holds every change up to it, so a
    /// watch from here misses nothing (it may repeat a change the page already shows).
    pub resource_version: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How a list reads its label requirements: the pair ids of the positive ones (SQLite and
/// MySQL; empty when there are none), the request with those requirements narrowest first where
/// that changes their order (the first one drives the label intersection, the others are probed
/// per candidate, see `labels::sizable`), and whether the page walks the order index.
struct LabelPlan {
    ids: labels::Resolved,
    sorted: Option<ListRequest>,
    scan: LabelScan,
}

async fn label_plan<C: Runner>(storage: &Storage, conn: &mut C, req: &ListRequest) -> Result<LabelPlan, StorageError> {
    let backend = storage.backend();
    let positive = positive_labels(&req.query);
    let pairs_sql = match backend {
        Backend::Postgres => None,
        backend => labels::wanted_pairs_sql(backend, &positive),
    };
    let pairs = match &pairs_sql {
        Some(p) => conn.load::<labels::PairRow>(p, "list: label pairs").await?,
        None => Vec::new(),
    };
    let ids = if pairs_sql.is_some() { labels::resolve(&positive, &pairs) } else { Vec::new() };
    // A value no stored object carries: nothing can match, no need to choose.
    let nothing = ids.iter().any(|i| i.as_ref().is_some_and(Vec::is_empty));
    let sizable = if nothing { Vec::new() } else { labels::sizable(&ids) };
    let mut sizes = vec![None; ids.len()];
    if !sizable.is_empty() && backend == Backend::Mysql {
        let sql = labels::explain_sql(backend, &ids, &sizable);
        let explained = conn.load::<labels::ExplainRow>(&sql, "list: label sizes").await?;
        sizes = labels::explained_sizes(ids.len(), &sizable, &explained);
    } else if !sizable.is_empty() {
        // Each count stops one past the narrowest so far: only a narrower one matters.
        let mut cap = labels::COUNT_LIMIT;
        for &i in &sizable {
            let sql = labels::count_sql(backend, ids[i].as_deref().unwrap_or_default(), cap);
            let n = conn.load::<Count>(&sql, "list: label sizes").await?.first().map_or(cap, |c| c.n);
            sizes[i] = Some(n);
            cap = cap.min(n + 1);
        }
    }
    let scan = if nothing || !ordered_scan_applies(req) {
        LabelScan::Matches
    } else {
        match backend {
            // The narrowest requirement bounds the matches; a single one is counted up to the bar.
            Backend::Sqlite => {
                let narrowest = match sizes.iter().flatten().min() {
                    Some(n) => Some(*n),
                    None => match ids.iter().flatten().next() {
                        Some(pairs) => {
                            let sql = labels::count_sql(backend, pairs, labels::ORDERED_SCAN_FROM);
                            conn.load::<Count>(&sql, "list: label sizes").await?.first().map(|c| c.n)
                        }
                        None => None,
                    },
                };
                labels::scan_for(narrowest, labels::ORDERED_SCAN_FROM)
            }
            // The planner's estimate of the matches; below the bar they are counted up to it, as
            // it estimates some wide labels at a few dozen rows (its statistics hold label sets,
            // not labels) and would then read a table page for each of their thousands of matches.
            Backend::Postgres => {
                let mut explain = Sql::new(backend);
                explain.push("EXPLAIN SELECT 1 FROM resources WHERE 1 = 1");
                filters(&mut explain, req, &ids);
                let plan = conn.load::<labels::PlanLine>(&explain, "list: label sizes").await?;
                let bar = labels::PG_ORDERED_SCAN_FROM;
                match labels::scan_for(plan.first().and_then(labels::PlanLine::rows), bar) {
                    LabelScan::Ordered => LabelScan::Ordered,
                    LabelScan::Matches => {
                        let mut count = Sql::new(backend);
                        count.push("SELECT COUNT(*) AS n FROM (SELECT 1 FROM resources WHERE 1 = 1");
                        filters(&mut count, req, &ids);
                        count.push(" LIMIT ").int(bar).push(") matches");
                        let n = conn.load::<Count>(&count, "list: label sizes").await?.first().map(|c| c.n);
                        labels::scan_for(n, bar)
                    }
                }
            }
            Backend::Mysql => LabelScan::Matches,
        }
    };
    Ok(match narrowest_first(req, &sizes) {
        Some(sorted) => {
            LabelPlan { ids: labels::resolve(&positive_labels(&sorted.query), &pairs), sorted: Some(sorted), scan }
        }
        None => LabelPlan { ids, sorted: None, scan },
    })
}

impl Storage {
    /// The keys of the request's positive label requirements in the order the store intersects
    /// them (narrowest first on SQLite and MySQL; as given on PostgreSQL). For tests and
    /// diagnostics.
    #[doc(hidden)]
    pub async fn label_order(&self, req: &ListRequest) -> Result<Vec<String>, StorageError> {
        let plan = with_conn!(self.pools(), read, "list", |conn| label_plan(self, conn, req).await?);
        let q = &plan.sorted.as_ref().unwrap_or(req).query;
        Ok(positive_labels(q).into_iter().map(|(key, _)| key.to_owned()).collect())
    }

    /// Whether a page of `req` walks the resource's order index, checking each entry's labels,
    /// rather than looking up every label match (wide labels on SQLite and PostgreSQL). For tests
    /// and diagnostics.
    #[doc(hidden)]
    pub async fn walks_order_index(&self, req: &ListRequest) -> Result<bool, StorageError> {
        let plan = with_conn!(self.pools(), read, "list", |conn| label_plan(self, conn, req).await?);
        Ok(plan.scan == LabelScan::Ordered)
    }

    /// A page of objects matching the request, in the requested order (default: cluster,
    /// namespace, name).
    pub async fn list(&self, req: &ListRequest) -> Result<Page, StorageError> {
        let q = &req.query;
        let terms = order_terms(&q.order_by)?;
        // Bad input is refused before a connection is taken.
        let mut sql = compile(self.backend(), req, &terms, &[], LabelScan::Matches)?;
        let state = crate::changelog::state_sql(self.backend());
        let (head, ids, sorted, mut rows) = with_conn!(self.pools(), read, "list", |conn| {
            // The log head comes first: whatever it counts is committed, so the label pairs and
            // rows read after it include it, and a watch from it misses nothing.
            let head = conn.load::<crate::changelog::StateRow>(&state, "list: change log head").await?;
            let LabelPlan { ids, sorted, scan } = label_plan(self, conn, req).await?;
            // A label value no stored object carries: nothing can match.
            let rows = if ids.iter().any(|i| i.as_ref().is_some_and(Vec::is_empty)) {
                Vec::new()
            } else {
                if !ids.is_empty() || scan != LabelScan::Matches {
                    sql = compile(self.backend(), sorted.as_ref().unwrap_or(req), &terms, &ids, scan)?;
                }
                db::load_typed!(conn, &sql, "list", ObjectRow, ObjectColumns)?
            };
            (head, ids, sorted, rows)
        });
        let req = sorted.as_ref().unwrap_or(req);
        let resource_version = head.first().map_or(0, |h| h.head);
        let limit = q.limit.map(|l| l as usize);
        let more = limit.is_some_and(|l| rows.len() > l);
        if let Some(l) = limit {
            rows.truncate(l);
        }
        let cursor = rows.last().filter(|_| more).map(|r| terms.iter().map(|t| (t.value)(r)).collect::<Vec<_>>());
        let continue_token = cursor.as_ref().map(|values| encode_cursor(&q.order_by, values));
        let remaining = match (&cursor, q.with_remaining_count) {
            (_, false) => None,
            (None, true) => Some(0),
            (Some(values), true) => {
                let mut count = Sql::new(self.backend());
                count.push("SELECT COUNT(*) AS n FROM resources WHERE 1 = 1");
                filters(&mut count, req, &ids);
                keyset(&mut count, &terms, values);
                let n: Vec<Count> = with_conn!(self.pools(), read, "list: remaining count", |conn| conn
                    .load::<Count>(&count, "list: remaining count")
                    .await?);
                n.first().map(|c| c.n)
            }
        };
        let items = rows
            .into_iter()
            .map(|r| {
                let text = if q.only_metadata {
                    // The stored metadata wrapped as a PartialObjectMetadata-like object, by
                    // concatenation: the metadata is checked below, the rest are JSON strings.
                    let api_version = if r.api_group.is_empty() {
                        r.version.clone()
                    } else {
                        format!("{}/{}", r.api_group, r.version)
                    };
                    format!(
                        r#"{{"apiVersion":{},"kind":{},"metadata":{}}}"#,
                        Value::from(api_version),
                        Value::from(r.kind),
                        r.object
                    )
                } else {
                    r.object
                };
                let object = crate::object::raw(text, &r.namespace, &r.name)?;
                Ok(Item { cluster: r.cluster, object })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Page { items, continue_token, remaining, resource_version })
    }

    /// One object.
    pub async fn get(
        &self,
        cluster: &str,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, StorageError> {
        let req = ListRequest {
            gvr: Some(gvr.clone()),
            resource_types: Vec::new(),
            query: SearchQuery {
                clusters: vec![cluster.to_owned()],
                namespaces: vec![namespace.to_owned()],
                names: vec![name.to_owned()],
                ..SearchQuery::default()
            },
        };
        match self.list(&req).await?.items.into_iter().next() {
            Some(item) => item
                .value()
                .map(Some)
                .map_err(|e| StorageError::BadObject(format!("{namespace}/{name}"), e.to_string())),
            None => Ok(None),
        }
    }
}
