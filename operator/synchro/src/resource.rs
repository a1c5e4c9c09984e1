//! One resource synchro: keeps one (cluster, group-version-resource) of a member in the store.
//!
//! kube-runtime's watcher does the list/watch protocol (paginated initial list, watch with
//! bookmarks from the list's resourceVersion, resume after a dropped watch, relist after 410
//! Gone, backoff). This module turns its events into batched store writes: events that arrive
//! together are compacted per key ([`crate::queue`]) and written at once; unchanged objects
//! (same resourceVersion as stored) are not rewritten; after every (re)list the keys it did not
//! return are deleted. Memory holds `key -> resourceVersion` and one batch, never a cache of
//! objects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::Gvr;
use api_types::conditions::sync;
use futures_util::StreamExt;
use kube::api::Api;
use kube::core::TypeMeta;
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use pedia_storage::{Storage, StorageError};
use tokio::sync::watch;

use crate::lock;
use crate::metrics::{Labels, Metrics};
use crate::negotiate::Target;
use crate::object::RawObject;
use crate::queue::{Action, Compacted};
use crate::status::SyncState;
use crate::versions::{Key, Known, Versions};

/// Largest batch written at once: what suits the store (`Storage::write_shape`), the size it
/// keeps a statement prepared for. A list page is 500 objects by default, so no more than a page
/// and a half (SQLite: two pages) of objects is held per list.
fn max_batch(storage: &Storage) -> usize {
    storage.write_shape().batch
}

/// How long a change waits for others to share its write (see the watch loop).
const LINGER: Duration = Duration::from_millis(100);

/// A write that takes longer is reported (`Stop/StorageExpection`) while it goes on waiting.
const SLOW_WRITE: Duration = Duration::from_secs(5);

/// How long a list may hold a turn to write while its next page does not arrive.
const HOLD_TURN: Duration = Duration::from_secs(1);

/// What every resource synchro of one cluster shares.
pub struct Shared {
    pub cluster: String,
    pub storage: Arc<Storage>,
    pub page_size: u32,
    pub streaming_lists: bool,
    /// Called when a sync state changes (the cluster's status is due).
    pub changed: Arc<dyn Fn() + Send + Sync>,
    pub metrics: Metrics,
    /// Batches being written at once, across every synchro of the process: bounds the objects
    /// held in memory while the store is busy.
    pub writes: Arc<tokio::sync::Semaphore>,
}

/// A resource synchro: its state, the versions it knows, and its task while running.
pub struct ResourceSynchro {
    pub target: Target,
    state: Arc<Mutex<SyncState>>,
    versions: Arc<Mutex<Versions>>,
    running: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    /// This synchro's series of the stored-objects gauge (it adds its count to the series).
    gauge: prometheus_client::metrics::gauge::Gauge,
    /// Whether the Events of its objects are stored (`eventsInvolvedResources`).
    events: watch::Sender<bool>,
}

impl ResourceSynchro {
    /// A stopped synchro seeded with what the store already holds of this resource.
    pub fn new(target: Target, versions: Versions, shared: &Shared) -> Self {
        let gauge =
            shared.metrics.stored.get_or_create(&shared.metrics.scope.labels(&shared.cluster, &target.gvr)).clone();
        gauge.inc_by(versions.len() as i64);
        let (events, _) = watch::channel(target.sync_events);
        Self {
            events,
            gauge,
            target,
            state: Arc::new(Mutex::new(SyncState::new(
                sync::STATUS_UNKNOWN,
                None,
                Some("the resource synchro is created, waiting for the cluster to be healthy".into()),
            ))),
            versions: Arc::new(Mutex::new(versions)),
            running: None,
        }
    }

    pub fn state(&self) -> SyncState {
        lock(&self.state).clone()
    }

    /// Starts or stops storing the Events of this resource's objects (no restart needed).
    pub fn set_sync_events(&mut self, on: bool) {
        self.target.sync_events = on;
        self.events.send_if_modified(|v| std::mem::replace(v, on) != on);
    }

    /// Starts list/watch against the member.
    pub fn start(&mut self, client: kube::Client, shared: Arc<Shared>) {
        if self.running.is_some() {
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = Worker {
            labels: shared.metrics.scope.labels(&shared.cluster, &self.target.gvr),
            gauge: self.gauge.clone(),
            gvr: self.target.gvr.clone(),
            kind: self.target.kind.clone(),
            streaming: self.target.streaming,
            state: self.state.clone(),
            versions: self.versions.clone(),
            events: self.events.subscribe(),
            shared,
        };
        let task = tokio::spawn(worker.run(client, stop_rx));
        self.running = Some((stop_tx, task));
    }

    /// Stops between two batches (a write in progress finishes) and sets the state.
    pub async fn stop(&mut self, status: &'static str, reason: Option<&'static str>, message: &str) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(true);
            if let Err(e) = task.await {
                tracing::error!(resource = %self.target.gvr, error = %e, "resource synchro task failed");
            }
        }
        lock(&self.state).set(status, reason, Some(message.to_owned()));
    }

    /// Stops counting this synchro's objects in the stored-objects gauge (it goes away).
    pub fn forget(&self) {
        self.gauge.dec_by(lock(&self.versions).len() as i64);
    }
}

