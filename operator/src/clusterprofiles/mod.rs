//! ClusterProfiles (SIG-Multicluster cluster inventory, `multicluster.x-k8s.io/v1alpha1`) ->
//! PediaClusters: one per profile, reached through the profile's access provider that pedia's
//! provider file prefers, the credential carried to the synchro in a Secret pedia owns.

pub mod build;
pub mod builtin;
pub mod cleanup;
pub mod profile_controller;
pub mod providers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_types::cluster::{ClusterGroupResources, PediaCluster};
use api_types::multicluster::ClusterProfile;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use providers::{Method, ProviderFile};

/// How the importer runs (from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// pedia's namespace: the kubeconfig Secrets it writes, and `secretreader`'s Secrets.
    pub namespace: String,
    /// Namespaces whose profiles are imported (empty: all).
    pub watch_namespaces: Vec<String>,
    /// Put before `<namespace>-<name>` in PediaCluster names.
    pub prefix: String,
    pub providers: ProviderFile,
    /// ClusterSyncResources synced when a profile names none.
    pub default_sync_resources: Option<String>,
    /// Only import profiles whose cluster manager reports them healthy.
    pub healthy_only: bool,
    pub exec_timeout: Duration,
}

/// What is synced when neither the profile nor the settings name a ClusterSyncResources.
pub fn builtin_sync_resources() -> Vec<ClusterGroupResources> {
    let group = |group: &str, resources: &[&str]| ClusterGroupResources {
        group: group.to_owned(),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    };
    vec![
        group("", &["namespaces", "nodes", "pods", "services", "configmaps"]),
        group("apps", &["deployments", "statefulsets", "daemonsets"]),
    ]
}

/// A reconcile that failed on the API (retried); bad profiles and failing plugins are Warning
/// Events on the profile, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API ({context}): {source}")]
    Kube { context: &'static str, source: kube::Error },
    #[error("serializing {what}: {source}")]
    Json { what: &'static str, source: serde_json::Error },
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Json { .. } => "serialize",
        }
    }

    pub fn kube(context: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { context, source }
    }
}

/// Profiles whose exec plugin failed: not run again before their wait is over, unless the
/// profile changed (a fixed profile is tried at once). The wait starts at 15 s and doubles to
/// 10 minutes.
#[derive(Debug, Default)]
pub struct Backoff(Mutex<HashMap<String, Failing>>);

#[derive(Debug, Clone)]
struct Failing {
    attempts: u32,
    until: Instant,
    /// The profile's resourceVersion when it failed.
    version: String,
}

impl Backoff {
    /// Records a failure of `key` at profile `version`; returns the wait.
    pub fn failed(&self, key: &str, version: &str) -> Duration {
        let mut failing = lock(&self.0);
        let attempts = failing.get(key).filter(|f| f.version == version).map_or(0, |f| f.attempts) + 1;
        let wait = Duration::from_secs(15u64 << (attempts - 1).min(6)).min(Duration::from_secs(600));
        failing.insert(key.to_owned(), Failing { attempts, until: Instant::now() + wait, version: version.to_owned() });
        wait
    }

    pub fn succeeded(&self, key: &str) {
        lock(&self.0).remove(key);
    }

    /// How long `key` still waits, if it failed at this same `version`.
    pub fn waiting(&self, key: &str, version: &str) -> Option<Duration> {
        lock(&self.0)
            .get(key)
            .filter(|f| f.version == version)
            .and_then(|f| f.until.checked_duration_since(Instant::now()))
    }
}

/// What the reconcilers share.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
    pub builtin_sync_resources: Vec<ClusterGroupResources>,
    pub exec: crate::exec_plugin::Cache,
    pub backoff: Backoff,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Context {
    /// Forgets a profile (deleted).
    pub fn forget(&self, key: &str) {
        self.exec.forget(key);
        self.backoff.succeeded(key);
    }

    /// A Warning Event on the profile and a log line naming it.
    pub async fn warn(&self, profile: &ClusterProfile, reason: &str, note: String) {
        tracing::warn!(profile = %key(profile), reason, "{note}");
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: "Import".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &profile.object_ref(&())).await {
            tracing::warn!(profile = %key(profile), error = %e, "could not record an event");
        }
    }
}

/// `<namespace>/<name>` of a profile.
pub fn key(profile: &ClusterProfile) -> String {
    format!("{}/{}", profile.namespace().unwrap_or_default(), profile.name_any())
}

