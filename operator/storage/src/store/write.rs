//! The write path of the sync engine: upserts, relists, deletes, with the change log and the
//! label index written in the same transaction.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{Queryable, QueryableByName};
use serde_json::Value;

use super::{BATCH, COLUMNS, Number, PREPARED_BATCH, ReplaceOutcome, ResourceVersions, Storage};
use crate::changelog::{self, ChangeOp, Pending};
use crate::config::Backend;
use crate::db::{self, Pools, with_conn};
use crate::error::StorageError;
use crate::labels;
use crate::object::{self, Incoming, Row};
use crate::runner::Runner;
use crate::sql::{Bind, Sql};
use api_types::Gvr;

/// Read by position (see `db::Typed`): a cluster's keys can be many.
#[derive(Queryable)]
struct RvRow {
    api_group: String,
    version: String,
    resource: String,
    namespace: String,
    name: String,
    resource_version: String,
}

/// The SQL types of [`RvRow`]'s columns.
type RvColumns = (Text, Text, Text, Text, Text, Text);

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    namespace: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    resource_version: String,
}

/// What a PostgreSQL upsert wrote: inserted or updated (replayed rows are not returned).
#[derive(QueryableByName)]
struct UpsertedRow {
    #[diesel(sql_type = Text)]
    namespace: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    inserted: bool,
}

impl From<UpsertedRow> for Pending {
    fn from(r: UpsertedRow) -> Self {
        let op = if r.inserted { ChangeOp::Added } else { ChangeOp::Modified };
        Pending { op, namespace: r.namespace, name: r.name }
    }
}

/// Existing rows by `(namespace, name)`: id and resourceVersion.
type Existing = HashMap<(String, String), (i64, String)>;

fn existing_map(rows: Vec<KeyRow>) -> Existing {
    rows.into_iter().map(|k| ((k.namespace, k.name), (k.id, k.resource_version))).collect()
}

/// What to log for `rows` given the rows they replace: new keys are ADDED, a changed
/// resourceVersion is MODIFIED, a replayed write is not logged.
fn classify(rows: &[Row], existing: &Existing) -> Vec<Pending> {
    rows.iter()
        .filter_map(|r| {
            let op = match existing.get(&(r.namespace.clone(), r.name.clone())) {
                None => ChangeOp::Added,
                Some((_, rv)) if *rv != r.resource_version => ChangeOp::Modified,
                Some(_) => return None,
            };
            Some(Pending { op, namespace: r.namespace.clone(), name: r.name.clone() })
        })
        .collect()
}

/// The largest id in `resources` (0 when empty).
fn newest_id_sql() -> Sql {
    let mut q = Sql::new(Backend::Sqlite);
    q.reuse_prepared().push("SELECT COALESCE(MAX(id), 0) AS n FROM resources");
    q
}

/// What an upsert changed, from the rows it returned, each with what it did to that row (None:
/// nothing, a replay), so no lookup of the keys before the write is needed. SQLite returns only the rows it inserted or
/// updated (a replayed object's update is skipped by its WHERE), and a new row's id is larger
/// than every id before it (AUTOINCREMENT); MariaDB marks what it did in `synced_at` (see
/// [`stamped_op`]). Returns the changes and the updated rows (as the [`Existing`] they replace).
fn returned_changes<'k>(written: impl Iterator<Item = (&'k KeyRow, Option<ChangeOp>)>) -> (Vec<Pending>, Existing) {
    let mut updated = Existing::new();
    let changed = written
        .filter_map(|(k, op)| {
            let op = op?;
            if op == ChangeOp::Modified {
                updated.insert((k.namespace.clone(), k.name.clone()), (k.id, String::new()));
            }
            Some(Pending { op, namespace: k.namespace.clone(), name: k.name.clone() })
        })
        .collect();
    (changed, updated)
}

/// A row a MariaDB upsert returned: every row of the statement, replayed ones too, with the
/// values after the write.
#[derive(QueryableByName)]
struct StampedRow {
    #[diesel(embed)]
    key: KeyRow,
    #[diesel(sql_type = BigInt)]
    synced_at: i64,
}

