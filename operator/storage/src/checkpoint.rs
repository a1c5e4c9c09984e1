//! SQLite's WAL checkpoints, mostly off the writer's path.
//!
//! A checkpoint copies the pages of the WAL into the database file. SQLite runs it in the
//! connection that commits, so the single writer stopped for it. Here a connection of its own checkpoints in the background
//! after every 1,000 objects written, in PASSIVE mode (it never waits for the writer, which
//! keeps appending to the WAL meanwhile); during a large ingest that is one checkpoint right
//! after another, on the core the writer does not use. The writer still checkpoints at 256 MiB
//! of WAL (`wal_autocheckpoint` in db.rs), which then finds most pages copied already, and only
//! a checkpoint by the writer lets the next write start the WAL over (the background one always
//! trails the writer's newest pages); without it the WAL grew to whatever the writer's limit was.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// Objects written between two background checkpoints. A commit rewrites every index page it
/// touches, so each object puts several times its size into the WAL: checkpointing more rarely
/// let the writer's own checkpoint at 256 MiB come first and do the copying itself.
pub(crate) const EVERY: u64 = 1_000;

/// The background checkpointer of one store; stops when dropped.
pub(crate) struct Checkpointer {
    written: Arc<AtomicU64>,
    wake: Arc<Notify>,
    task: AbortHandle,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` after every `every` objects written.
    pub(crate) fn start(path: String, every: u64) -> Self {
        let written = Arc::new(AtomicU64::new(0));
        let wake = Arc::new(Notify::new());
        let (count, woken) = (written.clone(), wake.clone());
        let task = tokio::spawn(async move {
            let mut conn: Option<SqliteConnection> = None;
            let mut last = 0;
            loop {
                woken.notified().await;
                let now = count.load(Ordering::Relaxed);
                if now.saturating_sub(last) < every {
                    continue;
                }
                last = now;
                let (target, taken) = (path.clone(), conn.take());
                match tokio::task::spawn_blocking(move || checkpoint(&target, taken)).await {
                    Ok(Ok(c)) => conn = Some(c),
                    Ok(Err(e)) => tracing::warn!(
                        database = %path,
                        error = %e,
                        "background WAL checkpoint failed; the writer checkpoints at 256 MiB of WAL"
                    ),
                    Err(e) => tracing::warn!(database = %path, error = %e, "background WAL checkpoint stopped"),
                }
            }
        })
        .abort_handle();
        Self { written, wake, task }
    }

    /// Counts `objects` written and wakes the checkpointer.
    pub(crate) fn wrote(&self, objects: usize) {
        self.written.fetch_add(objects as u64, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One PASSIVE checkpoint on `conn` (opened on first use); hands the connection back.
fn checkpoint(path: &str, conn: Option<SqliteConnection>) -> Result<SqliteConnection, String> {
    let mut conn = match conn {
        Some(c) => c,
        None => {
            let mut c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            c.batch_execute("PRAGMA busy_timeout = 10000").map_err(|e| e.to_string())?;
            c
        }
    };
    let started = Instant::now();
    conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)").map_err(|e| e.to_string())?;
    tracing::debug!(database = path, elapsed_ms = started.elapsed().as_millis() as u64, "WAL checkpoint");
    Ok(conn)
}
