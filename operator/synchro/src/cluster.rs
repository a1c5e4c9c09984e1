//! One cluster synchro: the health probe of a member, negotiation of what to sync, and one
//! resource synchro per negotiated group-version-resource. It starts syncing after the first
//! healthy probe, pauses after two failed probes in a row, resumes by itself (unchanged objects
//! are not rewritten), and renegotiates when the wanted resources or the member's APIs change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::Gvr;
use api_types::cluster::{ClusterGroupResources, ClusterGroupResourcesStatus};
use api_types::conditions::{cluster as cond, sync};
use pedia_storage::Storage;
use tokio::sync::watch;

use crate::credentials::Access;
use crate::lock;
use crate::negotiate::{self, Negotiated, Target};
use crate::resource::{ResourceSynchro, Shared};
use crate::versions::Versions;

/// How often the member is probed (plus up to half of it as jitter).
const PROBE_EVERY: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often discovery is read again to notice new or removed member APIs.
const REDISCOVER_EVERY: Duration = Duration::from_secs(30);

/// What the cluster synchro wants synced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    pub resources: Vec<ClusterGroupResources>,
    pub sync_all_custom_resources: bool,
}

/// Settings shared by every cluster synchro.
#[derive(Clone)]
pub struct Options {
    pub page_size: u32,
    /// Whether lists may be streamed (see `Target::streaming`).
    pub streaming_lists: bool,
    pub metrics: crate::metrics::Metrics,
    /// Shared by every cluster synchro: how many batches are written at once (see `Shared::writes`).
    pub writes: Arc<tokio::sync::Semaphore>,
}

/// A condition as the controller writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub status: bool,
    pub unknown: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What the controller needs for the PediaCluster's status.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: Option<String>,
    pub running: Cond,
    pub healthy: Cond,
    pub sync_resources: Option<Vec<ClusterGroupResourcesStatus>>,
}

struct State {
    version: Option<String>,
    healthy: Cond,
    running: Cond,
    negotiated: Option<Negotiated>,
    synchros: HashMap<Gvr, ResourceSynchro>,
    /// What the store held when the synchro started, per resource, until a synchro takes it.
    seeded: HashMap<Gvr, Versions>,
    /// The custom resource definitions last written to the store.
    definitions: Option<Vec<(Gvr, serde_json::Value)>>,
}

/// A running cluster synchro; dropping it does not stop it, [`ClusterSynchro::shutdown`] does.
pub struct ClusterSynchro {
    pub access: Access,
    name: String,
    state: Arc<Mutex<State>>,
    wanted: watch::Sender<Wanted>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

/// Why a cluster synchro could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("building the client: {0}")]
    Client(String),
    #[error("reading what the store holds of the cluster: {0}")]
    Storage(#[from] pedia_storage::StorageError),
}

impl ClusterSynchro {
    /// Creates and starts a cluster synchro. `changed` is called whenever its snapshot changes.
    pub async fn start(
        name: &str,
        access: Access,
        config: kube::Config,
        storage: Arc<Storage>,
        options: Options,
        wanted: Wanted,
        changed: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, CreateError> {
        let client = kube::Client::try_from(config.clone()).map_err(|e| CreateError::Client(e.to_string()))?;
        // Its own connection pool: a huge list on the sync client cannot hold the probe up.
        let probe = kube::Client::try_from(config).map_err(|e| CreateError::Client(e.to_string()))?;
        let mut seeded: HashMap<Gvr, Versions> = HashMap::new();
        for ((gvr, namespace, object), rv) in storage.resource_versions(name).await? {
            seeded.entry(gvr).or_default().insert(&namespace, &object, &rv);
        }
        let state = Arc::new(Mutex::new(State {
            version: None,
            healthy: Cond {
                status: false,
                unknown: true,
                reason: cond::REASON_MONITOR_STOP,
                message: "wait cluster synchro's healthy monitor running".into(),
            },
            running: Cond {
                status: true,
                unknown: false,
                reason: cond::REASON_RUNNING,
                message: "cluster synchro is running".into(),
            },
            negotiated: None,
            synchros: HashMap::new(),
            seeded,
            definitions: None,
        }));
        let (wanted_tx, wanted_rx) = watch::channel(wanted);
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            cluster: name.to_owned(),
            storage,
            page_size: options.page_size,
            streaming_lists: options.streaming_lists,
            changed,
            metrics: options.metrics.clone(),
            writes: options.writes.clone(),
        });
        let runner = Runner { state: state.clone(), client, probe, shared: shared.clone() };
        let task = tokio::spawn(runner.run(wanted_rx, stop_rx));
        Ok(Self { access, name: name.to_owned(), state, wanted: wanted_tx, stop: stop_tx, task, shared })
    }

