//! Multi-cluster watch from the store's change log. A watch starts at a position (the
//! `resourceVersion` of a list, of a watch event or of a bookmark) or, without one, with the
//! current objects as ADDED events; it then follows the log, filtered by the search query, with
//! bookmarks and `sendInitialEvents`. A position older than the log keeps is 410 Expired, sent
//! as an ERROR event as kube-apiserver does.

use std::time::Duration;

use api_types::api::encode::{self, Shape};
use api_types::api::resources::ResourceInfo;
use api_types::search::{ListOptions, SearchQuery};
use api_types::status::StatusError;
use api_types::table::Column;
use axum::response::Response;
use std::sync::Arc;

use api_types::Gvr;
use pedia_storage::{Change, ChangeFilter, ListRequest, Storage, StorageError};
use tokio::sync::{broadcast, mpsc};

use crate::feed::Feed;
use crate::respond;
use crate::server::{State, WatchSettings};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current objects as ADDED events first (no resourceVersion, `0`, or
    /// `sendInitialEvents=true`).
    Initial,
    /// Changes after this position.
    After(i64),
    /// Changes from now on (`sendInitialEvents=false` without a resourceVersion).
    Now,
}

/// Decides the start of a watch from its options (pure).
pub fn start_of(opts: &ListOptions) -> Result<Start, StatusError> {
    let rv = opts.resource_version.as_deref().unwrap_or("");
    if opts.send_initial_events == Some(true) {
        return Ok(Start::Initial);
    }
    match rv {
        "" | "0" if opts.send_initial_events == Some(false) => Ok(Start::Now),
        "" | "0" => Ok(Start::Initial),
        n => n.parse::<i64>().map(Start::After).map_err(|_| {
            StatusError::bad_request(format!(
                "invalid resourceVersion {n:?}: pedia's resource versions are change log positions (integers)"
            ))
        }),
    }
}

/// Everything one watch needs.
struct Spec {
    info: ResourceInfo,
    /// A Table's columns (empty for other shapes).
    columns: Vec<Column>,
    gvr: Gvr,
    query: SearchQuery,
    shape: Shape,
    start: Start,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Duration,
    settings: WatchSettings,
}

/// Starts a watch response; the stream runs in its own task until the timeout, the client
/// leaves or the log cannot be read.
pub fn start(
    state: &State,
    info: ResourceInfo,
    gvr: Gvr,
    mut query: SearchQuery,
    shape: Shape,
    columns: Vec<Column>,
    opts: &ListOptions,
) -> Result<Response, StatusError> {
    let start = start_of(opts)?;
    // Paging is the stream's business, not the client's.
    query.limit = None;
    query.continue_token = None;
    let timeout = match opts.timeout_seconds {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => state.watch.default_timeout,
    };
    let spec = Spec {
        info,
        columns,
        gvr,
        query,
        shape,
        start,
        bookmarks: opts.allow_watch_bookmarks,
        initial_events_end: opts.send_initial_events == Some(true) && opts.allow_watch_bookmarks,
        timeout,
        settings: state.watch,
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run(state.storage.clone(), state.feed.clone(), spec, tx));
    Ok(crate::server::streaming(rx))
}

/// Ends the stream with an ERROR event.
async fn fail(tx: &mpsc::Sender<Vec<u8>>, e: &StatusError) {
    let _ = tx.send(encode::watch_line("ERROR", e.to_json().to_string().as_bytes())).await;
}

/// Sends one change if the watch wants it; `false` when the client is gone or encoding failed
/// (the stream then ends).
async fn deliver(storage: &Storage, spec: &Spec, tx: &mpsc::Sender<Vec<u8>>, c: &Change) -> bool {
    let Ok(mut object) = c.value() else {
        tracing::warn!(seq = c.seq, "watch: a change carries an object that does not decode");
        return true;
    };
    if !spec.query.matches(&c.cluster, &object) {
        return true;
    }
    if spec.query.inject_events
        && c.op != pedia_storage::ChangeOp::Deleted
        && let Err(e) =
            crate::kube::inject_events(storage, std::slice::from_mut(&mut object), &[c.cluster.as_str()]).await
    {
        fail(tx, &e).await;
        return false;
    }
    match respond::watch_event(&spec.columns, spec.shape, c.op.as_str(), &c.cluster, object, c.seq) {
        Ok(line) => tx.send(line).await.is_ok(),
        Err(e) => {
            fail(tx, &StatusError::internal(format!("encoding a watch event: {e}"))).await;
            false
        }
    }
}

/// Whether a change of the shared feed is one this watch reads (what [`ChangeFilter`] selects
/// in the database for its own reads).
fn wanted(filter: &ChangeFilter, c: &Change) -> bool {
    filter.gvr.as_ref().is_none_or(|g| *g == c.gvr)
        && (filter.clusters.is_empty() || filter.clusters.contains(&c.cluster))
}

