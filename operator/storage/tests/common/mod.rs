//! Throwaway databases for the storage tests. The servers must be running (`.ci/run` starts
//! them); a missing one fails the test, it is never skipped. Override the admin URLs with
//! PEDIA_TEST_POSTGRES_URL / PEDIA_TEST_MYSQL_URL.
#![allow(clippy::unwrap_used, dead_code)] // test code may panic; not every test uses every helper

use api_types::Gvr;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, SimpleAsyncConnection};
use pedia_storage::{Backend, Storage, StorageConfig};
use pedia_testkit::Pod;
use serde_json::{Value, json};

pub struct Db {
    pub storage: Storage,
    pub url: String,
    pub backend: Backend,
    pub drop_sql: Option<(String, String)>,
    pub file: Option<std::path::PathBuf>,
}

pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("pedia_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// The process that created a test database `pedia_test_<pid>_<n>`.
fn creator(db: &str) -> Option<u32> {
    db.strip_prefix("pedia_test_")?.split_once('_')?.0.parse().ok()
}

/// Drops the test databases of test processes that are gone: a test that panics skips its
/// `cleanup`, and its database stayed on the server. Once per process and backend; running
/// processes' databases are left alone (tests run in parallel processes).
async fn sweep(backend: Backend, admin: &str) {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    use std::sync::atomic::{AtomicBool, Ordering};
    static POSTGRES: AtomicBool = AtomicBool::new(false);
    static MYSQL: AtomicBool = AtomicBool::new(false);
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let gone = |names: Vec<Name>| -> Vec<String> {
        let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
        names.into_iter().map(|n| n.name).filter(|n| creator(n).is_some_and(|pid| !alive(pid))).collect()
    };
    match backend {
        Backend::Postgres if !POSTGRES.swap(true, Ordering::SeqCst) => {
            let mut c = AsyncPgConnection::establish(admin).await.unwrap();
            let names =
                diesel::sql_query("SELECT datname AS name FROM pg_database WHERE datname LIKE 'pedia\\_test\\_%'")
                    .load::<Name>(&mut c)
                    .await
                    .unwrap();
            for db in gone(names) {
                // Another process may sweep it at the same time: IF EXISTS.
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.unwrap();
            }
        }
        Backend::Mysql if !MYSQL.swap(true, Ordering::SeqCst) => {
            let mut c = AsyncMysqlConnection::establish(admin).await.unwrap();
            let names = diesel::sql_query(
                "SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'pedia\\_test\\_%'",
            )
            .load::<Name>(&mut c)
            .await
            .unwrap();
            for db in gone(names) {
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
            }
        }
        _ => {}
    }
}

pub fn admin_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => std::env::var("PEDIA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        Backend::Mysql => {
            std::env::var("PEDIA_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
        }
        Backend::Sqlite => String::new(),
    }
}

pub fn with_database(url: &str, db: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{db}")
}

pub async fn fresh(backend: Backend) -> Db {
    fresh_with(backend, true).await
}

/// A new empty database, migrated or not.
pub async fn fresh_with(backend: Backend, migrate: bool) -> Db {
    fresh_created(backend, migrate, "").await
}

/// A new migrated PostgreSQL database created with `options` (`CREATE DATABASE name options`).
pub async fn fresh_postgres(options: &str) -> Db {
    fresh_created(Backend::Postgres, true, options).await
}

async fn fresh_created(backend: Backend, migrate: bool, pg_options: &str) -> Db {
    let name = unique();
    let (url, drop_sql, file) = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}", path.display()), None, Some(path))
        }
        Backend::Postgres => {
            let admin = admin_url(backend);
            let mut c = AsyncPgConnection::establish(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required for the storage tests ({admin}): {e}"));
            sweep(backend, &admin).await;
            c.batch_execute(&format!("CREATE DATABASE {name} {pg_options}")).await.unwrap();
            (with_database(&admin, &name), Some((admin, format!("DROP DATABASE {name} WITH (FORCE)"))), None)
        }
        Backend::Mysql => {
            let admin = admin_url(backend);
            let mut c = AsyncMysqlConnection::establish(&admin)
                .await
                .unwrap_or_else(|e| panic!("MySQL/MariaDB is required for the storage tests ({admin}): {e}"));
            sweep(backend, &admin).await;
            c.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            (with_database(&admin, &name), Some((admin, format!("DROP DATABASE {name}"))), None)
        }
    };
    let storage = Storage::connect(&StorageConfig::from_url(&url).unwrap(), 1).await.unwrap();
    if migrate {
        storage.migrate().await.unwrap();
    }
    Db { storage, url, backend, drop_sql, file }
}

impl Db {
    /// Runs `sql` (several statements) on a connection of its own.
    pub async fn batch_execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut c = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<diesel::SqliteConnection>::establish(path)
                    .await
                    .unwrap();
                c.batch_execute(sql).await.unwrap()
            }
            Backend::Postgres => {
                AsyncPgConnection::establish(&self.url).await.unwrap().batch_execute(sql).await.unwrap()
            }
            Backend::Mysql => {
                AsyncMysqlConnection::establish(&self.url).await.unwrap().batch_execute(sql).await.unwrap()
            }
        }
    }

    pub async fn cleanup(self) {
        drop(self.storage);
        match (self.backend, self.drop_sql) {
            (Backend::Postgres, Some((admin, sql))) => {
                AsyncPgConnection::establish(&admin).await.unwrap().batch_execute(&sql).await.unwrap()
            }
            (Backend::Mysql, Some((admin, sql))) => {
                AsyncMysqlConnection::establish(&admin).await.unwrap().batch_execute(&sql).await.unwrap()
            }
            _ => {}
        }
        if let Some(f) = self.file {
            pedia_storage::remove_sqlite(&f);
        }
    }
}

pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

pub fn pods() -> Gvr {
    Gvr::new("", "v1", "pods")
}

/// A small pod with what the storage indexes: uid, resourceVersion, labels, an owner, a node, and
/// managedFields (which the store keeps as given).
pub fn pod(ns: &str, name: &str, rv: &str, labels: Value) -> Value {
    Pod::new(ns, name)
        .meta("uid", format!("uid-{ns}-{name}"))
        .meta("resourceVersion", rv)
        .meta("creationTimestamp", "2026-01-01T00:00:00Z")
        .labels(labels)
        .meta("managedFields", json!([{"manager": "kubectl"}]))
        .owned_by("apps/v1", "ReplicaSet", "rs", &format!("rs-{ns}"))
        .node("n1")
        .phase("Running")
        .build()
}
