//! One reader of the change log for every watch of the process. Each watch catches up on its
//! own from its start position, then follows this feed: one query per poll for all watches
//! instead of one per watch (a hundred watchers would otherwise poll the database hundreds of
//! times a second and starve the writers).

use std::sync::Arc;
use std::time::Duration;

use pedia_storage::{Change, ChangeFilter, Storage};
use tokio::sync::broadcast;

/// Changes read in one go: every change after `after` up to `position`.
#[derive(Debug)]
pub struct Batch {
    pub after: i64,
    pub position: i64,
    pub changes: Vec<Change>,
}

/// The shared tail of the change log.
pub struct Feed {
    tx: broadcast::Sender<Arc<Batch>>,
}

/// Batches a slow watch may fall behind before it catches up on its own.
const BACKLOG: usize = 256;
/// Changes per read.
const READ: i64 = 1000;

impl Feed {
    /// Starts the reader task (it reads only while a watch follows the feed).
    pub fn start(storage: Arc<Storage>, poll: Duration) -> Arc<Self> {
        let (tx, _) = broadcast::channel(BACKLOG);
        let feed = Arc::new(Self { tx: tx.clone() });
        tokio::spawn(read(storage, poll, tx));
        feed
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.tx.subscribe()
    }
}

async fn read(storage: Arc<Storage>, poll: Duration, tx: broadcast::Sender<Arc<Batch>>) {
    let all = ChangeFilter::default();
    let mut position: Option<i64> = None;
    loop {
        if tx.receiver_count() == 0 {
            // Nobody follows: start again from the head when someone does.
            position = None;
            tokio::time::sleep(poll).await;
            continue;
        }
        let after = match position {
            Some(p) => p,
            None => match storage.log_state().await {
                Ok(s) => {
                    position = Some(s.head);
                    s.head
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watch feed: reading the change log head");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            },
        };
        match storage.changes_since(after, &all, READ).await {
            Ok(c) => {
                let caught_up = c.changes.is_empty() && c.position == after;
                if !caught_up {
                    position = Some(c.position);
                    // No receiver left is not an error: the next turn notices.
                    let _ = tx.send(Arc::new(Batch { after, position: c.position, changes: c.changes }));
                    continue;
                }
            }
            // Compacted past us (a long stall): watches resume on their own and see the 410.
            Err(e) => {
                tracing::warn!(error = %e, after, "watch feed: reading the change log");
                position = None;
            }
        }
        tokio::time::sleep(poll).await;
    }
}
