//! A [`SearchQuery`] compiled into parameterised SQL per backend: filters, label selectors, field
//! paths, the order and keyset continue tokens. Pure: no connection.

use api_types::fields::{FieldPathSelector, Segment};
use api_types::search::{OrderBy, SearchQuery};
use api_types::selector::{Operator, Requirement};
use diesel::Queryable;
use diesel::sql_types::{BigInt, Nullable, Text};
use serde_json::{Value, json};

use super::ListRequest;
use crate::config::Backend;
use crate::error::StorageError;
use crate::labels;
use crate::sql::Sql;

/// A row of a page, read by position: its fields in the order of [`SELECT`] and the
/// `sort0..` columns, with the SQL types of [`ObjectColumns`].
#[derive(Queryable)]
pub(super) struct ObjectRow {
    pub(super) id: i64,
    pub(super) cluster: String,
    pub(super) api_group: String,
    pub(super) version: String,
    pub(super) kind: String,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) created_at: i64,
    pub(super) resource_version: String,
    pub(super) object: String,
    // Values of JSON-path orderby terms, as SQL renders them (NULL when not ordered by a path).
    sort0: Option<String>,
    sort1: Option<String>,
    sort2: Option<String>,
}

/// The SQL types of a page's columns (see [`ObjectRow`]).
pub(super) type ObjectColumns =
    (BigInt, Text, Text, Text, Text, Text, Text, BigInt, Text, Text, Nullable<Text>, Nullable<Text>, Nullable<Text>);

/// How many `orderby` items may be JSON paths.
const MAX_PATH_TERMS: usize = 3;

