//! One way to run a [`Sql`] on any backend's connection: the pools' async connections, and
//! SQLite's writer inside one blocking call ([`Blocking`]). The write path and the reads are
//! generic functions over [`Runner`], written once for every connection type.

use std::future::Future;

use diesel::QueryableByName;
use diesel::mysql::Mysql;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel_async::{AsyncMysqlConnection, AsyncPgConnection};

use crate::db::{SqliteConn, Statement};
use crate::error::StorageError;
use crate::sql::Sql;

/// A row type every backend can read by column name.
pub(crate) trait Row:
    QueryableByName<Sqlite> + QueryableByName<Pg> + QueryableByName<Mysql> + Send + 'static
{
}

impl<T> Row for T where T: QueryableByName<Sqlite> + QueryableByName<Pg> + QueryableByName<Mysql> + Send + 'static {}

/// A connection statements run on. The futures are `Send` by declaration: generic helpers over
/// diesel-async's own traits lose it (higher-ranked bounds), these keep each caller's future
/// `Send`.
pub(crate) trait Runner: Send {
    /// Executes a statement; the affected row count.
    fn execute(&mut self, sql: &Sql, op: &'static str) -> impl Future<Output = Result<usize, StorageError>> + Send;

    /// Loads the rows a statement returns.
    fn load<R: Row>(
        &mut self,
        sql: &Sql,
        op: &'static str,
    ) -> impl Future<Output = Result<Vec<R>, StorageError>> + Send;
}

/// The async connections: each impl names its concrete type, which is what keeps `Send`.
macro_rules! async_runner {
    ($($conn:ty),*) => {$(
        impl Runner for $conn {
            fn execute(&mut self, sql: &Sql, op: &'static str) -> impl Future<Output = Result<usize, StorageError>> + Send {
                async move { diesel_async::RunQueryDsl::execute(Statement(sql), self).await.map_err(StorageError::query(op)) }
            }

            fn load<R: Row>(
                &mut self,
                sql: &Sql,
                op: &'static str,
            ) -> impl Future<Output = Result<Vec<R>, StorageError>> + Send {
                async move { diesel_async::RunQueryDsl::load::<R>(Statement(sql), self).await.map_err(StorageError::query(op)) }
            }
        }
    )*};
}

async_runner!(AsyncPgConnection, AsyncMysqlConnection, SqliteConn);

/// SQLite's writer connection inside one `spawn_blocking`: each statement runs at once and its
/// future is ready; [`run_blocking`] drives a function of them to its end.
pub(crate) struct Blocking<'c>(pub &'c mut diesel::SqliteConnection);

impl Runner for Blocking<'_> {
    fn execute(&mut self, sql: &Sql, op: &'static str) -> impl Future<Output = Result<usize, StorageError>> + Send {
        std::future::ready(diesel::RunQueryDsl::execute(Statement(sql), &mut *self.0).map_err(StorageError::query(op)))
    }

    fn load<R: Row>(
        &mut self,
        sql: &Sql,
        op: &'static str,
    ) -> impl Future<Output = Result<Vec<R>, StorageError>> + Send {
        std::future::ready(
            diesel::RunQueryDsl::load::<R>(Statement(sql), &mut *self.0).map_err(StorageError::query(op)),
        )
    }
}

/// The result of `work`, whose every await is a [`Blocking`] statement and so never waits.
pub(crate) fn run_blocking<T>(
    operation: &'static str,
    work: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    futures_util::FutureExt::now_or_never(work).unwrap_or_else(|| {
        Err(StorageError::Pool { operation, message: "a blocking write waited for something other than SQLite".into() })
    })
}
