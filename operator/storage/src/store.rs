//! The storage API: migrations, the write API of the sync engine, and reads.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{Queryable, QueryableByName};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use serde_json::Value;

use crate::changelog::{self, ChangeOp, Pending};
use crate::config::{Backend, StorageConfig};
use crate::db::{self, Pools, SqliteConn, with_conn};
use crate::error::StorageError;
use crate::labels;
use crate::object::{self, Row};
use crate::sql::{Bind, Sql};
use api_types::Gvr;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// Rows per INSERT statement (14 binds each, well under every backend's bind limit).
const BATCH: usize = 500;

const COLUMNS: &str = "cluster, api_group, version, resource, kind, namespace, name, uid, owner_uid, resource_version, created_at, synced_at, deleted_at, object";

/// The store.
pub struct Storage {
    config: StorageConfig,
    pools: Pools,
    label_pairs: labels::PairCache,
    /// SQLite writes waiting for the writer connection (see `write_grouped`).
    queue: std::sync::Mutex<Vec<Queued>>,
    /// The server takes `INSERT ... RETURNING` (SQLite, PostgreSQL, MariaDB; not MySQL 8), so
    /// an upsert reports the ids it wrote instead of a second lookup.
    returning: bool,
    /// The server is MariaDB: its tables are page-compressed (see the migrations), so the
    /// database size is what its files take on disk.
    mariadb: bool,
    /// Rows written since this process last analyzed (PostgreSQL), see `keep_statistics`.
    statistics: std::sync::Arc<std::sync::Mutex<Statistics>>,
    /// SQLite: checkpoints the WAL off the writer's path.
    checkpointer: Option<crate::checkpoint::Checkpointer>,
}

/// Refreshes the planner's statistics of the tables whose plans depend on them.
fn analyze_sql(backend: Backend) -> Sql {
    let mut s = Sql::new(backend);
    s.push(match backend {
        Backend::Sqlite => "ANALYZE",
        Backend::Postgres => "ANALYZE resources",
        Backend::Mysql => "ANALYZE TABLE resources, resource_labels",
    });
    s
}

/// Objects written since the last ANALYZE, and in all, by this process.
#[derive(Default)]
struct Statistics {
    since: u64,
    total: u64,
    running: bool,
}

/// PostgreSQL is analyzed after this many written objects at least (or half of all written).
const ANALYZE_AFTER: u64 = 10_000;

/// The bytes of the database's pages on MySQL/MariaDB (without compression).
const PAGES_SIZE: &str = "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) AS n FROM information_schema.tables WHERE table_schema = DATABASE()";

/// Rows per cluster and resource, and the database size.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub rows: Vec<(String, Gvr, i64)>,
    pub events: i64,
    /// Bytes on disk where the backend can tell.
    pub size_bytes: Option<i64>,
    /// MariaDB: the bytes of its pages uncompressed. Its page-compressed files count a page
    /// once the server writes it out, so `size_bytes` trails a burst of writes.
    pub uncompressed_bytes: Option<i64>,
}

/// What a relist changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaceOutcome {
    pub upserted: usize,
    pub deleted: usize,
}

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
/// nothing, a replay), so no lookup of the keys before the write is needed (dropping it made a
/// 500-object upsert stream on SQLite ~5% faster). SQLite returns only the rows it inserted or
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

/// MariaDB 10.5 and later take `INSERT ... RETURNING` (MySQL does not): `VERSION()` reads like
/// `10.11.6-MariaDB-0+deb12u1`.
fn mariadb_with_returning(version: &str) -> bool {
    let number = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = number.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().flatten(), parts.next().flatten());
    version.contains("MariaDB") && matches!((major, minor), (Some(m), Some(n)) if (m, n) >= (10, 5))
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = Text)]
    cluster: String,
    #[diesel(sql_type = Text)]
    api_group: String,
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    resource: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    s: String,
}

