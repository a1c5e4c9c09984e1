//! Connection pools for the three backends and the dispatch that runs one piece of code on
//! whichever backend is configured (diesel-async has no async MultiConnection).

use std::time::Duration;

use diesel::SqliteConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

use crate::config::{Backend, StorageConfig};
use crate::error::StorageError;
use crate::sql::{Bind, Sql};

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// The pools of the configured backend.
pub enum Pools {
    /// SQLite allows one writer at a time: writes go through a pool of one connection so they
    /// queue in pedia instead of failing with "database is locked".
    Sqlite {
        read: Pool<SqliteConn>,
        write: Pool<SqliteConn>,
    },
    Postgres(Pool<AsyncPgConnection>),
    Mysql(Pool<AsyncMysqlConnection>),
}

/// What SQLite and pedia keep beside a database file: the WAL, its index, and the lock that
/// migrations take turns under.
pub const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-migrate"];

/// Removes a SQLite database and the files beside it (tests and benchmarks start afresh).
pub fn remove_sqlite(path: &std::path::Path) {
    let path = path.display();
    for suffix in std::iter::once("").chain(SQLITE_SIDE_FILES) {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

/// SQLite settings every connection gets: 16 KiB pages (set when the file is created: objects of
/// a few KB wasted a quarter of each 4 KiB page), WAL (readers do not block the writer), a busy
/// timeout, fsync at checkpoints only, a 32 MiB page cache (the default 2 MiB thrashes on large
/// objects), reads through a memory map (no copy) of the first 2 GiB, the most the bundled SQLite
/// maps, and checkpoints every 256 MiB of WAL: a checkpoint writes each page once however many
/// commits changed it, so rarer ones write less. Measurements: docs/bench/storage.md.
pub const SQLITE_SETUP: &str = "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768; PRAGMA mmap_size = 2147418112; \
     PRAGMA wal_autocheckpoint = 16384;";

/// The writer's page cache at full size, 128 MiB (see [`writer_cache_kib`]): the index pages a
/// write changes lie all over the indexes, and with more of them cached fewer are read back.
/// Temporary files keep SQLite's default (`temp_store = FILE`): a multi-row upsert's statement
/// journal stays in memory up to 16 MiB in one allocation ([`STATEMENT_JOURNAL_SPILL`]);
/// `temp_store = MEMORY` kept it in 1 KiB pieces, a malloc each, and the default 64 KiB limit
/// spilled it to a file.
pub const SQLITE_WRITER_SETUP: &str = "PRAGMA cache_size = -131072;";

/// The writer's page cache for a database of `bytes`, in KiB: an eighth of the database in
/// 16 MiB steps, from the readers' 32 MiB up to 128 MiB. A cache fills once the database is
/// larger than it, and a small store gains little from one of full size: it costs the memory
/// all the same.
pub fn writer_cache_kib(bytes: u64) -> i64 {
    const STEP: u64 = 16 * 1024;
    let eighth = (bytes / 8 / 1024).div_ceil(STEP) * STEP;
    eighth.clamp(32 * 1024, 128 * 1024) as i64
}

/// The compile option the bundled SQLite is built with (`.cargo/config.toml`): statement
/// journals stay in memory up to this size.
pub const STATEMENT_JOURNAL_SPILL: &str = "STMTJRNL_SPILL=16777216";

/// How long a caller waits for a pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long a write waits for SQLite's single writer connection: writes queue there by design,
/// and at a million objects a checkpoint can hold the writer for seconds while several sync
/// workers wait (10 s was too short: "Timed out in bb8" with 4 writers).
const SQLITE_WRITER_WAIT: Duration = Duration::from_secs(600);

/// Builds a bb8 pool (a macro: the manager's trait bounds differ per connection type).
macro_rules! build_pool {
    ($manager:expr, $size:expr, $target:expr) => {
        build_pool!($manager, $size, $target, POOL_WAIT)
    };
    ($manager:expr, $size:expr, $target:expr, $wait:expr) => {
        Pool::builder()
            .max_size($size)
            .connection_timeout($wait)
            .build($manager)
            .await
            .map_err(|e| StorageError::Connect { target: $target.to_owned(), message: e.to_string() })
    };
}

async fn sqlite_pool(
    path: &str,
    size: u32,
    wait: Duration,
    setup: &'static str,
) -> Result<Pool<SqliteConn>, StorageError> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = SqliteConn::establish(&url).await?;
            conn.batch_execute(SQLITE_SETUP).await.map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            conn.batch_execute(setup).await.map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
    build_pool!(manager, size, path, wait)
}

impl Pools {
    /// Opens the pools and checks that a connection can be made.
    pub async fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        // One direct connection first: a pool only reports "timed out", the driver says why.
        let probe = match config.backend {
            Backend::Sqlite => SqliteConn::establish(&config.target).await.map(drop),
            Backend::Postgres => crate::tls::connect_pg(&config.target, &config.tls).await.map(drop),
            Backend::Mysql => crate::tls::connect_mysql(&config.target, &config.tls).await.map(drop),
        };
        probe.map_err(|e| connect_err(config, e))?;
        let pools = match config.backend {
            Backend::Sqlite => {
                // The writer starts with the readers' cache and grows it with the database
                // (`writer_cache_kib`, after each commit).
                let write = sqlite_pool(&config.target, 1, SQLITE_WRITER_WAIT, "").await?;
                // The writer creates the file and switches it to WAL before readers open it.
                let _ = write.get().await.map_err(|e| connect_err(config, e))?;
                Pools::Sqlite {
                    read: sqlite_pool(&config.target, config.max_connections.max(1), POOL_WAIT, "").await?,
                    write,
                }
            }
            Backend::Postgres => {
                let mut cfg = ManagerConfig::<AsyncPgConnection>::default();
                let tls = config.tls.clone();
                cfg.custom_setup = Box::new(move |url| {
                    let (url, tls) = (url.to_owned(), tls.clone());
                    async move { crate::tls::connect_pg(&url, &tls).await }.boxed()
                });
                let m = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&config.target, cfg);
                Pools::Postgres(build_pool!(m, config.max_connections, config.redacted())?)
            }
            Backend::Mysql => {
                // READ COMMITTED: InnoDB then takes no gap locks, so concurrent writers of the
                // label index do not deadlock each other.
                let mut cfg = ManagerConfig::<AsyncMysqlConnection>::default();
                let tls = config.tls.clone();
                cfg.custom_setup = Box::new(move |url| {
                    let (url, tls) = (url.to_owned(), tls.clone());
                    async move {
                        let mut conn = crate::tls::connect_mysql(&url, &tls).await?;
                        conn.batch_execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .await
                            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    }
                    .boxed()
                });
                let m = AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(&config.target, cfg);
                Pools::Mysql(build_pool!(m, config.max_connections, config.redacted())?)
            }
        };
        pools.ping(config).await?;
        Ok(pools)
    }

    async fn ping(&self, config: &StorageConfig) -> Result<(), StorageError> {
        match self {
            Pools::Sqlite { read, .. } => drop(read.get().await.map_err(|e| connect_err(config, e))?),
            Pools::Postgres(p) => drop(p.get().await.map_err(|e| connect_err(config, e))?),
            Pools::Mysql(p) => drop(p.get().await.map_err(|e| connect_err(config, e))?),
        }
        Ok(())
    }
}

