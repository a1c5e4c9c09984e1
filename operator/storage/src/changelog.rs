//! The change log behind multi-cluster watch.
//!
//! Every create, update and delete gets a sequence number. Numbers are reserved from the
//! single `change_log` row at the end of each write transaction; its row lock is held until
//! commit, so sequence order is commit order on every backend: a reader that sees change N has
//! already seen every change below N, and a watch can resume from any number it was given.
//! Upserts log only the key (a watcher reads the current row, so it may skip intermediate
//! states but never reorders them); deletions keep the last object for the DELETED event.
//! Compaction drops old entries and raises the horizon: a watch from below it is [`Expired`]
//! (the apiserver answers 410 Gone).
//!
//! [`Expired`]: StorageError::Expired

use std::time::Duration;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Queryable, QueryableByName};
use serde_json::Value;

use crate::config::Backend;
use crate::db::{self, with_conn};
use crate::error::StorageError;
use crate::object::{self, RawObject};
use crate::runner::Runner;
use crate::sql::{Sql, prepared_chunks};
use crate::store::{Number, Storage};
use api_types::Gvr;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Added,
    Modified,
    Deleted,
}

impl ChangeOp {
    /// The watch event type (and the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Added => "ADDED",
            ChangeOp::Modified => "MODIFIED",
            ChangeOp::Deleted => "DELETED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [ChangeOp::Added, ChangeOp::Modified, ChangeOp::Deleted].into_iter().find(|op| op.as_str() == s)
    }
}

/// One entry of the log, with the object to send.
#[derive(Debug, Clone)]
pub struct Change {
    pub seq: i64,
    pub op: ChangeOp,
    pub cluster: String,
    pub gvr: Gvr,
    pub namespace: String,
    pub name: String,
    /// The current object for ADDED/MODIFIED, the last stored one for DELETED (as stored, not
    /// decoded).
    pub object: RawObject,
}

impl Change {
    /// The object as a JSON value.
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        object::decode(&self.object)
    }
}

impl PartialEq for Change {
    fn eq(&self, other: &Self) -> bool {
        (self.seq, self.op, &self.cluster, &self.gvr, &self.namespace, &self.name)
            == (other.seq, other.op, &other.cluster, &other.gvr, &other.namespace, &other.name)
            && self.object.get() == other.object.get()
    }
}

/// What one read of the log returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    pub changes: Vec<Change>,
    /// The last sequence number read (`after` when none): resume from here. It can be past the
    /// last change returned, when entries of rows deleted since were left out.
    pub position: i64,
}

/// Which changes a watch wants (empty lists mean all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeFilter {
    pub gvr: Option<Gvr>,
    pub clusters: Vec<String>,
}

/// The ends of the log: the last sequence number handed out, and the last one compacted away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogState {
    pub head: i64,
    pub horizon: i64,
}

/// How much of the log to keep: entries younger than `max_age`, and at most `max_entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub max_entries: i64,
}

impl Default for Retention {
    /// One hour and a million entries: long enough for watchers to reconnect after a restart or
    /// a network blip, small enough to stay a fraction of the resources table.
    fn default() -> Self {
        Self { max_age: Duration::from_secs(3600), max_entries: 1_000_000 }
    }
}

/// An upsert to log, decided by comparing with the row it replaced.
pub(crate) struct Pending {
    pub op: ChangeOp,
    pub namespace: String,
    pub name: String,
}

#[derive(QueryableByName)]
pub(crate) struct StateRow {
    #[diesel(sql_type = BigInt)]
    pub head: i64,
    #[diesel(sql_type = BigInt)]
    pub horizon: i64,
}

/// Read by position (see `db::Typed`), in the order of the `changes_since` SELECT.
#[derive(Queryable)]
struct ChangeRow {
    seq: i64,
    op: String,
    cluster: String,
    api_group: String,
    version: String,
    resource: String,
    namespace: String,
    name: String,
    object: Option<String>,
}

/// The SQL types of [`ChangeRow`]'s columns.
type ChangeColumns = (BigInt, Text, Text, Text, Text, Text, Text, Text, Nullable<Text>);

