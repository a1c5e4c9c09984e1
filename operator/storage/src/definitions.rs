//! How each member defines the custom resources pedia syncs from it: the CRD's version entry
//! (`spec.versions[i]`: printer columns, schema). The search apiserver builds Tables and OpenAPI
//! documents from them; the synchro replaces a cluster's set after each discovery.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use serde_json::Value;

use crate::db::{self, with_conn};
use crate::error::StorageError;
use crate::object;
use crate::runner::Runner;
use crate::sql::Sql;
use crate::store::{ClusterResource, Storage};
use api_types::Gvr;

/// One cluster's definition of one resource version.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub cluster: String,
    pub gvr: Gvr,
    /// The CRD's `spec.versions[i]` entry.
    pub definition: Value,
}

#[derive(QueryableByName)]
struct DefinitionRow {
    #[diesel(embed)]
    key: ClusterResource,
    #[diesel(sql_type = Text)]
    definition: String,
}

/// Rows per INSERT statement (6 binds each, well inside every backend's limit).
const BATCH: usize = 200;

impl Storage {
    /// Replaces every definition of `cluster` with `definitions`, in one transaction (readers
    /// see the old set or the new one).
    pub async fn replace_definitions(&self, cluster: &str, definitions: &[(Gvr, Value)]) -> Result<(), StorageError> {
        const OP: &str = "replace_definitions";
        let backend = self.backend();
        let mut delete = Sql::new(backend);
        delete.push("DELETE FROM resource_definitions WHERE cluster = ").text(cluster);
        let now = object::now_ms();
        let mut inserts = Vec::new();
        for chunk in definitions.chunks(BATCH) {
            let mut s = Sql::new(backend);
            s.push("INSERT INTO resource_definitions (cluster, api_group, version, resource, synced_at, definition) VALUES ");
            for (i, (gvr, definition)) in chunk.iter().enumerate() {
                let text = serde_json::to_string(definition)
                    .map_err(|e| StorageError::BadObject(gvr.to_string(), e.to_string()))?;
                s.push(if i == 0 { "(" } else { ", (" });
                s.text(cluster).push(", ").text(gvr.group.as_str()).push(", ").text(gvr.version.as_str());
                s.push(", ").text(gvr.resource.as_str()).push(", ").int(now).push(", ").text(text).push(")");
            }
            inserts.push(s);
        }
        with_conn!(self.pools(), write, OP, |conn| {
            db::begin(&mut *conn, backend).await?;
            let result = async {
                conn.execute(&delete, OP).await?;
                for s in &inserts {
                    conn.execute(s, OP).await?;
                }
                Ok(())
            }
            .await;
            db::finish(&mut *conn, result).await
        })
    }

    /// The definitions of one resource version across clusters, or of every resource when
    /// `gvr` is `None`; ordered by resource, then cluster.
    pub async fn definitions(&self, gvr: Option<&Gvr>) -> Result<Vec<Definition>, StorageError> {
        const OP: &str = "definitions";
        let mut s = Sql::new(self.backend());
        s.push("SELECT cluster, api_group, version, resource, definition FROM resource_definitions");
        if let Some(g) = gvr {
            s.push(" WHERE api_group = ").text(g.group.as_str());
            s.push(" AND version = ").text(g.version.as_str());
            s.push(" AND resource = ").text(g.resource.as_str());
        }
        s.push(" ORDER BY api_group, version, resource, cluster");
        let rows: Vec<DefinitionRow> =
            with_conn!(self.pools(), read, OP, |conn| conn.load::<DefinitionRow>(&s, OP).await?);
        rows.into_iter()
            .map(|r| {
                let (cluster, gvr) = r.key.gvr();
                let definition = serde_json::from_str(&r.definition)
                    .map_err(|e| StorageError::BadObject(gvr.to_string(), e.to_string()))?;
                Ok(Definition { cluster, gvr, definition })
            })
            .collect()
    }
}
