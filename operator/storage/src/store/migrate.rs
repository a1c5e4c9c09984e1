//! Migrations: embedded per backend, run by processes that take turns.

use diesel_async::{AsyncConnection, AsyncMigrationHarness, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Storage;
use crate::config::Backend;
use crate::db::{self, SqliteConn};
use crate::error::StorageError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

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
    let open = path.clone();
    let lock = move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&open)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    };
    let taken =
        tokio::task::spawn_blocking(lock).await.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string()));
    taken.map(Some).map_err(|e| StorageError::Schema(format!("taking the migration lock {path}: {e}")))
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

impl Storage {
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
}
