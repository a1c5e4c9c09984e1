//! The storage API: connecting, and the store's state. Its parts: migrations (`migrate`), the
//! write path of the sync engine (`write`), SQLite's single writer (`sqlite_writer`), and
//! administration (`admin`: statistics, cleaning, ANALYZE); reads are in `query`.

mod admin;
mod migrate;
mod sqlite_writer;
mod write;

use std::collections::HashMap;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};

use crate::config::{Backend, StorageConfig};
use crate::db::{Pools, with_conn};
use crate::error::StorageError;
use crate::labels;
use crate::runner::Runner;
use crate::sql::Sql;
use api_types::Gvr;

use admin::Statistics;
use sqlite_writer::SqliteWriter;

/// Rows per INSERT statement (14 binds each, well under every backend's bind limit).
const BATCH: usize = 500;

/// A write of exactly this many objects (or of [`BATCH`]) runs a statement kept prepared on the
/// connection, parsed and planned once: the sync engine writes in batches of one of these sizes
/// ([`WriteShape`]). Each other size is prepared for its one execution (a statement of thousands
/// of placeholders: on PostgreSQL, parsing and planning the sync engine's batches took a good
/// part of its CPU).
pub const PREPARED_BATCH: usize = 250;

/// How a bulk writer (the sync engine) best writes into a store: `batch` objects per write,
/// `concurrent` writes at once. Both bound the objects held in memory while the store is busy
/// (`batch * concurrent` of them), so they are chosen together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteShape {
    pub batch: usize,
    pub concurrent: usize,
}

impl WriteShape {
    /// The shape for `backend`. SQLite has one writer, which commits the writes queued meanwhile
    /// together: three writes at once keep it busy (the others are prepared while one group
    /// commits), and batches of 500 do half the per-write work of 250 (the writer's lookups and
    /// change-log reservation, the callers' hand-offs); 1,500 objects held instead of 1,000 cost
    /// about 10 MiB of peak RSS at 100,000 objects. A server runs writes in parallel: four of 250 (with batches of
    /// 500, PostgreSQL synced 4% slower and pedia held 40 MiB more).
    pub fn of(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => WriteShape { batch: BATCH, concurrent: 3 },
            Backend::Postgres | Backend::Mysql => WriteShape { batch: PREPARED_BATCH, concurrent: 4 },
        }
    }
}

const COLUMNS: &str = "cluster, api_group, version, resource, kind, namespace, name, uid, owner_uid, resource_version, created_at, synced_at, deleted_at, object";

/// The bytes of a SQLite database's pages.
const SQLITE_SIZE: &str = "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()";

/// The store.
pub struct Storage {
    config: StorageConfig,
    pools: Pools,
    label_pairs: std::sync::Arc<labels::PairCache>,
    /// SQLite: writes wait for its single writer connection there (see `sqlite_writer`).
    sqlite_writer: std::sync::Arc<SqliteWriter>,
    /// The server takes `INSERT ... RETURNING` (SQLite, PostgreSQL, MariaDB; not MySQL 8), so
    /// an upsert reports the ids it wrote instead of a second lookup.
    returning: bool,
    /// The server is MariaDB: its tables are page-compressed (see the migrations), so the
    /// database size is what its files take on disk.
    mariadb: bool,
    /// Rows written since this process last analyzed (PostgreSQL), see `keep_statistics`.
    statistics: std::sync::Arc<std::sync::Mutex<Statistics>>,
}

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

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    s: String,
}

/// The columns naming a cluster's resource: `cluster, api_group, version, resource`.
#[derive(QueryableByName)]
pub(crate) struct ClusterResource {
    #[diesel(sql_type = Text)]
    cluster: String,
    #[diesel(sql_type = Text)]
    api_group: String,
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    resource: String,
}

impl ClusterResource {
    pub(crate) fn gvr(self) -> (String, Gvr) {
        (self.cluster, Gvr { group: self.api_group, version: self.version, resource: self.resource })
    }
}

/// One integer column named `n` (counts, sizes).
#[derive(QueryableByName)]
pub(crate) struct Number {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// Keys of a (cluster, resource): `(namespace, name)`.
pub type ResourceVersions = HashMap<(Gvr, String, String), String>;

/// MariaDB 10.5 and later take `INSERT ... RETURNING` (MySQL does not): `VERSION()` reads like
/// `10.11.6-MariaDB-0+deb12u1`.
fn mariadb_with_returning(version: &str) -> bool {
    let number = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = number.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().flatten(), parts.next().flatten());
    version.contains("MariaDB") && matches!((major, minor), (Some(m), Some(n)) if (m, n) >= (10, 5))
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
                let version: Vec<TextRow> = with_conn!(&pools, read, "server version", |conn| conn
                    .load::<TextRow>(&q, "server version")
                    .await?);
                let version = version.first().map_or("", |v| v.s.as_str());
                (mariadb_with_returning(version), version.contains("MariaDB"))
            }
            _ => (true, false),
        };
        let label_pairs = std::sync::Arc::new(labels::PairCache::default());
        let checkpointer = (config.backend == Backend::Sqlite)
            .then(|| crate::checkpoint::Checkpointer::start(config.target.clone(), crate::checkpoint::EVERY));
        Ok(Self {
            config: config.clone(),
            pools,
            sqlite_writer: std::sync::Arc::new(SqliteWriter::new(label_pairs.clone(), checkpointer)),
            label_pairs,
            returning,
            mariadb,
            statistics: Default::default(),
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
    pub fn checkpoint_every(self, objects: u64) -> Self {
        if self.config.backend == Backend::Sqlite {
            self.sqlite_writer
                .checkpoint_with(crate::checkpoint::Checkpointer::start(self.config.target.clone(), objects));
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

    /// How the sync engine best writes into this store (see [`WriteShape`]).
    pub fn write_shape(&self) -> WriteShape {
        WriteShape::of(self.backend())
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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

    #[test]
    fn write_shapes_use_prepared_sizes_and_bound_the_objects_held() {
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
            let shape = WriteShape::of(backend);
            assert!([BATCH, PREPARED_BATCH].contains(&shape.batch), "{backend:?}: {shape:?} is not a prepared size");
            assert!(shape.concurrent >= 2, "{backend:?}: one write at a time leaves the store idle");
            // What the sync engine's peak RSS was measured with (docs/sync.md).
            assert!(shape.batch * shape.concurrent <= 1_500, "{backend:?}: {shape:?} holds too many objects");
        }
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
}