/// What a sort term orders by: an expression over trusted columns, or a field of the object
/// (compared as text; absent fields sort as the empty string).
#[derive(Clone, Debug)]
enum Key {
    Column(&'static str),
    Path(Vec<Segment>),
}

/// One term of the sort key: what it orders by, its direction, and how to read the row's value
/// of it.
#[derive(Clone)]
pub(super) struct Term {
    key: Key,
    desc: bool,
    pub(super) value: fn(&ObjectRow) -> Value,
}

impl Term {
    fn push_sql(&self, s: &mut Sql) {
        match &self.key {
            Key::Column(c) => {
                s.push(c);
            }
            Key::Path(path) => {
                s.push("COALESCE(");
                field_expr(s, path);
                s.push(", '')");
            }
        }
    }
}

pub(super) fn order_terms(order: &[OrderBy]) -> Result<Vec<Term>, StorageError> {
    let t = |sql, desc, value| Term { key: Key::Column(sql), desc, value };
    let path_values: [fn(&ObjectRow) -> Value; MAX_PATH_TERMS] =
        [|r| json!(r.sort0), |r| json!(r.sort1), |r| json!(r.sort2)];
    let mut paths = 0;
    let mut terms = Vec::new();
    let default = [
        OrderBy { field: "cluster".into(), desc: false },
        OrderBy { field: "namespace".into(), desc: false },
        OrderBy { field: "name".into(), desc: false },
    ];
    for o in if order.is_empty() { &default[..] } else { order } {
        match o.field.as_str() {
            "cluster" => terms.push(t("cluster", o.desc, |r: &ObjectRow| json!(r.cluster))),
            "namespace" => terms.push(t("namespace", o.desc, |r: &ObjectRow| json!(r.namespace))),
            "name" => terms.push(t("name", o.desc, |r: &ObjectRow| json!(r.name))),
            "created_at" => terms.push(t("created_at", o.desc, |r: &ObjectRow| json!(r.created_at))),
            // resourceVersions are decimal strings: length first gives numeric order without a cast.
            "resource_version" => {
                terms.push(t("LENGTH(resource_version)", o.desc, |r: &ObjectRow| json!(r.resource_version.len())));
                terms.push(t("resource_version", o.desc, |r: &ObjectRow| json!(r.resource_version)));
            }
            other => {
                let invalid = |message: String| StorageError::InvalidQuery { param: "orderby", message };
                let path = api_types::fields::parse_path(other).map_err(|e| {
                    invalid(format!(
                        "cannot order by {other:?}: use cluster, namespace, name, created_at, resource_version or a \
                         field path such as status.phase or metadata.labels['app'] ({e})"
                    ))
                })?;
                let value = *path_values
                    .get(paths)
                    .ok_or_else(|| invalid(format!("at most {MAX_PATH_TERMS} orderby items may be field paths")))?;
                paths += 1;
                terms.push(Term { key: Key::Path(path), desc: o.desc, value });
            }
        }
    }
    // A unique tiebreaker makes every order total, so keyset pages never skip or repeat rows.
    terms.push(t("id", false, |r: &ObjectRow| json!(r.id)));
    Ok(terms)
}

fn order_signature(order: &[OrderBy]) -> String {
    order.iter().map(|o| format!("{}:{}", o.field, if o.desc { "d" } else { "a" })).collect::<Vec<_>>().join(",")
}

/// Continue tokens: the sort key of the last row plus the order it belongs to, as an opaque
/// checksummed token, so a modified token (or one from another `orderby`) is refused.
pub(super) fn encode_cursor(order: &[OrderBy], values: &[Value]) -> String {
    api_types::token::encode(&json!({"o": order_signature(order), "v": values}))
}

fn decode_cursor(token: &str, order: &[OrderBy], terms: usize) -> Result<Vec<Value>, StorageError> {
    let bad = |m: &str| StorageError::InvalidQuery { param: "continue", message: m.to_owned() };
    let invalid = || bad("the continue token is not valid (was it modified?)");
    let v = api_types::token::decode(token).ok_or_else(invalid)?;
    if v["o"].as_str() != Some(order_signature(order).as_str()) {
        return Err(bad("the continue token belongs to a different orderby"));
    }
    let values = v["v"].as_array().cloned().ok_or_else(invalid)?;
    if values.len() != terms {
        return Err(invalid());
    }
    Ok(values)
}

/// The value of label `key` as SQL (NULL when absent); the key is bound, never spliced.
fn label_expr(s: &mut Sql, key: &str) {
    field_expr(
        s,
        &[Segment::Field("metadata".into()), Segment::Field("labels".into()), Segment::Field(key.to_owned())],
    );
}

fn json_path(path: &[Segment]) -> String {
    let mut p = String::from("$");
    for seg in path {
        match seg {
            // Field names are validated (no quotes), so quoting them is enough.
            Segment::Field(f) => p.push_str(&format!(".\"{f}\"")),
            Segment::Index(i) => p.push_str(&format!("[{i}]")),
        }
    }
    p
}

/// A field of the stored object as text (NULL when absent); booleans read `true`/`false` and
/// numbers their decimal form on every backend.
fn field_expr(s: &mut Sql, path: &[Segment]) {
    match s.backend {
        Backend::Postgres => {
            s.push("json_extract_path_text(object");
            for seg in path {
                s.push(", ");
                match seg {
                    Segment::Field(f) => s.text(f.clone()),
                    Segment::Index(i) => s.text(i.to_string()),
                };
            }
            s.push(")");
        }
        Backend::Mysql => {
            s.push("JSON_UNQUOTE(JSON_EXTRACT(object, ").text(json_path(path)).push("))");
        }
        Backend::Sqlite => {
            let p = json_path(path);
            s.push("(CASE json_type(object, ")
                .text(p.clone())
                .push(") WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(json_extract(object, ");
            s.text(p).push(") AS TEXT) END)");
        }
    }
}

fn integer_guard(s: &mut Sql, expr: &dyn Fn(&mut Sql)) {
    match s.backend {
        Backend::Postgres => {
            expr(s);
            s.push(" ~ '^-?[0-9]+$'");
        }
        Backend::Mysql => {
            expr(s);
            s.push(" REGEXP '^-?[0-9]+$'");
        }
        Backend::Sqlite => {
            s.push("(CAST(CAST(");
            expr(s);
            s.push(" AS INTEGER) AS TEXT) = ");
            expr(s);
            s.push(")");
        }
    }
}

fn requirement(s: &mut Sql, r: &Requirement, expr: &dyn Fn(&mut Sql)) {
    s.push(" AND ");
    match r.operator {
        Operator::Exists => {
            expr(s);
            s.push(" IS NOT NULL");
        }
        Operator::DoesNotExist => {
            expr(s);
            s.push(" IS NULL");
        }
        Operator::Equals | Operator::In => {
            expr(s);
            s.push(" IN ").text_list(&r.values);
        }
        Operator::NotEquals | Operator::NotIn => {
            // Kubernetes: objects without the key match `!=` and `notin`.
            s.push("(");
            expr(s);
            s.push(" IS NULL OR ");
            expr(s);
            s.push(" NOT IN ").text_list(&r.values).push(")");
        }
        Operator::GreaterThan | Operator::LessThan => {
            let bound: i64 = r.values.first().and_then(|v| v.parse().ok()).unwrap_or(0);
            s.push("(");
            integer_guard(s, expr);
            s.push(" AND CAST(");
            expr(s);
            s.push(match s.backend {
                Backend::Postgres => " AS BIGINT)",
                Backend::Mysql => " AS SIGNED)",
                Backend::Sqlite => " AS INTEGER)",
            });
            s.push(if r.operator == Operator::GreaterThan { " > " } else { " < " }).int(bound).push(")");
        }
    }
}

/// Label requirements use the label index: `label_pairs` + `resource_labels` on SQLite and MySQL,
/// the GIN index on the `labels` JSONB column (containment and key existence) on PostgreSQL. `>` and `<`
/// compare numbers and read the JSON. `scan`: on PostgreSQL, [`LabelScan::Ordered`] writes the
/// positive requirements in a form the GIN index cannot answer, so the planner walks the order
/// index and checks each entry's `labels` (which that index includes).
fn label_requirement(s: &mut Sql, r: &Requirement, scan: LabelScan) {
    let key = r.key.clone();
    let (negate, values): (bool, Option<&[String]>) = match r.operator {
        Operator::Exists => (false, None),
        Operator::DoesNotExist => (true, None),
        Operator::Equals | Operator::In => (false, Some(&r.values)),
        Operator::NotEquals | Operator::NotIn => (true, Some(&r.values)),
        Operator::GreaterThan | Operator::LessThan => {
            requirement(s, r, &|s: &mut Sql| label_expr(s, &key));
            return;
        }
    };
    match s.backend {
        Backend::Postgres => {
            // `labels` is never NULL (`{}` without labels), so negation is plain NOT.
            s.push(if negate { " AND NOT (" } else { " AND (" });
            let unindexed = !negate && scan == LabelScan::Ordered;
            if unindexed {
                s.push("(");
            }
            match values {
                None => {
                    s.push("labels ? ").text(&key);
                }
                Some(values) => {
                    s.push("(");
                    for (i, v) in values.iter().enumerate() {
                        if i > 0 {
                            s.push(" OR ");
                        }
                        // The pair travels as one JSON text cast once per query: jsonb_build_object
                        // would be evaluated again for every row an ordered scan filters.
                        s.push("labels @> ").text(json!({ key.as_str(): v }).to_string()).push("::jsonb");
                    }
                    s.push(")");
                }
            }
            if unindexed {
                s.push(") IS TRUE");
            }
            s.push(")");
        }
        Backend::Sqlite | Backend::Mysql => {
            s.push(if negate { " AND id NOT IN (" } else { " AND id IN (" });
            labels::resources_with_all(s, &[(key.as_str(), values)], &[]);
            s.push(")");
        }
    }
}

fn fields(s: &mut Sql, f: &FieldPathSelector) {
    for r in &f.requirements {
        let path = r.path.clone();
        requirement(s, &r.requirement, &|s: &mut Sql| field_expr(s, &path));
    }
}

pub(super) fn object_column(backend: Backend, only_metadata: bool) -> &'static str {
    match (backend, only_metadata) {
        (Backend::Postgres, false) => "object::text AS object",
        (Backend::Postgres, true) => "(object->'metadata')::text AS object",
        (Backend::Mysql, false) => "CAST(object AS CHAR) AS object",
        (Backend::Mysql, true) => "CAST(JSON_EXTRACT(object, '$.metadata') AS CHAR) AS object",
        (Backend::Sqlite, false) => "object",
        (Backend::Sqlite, true) => "json_extract(object, '$.metadata') AS object",
    }
}

