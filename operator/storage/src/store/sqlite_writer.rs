//! SQLite's single writer: queued writes commit together (group commit), one group after
//! another, in a task of their own.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel_async::pooled_connection::bb8::Pool;

use super::write::{Prepared, apply_rows, resolve_pairs};
use super::{Number, ReplaceOutcome, SQLITE_SIZE};
use crate::checkpoint::Checkpointer;
use crate::config::Backend;
use crate::db::{self, SqliteConn};
use crate::error::StorageError;
use crate::labels::PairCache;
use crate::runner::{Blocking, Runner, run_blocking};
use crate::sql::Sql;

/// At most this many objects commit together on SQLite (the first write of a group may be
/// larger); bounds the transaction and the WAL it grows.
const GROUP_ROWS: usize = 20_000;

/// The writer task gives the connection back to its pool after this long, so that the other
/// writes of the writer pool (deletions, Events, cleaning) take their turn during a long ingest.
const HOLD: Duration = Duration::from_millis(200);

/// A prepared write waiting for SQLite's writer connection, and where its outcome goes.
struct Queued {
    write: Prepared,
    done: tokio::sync::oneshot::Sender<Result<ReplaceOutcome, StorageError>>,
}

/// SQLite's one writer. A write joins the queue; a task of its own holds the writer connection
/// while the queue has writes and commits them group after group, each group in one transaction
/// (several sync workers' batches pay for one commit), without leaving the blocking thread in
/// between. When the callers' tasks took the connection in turns, every hand-over waited for a
/// runtime thread that was busy reading members' objects: the writer sat idle for a sixth of an
/// initial sync with writes queued.
pub(super) struct SqliteWriter {
    queue: Mutex<Vec<Queued>>,
    /// Whether the writer task runs (it then commits whatever is queued).
    running: AtomicBool,
    label_pairs: Arc<PairCache>,
    /// The writer's page cache in KiB, as last set (see `db::writer_cache_kib`).
    cache: AtomicI64,
    /// Checkpoints the WAL off the writer's path.
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl SqliteWriter {
    pub(super) fn new(label_pairs: Arc<PairCache>, checkpointer: Option<Checkpointer>) -> Self {
        Self {
            queue: Mutex::default(),
            running: AtomicBool::new(false),
            label_pairs,
            cache: AtomicI64::new(db::writer_cache_kib(0)),
            checkpointer: Mutex::new(checkpointer),
        }
    }

    /// Replaces the background checkpointer (tests).
    pub(super) fn checkpoint_with(&self, checkpointer: Checkpointer) {
        *lock(&self.checkpointer) = Some(checkpointer);
    }

    /// Queues `write`, starts the writer task unless it runs, and waits for the outcome. A write
    /// whose caller gave up is still applied; writes are idempotent.
    pub(super) async fn write(
        self: &Arc<Self>,
        pool: &Pool<SqliteConn>,
        write: Prepared,
    ) -> Result<ReplaceOutcome, StorageError> {
        let operation = write.operation;
        let (done, outcome) = tokio::sync::oneshot::channel();
        lock(&self.queue).push(Queued { write, done });
        if !self.running.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().run(pool.clone()));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StorageError::Pool { operation, message: "the write was dropped before it finished".into() })
        })
    }

    /// The writer task: takes the connection, commits until the queue is empty (giving the
    /// connection back every [`HOLD`]), and ends.
    async fn run(self: Arc<Self>, pool: Pool<SqliteConn>) {
        loop {
            match pool.get_owned().await {
                Ok(mut conn) => {
                    let writer = self.clone();
                    let committed = conn.spawn_blocking(move |c| {
                        writer.commit_queued(c);
                        Ok(())
                    });
                    if let Err(e) = committed.await {
                        // The writes it held were dropped: their callers see it.
                        tracing::error!(error = %e, "SQLite's writer failed");
                    }
                }
                Err(e) => {
                    // Nobody else would: every queued write fails (the sync engine retries).
                    let message = e.to_string();
                    for q in lock(&self.queue).drain(..) {
                        let operation = q.write.operation;
                        let _ = q.done.send(Err(StorageError::Pool { operation, message: message.clone() }));
                    }
                }
            }
            self.running.store(false, Ordering::SeqCst);
            // A write queued after the last look saw the task running and did not start one.
            if lock(&self.queue).is_empty() || self.running.swap(true, Ordering::SeqCst) {
                return;
            }
        }
    }

    /// Commits the queue, group after group, until it is empty or [`HOLD`] has passed.
    fn commit_queued(&self, c: &mut diesel::SqliteConnection) {
        let started = Instant::now();
        while started.elapsed() < HOLD {
            let group = self.next_group();
            if group.is_empty() {
                return;
            }
            self.commit_group(c, group);
        }
    }

    /// The queued writes, oldest first, up to [`GROUP_ROWS`] objects (at least one write, however
    /// large). All of them, not half: every commit writes each page it changed to the WAL whole,
    /// and the index pages an object changes lie all over the indexes, so fewer, larger commits
    /// write less. Committing half the queue (so its other callers prepared meanwhile) cost more
    /// CPU in those writes than it saved in waiting.
    fn next_group(&self) -> Vec<Queued> {
        let mut queue = lock(&self.queue);
        let n = group_len(queue.iter().map(|q| q.write.rows.len()));
        queue.drain(..n).collect()
    }

    /// Commits `group` in one transaction; when that fails, each write alone (so one bad write
    /// fails only its own caller).
    fn commit_group(&self, c: &mut diesel::SqliteConnection, group: Vec<Queued>) {
        let (writes, done): (Vec<Prepared>, Vec<_>) = group.into_iter().map(|q| (q.write, q.done)).unzip();
        let together = self.apply(c, &writes, None);
        if let Some(checkpointer) = lock(&self.checkpointer).as_ref() {
            checkpointer.wrote(writes.iter().map(|w| w.rows.len()).sum());
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
                    let alone = self.apply(c, &writes, Some(i));
                    let _ = d.send(alone.and_then(|mut o| {
                        o.pop().ok_or_else(|| StorageError::Pool {
                            operation: writes[i].operation,
                            message: "no outcome".into(),
                        })
                    }));
                }
            }
        }
        free_elsewhere(writes);
    }

    /// `writes` (or only the write at index `only`) in one transaction.
    fn apply(
        &self,
        c: &mut diesel::SqliteConnection,
        writes: &[Prepared],
        only: Option<usize>,
    ) -> Result<Vec<ReplaceOutcome>, StorageError> {
        let backend = Backend::Sqlite;
        let chosen = |i: usize| only.is_none_or(|o| o == i);
        let rows = writes.iter().enumerate().filter(|(i, _)| chosen(*i)).flat_map(|(_, w)| w.rows.iter());
        let pairs =
            run_blocking("label pairs", resolve_pairs(&self.label_pairs, backend, &mut Blocking(&mut *c), rows))?;
        let result = db::begin_blocking(c).and_then(|()| {
            let mut outcomes = Vec::with_capacity(writes.len());
            for w in writes.iter().enumerate().filter(|(i, _)| chosen(*i)).map(|(_, w)| w) {
                let mut blocking = Blocking(&mut *c);
                // SQLite always returns what it wrote (`RETURNING`).
                outcomes.push(run_blocking(w.operation, apply_rows(&mut blocking, backend, true, w, &pairs))?);
            }
            Ok(outcomes)
        });
        let result = db::finish_blocking(c, result);
        fit_writer_cache(c, &self.cache);
        result
    }
}

/// Frees a committed group (its statements hold each object's text) on a runtime
/// thread: every queued write waits for the writer's thread, and freeing took 3% of its time.
fn free_elsewhere(writes: Vec<Prepared>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { drop(writes) });
    }
}

/// How many of the queued writes of `sizes` objects (oldest first) commit together: as many as
/// fit in [`GROUP_ROWS`] objects, and at least the first.
fn group_len(sizes: impl Iterator<Item = usize>) -> usize {
    let mut rows = 0;
    let mut n = 0;
    for size in sizes {
        rows += size;
        if n > 0 && rows > GROUP_ROWS {
            break;
        }
        n += 1;
    }
    n
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned queue still holds valid writes.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    fn a_group_takes_every_queued_write_that_fits() {
        let group = |sizes: &[usize]| group_len(sizes.iter().copied());
        assert_eq!(group(&[]), 0);
        assert_eq!(group(&[250, 250, 250, 250]), 4, "the whole queue, not half of it");
        assert_eq!(group(&[GROUP_ROWS - 10, 10, 1]), 2);
        assert_eq!(group(&[GROUP_ROWS + 5, 1]), 1, "a write larger than a group goes alone");
        assert_eq!(group(&[1, GROUP_ROWS]), 1);
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