async fn run(storage: Arc<Storage>, feed: Arc<Feed>, spec: Spec, tx: mpsc::Sender<Vec<u8>>) {
    let deadline = tokio::time::Instant::now() + spec.timeout;
    // Subscribed before catching up: whatever the feed reads from now on reaches this watch.
    let mut batches = feed.subscribe();
    let mut position = match spec.start {
        Start::After(p) => p,
        Start::Now => match storage.log_state().await {
            Ok(s) => s.head,
            Err(e) => return fail(&tx, &crate::server::storage_error(e)).await,
        },
        Start::Initial => match initial(&storage, &spec, &tx).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => return fail(&tx, &e).await,
        },
    };
    let filter = ChangeFilter { gvr: Some(spec.gvr.clone()), clusters: spec.query.clusters.clone() };
    let mut last_bookmark = tokio::time::Instant::now();
    let mut failures = 0u32;
    // Reading on its own until caught up, then following the shared feed.
    let mut following = false;
    let mut feed_open = true;
    loop {
        if tokio::time::Instant::now() >= deadline || tx.is_closed() {
            return;
        }
        if following {
            let wake = deadline.min(last_bookmark + spec.settings.bookmark_every);
            let next = tokio::select! {
                r = batches.recv() => Some(r),
                _ = tokio::time::sleep_until(wake) => None,
                _ = tx.closed() => return,
            };
            match next {
                None => {}
                Some(Ok(batch)) if batch.position <= position => {}
                // Something between our position and the batch was not read by us: catch up.
                Some(Ok(batch)) if batch.after > position => following = false,
                Some(Ok(batch)) => {
                    for c in batch.changes.iter().filter(|c| c.seq > position && wanted(&filter, c)) {
                        if !deliver(&storage, &spec, &tx, c).await {
                            return;
                        }
                        last_bookmark = tokio::time::Instant::now();
                    }
                    position = batch.position;
                }
                Some(Err(broadcast::error::RecvError::Lagged(_))) => following = false,
                Some(Err(broadcast::error::RecvError::Closed)) => {
                    following = false;
                    feed_open = false;
                }
            }
        } else {
            let changes = match storage.changes_since(position, &filter, 500).await {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e @ StorageError::Expired { .. }) => return fail(&tx, &crate::server::storage_error(e)).await,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, position, failures, "watch: reading the change log");
                    if failures >= 5 {
                        return fail(&tx, &crate::server::storage_error(e)).await;
                    }
                    tokio::time::sleep(spec.settings.poll * failures).await;
                    continue;
                }
            };
            let caught_up = changes.changes.is_empty() && changes.position == position;
            for c in &changes.changes {
                if !deliver(&storage, &spec, &tx, c).await {
                    return;
                }
                last_bookmark = tokio::time::Instant::now();
            }
            position = changes.position;
            if caught_up {
                if feed_open {
                    following = true;
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(spec.settings.poll) => {}
                        _ = tx.closed() => return,
                    }
                }
            }
        }
        if spec.bookmarks && last_bookmark.elapsed() >= spec.settings.bookmark_every {
            if tx.send(respond::bookmark(&spec.info, position, false)).await.is_err() {
                return;
            }
            last_bookmark = tokio::time::Instant::now();
        }
    }
}

/// Sends the current objects as ADDED events, page by page, and returns the position to follow
/// the log from (the first page's: every later change is delivered, some twice at worst).
async fn initial(
    storage: &pedia_storage::Storage,
    spec: &Spec,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<Option<i64>, StatusError> {
    let mut query = spec.query.clone();
    query.limit = Some(500);
    let mut start = None;
    loop {
        let page = storage
            .list(&ListRequest { gvr: Some(spec.gvr.clone()), resource_types: Vec::new(), query: query.clone() })
            .await
            .map_err(crate::server::storage_error)?;
        let position = *start.get_or_insert(page.resource_version);
        let mut objects = page
            .items
            .iter()
            .map(|i| i.value().map_err(|e| StatusError::internal(format!("decoding a stored object: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if spec.query.inject_events {
            let clusters: Vec<&str> = page.items.iter().map(|i| i.cluster.as_str()).collect();
            crate::kube::inject_events(storage, &mut objects, &clusters).await?;
        }
        for (item, object) in page.items.iter().zip(objects) {
            let line = respond::watch_event(&spec.columns, spec.shape, "ADDED", &item.cluster, object, position)
                .map_err(|e| StatusError::internal(format!("encoding a watch event: {e}")))?;
            if tx.send(line).await.is_err() {
                return Ok(None);
            }
        }
        match page.continue_token {
            Some(t) => query.continue_token = Some(t),
            None => break,
        }
    }
    let position = start.unwrap_or_default();
    if spec.initial_events_end && tx.send(respond::bookmark(&spec.info, position, true)).await.is_err() {
        return Ok(None);
    }
    Ok(Some(position))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(query: &str) -> Result<Start, StatusError> {
        start_of(&ListOptions::from_query(query).unwrap())
    }

    #[test]
    fn feed_changes_are_filtered_as_the_database_filters() {
        let change = |cluster: &str, resource: &str| Change {
            seq: 1,
            op: pedia_storage::ChangeOp::Added,
            cluster: cluster.into(),
            gvr: Gvr::new("", "v1", resource),
            namespace: "ns".into(),
            name: "n".into(),
            object: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
        };
        let pods_of_m1 = ChangeFilter { gvr: Some(Gvr::new("", "v1", "pods")), clusters: vec!["m1".into()] };
        assert!(wanted(&pods_of_m1, &change("m1", "pods")));
        assert!(!wanted(&pods_of_m1, &change("m2", "pods")), "another cluster");
        assert!(!wanted(&pods_of_m1, &change("m1", "configmaps")), "another resource");
        let all_pods = ChangeFilter { gvr: Some(Gvr::new("", "v1", "pods")), clusters: vec![] };
        assert!(wanted(&all_pods, &change("m2", "pods")));
    }

    #[test]
    fn where_watches_start() {
        assert_eq!(start("watch=1").unwrap(), Start::Initial);
        assert_eq!(start("watch=1&resourceVersion=0").unwrap(), Start::Initial);
        assert_eq!(start("watch=1&resourceVersion=42").unwrap(), Start::After(42));
        assert_eq!(start("watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan").unwrap(), Start::Initial);
        assert_eq!(start("watch=1&sendInitialEvents=false").unwrap(), Start::Now);
        let e = start("watch=1&resourceVersion=abc").unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("abc"), "{}", e.message);
    }
}