fn contains(s: &mut Sql, column: &str, needle: &str) {
    s.push(match s.backend {
        Backend::Postgres => "strpos(",
        _ => "INSTR(",
    });
    s.push(column).push(", ").text(needle).push(") > 0");
}

/// The WHERE clause (after `WHERE 1 = 1`) shared by the page and the count.
pub(super) fn filters(s: &mut Sql, req: &ListRequest, ids: &[Option<Vec<i64>>]) {
    filters_except(s, req, false, ids, LabelScan::Matches);
}

/// A requirement the label index answers as a set to intersect (`=`, `in`, exists).
fn wanted(r: &Requirement) -> Option<labels::Wanted<'_>> {
    match r.operator {
        Operator::Equals | Operator::In => Some((r.key.as_str(), Some(r.values.as_slice()))),
        Operator::Exists => Some((r.key.as_str(), None)),
        _ => None,
    }
}

pub(super) fn positive_labels(q: &SearchQuery) -> Vec<labels::Wanted<'_>> {
    q.labels.requirements.iter().filter_map(wanted).collect()
}

/// [`filters`]; `joined`: the positive label requirements are applied by a join already; `ids`:
/// their resolved pair ids (see [`labels::Resolved`]); `scan`: see [`label_requirement`].
fn filters_except(s: &mut Sql, req: &ListRequest, joined: bool, ids: &[Option<Vec<i64>>], scan: LabelScan) {
    let q = &req.query;
    if let Some(g) = &req.gvr {
        s.push(" AND api_group = ").text(&g.group).push(" AND version = ").text(&g.version);
        s.push(" AND resource = ").text(&g.resource);
    } else if !req.resource_types.is_empty() && req.resource_types.iter().all(|t| t.group.is_some()) {
        s.push(" AND (");
        for (i, t) in req.resource_types.iter().enumerate() {
            s.push(if i > 0 { " OR (" } else { "(" });
            s.push("api_group = ").text(t.group.clone().unwrap_or_default());
            if let Some(v) = &t.version {
                s.push(" AND version = ").text(v);
            }
            if let Some(r) = &t.resource {
                s.push(" AND resource = ").text(r);
            }
            s.push(")");
        }
        s.push(")");
    }
    for (column, values, negate) in [
        ("cluster", &q.clusters, false),
        ("cluster", &q.exclude_clusters, true),
        ("namespace", &q.namespaces, false),
        ("namespace", &q.exclude_namespaces, true),
        ("name", &q.names, false),
        ("name", &q.exclude_names, true),
    ] {
        if !values.is_empty() {
            s.push(&format!(" AND {column} {}IN ", if negate { "NOT " } else { "" })).text_list(values);
        }
    }
    for needle in &q.fuzzy_names {
        s.push(" AND ");
        contains(s, "name", needle);
    }
    // SQLite and MySQL intersect the positive label requirements inside the label index (MySQL
    // in its driving join, `joined`); PostgreSQL's GIN index takes them one by one.
    let positive = positive_labels(q);
    if s.backend != Backend::Postgres && !positive.is_empty() && !joined {
        s.push(" AND id IN (");
        labels::resources_with_all(s, &positive, ids);
        s.push(")");
    }
    for r in &q.labels.requirements {
        if s.backend == Backend::Postgres || wanted(r).is_none() {
            label_requirement(s, r, scan);
        }
    }
    fields(s, &q.fields);
    if let Some(t) = q.since {
        s.push(" AND created_at >= ").int(t.as_millisecond());
    }
    if let Some(t) = q.before {
        s.push(" AND created_at < ").int(t.as_millisecond());
    }
    if let Some(owner) = &q.owner {
        let cluster = q.clusters.first().cloned().unwrap_or_default();
        // The owner's uid, then `seniority` levels down: objects owned by objects owned by it.
        s.push(" AND owner_uid IN (");
        for _ in 0..owner.seniority {
            s.push("SELECT uid FROM resources WHERE cluster = ").text(&cluster).push(" AND owner_uid IN (");
        }
        match (&owner.uid, &owner.name) {
            (Some(uid), _) => {
                s.text(uid);
            }
            (None, Some(name)) => {
                s.push("SELECT uid FROM resources WHERE cluster = ").text(&cluster).push(" AND name = ").text(name);
                if !q.namespaces.is_empty() {
                    // The owner lives in one of the namespaces, or is cluster-scoped (as upstream).
                    let mut scopes = q.namespaces.clone();
                    scopes.push(String::new());
                    s.push(" AND namespace IN ").text_list(&scopes);
                }
                if let Some(gr) = &owner.group_resource {
                    s.push(" AND api_group = ").text(&gr.group).push(" AND resource = ").text(&gr.resource);
                }
            }
            (None, None) => {
                s.push("NULL");
            }
        }
        for _ in 0..owner.seniority {
            s.push(")");
        }
        s.push(")");
    }
}