fn connect_err(config: &StorageConfig, e: impl std::error::Error) -> StorageError {
    StorageError::Connect { target: config.redacted(), message: crate::error::with_sources(&e) }
}

pub(crate) fn pool_err(
    operation: &'static str,
) -> impl FnOnce(bb8::RunError<diesel_async::pooled_connection::PoolError>) -> StorageError {
    move |e| StorageError::Pool { operation, message: e.to_string() }
}

/// Runs `$body` with `$conn` bound to a connection of the configured backend. `write` takes
/// SQLite's single writer.
macro_rules! with_conn {
    ($pools:expr, $mode:ident, $op:expr, |$conn:ident| $body:expr) => {
        match $pools {
            $crate::db::Pools::Sqlite { read, write } => {
                let _ = (&read, &write);
                let pool = $crate::db::with_conn!(@pick $mode, read, write);
                let mut guard = pool.get().await.map_err($crate::db::pool_err($op))?;
                let $conn = &mut *guard;
                $body
            }
            $crate::db::Pools::Postgres(pool) => {
                let mut guard = pool.get().await.map_err($crate::db::pool_err($op))?;
                let $conn = &mut *guard;
                $body
            }
            $crate::db::Pools::Mysql(pool) => {
                let mut guard = pool.get().await.map_err($crate::db::pool_err($op))?;
                let $conn = &mut *guard;
                $body
            }
        }
    };
    (@pick read, $read:ident, $write:ident) => { $read };
    (@pick write, $read:ident, $write:ident) => { $write };
}
pub(crate) use with_conn;

