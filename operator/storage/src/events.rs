//! Events of synced objects (`eventsInvolvedResources`), kept apart from the objects: the
//! synchro records them, the search apiserver injects them (`injectEvents`).

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use serde_json::Value;

use crate::config::Backend;
use crate::db::with_conn;
use crate::error::StorageError;
use crate::object;
use crate::runner::Runner;
use crate::sql::Sql;
use crate::store::Storage;

/// Rows per INSERT statement.
const BATCH: usize = 500;

/// Events by `(cluster, involved object uid)`, oldest first.
pub type EventsOf = HashMap<(String, String), Vec<Value>>;

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Text)]
    cluster: String,
    #[diesel(sql_type = Text)]
    involved_uid: String,
    #[diesel(sql_type = Text)]
    object: String,
}

impl Storage {
    /// Stores events of synced objects (keyed by cluster, involved object uid, event uid); an
    /// event already stored with the same resourceVersion is left as it is.
    pub async fn record_events(&self, cluster: &str, events: &[Value]) -> Result<usize, StorageError> {
        let now = object::now_ms();
        let mut statements = Vec::new();
        for chunk in events.chunks(BATCH) {
            let mut s = Sql::new(self.backend());
            s.push(
                "INSERT INTO events (cluster, involved_uid, event_uid, resource_version, synced_at, object) VALUES ",
            );
            for (i, e) in chunk.iter().enumerate() {
                let field = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
                if i > 0 {
                    s.push(", ");
                }
                s.push("(").text(cluster).push(", ").text(field("/involvedObject/uid")).push(", ");
                s.text(field("/metadata/uid"))
                    .push(", ")
                    .text(field("/metadata/resourceVersion"))
                    .push(", ")
                    .int(now)
                    .push(", ");
                s.text(
                    serde_json::to_string(e)
                        .map_err(|err| StorageError::BadObject(field("/metadata/name"), err.to_string()))?,
                );
                if self.backend() == Backend::Postgres {
                    s.push("::json");
                }
                s.push(")");
            }
            // An event seen again with its stored resourceVersion (a relist after a restart or a
            // pause) is not rewritten. MySQL: the resourceVersion is assigned last, so the
            // conditions read the stored one.
            match self.backend() {
                Backend::Mysql => s.push(
                    " ON DUPLICATE KEY UPDATE synced_at = IF(resource_version <> VALUES(resource_version), VALUES(synced_at), synced_at), \
                     object = IF(resource_version <> VALUES(resource_version), VALUES(object), object), resource_version = VALUES(resource_version)",
                ),
                _ => s.push(
                    " ON CONFLICT (cluster, involved_uid, event_uid) DO UPDATE SET resource_version = excluded.resource_version, \
                     synced_at = excluded.synced_at, object = excluded.object WHERE events.resource_version <> excluded.resource_version",
                ),
            };
            statements.push(s);
        }
        with_conn!(self.pools(), write, "record_events", |conn| {
            for s in &statements {
                conn.execute(s, "record_events").await?;
            }
        });
        Ok(events.len())
    }

    /// The events of the given objects, as `(cluster, uid)` pairs (objects without events are
    /// absent from the map).
    pub async fn events_of(&self, objects: &[(String, String)]) -> Result<EventsOf, StorageError> {
        const OP: &str = "events_of";
        let mut by_cluster: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
        for (cluster, uid) in objects.iter().filter(|(_, uid)| !uid.is_empty()) {
            by_cluster.entry(cluster.as_str()).or_default().push(uid);
        }
        let mut out = EventsOf::new();
        if by_cluster.is_empty() {
            return Ok(out);
        }
        let backend = self.backend();
        let mut s = Sql::new(backend);
        s.push("SELECT cluster, involved_uid, ").push(match backend {
            Backend::Postgres => "object::text AS object",
            Backend::Mysql => "CAST(object AS CHAR) AS object",
            Backend::Sqlite => "object",
        });
        s.push(" FROM events WHERE ");
        // One (cluster, uid list) range per cluster, so every backend walks the events key.
        for (i, (cluster, uids)) in by_cluster.iter().enumerate() {
            s.push(if i == 0 { "(cluster = " } else { " OR (cluster = " });
            s.text(*cluster).push(" AND involved_uid IN ").text_list(uids.iter().copied()).push(")");
        }
        s.push(" ORDER BY id");
        let rows: Vec<EventRow> = with_conn!(self.pools(), read, OP, |conn| conn.load::<EventRow>(&s, OP).await?);
        for r in rows {
            let event = serde_json::from_str(&r.object)
                .map_err(|e| StorageError::BadObject(format!("event of {}", r.involved_uid), e.to_string()))?;
            out.entry((r.cluster, r.involved_uid)).or_default().push(event);
        }
        Ok(out)
    }
}