struct Worker {
    labels: Labels,
    gauge: prometheus_client::metrics::gauge::Gauge,
    gvr: Gvr,
    kind: String,
    /// Whether the initial list may be streamed (see `Target::streaming`).
    streaming: bool,
    state: Arc<Mutex<SyncState>>,
    versions: Arc<Mutex<Versions>>,
    events: watch::Receiver<bool>,
    shared: Arc<Shared>,
}

/// One write of a batch as the store gets it: the key, what happened, and the resourceVersion
/// stored (None: a deletion).
type Write = (Key, Action, Option<String>);

/// One object write of a batch.
enum Item {
    Upsert(RawObject, String),
    Delete,
}

type EventBatches = futures_util::stream::BoxStream<'static, Vec<Result<Event<RawObject>, watcher::Error>>>;

/// Whether the member refused a streaming list as a server without them does: kube-apiserver
/// without the WatchList feature answers 422 (`sendInitialEvents is forbidden`), older ones 422
/// or 400 for `resourceVersionMatch` on a watch.
fn refuses_streaming(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchStartFailed(kube::Error::Api(s)) if matches!(s.code, 400 | 405 | 422 | 501))
}

fn key_of(o: &RawObject) -> Key {
    (o.namespace().to_owned(), o.name().to_owned())
}

impl Worker {
    fn set_state(&self, status: &'static str, reason: Option<&'static str>, message: Option<String>) {
        let changed = lock(&self.state).set(status, reason, message);
        if changed {
            (self.shared.changed)();
        }
    }

    fn api_resource(&self) -> ApiResource {
        let api_version = if self.gvr.group.is_empty() {
            self.gvr.version.clone()
        } else {
            format!("{}/{}", self.gvr.group, self.gvr.version)
        };
        ApiResource {
            group: self.gvr.group.clone(),
            version: self.gvr.version.clone(),
            api_version,
            kind: self.kind.clone(),
            plural: self.gvr.resource.clone(),
        }
    }

