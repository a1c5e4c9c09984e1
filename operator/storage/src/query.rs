//! Reads for the search apiserver: a search request compiled into parameterised SQL per
//! backend, keyset pagination with opaque continue tokens, and single-object gets.

use api_types::selector::{LabelSelector, Operator, Requirement};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use serde_json::{Value, json};

use crate::config::Backend;
use crate::db::{self, with_conn};
use crate::error::StorageError;
use crate::object::Gvr;
use crate::sql::Sql;
use crate::store::Storage;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub gvr: Option<Gvr>,
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
    pub labels: LabelSelector,
    /// Page size; `None` lists everything.
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// One stored object and the cluster it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub cluster: String,
    pub object: Value,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items follow.
    pub continue_token: Option<String>,
}

#[derive(QueryableByName)]
struct ObjectRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    cluster: String,
    #[diesel(sql_type = Text)]
    namespace: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    object: String,
}

/// The position after which the next page starts (the default order's key).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    cluster: String,
    namespace: String,
    name: String,
    id: i64,
}

fn fnv(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

impl Cursor {
    /// Opaque to clients: hex of the key with a checksum, so a modified token is refused.
    fn encode(&self) -> String {
        let raw = json!([self.cluster, self.namespace, self.name, self.id]).to_string();
        let body: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{body}{:08x}", fnv(raw.as_bytes()))
    }

    fn decode(token: &str) -> Result<Self, StorageError> {
        let bad = || StorageError::InvalidQuery {
            param: "continue",
            message: "the continue token is not valid (was it modified?)".into(),
        };
        if token.len() < 10 || !token.len().is_multiple_of(2) || !token.is_ascii() {
            return Err(bad());
        }
        let (body, sum) = token.split_at(token.len() - 8);
        let raw: Vec<u8> = (0..body.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&body[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if format!("{:08x}", fnv(&raw)) != sum {
            return Err(bad());
        }
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
        match (v[0].as_str(), v[1].as_str(), v[2].as_str(), v[3].as_i64()) {
            (Some(c), Some(ns), Some(n), Some(id)) => {
                Ok(Cursor { cluster: c.into(), namespace: ns.into(), name: n.into(), id })
            }
            _ => Err(bad()),
        }
    }
}

/// The value of label `key` as SQL (NULL when absent); the key is bound, never spliced.
fn label_expr(s: &mut Sql, key: &str) {
    match s.backend {
        Backend::Postgres => {
            s.push("(object->'metadata'->'labels'->>").text(key).push(")");
        }
        Backend::Sqlite => {
            s.push("json_extract(object, ").text(format!("$.metadata.labels.\"{key}\"")).push(")");
        }
        Backend::Mysql => {
            s.push("JSON_UNQUOTE(JSON_EXTRACT(object, ").text(format!("$.metadata.labels.\"{key}\"")).push("))");
        }
    }
}

fn integer_guard(s: &mut Sql, key: &str) {
    match s.backend {
        Backend::Postgres => {
            label_expr(s, key);
            s.push(" ~ '^-?[0-9]+$'");
        }
        Backend::Mysql => {
            label_expr(s, key);
            s.push(" REGEXP '^-?[0-9]+$'");
        }
        Backend::Sqlite => {
            s.push("(CAST(CAST(");
            label_expr(s, key);
            s.push(" AS INTEGER) AS TEXT) = ");
            label_expr(s, key);
            s.push(")");
        }
    }
}

fn requirement(s: &mut Sql, r: &Requirement) {
    s.push(" AND ");
    match r.operator {
        Operator::Exists => {
            label_expr(s, &r.key);
            s.push(" IS NOT NULL");
        }
        Operator::DoesNotExist => {
            label_expr(s, &r.key);
            s.push(" IS NULL");
        }
        Operator::Equals | Operator::In => {
            label_expr(s, &r.key);
            s.push(" IN ").text_list(&r.values);
        }
        Operator::NotEquals | Operator::NotIn => {
            // Kubernetes: objects without the label match `!=` and `notin`.
            s.push("(");
            label_expr(s, &r.key);
            s.push(" IS NULL OR ");
            label_expr(s, &r.key);
            s.push(" NOT IN ").text_list(&r.values).push(")");
        }
        Operator::GreaterThan | Operator::LessThan => {
            let bound: i64 = r.values.first().and_then(|v| v.parse().ok()).unwrap_or(0);
            s.push("(");
            integer_guard(s, &r.key);
            s.push(" AND CAST(");
            label_expr(s, &r.key);
            s.push(match s.backend {
                Backend::Postgres => " AS BIGINT)",
                Backend::Mysql => " AS SIGNED)",
                Backend::Sqlite => " AS INTEGER)",
            });
            s.push(if r.operator == Operator::GreaterThan { " > " } else { " < " }).int(bound).push(")");
        }
    }
}

fn object_column(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "object::text AS object",
        Backend::Mysql => "CAST(object AS CHAR) AS object",
        Backend::Sqlite => "object",
    }
}

/// Compiles a list request (fetching one row more than the page to know whether more follow).
fn compile(backend: Backend, req: &ListRequest) -> Result<Sql, StorageError> {
    let mut s = Sql::new(backend);
    s.push("SELECT id, cluster, namespace, name, ").push(object_column(backend)).push(" FROM resources WHERE 1 = 1");
    if let Some(g) = &req.gvr {
        s.push(" AND api_group = ").text(&g.group).push(" AND version = ").text(&g.version);
        s.push(" AND resource = ").text(&g.resource);
    }
    for (column, values) in [("cluster", &req.clusters), ("namespace", &req.namespaces), ("name", &req.names)] {
        if !values.is_empty() {
            s.push(&format!(" AND {column} IN ")).text_list(values);
        }
    }
    for r in &req.labels.requirements {
        requirement(&mut s, r);
    }
    if let Some(token) = &req.continue_token {
        let c = Cursor::decode(token)?;
        s.push(" AND (cluster > ").text(&c.cluster);
        s.push(" OR (cluster = ").text(&c.cluster).push(" AND (namespace > ").text(&c.namespace);
        s.push(" OR (namespace = ").text(&c.namespace).push(" AND (name > ").text(&c.name);
        s.push(" OR (name = ").text(&c.name).push(" AND id > ").int(c.id).push("))))))");
    }
    s.push(" ORDER BY cluster, namespace, name, id");
    if let Some(limit) = req.limit {
        if limit == 0 {
            return Err(StorageError::InvalidQuery { param: "limit", message: "must be positive".into() });
        }
        s.push(" LIMIT ").int(limit as i64 + 1);
    }
    Ok(s)
}

impl Storage {
    /// A page of objects matching the request, in (cluster, namespace, name) order.
    pub async fn list(&self, req: &ListRequest) -> Result<Page, StorageError> {
        let sql = compile(self.backend(), req)?;
        let mut rows: Vec<ObjectRow> =
            with_conn!(self.pools(), read, "list", |conn| db::load(&mut *conn, &sql, "list").await?);
        let more = req.limit.is_some_and(|l| rows.len() > l);
        if more {
            rows.truncate(req.limit.unwrap_or(rows.len()));
        }
        let continue_token = if more {
            rows.last().map(|r| {
                Cursor { cluster: r.cluster.clone(), namespace: r.namespace.clone(), name: r.name.clone(), id: r.id }
                    .encode()
            })
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|r| {
                let object = serde_json::from_str(&r.object)
                    .map_err(|e| StorageError::BadObject(format!("{}/{}", r.namespace, r.name), e.to_string()))?;
                Ok(Item { cluster: r.cluster, object })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Page { items, continue_token })
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
            clusters: vec![cluster.to_owned()],
            namespaces: vec![namespace.to_owned()],
            names: vec![name.to_owned()],
            ..ListRequest::default()
        };
        Ok(self.list(&req).await?.items.into_iter().next().map(|i| i.object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let c = Cursor { cluster: "m1".into(), namespace: "ns".into(), name: "a".into(), id: 42 };
        let t = c.encode();
        assert_eq!(Cursor::decode(&t).unwrap(), c);
        let mut tampered = t.clone().into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        assert!(Cursor::decode(std::str::from_utf8(&tampered).unwrap()).is_err());
        for bad in ["", "zz", "é", &t[..t.len() - 1]] {
            assert!(matches!(Cursor::decode(bad), Err(StorageError::InvalidQuery { param: "continue", .. })), "{bad}");
        }
    }

    #[test]
    fn user_values_are_never_spliced() {
        let req = ListRequest {
            gvr: Some(Gvr::new("", "v1", "pods")),
            names: vec!["x'; DROP TABLE resources; --".into()],
            labels: LabelSelector::parse("app in (a,b),tier!=db,!gone,n>3").unwrap(),
            ..ListRequest::default()
        };
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
            let s = compile(backend, &req).unwrap();
            assert!(!s.text.contains("DROP") && !s.text.contains("app") && !s.text.contains("tier"), "{}", s.text);
            assert!(s.binds.len() >= 10);
        }
    }
}