/// `AND (t1 > v1 OR (t1 = v1 AND (t2 > v2 OR ...)))`, each term in its own direction; on
/// PostgreSQL, when all terms go one way, the row comparison `AND (t1, t2, ...) > (v1, v2, ...)`
/// (same rows), which its B-tree takes as where the index scan starts: planned from the OR form,
/// continue pages of the clusters that sort last scanned and sorted the cluster's every row.
pub(super) fn keyset(s: &mut Sql, terms: &[Term], values: &[Value]) {
    fn bind(s: &mut Sql, v: &Value) {
        match v {
            Value::Number(n) => {
                s.int(n.as_i64().unwrap_or(0));
            }
            other => {
                s.text(other.as_str().unwrap_or_default());
            }
        }
    }
    let one_way = terms.iter().all(|t| t.desc == terms[0].desc);
    if s.backend == Backend::Postgres && one_way && !terms.is_empty() {
        s.push(" AND (");
        for (i, t) in terms.iter().enumerate() {
            s.push(if i > 0 { ", " } else { "" });
            t.push_sql(s);
        }
        s.push(if terms[0].desc { ") < (" } else { ") > (" });
        for (i, v) in values.iter().take(terms.len()).enumerate() {
            s.push(if i > 0 { ", " } else { "" });
            bind(s, v);
        }
        s.push(")");
        return;
    }
    s.push(" AND (");
    for (i, (t, v)) in terms.iter().zip(values).enumerate() {
        if i > 0 {
            s.push(" OR (");
            for (pt, pv) in terms.iter().zip(values).take(i) {
                pt.push_sql(s);
                s.push(" = ");
                bind(s, pv);
                s.push(" AND ");
            }
        }
        t.push_sql(s);
        s.push(if t.desc { " < " } else { " > " });
        bind(s, v);
        if i > 0 {
            s.push(")");
        }
    }
    s.push(")");
}

