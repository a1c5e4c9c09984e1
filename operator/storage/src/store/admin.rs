//! Administration: statistics, cleaning a cluster or resource, the planner's statistics, the
//! connection's security.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;

use super::write::key_filter;
use super::{ClusterResource, Number, SQLITE_SIZE, Stats, Storage, TextRow};
use crate::config::Backend;
use crate::db::{self, Pools, with_conn};
use crate::error::StorageError;
use crate::runner::Runner;
use crate::sql::Sql;
use api_types::Gvr;

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

/// PostgreSQL: whether the server's autovacuum runs (1) or not (0).
const AUTOVACUUM_ON: &str =
    "SELECT CAST(CASE WHEN current_setting('autovacuum') = 'on' THEN 1 ELSE 0 END AS BIGINT) AS n";

/// PostgreSQL without autovacuum: nothing else would vacuum `resources`, so its updated rows
/// would never be reclaimed and its visibility map (which index-only scans of the order index
/// need: wide label pages) would stay empty. VACUUM skips the pages it already marked visible.
const VACUUM_ANALYZE: &str = "VACUUM (ANALYZE) resources";

/// Refreshes PostgreSQL's statistics, and vacuums where autovacuum is off (see [`VACUUM_ANALYZE`]).
async fn maintain_postgres<C: Runner>(conn: &mut C) -> Result<usize, StorageError> {
    let mut on = Sql::new(Backend::Postgres);
    on.push(AUTOVACUUM_ON);
    let autovacuum = conn.load::<Number>(&on, "analyze").await?.first().is_none_or(|n| n.n == 1);
    let mut s = analyze_sql(Backend::Postgres);
    if !autovacuum {
        s = Sql::new(Backend::Postgres);
        s.push(VACUUM_ANALYZE);
    }
    conn.execute(&s, "analyze").await
}

/// Objects written since the last ANALYZE, and in all, by this process.
#[derive(Default)]
pub(super) struct Statistics {
    since: u64,
    total: u64,
    /// An ANALYZE is due: waiting for a lull in the writes, or running.
    pending: bool,
    last_write: Option<std::time::Instant>,
}

impl Statistics {
    /// Counts `written` objects; whether an ANALYZE is due and none is pending.
    fn wrote(&mut self, written: u64, now: std::time::Instant) -> bool {
        self.since += written;
        self.total += written;
        self.last_write = Some(now);
        !self.pending && self.since >= (self.total / 2).max(ANALYZE_AFTER)
    }

    /// Whether the due ANALYZE runs now: at once when three times as many objects were written
    /// since the last one as before it (the first one; a long ingest, whose table grew
    /// fourfold), else once writes pause for [`ANALYZE_LULL`].
    fn run_now(&self, now: std::time::Instant) -> bool {
        let quiet = self.last_write.is_none_or(|w| now.duration_since(w) >= ANALYZE_LULL);
        quiet || self.since >= self.total / 4 * 3
    }
}

fn lock(statistics: &std::sync::Mutex<Statistics>) -> std::sync::MutexGuard<'_, Statistics> {
    // Counters stay usable after a panic elsewhere.
    statistics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// PostgreSQL is analyzed after this many written objects at least (or half of all written).
const ANALYZE_AFTER: u64 = 10_000;

/// A due ANALYZE waits for writes to pause this long (see [`Statistics::run_now`]).
const ANALYZE_LULL: std::time::Duration = std::time::Duration::from_secs(1);