    /// Changes what is synced (renegotiates if it differs).
    pub fn set_wanted(&self, wanted: Wanted) {
        self.wanted.send_if_modified(|w| {
            if *w == wanted {
                return false;
            }
            *w = wanted;
            true
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        snapshot(&lock(&self.state))
    }

    /// Stops every resource synchro (between batches) and the probe.
    pub async fn shutdown(self) -> Snapshot {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(cluster = %self.name, error = %e, "cluster synchro task failed");
        }
        let mut synchros: Vec<ResourceSynchro> = lock(&self.state).synchros.drain().map(|(_, s)| s).collect();
        for s in &mut synchros {
            s.stop(sync::STATUS_STOP, None, "cluster synchro is shutdown").await;
            s.forget();
        }
        self.shared.metrics.forget_cluster(&self.name);
        let mut state = lock(&self.state);
        state.running = Cond {
            status: false,
            unknown: false,
            reason: cond::REASON_SHUTDOWN,
            message: "cluster synchro is shutdown".into(),
        };
        state.synchros = synchros.into_iter().map(|s| (s.target.gvr.clone(), s)).collect();
        snapshot(&state)
    }
}

fn snapshot(state: &State) -> Snapshot {
    let sync_resources = state.negotiated.as_ref().map(|n| {
        let mut status = n.status.clone();
        for g in &mut status {
            for r in &mut g.resources {
                for c in &mut r.sync_conditions {
                    let gvr = Gvr::new(&g.group, &c.version, &r.name);
                    if let Some(s) = state.synchros.get(&gvr) {
                        *c = s.state().condition(&c.version);
                    }
                }
            }
        }
        status
    });
    Snapshot {
        version: state.version.clone(),
        running: state.running.clone(),
        healthy: state.healthy.clone(),
        sync_resources,
    }
}

struct Runner {
    state: Arc<Mutex<State>>,
    client: kube::Client,
    probe: kube::Client,
    shared: Arc<Shared>,
}

/// `/readyz`, or `/healthz` where `/readyz` is not served.
async fn probe(client: &kube::Client) -> Result<(), String> {
    match probe_path(client, "/readyz").await {
        Err((404, _)) => probe_path(client, "/healthz").await.map_err(|(_, m)| m),
        other => other.map_err(|(_, m)| m),
    }
}

/// One probe request: the HTTP code (0 without an answer) and a message on failure.
async fn probe_path(client: &kube::Client, path: &str) -> Result<(), (u16, String)> {
    let request = http::Request::get(path).body(Vec::new()).map_err(|e| (0, e.to_string()))?;
    match tokio::time::timeout(PROBE_TIMEOUT, client.request_text(request)).await {
        Err(_) => Err((0, format!("GET {path}: no answer within {}s", PROBE_TIMEOUT.as_secs()))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(s))) => Err((s.code, format!("GET {path}: {} {}", s.code, s.message))),
        Ok(Err(e)) => Err((0, format!("GET {path}: {e}"))),
    }
}

fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    PROBE_EVERY.mul_f64(0.5 * f64::from(nanos % 1000) / 1000.0)
}

impl Runner {
    async fn run(self, mut wanted: watch::Receiver<Wanted>, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        let mut syncing = false;
        let mut last_discovery: Option<tokio::time::Instant> = None;
        // Set when the wanted resources changed (the watch marks a change seen as it wakes us).
        let mut renegotiate = true;
        let mut crd_cache = crate::discovery::CrdCache::default();
        // The member's CRDs and APIServices are watched: a change renegotiates at once.
        let apis_changed = Arc::new(tokio::sync::Notify::new());
        let mut api_watch = None;
        loop {
            match probe(&self.probe).await {
                Ok(()) => {
                    failures = 0;
                    self.shared.metrics.set_healthy(&self.shared.cluster, true);
                    let was_healthy = lock(&self.state).healthy.status;
                    if !was_healthy {
                        let (version, message) = match self.client.apiserver_version().await {
                            Ok(info) => (Some(info.git_version), "cluster health responded with ok".to_owned()),
                            Err(e) => (None, format!("cluster health responded with ok, but get server version: {e}")),
                        };
                        let mut s = lock(&self.state);
                        if version.is_some() {
                            s.version = version;
                        }
                        s.healthy = Cond { status: true, unknown: false, reason: cond::REASON_HEALTHY, message };
                        drop(s);
                        tracing::info!(cluster = %self.shared.cluster, "member is healthy");
                        (self.shared.changed)();
                    }
                    let due = renegotiate
                        || wanted.has_changed().unwrap_or(false)
                        || last_discovery.is_none_or(|t| t.elapsed() >= REDISCOVER_EVERY);
                    if due {
                        let w = wanted.borrow_and_update().clone();
                        match crate::discovery::served(&self.client, &mut crd_cache).await {
                            Ok(served) => {
                                last_discovery = Some(tokio::time::Instant::now());
                                renegotiate = false;
                                let n = negotiate::negotiate(&w.resources, w.sync_all_custom_resources, &served);
                                let definitions = negotiate::definitions_of(&n.targets, &served);
                                self.apply(n).await;
                                // A CRD that could not be read keeps the stored definitions as they are.
                                if served.definitions_complete {
                                    self.store_definitions(definitions).await;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(cluster = %self.shared.cluster, error = %e, "member discovery failed; retrying at the next probe");
                            }
                        }
                    }
                    if !syncing {
                        self.resume();
                        syncing = true;
                    }
                    if api_watch.is_none() {
                        let task =
                            crate::discovery::watch_apis(self.client.clone(), apis_changed.clone(), stop.clone());
                        api_watch = Some(tokio::spawn(task));
                    }
                }
                Err(message) => {
                    failures += 1;
                    self.shared.metrics.set_healthy(&self.shared.cluster, false);
                    tracing::warn!(cluster = %self.shared.cluster, error = %message, failures, "member health probe failed");
                    let cond = Cond { status: false, unknown: false, reason: cond::REASON_NOT_REACHABLE, message };
                    let changed = {
                        let mut s = lock(&self.state);
                        let changed = s.healthy != cond;
                        s.healthy = cond;
                        changed
                    };
                    if changed {
                        (self.shared.changed)();
                    }
                    if failures >= 2 && syncing {
                        self.pause().await;
                        syncing = false;
                    }
                }
            }
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = apis_changed.notified() => {
                    tracing::info!(cluster = %self.shared.cluster, "the member's APIs changed; negotiating again");
                    renegotiate = true;
                }
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return; // the ClusterSynchro is gone
                    }
                    renegotiate = true;
                }
                _ = tokio::time::sleep(PROBE_EVERY + jitter()) => {}
            }
        }
    }

    fn resume(&self) {
        let mut s = lock(&self.state);
        for synchro in s.synchros.values_mut() {
            synchro.start(self.client.clone(), self.shared.clone());
        }
    }

    async fn pause(&self) {
        let mut running: Vec<ResourceSynchro> = {
            let mut s = lock(&self.state);
            s.synchros.drain().map(|(_, v)| v).collect()
        };
        for r in &mut running {
            r.stop(sync::STATUS_STOP, Some(sync::REASON_PAUSE), "the member cluster is not healthy; paused").await;
        }
        tracing::info!(cluster = %self.shared.cluster, "sync paused until the member is healthy again");
        let mut s = lock(&self.state);
        s.synchros.extend(running.into_iter().map(|r| (r.target.gvr.clone(), r)));
        drop(s);
        (self.shared.changed)();
    }

    /// Writes the synced custom resources' definitions when they differ from the last written
    /// (a failed write is tried again after the next discovery).
    async fn store_definitions(&self, definitions: Vec<(Gvr, serde_json::Value)>) {
        if lock(&self.state).definitions.as_ref() == Some(&definitions) {
            return;
        }
        match self.shared.storage.replace_definitions(&self.shared.cluster, &definitions).await {
            Ok(()) => lock(&self.state).definitions = Some(definitions),
            Err(e) => {
                tracing::warn!(cluster = %self.shared.cluster, error = %e, "storing the custom resources' definitions failed; retrying after the next discovery")
            }
        }
    }

    /// Starts synchros for new targets, stops removed ones and deletes their rows (and those of
    /// resources the store held from before that are no longer wanted).
    async fn apply(&self, mut negotiated: Negotiated) {
        if let Some(previous) = lock(&self.state).negotiated.as_ref() {
            negotiated.keep_unknown_from(previous);
        }
        let (mut removed, stale_seeded): (Vec<ResourceSynchro>, Vec<Gvr>) = {
            let mut s = lock(&self.state);
            if s.negotiated.as_ref() == Some(&negotiated) {
                return;
            }
            for skipped in &negotiated.skipped {
                tracing::warn!(cluster = %self.shared.cluster, "not synced: {skipped}");
            }
            let gone = negotiated.retired(s.synchros.keys());
            let removed = gone.iter().filter_map(|g| s.synchros.remove(g)).collect();
            let stale = negotiated.retired(s.seeded.keys());
            for g in &stale {
                s.seeded.remove(g);
            }
            (removed, stale)
        };
        for r in &mut removed {
            r.stop(sync::STATUS_STOP, Some(sync::REASON_SYNCHRO_REMOVED), "the resource synchro is moved").await;
            r.forget();
        }
        for gvr in removed.iter().map(|r| r.target.gvr.clone()).chain(stale_seeded) {
            match self.shared.storage.clean_resource(&self.shared.cluster, &gvr).await {
                Ok(n) => {
                    tracing::info!(cluster = %self.shared.cluster, resource = %gvr, rows = n, "resource no longer synced; its rows are deleted")
                }
                Err(e) => {
                    tracing::error!(cluster = %self.shared.cluster, resource = %gvr, error = %e, "deleting the rows of a resource no longer synced failed")
                }
            }
        }
        let mut s = lock(&self.state);
        let new: Vec<Target> =
            negotiated.targets.iter().filter(|t| !s.synchros.contains_key(&t.gvr)).cloned().collect();
        for t in new {
            let versions = s.seeded.remove(&t.gvr).unwrap_or_default();
            let mut synchro = ResourceSynchro::new(t, versions, &self.shared);
            // Negotiation runs after a healthy probe only, so the member is there to sync from.
            synchro.start(self.client.clone(), self.shared.clone());
            s.synchros.insert(synchro.target.gvr.clone(), synchro);
        }
        for t in &negotiated.targets {
            if let Some(synchro) = s.synchros.get_mut(&t.gvr) {
                synchro.set_sync_events(t.sync_events);
            }
        }
        s.negotiated = Some(negotiated);
        drop(s);
        (self.shared.changed)();
    }
}