/// The leading columns of a page, in [`ObjectRow`]'s order.
const SELECT: &str = "SELECT id, cluster, api_group, version, kind, namespace, name, created_at, resource_version, ";

fn order_by(s: &mut Sql, terms: &[Term]) {
    s.push(" ORDER BY ");
    for (i, t) in terms.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        t.push_sql(s);
        if t.desc {
            s.push(" DESC");
        }
    }
}

/// How a label page finds its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum LabelScan {
    /// The label index's matches first, then sorted (few matches: each costs a row lookup).
    #[default]
    Matches,
    /// The resource's order index walked from the page's start, each entry checked against the
    /// labels (many matches: the page's rows come early in the order, and no match is looked up
    /// that the page does not show).
    Ordered,
}

/// Whether [`LabelScan::Ordered`] can serve `req`: one resource in the default order (the order
/// index's), a page size, and a positive label requirement.
pub(super) fn ordered_scan_applies(req: &ListRequest) -> bool {
    let q = &req.query;
    req.gvr.is_some() && q.order_by.is_empty() && q.limit.is_some() && !positive_labels(q).is_empty()
}

pub(super) fn compile(
    backend: Backend,
    req: &ListRequest,
    terms: &[Term],
    ids: &[Option<Vec<i64>>],
    scan: LabelScan,
) -> Result<Sql, StorageError> {
    let q = &req.query;
    let scan = if ordered_scan_applies(req) { scan } else { LabelScan::Matches };
    let mut s = Sql::new(backend);
    s.push(SELECT).push(object_column(backend, q.only_metadata));
    let null_text = if backend == Backend::Mysql { "CAST(NULL AS CHAR)" } else { "CAST(NULL AS TEXT)" };
    let mut path_terms = terms.iter().filter(|t| matches!(t.key, Key::Path(_)));
    for i in 0..MAX_PATH_TERMS {
        s.push(", ");
        match path_terms.next() {
            Some(t) => t.push_sql(&mut s),
            None => {
                s.push(null_text);
            }
        }
        s.push(&format!(" AS sort{i}"));
    }
    s.push(" FROM resources");
    let positive = positive_labels(q);
    // A label page chooses its ids first (reading only keys), then reads the objects of those
    // ids (late row lookup): SQLite and MariaDB sort whole result rows, MariaDB spent most of a
    // label page copying whole matching objects into a temporary table, and PostgreSQL's
    // ordered scan then reads only its order index.
    let late = !positive.is_empty() && q.limit.is_some();
    if late {
        s.push(" JOIN (SELECT resources.id AS page_id FROM resources");
    }
    if scan == LabelScan::Ordered && backend == Backend::Sqlite {
        // Its planner looks each match up by id and sorts them, whatever their number.
        s.push(" INDEXED BY resources_gvr_order");
    }
    // MariaDB/MySQL misjudge ORDER BY ... LIMIT on this table and pick a range scan over another
    // index (seconds on large stores); the order index answers a plain page directly.
    if backend == Backend::Mysql
        && req.gvr.is_some()
        && q.order_by.is_empty()
        && q.names.is_empty()
        && q.labels.requirements.is_empty()
        && q.owner.is_none()
    {
        s.push(" FORCE INDEX (resources_gvr_order)");
    }
    // MariaDB/MySQL evaluate `id IN (SELECT ... FROM resource_labels)` row by row over the whole
    // resource; driving the query from the positive label requirements reads only their rows.
    let joined = backend == Backend::Mysql && !positive.is_empty();
    if joined {
        s.push(" JOIN (");
        labels::resources_with_all(&mut s, &positive, ids);
        s.push(") driving_labels ON resources.id = driving_labels.resource_id");
    }
    s.push(" WHERE 1 = 1");
    filters_except(&mut s, req, joined, ids, scan);
    if let Some(token) = &q.continue_token {
        let values = decode_cursor(token, &q.order_by, terms.len())?;
        keyset(&mut s, terms, &values);
    }
    order_by(&mut s, terms);
    if let Some(limit) = q.limit {
        if limit <= 0 {
            return Err(StorageError::InvalidQuery { param: "limit", message: "must be positive".into() });
        }
        s.push(" LIMIT ").int(limit + 1);
    }
    if late {
        s.push(") page ON resources.id = page.page_id");
        order_by(&mut s, terms);
    }
    Ok(s)
}