/// The profile a PediaCluster of the importer's comes from.
fn profile_of(pc: &PediaCluster) -> Option<ObjectRef<ClusterProfile>> {
    let (ns, name) = pc.annotations().get(build::PROFILE)?.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// The profiles whose built-in provider reads this Secret.
fn readers_of(
    secret: &Secret,
    profiles: &Store<ClusterProfile>,
    settings: &Settings,
) -> Vec<ObjectRef<ClusterProfile>> {
    let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
    profiles
        .state()
        .iter()
        .filter(|p| {
            let status = p.status.clone().unwrap_or_default();
            let Ok(sel) = providers::select(&settings.providers, &status) else { return false };
            let Method::Builtin(b) = sel.method else { return false };
            builtin::source(b, &sel.config, &settings.namespace).is_ok_and(|s| s.namespace == ns && s.name == name)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

fn error_policy(profile: Arc<ClusterProfile>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(profile = %key(&profile), %error, kind = error.metric_label(), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

/// Runs the importer until the process stops; returns at once (with a log line) when the host
/// does not serve ClusterProfiles or pedia may not list them.
pub async fn run(client: Client, settings: Settings) -> Result<(), Error> {
    let probe = match settings.watch_namespaces.first() {
        Some(ns) => Api::<ClusterProfile>::namespaced(client.clone(), ns),
        None => Api::<ClusterProfile>::all(client.clone()),
    };
    match probe.list_metadata(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            tracing::info!(
                "the ClusterProfile CRD (clusterprofiles.multicluster.x-k8s.io) is not installed on the host: the ClusterProfile importer is off"
            );
            return Ok(());
        }
        // Older RBAC without the importer's rule: the other controllers keep running.
        Err(kube::Error::Api(s)) if s.code == 403 => {
            tracing::warn!(
                message = %s.message,
                "pedia may not list ClusterProfiles (grant get/list/watch on clusterprofiles.multicluster.x-k8s.io, or drop clusterprofiles from --controllers): the ClusterProfile importer is off"
            );
            return Ok(());
        }
        Err(e) => return Err(Error::kube("listing ClusterProfiles")(e)),
        Ok(_) => {}
    }
    let reporter =
        kube::runtime::events::Reporter { controller: build::MANAGER.into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        builtin_sync_resources: builtin_sync_resources(),
        settings,
        exec: Default::default(),
        backoff: Backoff::default(),
    });
    let scopes: Vec<Option<String>> = match ctx.settings.watch_namespaces.as_slice() {
        [] => vec![None],
        list => list.iter().cloned().map(Some).collect(),
    };
    tracing::info!(namespaces = ?ctx.settings.watch_namespaces, "starting the ClusterProfile importer");
    futures_util::future::join_all(scopes.into_iter().map(|scope| pipeline(ctx.clone(), scope))).await;
    Ok(())
}

/// One watch of profiles (all namespaces, or one): applied profiles go to the reconciler,
/// deleted ones and the end of each relist to the cleanup.
async fn pipeline(ctx: Arc<Context>, scope: Option<String>) {
    let client = ctx.client.clone();
    let api = match &scope {
        Some(ns) => Api::<ClusterProfile>::namespaced(client.clone(), ns),
        None => Api::<ClusterProfile>::all(client.clone()),
    };
    let (reader, writer) = reflector::store();
    let (gone_tx, gone_rx) = mpsc::unbounded_channel();
    let profiles = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            let gone = match event {
                Ok(watcher::Event::Delete(p)) => Some(cleanup::Gone::Profile(key(p))),
                Ok(watcher::Event::InitDone) => Some(cleanup::Gone::Sweep),
                _ => None,
            };
            if let Some(g) = gone {
                let _ = gone_tx.send(g);
            }
        })
        .applied_objects();
    let (store, settings) = (reader.clone(), ctx.settings.clone());
    let managed = watcher::Config::default().labels(&format!("{}={}", build::MANAGED_BY, build::MANAGER));
    let controller = Controller::for_stream(profiles, reader.clone())
        .watches(Api::<PediaCluster>::all(client.clone()), managed, |pc| profile_of(&pc))
        .watches(Api::<Secret>::namespaced(client, &ctx.settings.namespace), watcher::Config::default(), move |s| {
            readers_of(&s, &store, &settings)
        })
        .run(profile_controller::reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "clusterprofile importer");
            }
        });
    tokio::join!(controller, cleanup::run(ctx, reader, scope, gone_rx));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn failing_plugins_back_off_until_the_profile_changes() {
        let b = Backoff::default();
        assert_eq!(b.waiting("ns/a", "1"), None);
        assert_eq!(b.failed("ns/a", "1"), Duration::from_secs(15));
        assert_eq!(b.failed("ns/a", "1"), Duration::from_secs(30));
        assert!(b.waiting("ns/a", "1").is_some_and(|w| w > Duration::from_secs(25)));
        assert_eq!(b.waiting("ns/a", "2"), None, "a changed profile is tried at once");
        assert_eq!(b.failed("ns/a", "2"), Duration::from_secs(15), "and starts over");
        for _ in 0..10 {
            b.failed("ns/a", "2");
        }
        assert_eq!(b.failed("ns/a", "2"), Duration::from_secs(600));
        b.succeeded("ns/a");
        assert_eq!(b.waiting("ns/a", "2"), None);
    }

    pub fn compat_dir() -> std::path::PathBuf {
        std::env::var_os("PEDIA_COMPAT_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat"))
            .join("cluster-inventory-api")
    }
}