    async fn run(self, client: kube::Client, mut stop: watch::Receiver<bool>) {
        let ar = self.api_resource();
        let api: Api<RawObject> = Api::all_with(client.clone(), &ar);
        // The Events watch starts after the initial list (their objects must be stored first).
        let mut events_task = None;
        let types = TypeMeta { api_version: ar.api_version.clone(), kind: ar.kind.clone() };
        // A streaming list (`sendInitialEvents`) spares the member building list pages; a member
        // that refuses it is listed in pages from then on.
        let mut streaming = self.streaming && self.shared.streaming_lists;
        let mut events = self.events(&api, streaming);
        {
            let mut s = lock(&self.state);
            s.set(sync::STATUS_SYNCING, None, Some("initial list in progress".into()));
            s.initial_list_phase = true;
        }
        (self.shared.changed)();
        // Whether a (re)list is in progress (the versions mark the keys it returned).
        let mut relisting = false;
        'sync: loop {
            // While listing, a turn to write is taken before a page is read, so only the lists that
            // can be written hold their page; a change while watching is read (and compacted) first.
            let listing = relisting || lock(&self.state).initial_list_phase;
            // A turn held while nothing arrives (a slow or unreachable member) is given back.
            let mut early = match listing {
                true => match self.turn(&mut stop).await {
                    Some(p) => Some(p),
                    None => break,
                },
                false => None,
            };
            let chunk = loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break 'sync,
                    chunk = events.next() => break chunk,
                    _ = tokio::time::sleep(HOLD_TURN), if early.is_some() => early = None,
                }
            };
            let Some(mut chunk) = chunk else { break };
            let full = max_batch(&self.shared.storage);
            // Events that follow within LINGER join the batch: one write for a burst of changes (a
            // server commits each write on its own; SQLite groups them anyway), and full batches
            // from a streaming list, whose objects arrive a few at a time. The end of a list is
            // written at once.
            let list_end =
                |c: &[Result<Event<RawObject>, watcher::Error>]| c.iter().any(|e| matches!(e, Ok(Event::InitDone)));
            if chunk.len() < full && !list_end(&chunk) {
                let until = tokio::time::Instant::now() + LINGER;
                while chunk.len() < full {
                    tokio::select! {
                        biased;
                        _ = stop.changed() => break 'sync,
                        more = events.next() => match more {
                            Some(more) => {
                                let end = list_end(&more);
                                chunk.extend(more);
                                if end {
                                    break;
                                }
                            }
                            None => break,
                        },
                        _ = tokio::time::sleep_until(until) => break,
                    }
                }
            }
            let mut batch: Compacted<Key, Item> = Compacted::default();
            let mut list_done = false;
            let mut failure = None;
            let mut fallback = false;
            for event in chunk {
                match event {
                    Ok(Event::Init) => {
                        lock(&self.versions).begin_list();
                        relisting = true;
                    }
                    Ok(Event::InitApply(o) | Event::Apply(o)) => {
                        self.push_object(&mut batch, key_of(&o), o, &types, relisting);
                    }
                    Ok(Event::Delete(o)) => batch.push(key_of(&o), Action::Deleted, Item::Delete),
                    Ok(Event::InitDone) => {
                        if std::mem::take(&mut relisting) {
                            let stale = lock(&self.versions).unlisted();
                            for k in stale {
                                batch.push(k, Action::Deleted, Item::Delete);
                            }
                        }
                        list_done = true;
                    }
                    Err(e) if streaming && refuses_streaming(&e) => {
                        tracing::info!(cluster = %self.shared.cluster, resource = %self.gvr, error = %e,
                            "the member does not serve streaming lists; listing in pages");
                        streaming = false;
                        fallback = true;
                    }
                    Err(e) => failure = Some(e.to_string()),
                }
            }
            if !batch.is_empty() {
                let permit = match early {
                    Some(p) => p,
                    None => match self.turn(&mut stop).await {
                        Some(p) => p,
                        None => break,
                    },
                };
                let written = self.write(batch, &mut stop).await;
                drop(permit);
                if !written {
                    break;
                }
            }
            if fallback {
                events = self.events(&api, false);
                relisting = false;
                continue;
            }
            match failure {
                Some(message) => {
                    tracing::warn!(cluster = %self.shared.cluster, resource = %self.gvr, error = %message, "list/watch failed; retrying with backoff");
                    self.set_state(sync::STATUS_ERROR, Some(sync::REASON_RESOURCE_WATCH_FAILED), Some(message));
                }
                None => {
                    let was_listing = lock(&self.state).initial_list_phase;
                    if list_done && was_listing {
                        lock(&self.state).initial_list_phase = false;
                        (self.shared.changed)();
                    }
                    if list_done && events_task.is_none() {
                        events_task = Some(tokio::spawn(crate::events::run(
                            client.clone(),
                            self.shared.clone(),
                            self.kind.clone(),
                            self.versions.clone(),
                            self.events.clone(),
                            stop.clone(),
                        )));
                    }
                    let listing = lock(&self.state).initial_list_phase;
                    let message = if listing { "initial list in progress" } else { "watching" };
                    self.set_state(sync::STATUS_SYNCING, None, Some(message.into()));
                }
            }
        }
        if let Some(task) = events_task {
            // On a stop it ends by itself between two writes; otherwise (the stream ended) stop it.
            if !*stop.borrow() {
                task.abort();
            }
            let _ = task.await;
        }
    }

    /// The member's events for this resource, in batches: a streaming or a paginated initial
    /// list, then the watch.
    fn events(&self, api: &Api<RawObject>, streaming: bool) -> EventBatches {
        let config = watcher::Config::default().page_size(self.shared.page_size);
        let config = if streaming { config.streaming_lists() } else { config };
        watcher(api.clone(), config).default_backoff().ready_chunks(max_batch(&self.shared.storage)).boxed()
    }

    /// Waits for a turn to write; None when stopped meanwhile.
    async fn turn(&self, stop: &mut watch::Receiver<bool>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            _ = stop.changed() => None,
            permit = self.shared.writes.clone().acquire_owned() => permit.ok(),
        }
    }

    /// Queues an object unless the store holds it at this resourceVersion; `listed`: it comes
    /// from the (re)list in progress.
    fn push_object(&self, batch: &mut Compacted<Key, Item>, key: Key, o: RawObject, types: &TypeMeta, listed: bool) {
        let rv = o.resource_version().to_owned();
        let action = match lock(&self.versions).known(&key.0, &key.1, &rv, listed) {
            Known::Same => return, // unchanged: not written again
            Known::Changed => Action::Updated,
            Known::New => Action::Added,
        };
        batch.push(key, action, Item::Upsert(o.typed(&types.api_version, &types.kind), rv));
    }

    /// Writes a batch, retrying while the store is unavailable (the watch is not read meanwhile,
    /// so nothing is lost). Returns false when stopped before the batch could be written.
    async fn write(&self, mut batch: Compacted<Key, Item>, stop: &mut watch::Receiver<bool>) -> bool {
        // The objects move into one list the store takes as it is (no copy of a batch).
        let mut writes = Vec::new();
        let mut objects = Vec::new();
        for (key, action, item) in batch.drain() {
            match item {
                Item::Upsert(object, rv) => {
                    objects.push(object);
                    writes.push((key, action, Some(rv)));
                }
                Item::Delete => writes.push((key, action, None)),
            }
        }
        let mut delay = Duration::from_millis(500);
        loop {
            // A store that does not answer (a pool waiting for connections) is reported while
            // the write goes on waiting.
            let attempt = self.write_once(&writes, &objects);
            let mut attempt = std::pin::pin!(attempt);
            let result = tokio::select! {
                result = &mut attempt => result,
                _ = tokio::time::sleep(SLOW_WRITE) => {
                    tracing::warn!(cluster = %self.shared.cluster, resource = %self.gvr, "the storage has not answered a write for {}s; waiting", SLOW_WRITE.as_secs());
                    self.set_state(
                        sync::STATUS_STOP,
                        Some(sync::REASON_STORAGE_EXPECTION),
                        Some(format!("the storage has not answered a write for {}s; waiting for it", SLOW_WRITE.as_secs())),
                    );
                    attempt.await
                }
            };
            match result {
                Ok(()) => {
                    if lock(&self.state).reason == Some(sync::REASON_STORAGE_EXPECTION) {
                        tracing::info!(cluster = %self.shared.cluster, resource = %self.gvr, "storage is back; syncing again");
                    }
                    return true;
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(cluster = %self.shared.cluster, resource = %self.gvr, error = %e, retry_in = ?delay, "storage unavailable; keeping the position and retrying");
                    self.set_state(
                        sync::STATUS_STOP,
                        Some(sync::REASON_STORAGE_EXPECTION),
                        Some(format!("the storage is not available, retrying: {e}")),
                    );
                    tokio::select! {
                        biased;
                        _ = stop.changed() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.shared.cluster, resource = %self.gvr, error = %e, "batch refused; writing its objects one by one");
                    self.write_each(&writes, &objects).await;
                    return true;
                }
            }
        }
    }

    /// Stores `objects` (the upserts of `writes`, in order) and the deletions of `writes`, then
    /// records what the store now holds and counts it.
    async fn write_once(&self, writes: &[Write], objects: &[RawObject]) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let result = self.store(writes, objects).await;
        let m = &self.shared.metrics;
        m.observe_write(&self.labels, started.elapsed());
        if result.is_err() {
            m.failed.get_or_create(&self.labels).inc_by(writes.len() as u64);
            return result;
        }
        let mut versions = lock(&self.versions);
        let (mut added, mut updated, mut deleted) = (0u64, 0u64, 0u64);
        for (key, _, rv) in writes {
            match rv {
                Some(rv) => match versions.insert(&key.0, &key.1, rv) {
                    true => added += 1,
                    false => updated += 1,
                },
                None => {
                    if versions.remove(&key.0, &key.1) {
                        deleted += 1;
                    }
                }
            }
        }
        drop(versions);
        m.added.get_or_create(&self.labels).inc_by(added);
        m.updated.get_or_create(&self.labels).inc_by(updated);
        m.deleted.get_or_create(&self.labels).inc_by(deleted);
        // Present at zero from the first write on, so alerts on its rate have a series.
        m.failed.get_or_create(&self.labels).inc_by(0);
        self.gauge.inc_by(added as i64 - deleted as i64);
        Ok(())
    }

    async fn store(&self, writes: &[Write], objects: &[RawObject]) -> Result<(), StorageError> {
        if !objects.is_empty() {
            self.shared.storage.upsert(&self.shared.cluster, &self.gvr, objects).await?;
        }
        for (key, _, rv) in writes {
            if rv.is_none() {
                self.shared.storage.delete(&self.shared.cluster, &self.gvr, &key.0, &key.1).await?;
            }
        }
        Ok(())
    }

    /// After a refused batch: each object alone, so one bad object costs only itself (logged).
    async fn write_each(&self, writes: &[Write], objects: &[RawObject]) {
        let mut next_object = objects.iter();
        for w in writes {
            let one = std::slice::from_ref(w);
            let result = match &w.2 {
                Some(_) => match next_object.next() {
                    Some(o) => self.write_once(one, std::slice::from_ref(o)).await,
                    None => Ok(()),
                },
                None => self.write_once(one, &[]).await,
            };
            if let Err(e) = result {
                tracing::error!(cluster = %self.shared.cluster, resource = %self.gvr, namespace = %w.0.0, name = %w.0.1, error = %e, "object not stored");
            }
        }
    }
}