/// Starts a transaction. Statements run through raw BEGIN/COMMIT (not diesel's closure API) so
/// that reads can happen inside it; SQLite takes the write lock at once.
///
/// A write whose future was dropped mid-transaction returns its connection to the pool with the
/// transaction still open; BEGIN would then fail (SQLite), be ignored (PostgreSQL) or commit the
/// half-done write (MySQL). So the leftover is rolled back first (an error here only means there
/// was none).
pub async fn begin<C: SimpleAsyncConnection>(conn: &mut C, backend: Backend) -> Result<(), StorageError> {
    no_transaction(conn).await;
    conn.batch_execute(begin_sql(backend)).await.map_err(StorageError::query("begin transaction"))
}

/// Ends a transaction a dropped write left open (see [`begin`]) before a statement that must run
/// on its own (autocommit).
pub async fn no_transaction<C: SimpleAsyncConnection>(conn: &mut C) {
    let _ = conn.batch_execute("ROLLBACK").await;
}

/// Commits when `result` is Ok, rolls back otherwise, and passes `result` on.
pub async fn finish<C: SimpleAsyncConnection, T>(
    conn: &mut C,
    result: Result<T, StorageError>,
) -> Result<T, StorageError> {
    let ended = conn.batch_execute(end_sql(&result)).await;
    after_end(result, ended)
}

/// [`begin`] on a blocking connection (SQLite's writer inside one `spawn_blocking`).
pub fn begin_blocking(conn: &mut diesel::SqliteConnection) -> Result<(), StorageError> {
    use diesel::connection::SimpleConnection;
    let _ = conn.batch_execute("ROLLBACK");
    conn.batch_execute(begin_sql(Backend::Sqlite)).map_err(StorageError::query("begin transaction"))
}

/// [`finish`] on a blocking connection.
pub fn finish_blocking<T>(
    conn: &mut diesel::SqliteConnection,
    result: Result<T, StorageError>,
) -> Result<T, StorageError> {
    use diesel::connection::SimpleConnection;
    let ended = conn.batch_execute(end_sql(&result));
    after_end(result, ended)
}

/// SQLite takes the write lock at once (a deferred transaction that reads first could fail to
/// upgrade its lock).
fn begin_sql(backend: Backend) -> &'static str {
    if backend == Backend::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" }
}

fn end_sql<T>(result: &Result<T, StorageError>) -> &'static str {
    if result.is_ok() { "COMMIT" } else { "ROLLBACK" }
}

/// `result` once its transaction ended with `ended` (COMMIT when Ok, ROLLBACK when not): a failed
/// commit fails the write, a failed rollback is logged and the write's own error kept.
fn after_end<T>(result: Result<T, StorageError>, ended: diesel::QueryResult<()>) -> Result<T, StorageError> {
    match (result, ended) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(commit)) => Err(StorageError::query("commit")(commit)),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(rollback)) => {
            tracing::warn!(error = %rollback, "rollback failed after: {e}");
            Err(e)
        }
    }
}