/// What MariaDB's upsert with `stamp` did to a row whose `synced_at` it returned: it inserts
/// new rows with the stamp and gives rows whose resourceVersion changed the stamp + 1; a
/// replayed row keeps its older value (stamps only grow, see [`write_stamp`]).
fn stamped_op(synced_at: i64, stamp: i64) -> Option<ChangeOp> {
    match synced_at - stamp {
        0 => Some(ChangeOp::Added),
        1 => Some(ChangeOp::Modified),
        _ => None,
    }
}

/// The `synced_at` of one write: the time in milliseconds, but at least 2 above the last
/// write's, so MariaDB's marks (stamp, stamp + 1) of one write never equal another's.
fn write_stamp() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = object::now_ms();
    let order = std::sync::atomic::Ordering::Relaxed;
    let previous = LAST.fetch_update(order, order, |last| Some(now.max(last + 2))).unwrap_or(now);
    now.max(previous + 2)
}

/// `rows` with only the last of several rows of one key (a batch may carry an object twice; one
/// INSERT cannot write a key twice).
fn last_of_each_key(rows: Vec<Row>) -> Vec<Row> {
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.namespace.as_str(), r.name.as_str()), i);
    }
    if last.len() == rows.len() {
        return rows;
    }
    let keep: HashSet<usize> = last.into_values().collect();
    rows.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, r)| r).collect()
}

/// One write, prepared (rows and statements built) before it needs a connection.
pub(super) struct Prepared {
    pub(super) operation: &'static str,
    cluster: String,
    gvr: Gvr,
    /// The rows written, without their object text (it is in `statements`).
    pub(super) rows: Vec<Row>,
    statements: Vec<Sql>,
    all_keys: Option<Sql>,
    replace: bool,
    /// The `synced_at` its statements write (see [`write_stamp`]).
    stamp: i64,
}

/// The label work of one written chunk: replayed rows keep their labels, changed rows get theirs
/// rewritten.
#[derive(Debug, PartialEq)]
struct LabelChanges<'r> {
    /// Ids of the changed rows that were stored before (new rows' ids are added once written).
    ids: HashMap<(String, String), i64>,
    /// Those ids again: their old label links are read and replaced.
    replaced: Vec<i64>,
    /// The changed rows, whose labels are written.
    rows: Vec<&'r Row>,
}

fn label_changes<'r>(changed: &[Pending], before: &Existing, chunk: &'r [Row]) -> LabelChanges<'r> {
    let mut ids = HashMap::new();
    let mut replaced = Vec::new();
    for c in changed {
        if let Some((id, _)) = before.get(&(c.namespace.clone(), c.name.clone())) {
            ids.insert((c.namespace.clone(), c.name.clone()), *id);
            replaced.push(*id);
        }
    }
    let keys: HashSet<(&str, &str)> = changed.iter().map(|c| (c.namespace.as_str(), c.name.as_str())).collect();
    let rows = chunk.iter().filter(|r| keys.contains(&(r.namespace.as_str(), r.name.as_str()))).collect();
    LabelChanges { ids, replaced, rows }
}

/// The stored rows a relist deletes: those it did not return.
fn stale_ids(existing: &Existing, relisted: &[Row]) -> Vec<i64> {
    if existing.is_empty() {
        // Not a relist, or nothing stored before it.
        return Vec::new();
    }
    let keep: HashSet<(&str, &str)> = relisted.iter().map(|r| (r.namespace.as_str(), r.name.as_str())).collect();
    let mut stale: Vec<i64> = existing
        .iter()
        .filter(|((ns, name), _)| !keep.contains(&(ns.as_str(), name.as_str())))
        .map(|(_, (id, _))| *id)
        .collect();
    // In id order, so the change log's deletions do not depend on the map's order.
    stale.sort_unstable();
    stale
}

/// Appends the WHERE clause selecting one resource of a cluster.
pub(super) fn key_filter(s: &mut Sql, cluster: &str, gvr: &Gvr) {
    s.push(" WHERE cluster = ").text(cluster).push(" AND api_group = ").text(&gvr.group);
    s.push(" AND version = ").text(&gvr.version).push(" AND resource = ").text(&gvr.resource);
}

/// The query for the ids and resourceVersions of the stored rows among `rows` (None when
/// there are none to ask for).
fn keys_sql<'r>(backend: Backend, cluster: &str, gvr: &Gvr, rows: impl Iterator<Item = &'r Row>) -> Option<Sql> {
    let mut ids = Sql::new(backend);
    ids.push("SELECT id, namespace, name, resource_version FROM resources");
    key_filter(&mut ids, cluster, gvr);
    ids.push(" AND (namespace, name) IN (");
    let mut any = false;
    for r in rows {
        ids.push(if any { ", (" } else { "(" }).text(&r.namespace).push(", ").text(&r.name).push(")");
        any = true;
    }
    ids.push(")");
    any.then_some(ids)
}