/// The bytes of the database's pages on MySQL/MariaDB (without compression).
const PAGES_SIZE: &str = "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) AS n FROM information_schema.tables WHERE table_schema = DATABASE()";

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(embed)]
    key: ClusterResource,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Storage {
    /// PostgreSQL plans from statistics that only ANALYZE gathers (autovacuum may be off, or
    /// behind a fast initial sync): without them, a relist's key lookup picked a resource-wide
    /// index and scanned it (seconds per relist at a million rows). This analyzes after half of what
    /// this process wrote in all (at least 10,000 objects) was written since: statistics within
    /// a factor of two keep the plans. In the background (awaited in the write that crossed the
    /// line, ANALYZE of a large table held that write for seconds), and once writes pause unless
    /// the table grew fourfold meanwhile: each ANALYZE samples the table and makes every
    /// connection plan its statements again, which slowed an initial sync by a tenth when it ran
    /// at every doubling.
    pub(super) async fn keep_statistics(&self, written: usize) {
        let Pools::Postgres(pool) = &self.pools else { return };
        let due = {
            let mut st = lock(&self.statistics);
            let due = st.wrote(written as u64, std::time::Instant::now());
            st.pending |= due;
            due
        };
        if due {
            let (pool, statistics) = (pool.clone(), self.statistics.clone());
            tokio::spawn(async move {
                loop {
                    {
                        let mut st = lock(&statistics);
                        if st.run_now(std::time::Instant::now()) {
                            st.since = 0;
                            break;
                        }
                    }
                    tokio::time::sleep(ANALYZE_LULL / 4).await;
                }
                let analyzed: Result<usize, StorageError> = async {
                    let mut conn = pool.get().await.map_err(db::pool_err("analyze"))?;
                    maintain_postgres(&mut *conn).await
                }
                .await;
                if let Err(e) = analyzed {
                    tracing::warn!(error = %e, "ANALYZE after a large write failed; query plans may be poor");
                }
                lock(&statistics).pending = false;
            });
        }
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
            with_conn!(&self.pools, write, "clean_cluster: events and definitions", |conn| conn
                .execute(&e, "clean_cluster: events and definitions")
                .await?);
        }
        Ok(n)
    }

    /// Deletes every row of one resource of a cluster (a resource no longer synced).
    pub async fn clean_resource(&self, cluster: &str, gvr: &Gvr) -> Result<usize, StorageError> {
        self.delete_where("clean_resource", |s: &mut Sql| key_filter(s, cluster, gvr)).await
    }

    /// Refreshes the query planner's statistics (after bulk changes); PostgreSQL without
    /// autovacuum is vacuumed too.
    pub async fn analyze(&self) -> Result<(), StorageError> {
        if let Pools::Postgres(pool) = &self.pools {
            let mut conn = pool.get().await.map_err(db::pool_err("analyze"))?;
            maintain_postgres(&mut *conn).await?;
            return Ok(());
        }
        let s = analyze_sql(self.backend());
        with_conn!(&self.pools, write, "analyze", |conn| conn.execute(&s, "analyze").await?);
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
            Backend::Sqlite => SQLITE_SIZE,
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
                conn.load::<CountRow>(&s, "stats: rows").await?,
                conn.load::<Number>(&e, "stats: events").await?,
                conn.load::<Number>(&size, "stats: size").await?,
                if self.mariadb { conn.load::<Number>(&pages, "stats: size of the pages").await? } else { Vec::new() },
            ));
        Ok(Stats {
            rows: rows
                .into_iter()
                .map(|r| {
                    let (cluster, gvr) = r.key.gvr();
                    (cluster, gvr, r.n)
                })
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
        let rows: Vec<TextRow> = with_conn!(&self.pools, read, "connection security", |conn| conn
            .load::<TextRow>(&q, "connection security")
            .await?);
        Ok(rows.into_iter().next().map_or_else(|| "unknown".to_owned(), |r| r.s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn analyze_is_due_at_each_doubling_and_waits_for_a_lull_unless_the_table_grew_fourfold() {
        let t0 = Instant::now();
        let mut st = Statistics::default();
        assert!(!st.wrote(9_999, t0), "fewer than 10,000 objects");
        assert!(st.wrote(1, t0));
        // The first one runs at once: there are no statistics at all yet.
        assert!(st.run_now(t0));
        st.pending = true;
        st.since = 0;
        assert!(!st.wrote(20_000, t0), "one is pending");
        st.pending = false;
        // 30,000 since of 40,000: grown fourfold since the last one, so at once.
        assert!(st.wrote(10_000, t0));
        assert!(st.run_now(t0));
        st.since = 0;
        // Due again at 80,000 (twice 40,000), but writes go on: it waits for them to pause...
        assert!(st.wrote(40_000, t0));
        assert!(!st.run_now(t0 + ANALYZE_LULL / 2));
        assert!(st.run_now(t0 + ANALYZE_LULL));
        // ...or until the table has grown fourfold (120,000 since of 160,000).
        st.wrote(80_000, t0 + Duration::from_millis(10));
        assert!(st.run_now(t0 + Duration::from_millis(10)));
    }
}
