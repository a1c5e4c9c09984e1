//! SQLite's single writer: queued writes commit together (group commit) in one blocking call.

use std::sync::atomic::{AtomicI64, Ordering};

use diesel::connection::SimpleConnection;

use super::write::{Prepared, apply_rows};
use super::{Number, ReplaceOutcome, SQLITE_SIZE, Storage};
use crate::config::Backend;
use crate::db::{self, SqliteConn};
use crate::error::StorageError;
use crate::runner::{Blocking, Runner, run_blocking};
use crate::sql::Sql;

/// At most this many objects commit together on SQLite (the first write of a group may be
/// larger); bounds the transaction and the WAL it grows.
const GROUP_ROWS: usize = 20_000;

/// A prepared write waiting for SQLite's writer connection, and where its outcome goes.
pub(super) struct Queued {
    write: Prepared,
    done: tokio::sync::oneshot::Sender<Result<ReplaceOutcome, StorageError>>,
}

impl Storage {
    /// SQLite has one writer: a write joins the queue, and whoever gets the writer connection
    /// commits the older half of what is queued by then in one transaction (group commit:
    /// several sync workers' batches pay for one commit). Half, not all: the callers of a group
    /// prepare their next batches while the writer commits the other half; taking everything
    /// left the writer idle while every caller prepared at once. A write
    /// whose caller gave up may still be applied by the next writer; writes are idempotent.
    pub(super) async fn write_grouped(
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
    /// hand-off to a blocking thread and back, some 15 per group, and a copy of its binds.
    async fn apply_sqlite(
        &self,
        conn: &mut SqliteConn,
        writes: &std::sync::Arc<Vec<Prepared>>,
        only: Option<usize>,
    ) -> Result<Vec<ReplaceOutcome>, StorageError> {
        let backend = Backend::Sqlite;
        let chosen = move |i: usize| only.is_none_or(|o| o == i);
        let rows = writes.iter().enumerate().filter(|(i, _)| chosen(*i)).flat_map(|(_, w)| w.rows.iter());
        let pairs = self.resolve_pairs(conn, rows).await?;
        let (writes, returning, cache) = (writes.clone(), self.returning, self.writer_cache.clone());
        let applied = conn.spawn_blocking(move |c| {
            let result = db::begin_blocking(c).and_then(|()| {
                let mut outcomes = Vec::with_capacity(writes.len());
                for w in writes.iter().enumerate().filter(|(i, _)| chosen(*i)).map(|(_, w)| w) {
                    let mut blocking = Blocking(&mut *c);
                    outcomes.push(run_blocking(w.operation, apply_rows(&mut blocking, backend, returning, w, &pairs))?);
                }
                Ok(outcomes)
            });
            let result = db::finish_blocking(c, result);
            fit_writer_cache(c, &cache);
            Ok(result)
        });
        applied.await.map_err(StorageError::query("write"))?
    }
}

/// Sizes the writer's page cache to the database after a commit (see `db::writer_cache_kib`);
/// `current` is what it is set to. Reading the size is a look at the file's header. A failure
/// leaves the cache as it was.
fn fit_writer_cache(c: &mut diesel::SqliteConnection, current: &AtomicI64) {
    const OP: &str = "sizing the writer's cache";
    let mut size = Sql::new(Backend::Sqlite);
    size.reuse_prepared().push(SQLITE_SIZE);
    let bytes = match run_blocking(OP, Blocking(&mut *c).load::<Number>(&size, OP)) {
        Ok(rows) => rows.first().map_or(0, |n| n.n.max(0) as u64),
        Err(e) => {
            tracing::debug!(error = %e, "{OP}");
            return;
        }
    };
    let wanted = db::writer_cache_kib(bytes);
    if wanted != current.load(Ordering::Relaxed) {
        match c.batch_execute(&format!("PRAGMA cache_size = -{wanted}")) {
            Ok(()) => current.store(wanted, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "{OP}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::{Connection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cache_size: i64,
    }

    fn cache_size(c: &mut diesel::SqliteConnection) -> i64 {
        diesel::sql_query("PRAGMA cache_size").load::<CacheSize>(c).expect("cache_size")[0].cache_size
    }

    #[test]
    fn the_writer_cache_is_fitted_to_the_database() {
        let mut c = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        c.batch_execute("PRAGMA cache_size = -2000").expect("pragma");
        let current = AtomicI64::new(0);
        fit_writer_cache(&mut c, &current);
        assert_eq!((cache_size(&mut c), current.load(Ordering::Relaxed)), (-32 * 1024, 32 * 1024));
        // Set already: nothing is written again.
        c.batch_execute("PRAGMA cache_size = -2000").expect("pragma");
        fit_writer_cache(&mut c, &current);
        assert_eq!(cache_size(&mut c), -2000);
    }
}