/// Applies one [`Prepared`] write inside the caller's transaction: upserts, label index, stale
/// rows of a relist, change log. `returning`: the server takes `INSERT ... RETURNING` (see
/// `Storage::returning`).
pub(super) async fn apply_rows<C: Runner>(
    conn: &mut C,
    backend: Backend,
    returning: bool,
    w: &Prepared,
    pairs: &labels::PairIds,
) -> Result<ReplaceOutcome, StorageError> {
    let labelled = backend != Backend::Postgres;
    let existing = match &w.all_keys {
        Some(k) => existing_map(conn.load::<KeyRow>(k, w.operation).await?),
        None => Existing::new(),
    };
    let mut pending = Vec::new();
    for (s, chunk) in w.statements.iter().zip(w.rows.chunks(BATCH)) {
        // PostgreSQL reports what its upsert did (RETURNING below), and so do SQLite
        // and MariaDB (see `returned_changes`), so only MySQL 8 looks the keys up first.
        let lookup = (w.all_keys.is_none() && backend == Backend::Mysql && !returning)
            .then(|| keys_sql(backend, &w.cluster, &w.gvr, chunk.iter()))
            .flatten();
        let mut before = match lookup {
            Some(k) => existing_map(conn.load::<KeyRow>(&k, w.operation).await?),
            None => Existing::new(),
        };
        // SQLite and MariaDB return the ids of what they wrote, saving a lookup of the
        // new rows.
        let (changed, written) = match backend {
            Backend::Sqlite if w.replace => {
                (classify(chunk, &existing), Some(conn.load::<KeyRow>(s, w.operation).await?))
            }
            Backend::Sqlite => {
                let newest = conn.load::<Number>(&newest_id_sql(), w.operation).await?;
                let written = conn.load::<KeyRow>(s, w.operation).await?;
                let newest = newest.first().map_or(0, |n| n.n);
                let ops =
                    written.iter().map(|k| (k, Some(if k.id > newest { ChangeOp::Added } else { ChangeOp::Modified })));
                let (changed, updated) = returned_changes(ops);
                before = updated;
                (changed, Some(written))
            }
            Backend::Postgres => {
                let upserted = conn.load::<UpsertedRow>(s, w.operation).await?;
                let changed = if w.replace {
                    classify(chunk, &existing)
                } else {
                    upserted.into_iter().map(Pending::from).collect()
                };
                (changed, None)
            }
            Backend::Mysql if returning => {
                let (written, stamps): (Vec<KeyRow>, Vec<i64>) =
                    conn.load::<StampedRow>(s, w.operation).await?.into_iter().map(|r| (r.key, r.synced_at)).unzip();
                let changed = if w.replace {
                    classify(chunk, &existing)
                } else {
                    let ops = written.iter().zip(&stamps).map(|(k, t)| (k, stamped_op(*t, w.stamp)));
                    let (changed, updated) = returned_changes(ops);
                    before = updated;
                    changed
                };
                (changed, Some(written))
            }
            Backend::Mysql => {
                let changed = classify(chunk, if w.replace { &existing } else { &before });
                conn.execute(s, w.operation).await?;
                (changed, None)
            }
        };
        let before = if w.replace { &existing } else { &before };
        if labelled {
            let LabelChanges { mut ids, replaced, rows: changed_rows } = label_changes(&changed, before, chunk);
            let new = match written {
                Some(written) => written,
                None => {
                    let added = chunk.iter().filter(|r| !before.contains_key(&(r.namespace.clone(), r.name.clone())));
                    match keys_sql(backend, &w.cluster, &w.gvr, added) {
                        Some(k) => conn.load::<KeyRow>(&k, w.operation).await?,
                        None => Vec::new(),
                    }
                }
            };
            ids.extend(new.into_iter().map(|k| ((k.namespace, k.name), k.id)));
            let old = match labels::links_sql(backend, &replaced) {
                Some(q) => conn.load::<labels::LinkRow>(&q, w.operation).await?,
                None => Vec::new(),
            };
            for l in labels::write_statements(backend, &changed_rows, &ids, &old, pairs)? {
                conn.execute(&l, w.operation).await?;
            }
        }
        pending.extend(changed);
    }
    let stale = stale_ids(&existing, &w.rows);
    let n = pending.len() + stale.len();
    if n > 0 {
        conn.execute(&changelog::reserve_sql(backend, n), w.operation).await?;
        let state = conn.load::<changelog::StateRow>(&changelog::state_sql(backend), w.operation).await?;
        let mut next = changelog::first_reserved(&state, n)?;
        for e in changelog::upsert_entries(backend, &w.cluster, &w.gvr, next, &pending) {
            conn.execute(&e, w.operation).await?;
        }
        next += pending.len() as i64;
        for chunk in stale.chunks(BATCH) {
            let ids = |s: &mut Sql| {
                s.push(" WHERE id IN ").int_list(chunk.iter().copied());
            };
            let mut log = changelog::deletion_entries(backend, next);
            ids(&mut log);
            next += conn.execute(&log, w.operation).await? as i64;
            let mut d = Sql::new(backend);
            d.push("DELETE FROM resources");
            ids(&mut d);
            conn.execute(&d, w.operation).await?;
        }
    }
    Ok(ReplaceOutcome { upserted: w.rows.len(), deleted: stale.len() })
}