/// `req` with its positive label requirements narrowest first, by the estimated `sizes` of
/// [`positive_labels`] (the first resolved one drives the label intersection); None when the
/// order stays. The requirements are ANDed: their order changes nothing but the cost.
pub(super) fn narrowest_first(req: &ListRequest, sizes: &[Option<i64>]) -> Option<ListRequest> {
    let mut positive = 0;
    let keys: Vec<i64> = req
        .query
        .labels
        .requirements
        .iter()
        .map(|r| match wanted(r) {
            Some(_) => {
                positive += 1;
                sizes.get(positive - 1).copied().flatten().unwrap_or(i64::MAX)
            }
            None => i64::MAX,
        })
        .collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|i| keys[*i]);
    if order.iter().enumerate().all(|(at, i)| at == *i) {
        return None;
    }
    let mut sorted = req.clone();
    sorted.query.labels.requirements = order.iter().map(|i| req.query.labels.requirements[*i].clone()).collect();
    Some(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::Gvr;
    use api_types::search::ListOptions;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let order = vec![OrderBy { field: "name".into(), desc: true }];
        let values = vec![json!("a"), json!(42)];
        let t = encode_cursor(&order, &values);
        assert_eq!(decode_cursor(&t, &order, 2).unwrap(), values);
        let mut tampered = t.clone().into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        assert!(decode_cursor(std::str::from_utf8(&tampered).unwrap(), &order, 2).is_err());
        let err = decode_cursor(&t, &[], 2).unwrap_err();
        assert!(err.to_string().contains("different orderby"), "{err}");
        for bad in ["", "zz", "é", &t[..t.len() - 1]] {
            assert!(
                matches!(decode_cursor(bad, &order, 2), Err(StorageError::InvalidQuery { param: "continue", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_narrowest_label_requirement_comes_first() {
        let request = |selector: &str| {
            let opts = ListOptions::from_query(&format!("labelSelector={selector}")).unwrap();
            ListRequest { query: SearchQuery::from_options(&opts, None, None).unwrap(), ..Default::default() }
        };
        let keys = |r: &ListRequest| r.query.labels.requirements.iter().map(|r| r.key.clone()).collect::<Vec<_>>();
        // Sizes follow the positive (`=`, `in`, exists) requirements: wide, narrow, mid.
        let r = request("wide%3Dy,gone!%3Dx,narrow+in+(a,b),mid%3D1");
        let sorted = narrowest_first(&r, &[Some(900), Some(3), Some(40)]).unwrap();
        assert_eq!(keys(&sorted), ["narrow", "mid", "wide", "gone"]);
        // Unknown sizes (an `exists`) go after the known ones; an order that holds is kept as is.
        assert_eq!(keys(&narrowest_first(&r, &[None, Some(3), Some(40)]).unwrap()), ["narrow", "mid", "wide", "gone"]);
        assert!(narrowest_first(&request("a%3D1,b%3D2"), &[Some(1), Some(5)]).is_none());
        assert!(narrowest_first(&request("a%3D1,b%3D2"), &[Some(5), Some(5)]).is_none(), "ties keep the order");
        // Nothing else about the request changes.
        let mut back = sorted.clone();
        back.query.labels.requirements = r.query.labels.requirements.clone();
        assert_eq!(back.query, r.query);
    }

    #[test]
    fn user_values_are_never_spliced() {
        let opts = ListOptions::from_query(
            "names=x%27%3B%20DROP%20TABLE%20resources%3B%20--&labelSelector=app%20in%20(a%2Cb)%2Ctier!%3Ddb%2C!gone%2Cn%3E3&fieldSelector=status.phase%3DRunning%2Cmetadata.annotations%5B%27evil%27%5D%3Dx&clusters=c1",
        )
        .unwrap();
        let query = SearchQuery::from_options(&opts, None, None).unwrap();
        let req = ListRequest { gvr: Some(Gvr::new("", "v1", "pods")), resource_types: Vec::new(), query };
        let terms = order_terms(&[]).unwrap();
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
            let s = compile(backend, &req, &terms, &[], LabelScan::Matches).unwrap();
            for word in ["DROP", "app", "tier", "Running", "phase", "evil", "c1"] {
                assert!(!s.text.contains(word), "{backend:?} spliced {word}: {}", s.text);
            }
        }
    }

    #[test]
    fn unknown_order_fields_are_refused() {
        let err = order_terms(&[OrderBy { field: "object; DROP".into(), desc: false }]).err().unwrap();
        assert!(matches!(err, StorageError::InvalidQuery { param: "orderby", .. }));
    }
}