const ENTRY_COLUMNS: &str = "seq, op, cluster, api_group, version, resource, namespace, name, changed_at, object";

/// Locks the log row and reserves `n` numbers; read the new head with [`state_sql`].
pub(crate) fn reserve_sql(backend: Backend, n: usize) -> Sql {
    let mut s = Sql::new(backend);
    s.reuse_prepared().push("UPDATE change_log SET head = head + ").int(n as i64).push(" WHERE id = 1");
    s
}

pub(crate) fn state_sql(backend: Backend) -> Sql {
    let mut s = Sql::new(backend);
    s.reuse_prepared().push("SELECT head, horizon FROM change_log WHERE id = 1");
    s
}

/// Inserts for logged upserts, numbered from `first`.
pub(crate) fn upsert_entries(backend: Backend, cluster: &str, gvr: &Gvr, first: i64, pending: &[Pending]) -> Vec<Sql> {
    let now = object::now_ms();
    let mut out = Vec::new();
    let mut seq = first;
    for chunk in prepared_chunks(pending, &[500, 250]) {
        let mut s = Sql::new(backend);
        s.reuse_prepared().push(&format!("INSERT INTO changes ({ENTRY_COLUMNS}) VALUES "));
        for (i, p) in chunk.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.push("(").int(seq).push(", ").text(p.op.as_str()).push(", ").text(cluster).push(", ");
            s.text(&gvr.group).push(", ").text(&gvr.version).push(", ").text(&gvr.resource).push(", ");
            s.text(&p.namespace).push(", ").text(&p.name).push(", ").int(now).push(", NULL)");
            seq += 1;
        }
        out.push(s);
    }
    out
}

/// Logs the deletion of the rows matching `filter` (a WHERE clause over `resources`, added by
/// the caller), numbered from `first` in id order, keeping each row's object.
pub(crate) fn deletion_entries(backend: Backend, first: i64) -> Sql {
    let mut s = Sql::new(backend);
    s.push(&format!("INSERT INTO changes ({ENTRY_COLUMNS}) SELECT "))
        .int(first - 1)
        .push(" + ROW_NUMBER() OVER (ORDER BY id), 'DELETED', cluster, api_group, version, resource, namespace, name, ")
        .int(object::now_ms())
        .push(", object FROM resources");
    s
}

/// Sequence numbers to reserve for `n` entries, as read back after [`reserve_sql`]: the first one.
pub(crate) fn first_reserved(state: &[StateRow], n: usize) -> Result<i64, StorageError> {
    let head = state
        .first()
        .ok_or_else(|| StorageError::Schema("the change_log row is missing; run `pedia storage migrate`".into()))?
        .head;
    Ok(head - n as i64 + 1)
}

fn object_text(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "COALESCE(c.object, r.object)::text AS object",
        Backend::Mysql => "CAST(COALESCE(c.object, r.object) AS CHAR) AS object",
        Backend::Sqlite => "COALESCE(c.object, r.object) AS object",
    }
}

impl Storage {
    /// The ends of the log. `head` is the resourceVersion of "now": a list taken after reading
    /// it holds every change up to it.
    pub async fn log_state(&self) -> Result<LogState, StorageError> {
        let s = state_sql(self.backend());
        let rows: Vec<StateRow> = with_conn!(self.pools(), read, "change log state", |conn| conn
            .load::<StateRow>(&s, "change log state")
            .await?);
        let row = rows
            .first()
            .ok_or_else(|| StorageError::Schema("the change_log row is missing; run `pedia storage migrate`".into()))?;
        Ok(LogState { head: row.head, horizon: row.horizon })
    }

