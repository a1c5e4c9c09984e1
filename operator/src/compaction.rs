//! The change log's retention: the synchro leader trims it on an interval, so it stays the window
//! watches resume from instead of growing with every change ever stored.

use std::sync::Arc;
use std::time::Duration;

use pedia_storage::{Retention, Storage};

/// Trims the log now and then every `interval`; never returns. A failed trim is logged and
/// retried at the next tick (writes go on meanwhile; the log is only longer).
pub async fn run(store: Arc<Storage>, retention: Retention, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.compact_changes(&retention).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "compacted the change log"),
            Err(e) => tracing::warn!(error = %e, retry_in = ?interval, "compacting the change log failed"),
        }
    }
}