/// A [`Sql`] as a diesel query: its text and binds as built (nothing copied). Diesel prepares
/// it again for every execution unless the [`Sql`] is marked [`Sql::reuse_prepared`], which
/// keeps it prepared on the connection (diesel's statement cache, keyed by the text).
pub struct Statement<'a>(pub &'a Sql);

impl diesel::query_builder::QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for Statement<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

/// Lets a blocking diesel connection (SQLite's writer, inside one `spawn_blocking`) run it.
impl<Conn> diesel::RunQueryDsl<Conn> for Statement<'_> {}

impl<DB> diesel::query_builder::QueryFragment<DB> for Statement<'_>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<Text>
        + diesel::sql_types::HasSqlType<BigInt>
        + diesel::sql_types::HasSqlType<Nullable<BigInt>>,
    String: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
    Option<i64>: diesel::serialize::ToSql<Nullable<BigInt>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let sql = self.0;
        if !sql.reused {
            // The cache never forgets: only statements of a few fixed shapes may enter it.
            out.unsafe_to_cache_prepared();
        }
        // The text between placeholders, and each bind where its placeholder was (diesel
        // writes the placeholder itself: `?`, or `$n` numbered in the same order).
        let mut at = 0;
        for (bind, (start, end)) in sql.binds.iter().zip(&sql.placeholders) {
            out.push_sql(&sql.text[at..*start]);
            match bind {
                Bind::Text(s) => out.push_bind_param::<Text, String>(s)?,
                Bind::Int(i) => out.push_bind_param::<BigInt, i64>(i)?,
                Bind::OptInt(o) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(o)?,
            }
            at = *end;
        }
        out.push_sql(&sql.text[at..]);
        Ok(())
    }
}

/// A [`Statement`] whose result columns have the SQL types `ST`, in this order: rows are read
/// by position (`Queryable`) instead of by name. By name, the MySQL driver looks each field's
/// column up by comparing names, for every row.
pub struct Typed<'a, ST>(pub Statement<'a>, pub std::marker::PhantomData<ST>);

impl<ST> diesel::query_builder::QueryId for Typed<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> diesel::query_builder::Query for Typed<'_, ST> {
    type SqlType = ST;
}

impl<'a, DB: diesel::backend::Backend, ST> diesel::query_builder::QueryFragment<DB> for Typed<'a, ST>
where
    Statement<'a>: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: diesel::query_builder::AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out)
    }
}

/// Loads rows of type `$row` by position, the statement's columns having the SQL types `$st`
/// (see [`Typed`]).
macro_rules! load_typed {
    ($conn:expr, $sql:expr, $op:expr, $row:ty, $st:ty) => {{
        let query = $crate::db::Typed::<$st>($crate::db::Statement($sql), std::marker::PhantomData);
        diesel_async::RunQueryDsl::load::<$row>(query, &mut *$conn)
            .await
            .map_err($crate::error::StorageError::query($op))
    }};
}
pub(crate) use load_typed;

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::{Connection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }

    #[test]
    fn the_writer_cache_grows_with_the_database() {
        const MIB: i64 = 1024;
        assert_eq!(writer_cache_kib(0), 32 * MIB, "never below the readers' cache");
        assert_eq!(writer_cache_kib(300 << 20), 48 * MIB, "an eighth, rounded up to 16 MiB");
        assert_eq!(writer_cache_kib(512 << 20), 64 * MIB);
        assert_eq!(writer_cache_kib(3_500 << 20), 128 * MIB, "at most the full size");
        assert_eq!(SQLITE_WRITER_SETUP, format!("PRAGMA cache_size = -{};", writer_cache_kib(u64::MAX)));
    }

    /// The flag comes from `.cargo/config.toml`; a build without it would quietly spill every
    /// large statement journal to a temporary file.
    #[test]
    fn statement_journal_spill() {
        let mut c = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        let options: Vec<String> = diesel::sql_query("SELECT compile_options FROM pragma_compile_options")
            .load::<CompileOption>(&mut c)
            .expect("compile options")
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(options.iter().any(|o| o == STATEMENT_JOURNAL_SPILL), "{options:?}");
    }
}