    /// Reads up to `limit` log entries after sequence `after`, oldest first. A resume point
    /// older than the log reaches is [`StorageError::Expired`]. Upserts of rows deleted since are
    /// left out (their DELETED entry follows), so fewer than `limit` changes may come back while
    /// more follow: continue from [`Changes::position`].
    pub async fn changes_since(&self, after: i64, filter: &ChangeFilter, limit: i64) -> Result<Changes, StorageError> {
        let backend = self.backend();
        let mut s = Sql::new(backend);
        s.push("SELECT c.seq, c.op, c.cluster, c.api_group, c.version, c.resource, c.namespace, c.name, ")
            .push(object_text(backend))
            .push(
                " FROM changes c LEFT JOIN resources r ON c.op <> 'DELETED' AND r.cluster = c.cluster \
                 AND r.api_group = c.api_group AND r.version = c.version AND r.resource = c.resource \
                 AND r.namespace = c.namespace AND r.name = c.name WHERE c.seq > ",
            )
            .int(after);
        if let Some(gvr) = &filter.gvr {
            s.push(" AND c.api_group = ").text(&gvr.group).push(" AND c.version = ").text(&gvr.version);
            s.push(" AND c.resource = ").text(&gvr.resource);
        }
        if !filter.clusters.is_empty() {
            s.push(" AND c.cluster IN ").text_list(&filter.clusters);
        }
        s.push(" ORDER BY c.seq LIMIT ").int(limit.max(1));
        let state = state_sql(backend);
        // The horizon is read after the entries: it only grows, so a compaction that raced
        // with the read is noticed.
        let (rows, state) = with_conn!(self.pools(), read, "changes", |conn| (
            db::load_typed!(conn, &s, "changes", ChangeRow, ChangeColumns)?,
            conn.load::<StateRow>(&state, "changes: log state").await?,
        ));
        let horizon = state.first().map_or(0, |r| r.horizon);
        if after < horizon {
            return Err(StorageError::Expired { requested: after, horizon });
        }
        let position = rows.last().map_or(after, |r| r.seq);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(text) = r.object else { continue };
            let object = object::raw(text, &r.namespace, &r.name)?;
            let op = ChangeOp::parse(&r.op)
                .ok_or_else(|| StorageError::Schema(format!("change {} has an unknown op {:?}", r.seq, r.op)))?;
            out.push(Change {
                seq: r.seq,
                op,
                cluster: r.cluster,
                gvr: Gvr { group: r.api_group, version: r.version, resource: r.resource },
                namespace: r.namespace,
                name: r.name,
                object,
            });
        }
        Ok(Changes { changes: out, position })
    }

    /// Drops entries older than the retention allows and raises the horizon; returns how many
    /// entries were dropped.
    pub async fn compact_changes(&self, retention: &Retention) -> Result<usize, StorageError> {
        let backend = self.backend();
        let state = self.log_state().await?;
        let by_count = state.head - retention.max_entries.max(0);
        let cutoff_ms = object::now_ms() - i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let mut aged = Sql::new(backend);
        aged.push("SELECT COALESCE(MAX(seq), 0) AS n FROM changes WHERE changed_at < ").int(cutoff_ms);
        let by_age: Vec<Number> = with_conn!(self.pools(), read, "compact changes", |conn| conn
            .load::<Number>(&aged, "compact changes")
            .await?);
        let cutoff = by_count.max(by_age.first().map_or(0, |n| n.n));
        if cutoff <= state.horizon {
            return Ok(0);
        }
        let mut delete = Sql::new(backend);
        delete.push("DELETE FROM changes WHERE seq <= ").int(cutoff);
        let mut raise = Sql::new(backend);
        raise.push("UPDATE change_log SET horizon = CASE WHEN horizon < ").int(cutoff).push(" THEN ");
        raise.int(cutoff).push(" ELSE horizon END WHERE id = 1");
        let deleted = with_conn!(self.pools(), write, "compact changes", |conn| {
            db::begin(&mut *conn, backend).await?;
            // Entries first, the log row last: writers wait on that row only for a moment.
            let result = async {
                let n = conn.execute(&delete, "compact changes: delete").await?;
                conn.execute(&raise, "compact changes: horizon").await?;
                Ok(n)
            }
            .await;
            db::finish(&mut *conn, result).await?
        });
        tracing::debug!(cutoff, deleted, "compacted the change log");
        Ok(deleted)
    }
}