/// One integer column named `n` (counts, sizes).
#[derive(QueryableByName)]
pub(crate) struct Number {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// Keys of a (cluster, resource): `(namespace, name)`.
pub type ResourceVersions = HashMap<(Gvr, String, String), String>;

/// At most this many objects commit together on SQLite (the first write of a group may be
/// larger); bounds the transaction and the WAL it grows.
const GROUP_ROWS: usize = 20_000;

/// One write, prepared (rows and statements built) before it needs a connection.
struct Prepared {
    operation: &'static str,
    cluster: String,
    gvr: Gvr,
    rows: Vec<Row>,
    statements: Vec<Sql>,
    all_keys: Option<Sql>,
    replace: bool,
    /// The `synced_at` its statements write (see [`write_stamp`]).
    stamp: i64,
}

/// A prepared write waiting for SQLite's writer connection, and where its outcome goes.
struct Queued {
    write: Prepared,
    done: tokio::sync::oneshot::Sender<Result<ReplaceOutcome, StorageError>>,
}

/// Resolves the label pair ids of `$rows` (adding new pairs outside any transaction, see
/// labels.rs); an empty map on PostgreSQL, which indexes labels itself. Evaluates to a Result.
macro_rules! resolve_pairs {
    ($self:ident, $conn:ident, $backend:expr, $rows:expr) => {
        async {
            let backend = $backend;
            let labelled = backend != Backend::Postgres;
            // New label pairs go into the dictionary before the transaction (see labels.rs).
            let (mut pairs, missing) = if labelled { $self.label_pairs.lookup($rows) } else { Default::default() };
            if !missing.is_empty() {
                for i in labels::insert_pairs(backend, &missing) {
                    db::execute!($conn, &i, "label pairs")?;
                }
                for q in labels::select_pairs(backend, &missing) {
                    let read = db::load!($conn, &q, "label pairs", labels::PairRow)?;
                    $self.label_pairs.remember(read, &mut pairs);
                }
                if let Some(p) = missing.iter().find(|p| !pairs.contains_key(*p)) {
                    return Err::<_, StorageError>(StorageError::BadObject(
                        format!("label {}={}", p.0, p.1),
                        "the label pair was not stored in label_pairs".into(),
                    ));
                }
            }
            Ok::<_, StorageError>(pairs)
        }
        .await
    };
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
fn key_filter(s: &mut Sql, cluster: &str, gvr: &Gvr) {
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

/// `$body` (a block evaluating to a Result, using `?`) as an async block awaited (`[]`) or as a
/// closure called at once (`[sync]`).
macro_rules! run_block {
    ([sync] $body:block) => {{
        #[allow(clippy::redundant_closure_call)]
        let result = (|| $body)();
        result
    }};
    ([] $body:block) => {
        async $body.await
    };
}

/// Applies one [`Prepared`] write inside the caller's transaction: upserts, label index, stale
/// rows of a relist, change log. Evaluates to `Result<ReplaceOutcome, StorageError>`. `[sync]`
/// first: on a blocking connection (SQLite's writer, see `Storage::apply_sqlite`), else `[]`.
/// `$returning`: the server takes `INSERT ... RETURNING` (see `Storage::returning`).
macro_rules! apply_rows {
    ([$($mode:ident)?] $returning:expr, $conn:ident, $backend:expr, $w:expr, $pairs:expr) => {
        run_block!([$($mode)?] {
            let backend = $backend;
            let labelled = backend != Backend::Postgres;
            let existing = match &$w.all_keys {
                Some(k) => existing_map(db::load!($($mode)? $conn, k, $w.operation, KeyRow)?),
                None => Existing::new(),
            };
            let mut pending = Vec::new();
            for (s, chunk) in $w.statements.iter().zip($w.rows.chunks(BATCH)) {
                // PostgreSQL reports what its upsert did (RETURNING below), and so do SQLite
                // and MariaDB (see `returned_changes`), so only MySQL 8 looks the keys up first.
                let lookup = ($w.all_keys.is_none() && backend == Backend::Mysql && !$returning)
                    .then(|| keys_sql(backend, &$w.cluster, &$w.gvr, chunk.iter()))
                    .flatten();
                let mut before = match lookup {
                    Some(k) => existing_map(db::load!($($mode)? $conn, &k, $w.operation, KeyRow)?),
                    None => Existing::new(),
                };
                // SQLite and MariaDB return the ids of what they wrote, saving a lookup of the
                // new rows.
                let (changed, written) = match backend {
                    Backend::Sqlite if $w.replace => {
                        (classify(chunk, &existing), Some(db::load!($($mode)? $conn, s, $w.operation, KeyRow)?))
                    }
                    Backend::Sqlite => {
                        let newest = db::load!($($mode)? $conn, &newest_id_sql(), $w.operation, Number)?;
                        let written = db::load!($($mode)? $conn, s, $w.operation, KeyRow)?;
                        let newest = newest.first().map_or(0, |n| n.n);
                        let ops = written
                            .iter()
                            .map(|k| (k, Some(if k.id > newest { ChangeOp::Added } else { ChangeOp::Modified })));
                        let (changed, updated) = returned_changes(ops);
                        before = updated;
                        (changed, Some(written))
                    }
                    Backend::Postgres => {
                        let upserted = db::load!($($mode)? $conn, s, $w.operation, UpsertedRow)?;
                        let changed = if $w.replace {
                            classify(chunk, &existing)
                        } else {
                            upserted.into_iter().map(Pending::from).collect()
                        };
                        (changed, None)
                    }
                    Backend::Mysql if $returning => {
                        let (written, stamps): (Vec<KeyRow>, Vec<i64>) = db::load!($($mode)? $conn, s, $w.operation, StampedRow)?
                            .into_iter()
                            .map(|r| (r.key, r.synced_at))
                            .unzip();
                        let changed = if $w.replace {
                            classify(chunk, &existing)
                        } else {
                            let ops = written.iter().zip(&stamps).map(|(k, t)| (k, stamped_op(*t, $w.stamp)));
                            let (changed, updated) = returned_changes(ops);
                            before = updated;
                            changed
                        };
                        (changed, Some(written))
                    }
                    Backend::Mysql => {
                        let changed = classify(chunk, if $w.replace { &existing } else { &before });
                        db::execute!($($mode)? $conn, s, $w.operation)?;
                        (changed, None)
                    }
                };
                let before = if $w.replace { &existing } else { &before };
                if labelled {
                    let LabelChanges { mut ids, replaced, rows: changed_rows } = label_changes(&changed, before, chunk);
                    let new = match written {
                        Some(written) => written,
                        None => {
                            let added = chunk.iter().filter(|r| !before.contains_key(&(r.namespace.clone(), r.name.clone())));
                            match keys_sql(backend, &$w.cluster, &$w.gvr, added) {
                                Some(k) => db::load!($($mode)? $conn, &k, $w.operation, KeyRow)?,
                                None => Vec::new(),
                            }
                        }
                    };
                    ids.extend(new.into_iter().map(|k| ((k.namespace, k.name), k.id)));
                    let old = match labels::links_sql(backend, &replaced) {
                        Some(q) => db::load!($($mode)? $conn, &q, $w.operation, labels::LinkRow)?,
                        None => Vec::new(),
                    };
                    for l in labels::write_statements(backend, &changed_rows, &ids, &old, $pairs)? {
                        db::execute!($($mode)? $conn, &l, $w.operation)?;
                    }
                }
                pending.extend(changed);
            }
            let stale = stale_ids(&existing, &$w.rows);
            let n = pending.len() + stale.len();
            if n > 0 {
                db::execute!($($mode)? $conn, &changelog::reserve_sql(backend, n), $w.operation)?;
                let state = db::load!($($mode)? $conn, &changelog::state_sql(backend), $w.operation, changelog::StateRow)?;
                let mut next = changelog::first_reserved(&state, n)?;
                for e in changelog::upsert_entries(backend, &$w.cluster, &$w.gvr, next, &pending) {
                    db::execute!($($mode)? $conn, &e, $w.operation)?;
                }
                next += pending.len() as i64;
                for chunk in stale.chunks(BATCH) {
                    let ids = |s: &mut Sql| {
                        s.push(" WHERE id IN ").int_list(chunk.iter().copied());
                    };
                    let mut log = changelog::deletion_entries(backend, next);
                    ids(&mut log);
                    next += db::execute!($($mode)? $conn, &log, $w.operation)? as i64;
                    let mut d = Sql::new(backend);
                    d.push("DELETE FROM resources");
                    ids(&mut d);
                    db::execute!($($mode)? $conn, &d, $w.operation)?;
                }
            }
            Ok::<_, StorageError>(ReplaceOutcome { upserted: $w.rows.len(), deleted: stale.len() })
        })
    };
}

impl Storage {
    /// Connects, retrying with exponential backoff (each failure logged) for `attempts` tries.
    pub async fn connect(config: &StorageConfig, attempts: u32) -> Result<Self, StorageError> {
        let mut delay = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::open(config).await {
                Ok(storage) => return Ok(storage),
                Err(e) if tries < attempts.max(1) => {
                    tracing::warn!(storage = %config.redacted(), attempt = tries, error = %e, retry_in = ?delay, "storage not reachable yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        let pools = Pools::open(config).await?;
        let (returning, mariadb) = match config.backend {
            Backend::Mysql => {
                let mut q = Sql::new(Backend::Mysql);
                q.push("SELECT VERSION() AS s");
                let version: Vec<TextRow> =
                    with_conn!(&pools, read, "server version", |conn| db::load!(conn, &q, "server version", TextRow)?);
                let version = version.first().map_or("", |v| v.s.as_str());
                (mariadb_with_returning(version), version.contains("MariaDB"))
            }
            _ => (true, false),
        };
        Ok(Self {
            config: config.clone(),
            pools,
            label_pairs: Default::default(),
            queue: Default::default(),
            returning,
            mariadb,
            statistics: Default::default(),
            checkpointer: (config.backend == Backend::Sqlite)
                .then(|| crate::checkpoint::Checkpointer::start(config.target.clone(), crate::checkpoint::EVERY)),
        })
    }

    /// Writes as on a server without `INSERT ... RETURNING` (MySQL 8), for tests on MariaDB.
    #[doc(hidden)]
    pub fn without_returning(mut self) -> Self {
        self.returning = false;
        self
    }

    /// SQLite: checkpoints the WAL in the background after every `objects` written (for tests).
    #[doc(hidden)]
    pub fn checkpoint_every(mut self, objects: u64) -> Self {
        if self.config.backend == Backend::Sqlite {
            self.checkpointer = Some(crate::checkpoint::Checkpointer::start(self.config.target.clone(), objects));
        }
        self
    }

    /// Whether upserts take ids from `INSERT ... RETURNING` (for tests).
    #[doc(hidden)]
    pub fn uses_returning(&self) -> bool {
        self.returning
    }

    pub fn backend(&self) -> Backend {
        self.config.backend
    }

    /// Applies pending migrations; a database migrated by a newer pedia is refused.
    /// Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<String>, StorageError> {
        let target = self.config.target.clone();
        let connect_err = |e: diesel::ConnectionError| StorageError::Connect {
            target: self.config.redacted(),
            message: e.to_string(),
        };
        // Processes that start together on one database (the operator and its apiserver sidecar)
        // migrate it together: they take turns under a lock held while migrating (PostgreSQL's
        // advisory lock, MySQL's GET_LOCK, a file lock beside a SQLite database).
        let lock_err = |e: diesel::result::Error| StorageError::Schema(format!("taking the migration lock: {e}"));
        match self.config.backend {
            Backend::Sqlite => {
                let _lock = sqlite_migration_lock(&target).await?;
                let mut conn = SqliteConn::establish(&target).await.map_err(connect_err)?;
                conn.batch_execute("PRAGMA busy_timeout = 10000").await.map_err(lock_err)?;
                run_migrations(conn, SQLITE_MIGRATIONS)
            }
            Backend::Postgres => {
                let mut conn = crate::tls::connect_pg(&target, &self.config.tls).await.map_err(connect_err)?;
                conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .await
                    .map_err(lock_err)?;
                run_migrations(conn, POSTGRES_MIGRATIONS)
            }
            Backend::Mysql => {
                let mut conn = crate::tls::connect_mysql(&target, &self.config.tls).await.map_err(connect_err)?;
                conn.batch_execute("SELECT GET_LOCK('pedia-migrations', 600)").await.map_err(lock_err)?;
                run_migrations(conn, MYSQL_MIGRATIONS)
            }
        }
    }

    /// Inserts or updates objects of one resource of one cluster (batched, one transaction).
    /// A deadlock or busy database is retried a few times (the batch is idempotent).
    pub async fn upsert(&self, cluster: &str, gvr: &Gvr, objects: &[Value]) -> Result<usize, StorageError> {
        let write = || self.write_once("upsert", cluster, gvr, objects, false);
        Ok(retrying("upsert", cluster, gvr, write).await?.upserted)
    }

    /// Writes `objects` in one transaction, logging each change; with `replace`, every other row
    /// of this (cluster, resource) is deleted too (a relist). On SQLite, writes queued behind the
    /// single writer connection commit together (see [`Storage::write_grouped`]).
    async fn write_once(
        &self,
        operation: &'static str,
        cluster: &str,
        gvr: &Gvr,
        objects: &[Value],
        replace: bool,
    ) -> Result<ReplaceOutcome, StorageError> {
        let stamp = write_stamp();
        let (rows, statements) = object::cpu_bound(|| {
            let rows = last_of_each_key(object::prepare_all(cluster, objects)?);
            let statements = self.upsert_statements(cluster, gvr, &rows, stamp);
            Ok::<_, StorageError>((rows, statements))
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
            return self.write_grouped(writer, write).await;
        }
        let backend = self.backend();
        let outcome = with_conn!(&self.pools, write, operation, |conn| {
            let pairs = resolve_pairs!(self, conn, backend, write.rows.iter())?;
            db::begin(&mut *conn, backend).await?;
            let result = apply_rows!([] self.returning, conn, backend, &write, &pairs);
            db::finish(&mut *conn, result).await
        })?;
        if backend == Backend::Postgres {
            self.keep_statistics(outcome.upserted + outcome.deleted).await;
        }
        Ok(outcome)
    }

    /// PostgreSQL plans from statistics that only ANALYZE gathers (autovacuum may be off, or
    /// behind a fast initial sync): without them, a relist's key lookup picked a resource-wide
    /// index and scanned it (4 s per relist at 1,000,000 rows). This analyzes after half of what
    /// this process wrote in all (at least 10,000 objects) was written since: statistics within
    /// a factor of two keep the plans, and an initial sync pays for a few ANALYZEs, not one per
    /// tenth (each samples the whole table). In the background:
    /// awaited in the write that crossed the line, ANALYZE of a 1,000,000-row table held that
    /// write (and whatever waited on it) for seconds.
    async fn keep_statistics(&self, written: usize) {
        let due = {
            let mut st = self.statistics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            st.since += written as u64;
            st.total += written as u64;
            let due = !st.running && st.since >= (st.total / 2).max(ANALYZE_AFTER);
            if due {
                st.running = true;
                st.since = 0;
            }
            due
        };
        let Pools::Postgres(pool) = &self.pools else { return };
        if due {
            let (pool, statistics) = (pool.clone(), self.statistics.clone());
            tokio::spawn(async move {
                let s = analyze_sql(Backend::Postgres);
                let analyzed: Result<usize, StorageError> = async {
                    let mut conn = pool.get().await.map_err(db::pool_err("analyze"))?;
                    let conn = &mut *conn;
                    Ok(db::execute!(conn, &s, "analyze")?)
                }
                .await;
                if let Err(e) = analyzed {
                    tracing::warn!(error = %e, "ANALYZE after a large write failed; query plans may be poor");
                }
                statistics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).running = false;
            });
        }
    }

    /// SQLite has one writer: a write joins the queue, and whoever gets the writer connection
    /// commits the older half of what is queued by then in one transaction (group commit:
    /// several sync workers' batches pay for one commit). Half, not all: the callers of a group
    /// prepare their next batches while the writer commits the other half; taking everything
    /// left the writer idle while every caller prepared at once (initial sync +15-25%). A write
    /// whose caller gave up may still be applied by the next writer; writes are idempotent.
    async fn write_grouped(
        &self,
        writer: &diesel_async::pooled_connection::bb8::Pool<SqliteConn>,
        write: Prepared,
    ) -> Result<ReplaceOutcome, StorageError> {
        let operation = write.operation;
        let lost = || StorageError::Pool { operation, message: "the write was dropped before it finished".into() };
        let (done, mut outcome) = tokio::sync::oneshot::channel();
        self.queued().push(Queued { write, done });
        loop {
            tokio::select! {
                biased;
                result = &mut outcome => return result.unwrap_or_else(|_| Err(lost())),
                conn = writer.get() => {
                    let mut conn = conn.map_err(db::pool_err(operation))?;
                    match outcome.try_recv() {
                        Ok(result) => return result,
                        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return Err(lost()),
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
                    }
                    let group = {
                        let mut queue = self.queued();
                        let mut rows = 0;
                        let n = queue
                            .iter()
                            .take_while(|q| {
                                rows += q.write.rows.len();
                                rows <= GROUP_ROWS
                            })
                            .count()
                            .min(queue.len().div_ceil(2))
                            .max(1)
                            .min(queue.len());
                        queue.drain(..n).collect::<Vec<_>>()
                    };
                    if group.is_empty() {
                        // Not ours to wait for any more: the write that took it was dropped.
                        return Err(lost());
                    }
                    self.commit_group(&mut conn, group).await;
                }
            }
        }
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // A poisoned queue still holds valid writes.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits `group` in one transaction; when that fails, each write alone (so one bad write
    /// fails only its own caller).
    async fn commit_group(&self, conn: &mut SqliteConn, group: Vec<Queued>) {
        let (writes, done): (Vec<Prepared>, Vec<_>) = group.into_iter().map(|q| (q.write, q.done)).unzip();
        let writes = std::sync::Arc::new(writes);
        let together = self.apply_sqlite(conn, &writes, None).await;
        if let Some(c) = &self.checkpointer {
            c.wrote(writes.iter().map(|w| w.rows.len()).sum());
        }
        match together {
            Ok(outcomes) => {
                for (d, o) in done.into_iter().zip(outcomes) {
                    let _ = d.send(Ok(o));
                }
            }
            Err(e) if done.len() == 1 => {
                if let Some(d) = done.into_iter().next() {
                    let _ = d.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(writes = done.len(), error = %e, "group commit failed; writing one by one");
                for (i, d) in done.into_iter().enumerate() {
                    let alone = self.apply_sqlite(conn, &writes, Some(i)).await;
                    let _ = d.send(alone.and_then(|mut o| {
                        o.pop().ok_or_else(|| StorageError::Pool {
                            operation: writes[i].operation,
                            message: "no outcome".into(),
                        })
                    }));
                }
            }
        }
    }

    /// `writes` (or only the write at index `only`) in one SQLite transaction, run in one
    /// blocking call on the writer connection: each statement through the async wrapper is a
    /// hand-off to a blocking thread and back (about 0.14 ms on this 2-core machine, some 15 per
    /// group) and a copy of its binds.
    async fn apply_sqlite(
        &self,
        conn: &mut SqliteConn,
        writes: &std::sync::Arc<Vec<Prepared>>,
        only: Option<usize>,
    ) -> Result<Vec<ReplaceOutcome>, StorageError> {
        let backend = Backend::Sqlite;
        let chosen = move |i: usize| only.is_none_or(|o| o == i);
        let rows = writes.iter().enumerate().filter(|(i, _)| chosen(*i)).flat_map(|(_, w)| w.rows.iter());
        let pairs = resolve_pairs!(self, conn, backend, rows)?;
        let (writes, returning) = (writes.clone(), self.returning);
        let applied = conn.spawn_blocking(move |c| {
            let result = db::begin_blocking(c).and_then(|()| {
                let mut outcomes = Vec::with_capacity(writes.len());
                for w in writes.iter().enumerate().filter(|(i, _)| chosen(*i)).map(|(_, w)| w) {
                    outcomes.push(apply_rows!([sync] returning, c, backend, w, &pairs)?);
                }
                Ok(outcomes)
            });
            Ok(db::finish_blocking(c, result))
        });
        applied.await.map_err(StorageError::query("write"))?
    }

    /// The multi-row upserts of `rows`, writing `stamp` as their `synced_at`.
    fn upsert_statements(&self, cluster: &str, gvr: &Gvr, rows: &[Row], stamp: i64) -> Vec<Sql> {
        rows.chunks(BATCH)
            .map(|chunk| {
                let pg = self.backend() == Backend::Postgres;
                let mut s = Sql::new(self.backend());
                if chunk.len() == BATCH {
                    // Full batches share one text.
                    s.reuse_prepared();
                }
                s.push(&format!("INSERT INTO resources ({COLUMNS}{}) VALUES ", if pg { ", labels" } else { "" }));
                for (i, r) in chunk.iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.push("(").text(cluster).push(", ").text(&gvr.group).push(", ").text(&gvr.version).push(", ");
                    s.text(&gvr.resource).push(", ").text(&r.kind).push(", ").text(&r.namespace).push(", ");
                    s.text(&r.name).push(", ").text(&r.uid).push(", ").text(&r.owner_uid).push(", ");
                    s.text(&r.resource_version).push(", ").int(r.created_at).push(", ").int(stamp).push(", ");
                    s.bind(Bind::OptInt(None)).push(", ").text(&r.object);
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
    async fn delete_where(
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
                let n = db::load!(conn, &count, operation, Number)?.first().map_or(0, |n| n.n) as usize;
                if n == 0 {
                    return Ok(0);
                }
                db::execute!(conn, &changelog::reserve_sql(backend, n), operation)?;
                let state = db::load!(conn, &changelog::state_sql(backend), operation, changelog::StateRow)?;
                let mut log = changelog::deletion_entries(backend, changelog::first_reserved(&state, n)?);
                filter(&mut log);
                db::execute!(conn, &log, operation)?;
                db::execute!(conn, &delete, operation)
            }
            .await;
            db::finish(&mut *conn, result).await
        })
    }

    /// After a relist: stores `objects` and deletes every other row of this (cluster, resource),
    /// all in one transaction.
    pub async fn replace_all(
        &self,
        cluster: &str,
        gvr: &Gvr,
        objects: &[Value],
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

    /// Deletes every row of a cluster (PediaCluster deletion); returns how many.
    pub async fn clean_cluster(&self, cluster: &str) -> Result<usize, StorageError> {
        let n = self
            .delete_where("clean_cluster", |s: &mut Sql| {
                s.push(" WHERE cluster = ").text(cluster);
            })
            .await?;
        // What pedia keeps beside the objects: events and resource definitions.
        for table in ["events", "resource_definitions"] {
            let mut e = Sql::new(self.backend());
            e.push("DELETE FROM ").push(table).push(" WHERE cluster = ").text(cluster);
            with_conn!(&self.pools, write, "clean_cluster: events and definitions", |conn| db::execute!(
                conn,
                &e,
                "clean_cluster: events and definitions"
            )?);
        }
        Ok(n)
    }

    /// Deletes every row of one resource of a cluster (a resource no longer synced).
    pub async fn clean_resource(&self, cluster: &str, gvr: &Gvr) -> Result<usize, StorageError> {
        self.delete_where("clean_resource", |s: &mut Sql| key_filter(s, cluster, gvr)).await
    }

    /// Refreshes the query planner's statistics (after bulk changes).
    pub async fn analyze(&self) -> Result<(), StorageError> {
        let s = analyze_sql(self.backend());
        with_conn!(&self.pools, write, "analyze", |conn| db::execute!(conn, &s, "analyze")?);
        Ok(())
    }

    /// Rows per cluster and resource, events, and the database size.
    pub async fn stats(&self) -> Result<Stats, StorageError> {
        let mut s = Sql::new(self.backend());
        s.push("SELECT cluster, api_group, version, resource, COUNT(*) AS n FROM resources GROUP BY cluster, api_group, version, resource ORDER BY cluster, api_group, version, resource");
        let mut e = Sql::new(self.backend());
        e.push("SELECT COUNT(*) AS n FROM events");
        let mut size = Sql::new(self.backend());
        size.push(match self.backend() {
            Backend::Sqlite => "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()",
            Backend::Postgres => "SELECT pg_database_size(current_database()) AS n",
            // Page-compressed files take less than their pages: the bytes allocated on disk
            // (pages still only in the buffer pool are counted once written).
            Backend::Mysql if self.mariadb => "SELECT CAST(COALESCE(SUM(allocated_size), 0) AS SIGNED) AS n FROM information_schema.innodb_sys_tablespaces WHERE SUBSTRING_INDEX(name, '/', 1) = DATABASE()",
            Backend::Mysql => PAGES_SIZE,
        });
        let mut pages = Sql::new(self.backend());
        pages.push(PAGES_SIZE);
        let (rows, events, size, uncompressed): (Vec<CountRow>, Vec<Number>, Vec<Number>, Vec<Number>) =
            with_conn!(&self.pools, read, "stats", |conn| (
                db::load!(conn, &s, "stats: rows", CountRow)?,
                db::load!(conn, &e, "stats: events", Number)?,
                db::load!(conn, &size, "stats: size", Number)?,
                if self.mariadb { db::load!(conn, &pages, "stats: size of the pages", Number)? } else { Vec::new() },
            ));
        Ok(Stats {
            rows: rows
                .into_iter()
                .map(|r| (r.cluster, Gvr { group: r.api_group, version: r.version, resource: r.resource }, r.n))
                .collect(),
            events: events.first().map_or(0, |n| n.n),
            size_bytes: size.first().map(|n| n.n),
            uncompressed_bytes: uncompressed.first().map(|n| n.n),
        })
    }

    /// How the connection to the database is protected: `TLS <version>`, `plain`, or
    /// `local file` for SQLite (for `pedia storage stats` and the tests).
    pub async fn connection_security(&self) -> Result<String, StorageError> {
        let mut q = Sql::new(self.backend());
        q.push(match self.backend() {
            Backend::Sqlite => "SELECT 'local file' AS s",
            Backend::Postgres => {
                "SELECT CASE WHEN ssl THEN 'TLS ' || version ELSE 'plain' END AS s FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            }
            Backend::Mysql => {
                "SELECT CASE WHEN VARIABLE_VALUE = '' THEN 'plain' ELSE CONCAT('TLS ', VARIABLE_VALUE) END AS s FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION'"
            }
        });
        let rows: Vec<TextRow> = with_conn!(&self.pools, read, "connection security", |conn| db::load!(
            conn,
            &q,
            "connection security",
            TextRow
        )?);
        Ok(rows.into_iter().next().map_or_else(|| "unknown".to_owned(), |r| r.s))
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }
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

/// The PostgreSQL advisory lock migrations hold (any fixed number; "pedia" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0070_6564_6961;

/// An exclusive lock on `<database>-migrate` (beside its `-wal` and `-shm` files), held until
/// dropped: SQLite's own locks are per transaction, and two processes that both found a migration
/// pending would both run it. An in-memory database has no other process to wait for.
async fn sqlite_migration_lock(target: &str) -> Result<Option<std::fs::File>, StorageError> {
    if target == ":memory:" || target.starts_with("file::memory:") {
        return Ok(None);
    }
    let path = format!("{target}{}", db::SQLITE_SIDE_FILES[2]);
    let lock = move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    };
    let failed = |e: String| StorageError::Schema(format!("taking the migration lock {target}-migrate: {e}"));
    match tokio::task::spawn_blocking(lock).await {
        Ok(Ok(file)) => Ok(Some(file)),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(e) => Err(failed(e.to_string())),
    }
}

fn run_migrations<C>(conn: C, migrations: EmbeddedMigrations) -> Result<Vec<String>, StorageError>
where
    C: AsyncConnection + 'static,
    AsyncMigrationHarness<C>: MigrationHarness<C::Backend>,
{
    let schema = |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Schema(e.to_string());
    let mut harness = AsyncMigrationHarness::new(conn);
    let known: Vec<String> = diesel::migration::MigrationSource::<C::Backend>::migrations(&migrations)
        .map_err(schema)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied: Vec<String> = harness.applied_migrations().map_err(schema)?.iter().map(ToString::to_string).collect();
    if let Some(newer) = applied.iter().find(|v| !known.contains(v)) {
        return Err(StorageError::Schema(format!(
            "the database has schema version {newer}, which this pedia does not know (it knows up to {}); upgrade pedia",
            known.last().map_or("none", String::as_str)
        )));
    }
    let ran = harness.run_pending_migrations(migrations).map_err(schema)?;
    Ok(ran.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// Sync workers and request handlers run storage calls in spawned tasks: their futures must
    /// be `Send` (checked at compile time).
    #[allow(dead_code)]
    fn storage_futures_are_send(s: &Storage, gvr: &Gvr, objects: &[Value], req: &crate::ListRequest) {
        assert_send(s.upsert("c", gvr, objects));
        assert_send(s.replace_all("c", gvr, objects));
        assert_send(s.delete("c", gvr, "ns", "n"));
        assert_send(s.list(req));
        assert_send(s.resource_versions("c"));
        assert_send(s.stats());
        assert_send(s.clean_cluster("c"));
        assert_send(s.record_events("c", objects));
        assert_send(s.migrate());
    }

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
    fn returning_is_used_on_mariadb_10_5_and_later_only() {
        assert!(mariadb_with_returning("10.11.19-MariaDB-0+deb12u1"));
        assert!(mariadb_with_returning("11.4.2-MariaDB"));
        assert!(mariadb_with_returning("5.5.5-10.6.12-MariaDB"), "the replication prefix of old servers");
        assert!(!mariadb_with_returning("10.4.32-MariaDB"));
        assert!(!mariadb_with_returning("8.0.36"));
        assert!(!mariadb_with_returning("8.4.0-commercial"));
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