/// Completes PostgreSQL's upsert `WITH up AS (INSERT ... RETURNING namespace, name, inserted`
/// into one statement that also reserves sequence numbers for what it wrote and logs it. Run on
/// its own (autocommit), the statement holds the `change_log` row lock from its last step to its
/// commit, without a round trip to pedia in between: with BEGIN, UPDATE, SELECT, INSERT and COMMIT
/// sent one by one, concurrent writers queued on that lock for as long as pedia took to send the
/// next statement. Replays (nothing inserted or updated) take no lock at all.
fn logged_upsert(s: &mut Sql, cluster: &str, gvr: &Gvr) {
    s.push(
        "), n AS (SELECT COUNT(*) AS n FROM up), \
         r AS (UPDATE change_log SET head = head + n.n FROM n WHERE id = 1 AND n.n > 0 RETURNING head - n.n AS base) \
         INSERT INTO changes (seq, op, cluster, api_group, version, resource, namespace, name, changed_at, object) \
         SELECT r.base + ROW_NUMBER() OVER (), CASE WHEN up.inserted THEN 'ADDED' ELSE 'MODIFIED' END, ",
    );
    s.text(cluster).push(", ").text(&gvr.group).push(", ").text(&gvr.version).push(", ").text(&gvr.resource);
    s.push(", up.namespace, up.name, ").int(object::now_ms()).push(", NULL FROM up, r");
}

/// The label pair ids of `rows` (adding new pairs outside any transaction, see labels.rs);
/// an empty map on PostgreSQL, which indexes labels itself.
pub(super) async fn resolve_pairs<'r, C: Runner>(
    cache: &labels::PairCache,
    backend: Backend,
    conn: &mut C,
    rows: impl Iterator<Item = &'r Row> + Send,
) -> Result<labels::PairIds, StorageError> {
    if backend == Backend::Postgres {
        return Ok(labels::PairIds::default());
    }
    // New label pairs go into the dictionary before the transaction (see labels.rs).
    let (mut pairs, missing) = cache.lookup(rows);
    if !missing.is_empty() {
        for i in labels::insert_pairs(backend, &missing) {
            conn.execute(&i, "label pairs").await?;
        }
        for q in labels::select_pairs(backend, &missing) {
            let read = conn.load::<labels::PairRow>(&q, "label pairs").await?;
            cache.remember(read, &mut pairs);
        }
        if let Some(p) = missing.iter().find(|p| !pairs.contains_key(*p)) {
            return Err(StorageError::BadObject(
                format!("label {}={}", p.0, p.1),
                "the label pair was not stored in label_pairs".into(),
            ));
        }
    }
    Ok(pairs)
}

/// Runs a write again when it failed in a retryable way (deadlock, busy database, lost
/// connection); the writes are idempotent, so a retry after an unknown outcome is safe.
async fn retrying<T, F, Fut>(operation: &str, cluster: &str, gvr: &Gvr, mut write: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write().await {
            Err(e) if e.is_retryable() && attempt < 4 => {
                tracing::debug!(operation, cluster, resource = %gvr, attempt, error = %e, "retrying a write");
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            other => return other,
        }
    }
}

