//! The objects policies and lifecycles depend on: one cluster-wide watch (with a cache) per
//! resource that some policy uses as source or reference, started when a policy needs it and
//! stopped when none does. Events re-trigger every policy whose source changed and every
//! lifecycle that read the object, so a Secret created later or rotated is noticed.
//! Several policies may share a source resource (upstream allows only one).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use api_types::policy::{ClusterImportPolicy, PediaClusterLifecycle};
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc::UnboundedSender;

use api_types::Gvr;

/// The resource a discovered [`ApiResource`] names.
pub fn gvr_of(ar: &ApiResource) -> Gvr {
    Gvr::new(&ar.group, &ar.version, &ar.plural)
}

/// One object a lifecycle depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub gvr: Gvr,
    pub namespace: Option<String>,
    pub name: String,
}

struct Watch {
    resource: ApiResource,
    store: Store<DynamicObject>,
    synced: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    watches: HashMap<Gvr, Watch>,
    /// policy -> (source, every resource it uses)
    policies: HashMap<String, (Gvr, BTreeSet<Gvr>)>,
    lifecycles: HashMap<String, HashSet<Dependency>>,
}

/// Shared by both controllers.
pub struct Dependents {
    client: Client,
    inner: Arc<Mutex<Inner>>,
    policy_tx: UnboundedSender<ObjectRef<ClusterImportPolicy>>,
    lifecycle_tx: UnboundedSender<ObjectRef<PediaClusterLifecycle>>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Dependents {
    pub fn new(
        client: Client,
        policy_tx: UnboundedSender<ObjectRef<ClusterImportPolicy>>,
        lifecycle_tx: UnboundedSender<ObjectRef<PediaClusterLifecycle>>,
    ) -> Self {
        Self { client, inner: Arc::default(), policy_tx, lifecycle_tx }
    }

    /// Records what a policy uses and starts the watches it needs; stops watches nobody uses.
    pub fn set_policy(&self, policy: &str, source: &ApiResource, references: &[ApiResource]) {
        let mut inner = lock(&self.inner);
        let mut all: BTreeSet<Gvr> = references.iter().map(gvr_of).collect();
        all.insert(gvr_of(source));
        for ar in std::iter::once(source).chain(references) {
            let gvr = gvr_of(ar);
            if let std::collections::hash_map::Entry::Vacant(slot) = inner.watches.entry(gvr.clone()) {
                slot.insert(self.start(ar.clone(), gvr));
            }
        }
        inner.policies.insert(policy.to_owned(), (gvr_of(source), all));
        stop_unused(&mut inner);
    }

    pub fn remove_policy(&self, policy: &str) {
        let mut inner = lock(&self.inner);
        inner.policies.remove(policy);
        stop_unused(&mut inner);
    }

    /// Whether every watch of the policy has listed once (its caches are complete).
    pub fn synced(&self, policy: &str) -> bool {
        let inner = lock(&self.inner);
        inner.policies.get(policy).is_some_and(|(_, all)| {
            all.iter().all(|g| inner.watches.get(g).is_some_and(|w| w.synced.load(Ordering::SeqCst)))
        })
    }

    /// Every cached object of a resource.
    pub fn list(&self, gvr: &Gvr) -> Vec<Arc<DynamicObject>> {
        lock(&self.inner).watches.get(gvr).map(|w| w.store.state()).unwrap_or_default()
    }

    /// One cached object.
    pub fn get(&self, gvr: &Gvr, namespace: Option<&str>, name: &str) -> Option<Arc<DynamicObject>> {
        let inner = lock(&self.inner);
        let watch = inner.watches.get(gvr)?;
        let mut key = ObjectRef::<DynamicObject>::new_with(name, watch.resource.clone());
        if let Some(ns) = namespace {
            key = key.within(ns);
        }
        watch.store.get(&key)
    }

    /// What a lifecycle read; events on these objects re-trigger it.
    pub fn set_lifecycle(&self, lifecycle: &str, deps: HashSet<Dependency>) {
        lock(&self.inner).lifecycles.insert(lifecycle.to_owned(), deps);
    }

    pub fn remove_lifecycle(&self, lifecycle: &str) {
        lock(&self.inner).lifecycles.remove(lifecycle);
    }

    fn start(&self, ar: ApiResource, gvr: Gvr) -> Watch {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let writer = reflector::store::Writer::new(ar.clone());
        let store = writer.as_reader();
        let synced = Arc::new(AtomicBool::new(false));
        let (inner, policy_tx, lifecycle_tx, flag) =
            (self.inner.clone(), self.policy_tx.clone(), self.lifecycle_tx.clone(), synced.clone());
        let task = tokio::spawn(async move {
            let mut events = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default())).boxed();
            while let Some(event) = events.next().await {
                let changed = match event {
                    Ok(Event::Apply(o) | Event::Delete(o) | Event::InitApply(o)) => Some(o),
                    Ok(Event::Init) => None,
                    Ok(Event::InitDone) => {
                        flag.store(true, Ordering::SeqCst);
                        None
                    }
                    Err(e) => {
                        tracing::warn!(resource = ?gvr, error = %e, "watching a policy dependency failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let inner = lock(&inner);
                for (policy, (source, _)) in &inner.policies {
                    if *source == gvr {
                        let _ = policy_tx.send(ObjectRef::new(policy));
                    }
                }
                let Some(o) = changed else {
                    // Synced: policies using this resource may go on.
                    for (policy, (_, all)) in &inner.policies {
                        if all.contains(&gvr) {
                            let _ = policy_tx.send(ObjectRef::new(policy));
                        }
                    }
                    for lifecycle in inner.lifecycles.keys() {
                        let _ = lifecycle_tx.send(ObjectRef::new(lifecycle));
                    }
                    continue;
                };
                let dep = Dependency { gvr: gvr.clone(), namespace: o.namespace(), name: o.name_any() };
                for (lifecycle, deps) in &inner.lifecycles {
                    if deps.contains(&dep) {
                        let _ = lifecycle_tx.send(ObjectRef::new(lifecycle));
                    }
                }
            }
        });
        Watch { resource: ar, store, synced, task }
    }
}

fn stop_unused(inner: &mut Inner) {
    let used: BTreeSet<Gvr> = inner.policies.values().flat_map(|(_, all)| all.iter().cloned()).collect();
    inner.watches.retain(|gvr, w| {
        let keep = used.contains(gvr);
        if !keep {
            w.task.abort();
        }
        keep
    });
}

impl Drop for Dependents {
    fn drop(&mut self) {
        for w in lock(&self.inner).watches.values() {
            w.task.abort();
        }
    }
}