impl Storage {
    /// Inserts or updates objects of one resource of one cluster (batched, one transaction).
    /// A deadlock or busy database is retried a few times (the batch is idempotent).
    pub async fn upsert<O: Incoming>(&self, cluster: &str, gvr: &Gvr, objects: &[O]) -> Result<usize, StorageError> {
        let write = || self.write_once("upsert", cluster, gvr, objects, false);
        Ok(retrying("upsert", cluster, gvr, write).await?.upserted)
    }

    /// Writes `objects` in one transaction, logging each change; with `replace`, every other row
    /// of this (cluster, resource) is deleted too (a relist). On SQLite, writes queued behind the
    /// single writer connection commit together (see `sqlite_writer`).
    async fn write_once<O: Incoming>(
        &self,
        operation: &'static str,
        cluster: &str,
        gvr: &Gvr,
        objects: &[O],
        replace: bool,
    ) -> Result<ReplaceOutcome, StorageError> {
        let stamp = write_stamp();
        let backend = self.backend();
        let (rows, statements, logged) = object::cpu_bound(|| {
            let mut rows = last_of_each_key(object::prepare_all(cluster, objects)?);
            // PostgreSQL writes an upsert of one statement and its change log in that statement.
            let logged = backend == Backend::Postgres && !replace && rows.len() <= BATCH;
            let statements = self.upsert_statements(cluster, gvr, &mut rows, stamp, logged);
            Ok::<_, StorageError>((rows, statements, logged))
        })?;
        let all_keys = replace.then(|| {
            let mut keys = Sql::new(self.backend());
            keys.reuse_prepared().push("SELECT id, namespace, name, resource_version FROM resources");
            key_filter(&mut keys, cluster, gvr);
            keys
        });
        let write = Prepared {
            operation,
            cluster: cluster.to_owned(),
            gvr: gvr.clone(),
            rows,
            statements,
            all_keys,
            replace,
            stamp,
        };
        if let Pools::Sqlite { write: writer, .. } = &self.pools {
            return self.sqlite_writer.write(writer, write).await;
        }
        if let (true, Pools::Postgres(pool)) = (logged, &self.pools) {
            let mut conn = pool.get().await.map_err(db::pool_err(operation))?;
            db::no_transaction(&mut *conn).await;
            for s in &write.statements {
                conn.execute(s, operation).await?;
            }
            self.keep_statistics(write.rows.len()).await;
            return Ok(ReplaceOutcome { upserted: write.rows.len(), deleted: 0 });
        }
        let outcome = with_conn!(&self.pools, write, operation, |conn| {
            let pairs = resolve_pairs(&self.label_pairs, backend, conn, write.rows.iter()).await?;
            db::begin(&mut *conn, backend).await?;
            let result = apply_rows(conn, backend, self.returning, &write, &pairs).await;
            db::finish(&mut *conn, result).await
        })?;
        if backend == Backend::Postgres {
            self.keep_statistics(outcome.upserted + outcome.deleted).await;
        }
        Ok(outcome)
    }

    /// The multi-row upserts of `rows`, writing `stamp` as their `synced_at`. `logged`
    /// (PostgreSQL, one chunk): the statement writes its change log entries too, see
    /// [`logged_upsert`].
    ///
    /// Each row's object text moves into its statement (the row keeps an empty `object`): a batch
    /// held its objects' text twice, copied once more per object.
    fn upsert_statements(&self, cluster: &str, gvr: &Gvr, rows: &mut [Row], stamp: i64, logged: bool) -> Vec<Sql> {
        rows.chunks_mut(BATCH)
            .map(|chunk| {
                let pg = self.backend() == Backend::Postgres;
                let mut s = Sql::new(self.backend());
                if chunk.len() == BATCH || chunk.len() == PREPARED_BATCH {
                    // Batches of the usual sizes share one text each.
                    s.reuse_prepared();
                }
                if logged {
                    s.push("WITH up AS (");
                }
                s.push(&format!("INSERT INTO resources ({COLUMNS}{}) VALUES ", if pg { ", labels" } else { "" }));
                for (i, r) in chunk.iter_mut().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.push("(").text(cluster).push(", ").text(&gvr.group).push(", ").text(&gvr.version).push(", ");
                    s.text(&gvr.resource).push(", ").text(&r.kind).push(", ").text(&r.namespace).push(", ");
                    s.text(&r.name).push(", ").text(&r.uid).push(", ").text(&r.owner_uid).push(", ");
                    s.text(&r.resource_version).push(", ").int(r.created_at).push(", ").int(stamp).push(", ");
                    s.bind(Bind::OptInt(None)).push(", ").text(std::mem::take(&mut r.object));
                    if pg {
                        // PostgreSQL's label index reads its own JSONB column (see the migrations).
                        let labels: serde_json::Map<String, Value> =
                            r.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                        s.push("::json, ").text(Value::Object(labels).to_string()).push("::jsonb");
                    }
                    s.push(")");
                }
                let mut updated = vec![
                    "kind",
                    "uid",
                    "owner_uid",
                    "resource_version",
                    "created_at",
                    "synced_at",
                    "deleted_at",
                    "object",
                ];
                if pg {
                    updated.push("labels");
                }
                match self.backend() {
                    Backend::Mysql => {
                        // A replayed object (same resourceVersion) is not rewritten: every column
                        // keeps its value unless the resourceVersion changed, which is assigned
                        // last so that each condition reads the stored one. An updated row gets
                        // the stamp + 1 in synced_at, which tells MariaDB's RETURNING (every row
                        // of the statement, after the write) what was inserted, updated or
                        // neither (`stamped_op`).
                        let changed = "resource_version <> VALUES(resource_version)";
                        let assign = |c: &&str| match *c {
                            "synced_at" => format!("synced_at = IF({changed}, VALUES(synced_at) + 1, synced_at)"),
                            c => format!("{c} = IF({changed}, VALUES({c}), {c})"),
                        };
                        let mut sets: Vec<String> =
                            updated.iter().filter(|c| **c != "resource_version").map(assign).collect();
                        sets.push("resource_version = VALUES(resource_version)".into());
                        s.push(" ON DUPLICATE KEY UPDATE ").push(&sets.join(", "));
                        if self.returning {
                            s.push(" RETURNING id, namespace, name, resource_version, synced_at");
                        }
                    }
                    backend => {
                        // A replayed object (same resourceVersion) is not rewritten.
                        s.push(" ON CONFLICT (cluster, api_group, version, resource, namespace, name) DO UPDATE SET ");
                        s.push(&updated.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", "));
                        s.push(" WHERE resources.resource_version <> excluded.resource_version");
                        s.push(if backend == Backend::Sqlite {
                            " RETURNING id, namespace, name, resource_version"
                        } else {
                            // Rows inserted by this statement have no xmax; updated ones carry ours.
                            " RETURNING namespace, name, (xmax = 0) AS inserted"
                        });
                    }
                }
                if logged {
                    logged_upsert(&mut s, cluster, gvr);
                }
                s
            })
            .collect()
    }

    /// Deletes one object; returns whether it existed.
    pub async fn delete(&self, cluster: &str, gvr: &Gvr, namespace: &str, name: &str) -> Result<bool, StorageError> {
        let filter = |s: &mut Sql| {
            key_filter(s, cluster, gvr);
            s.push(" AND namespace = ").text(namespace).push(" AND name = ").text(name);
        };
        Ok(self.delete_where("delete", filter).await? > 0)
    }

    /// Deletes the rows matching `filter` (which appends a WHERE clause), logging each deletion
    /// with its last object, in one transaction.
    pub(super) async fn delete_where(
        &self,
        operation: &'static str,
        filter: impl Fn(&mut Sql) + Send + Sync,
    ) -> Result<usize, StorageError> {
        let backend = self.backend();
        let mut count = Sql::new(backend);
        count.push("SELECT COUNT(*) AS n FROM resources");
        filter(&mut count);
        let mut delete = Sql::new(backend);
        delete.push("DELETE FROM resources");
        filter(&mut delete);
        with_conn!(&self.pools, write, operation, |conn| {
            db::begin(&mut *conn, backend).await?;
            let result = async {
                let n = conn.load::<Number>(&count, operation).await?.first().map_or(0, |n| n.n) as usize;
                if n == 0 {
                    return Ok(0);
                }
                conn.execute(&changelog::reserve_sql(backend, n), operation).await?;
                let state = conn.load::<changelog::StateRow>(&changelog::state_sql(backend), operation).await?;
                let mut log = changelog::deletion_entries(backend, changelog::first_reserved(&state, n)?);
                filter(&mut log);
                conn.execute(&log, operation).await?;
                conn.execute(&delete, operation).await
            }
            .await;
            db::finish(&mut *conn, result).await
        })
    }

    /// After a relist: stores `objects` and deletes every other row of this (cluster, resource),
    /// all in one transaction.
    pub async fn replace_all<O: Incoming>(
        &self,
        cluster: &str,
        gvr: &Gvr,
        objects: &[O],
    ) -> Result<ReplaceOutcome, StorageError> {
        retrying("replace_all", cluster, gvr, || self.write_once("replace_all", cluster, gvr, objects, true)).await
    }

    /// `(resource, namespace, name) -> resourceVersion` of a cluster, so a restarted sync worker
    /// does not rewrite unchanged rows.
    pub async fn resource_versions(&self, cluster: &str) -> Result<ResourceVersions, StorageError> {
        let mut s = Sql::new(self.backend());
        s.push(
            "SELECT api_group, version, resource, namespace, name, resource_version FROM resources WHERE cluster = ",
        )
        .text(cluster);
        let rows: Vec<RvRow> = with_conn!(&self.pools, read, "resource_versions", |conn| db::load_typed!(
            conn,
            &s,
            "resource_versions",
            RvRow,
            RvColumns
        )?);
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    (Gvr { group: r.api_group, version: r.version, resource: r.resource }, r.namespace, r.name),
                    r.resource_version,
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: &str, name: &str, rv: &str) -> Row {
        Row {
            kind: "Pod".into(),
            namespace: ns.into(),
            name: name.into(),
            uid: String::new(),
            owner_uid: String::new(),
            resource_version: rv.into(),
            created_at: 0,
            object: "{}".into(),
            labels: Vec::new(),
        }
    }

    fn stored(rows: &[(&str, &str, i64, &str)]) -> Existing {
        rows.iter().map(|(ns, n, id, rv)| (((*ns).to_owned(), (*n).to_owned()), (*id, (*rv).to_owned()))).collect()
    }

    #[test]
    fn writes_log_new_and_changed_rows_and_relists_delete_the_rest() {
        let before =
            stored(&[("a", "same", 1, "5"), ("a", "changed", 2, "5"), ("b", "gone", 3, "5"), ("b", "gone2", 4, "1")]);
        let chunk = [row("a", "same", "5"), row("a", "changed", "6"), row("a", "new", "1")];
        let changed = classify(&chunk, &before);
        let ops: Vec<(&str, ChangeOp)> = changed.iter().map(|p| (p.name.as_str(), p.op)).collect();
        assert_eq!(ops, [("changed", ChangeOp::Modified), ("new", ChangeOp::Added)], "a replayed row is not logged");

        let l = label_changes(&changed, &before, &chunk);
        assert_eq!(l.replaced, [2], "only stored rows have old links to replace");
        assert_eq!(l.ids, HashMap::from([(("a".to_owned(), "changed".to_owned()), 2)]));
        let names: Vec<&str> = l.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["changed", "new"], "the replayed row keeps its labels");

        assert_eq!(stale_ids(&before, &chunk), [3, 4], "what the relist did not return, in id order");
        assert!(
            stale_ids(
                &before,
                &[row("a", "same", "5"), row("a", "changed", "5"), row("b", "gone", "5"), row("b", "gone2", "1")]
            )
            .is_empty()
        );
    }

    #[test]
    fn write_stamps_leave_room_for_the_update_mark() {
        let stamps: Vec<i64> = (0..1000).map(|_| write_stamp()).collect();
        assert!(stamps.windows(2).all(|w| w[1] >= w[0] + 2), "each stamp is at least 2 above the last");
        assert!(stamps[0] >= object::now_ms() - 60_000, "stamps are times in milliseconds");
        let s = stamps[999];
        assert_eq!(stamped_op(s, s), Some(ChangeOp::Added));
        assert_eq!(stamped_op(s + 1, s), Some(ChangeOp::Modified));
        assert_eq!(stamped_op(stamps[998] + 1, s), None, "the previous write's update is a replay now");
        assert_eq!(stamped_op(stamps[998], s), None);
    }
}
