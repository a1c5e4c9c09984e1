//! The object store: one global resourceVersion counter (like etcd's revision), objects kept as
//! serialized JSON (compact, and lists are a concatenation), a bounded event history per
//! group-resource for watch resumption (older resumes get 410 Gone), watch fan-out, and
//! ownerReference garbage collection.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use api_types::status::StatusError;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::meta;

// Objects are stored once per group-resource, whatever the version.
pub use api_types::GroupResource;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers receive it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub kind: EventType,
    pub rv: u64,
    pub namespace: String,
    pub labels: Arc<BTreeMap<String, String>>,
    pub object: Bytes,
}

#[derive(Debug, Clone)]
struct Entry {
    object: Bytes,
    labels: Arc<BTreeMap<String, String>>,
    uid: String,
    owners: Vec<String>,
}

#[derive(Debug)]
struct Collection {
    objects: BTreeMap<ObjectKey, Entry>,
    history: VecDeque<Arc<StoredEvent>>,
    /// Resuming a watch from a version below this answers 410: its events are gone.
    compacted_rv: u64,
    tx: broadcast::Sender<Arc<StoredEvent>>,
}

impl Collection {
    fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_rv: 0,
            tx: broadcast::channel(WATCH_BUFFER).0,
        }
    }
}

/// Events a slow watcher may fall behind by before its watch is closed (kube-apiserver closes
/// watches that cannot keep up, too).
const WATCH_BUFFER: usize = 8192;

struct Inner {
    rv: u64,
    collections: HashMap<GroupResource, Collection>,
    /// uid -> where the object lives.
    uids: HashMap<String, (GroupResource, ObjectKey)>,
    /// owner uid -> dependents.
    dependents: HashMap<String, HashSet<(GroupResource, ObjectKey)>>,
}

/// How dependents of a deleted object are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents whose owners are all gone are deleted after the owner (the default).
    #[default]
    Background,
    /// Dependents are deleted before the owner.
    Foreground,
    /// Dependents keep living; the ownerReference is removed.
    Orphan,
}

/// A page of a list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Bytes>,
    pub rv: u64,
    /// The last key returned when more items remain.
    pub next: Option<ObjectKey>,
    /// How many matching items follow this page (only counted when a page is cut).
    pub remaining: Option<u64>,
}

/// The events to send first and the live channel of a new watch.
pub type Subscription = (Vec<Arc<StoredEvent>>, broadcast::Receiver<Arc<StoredEvent>>);

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchStart {
    /// Synthetic ADDED events for every current object, then live events.
    Current,
    /// Every event after this resourceVersion (410 when history no longer reaches back).
    After(u64),
}

/// The whole state of one simulated cluster.
pub struct Store {
    inner: Mutex<Inner>,
    history_limit: usize,
}

impl Store {
    /// `history_limit` events are kept per group-resource for watch resumption.
    pub fn new(history_limit: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                collections: HashMap::new(),
                uids: HashMap::new(),
                dependents: HashMap::new(),
            }),
            history_limit: history_limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not wedge the whole simulated cluster.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, gr: &GroupResource, key: &ObjectKey) -> Option<Value> {
        let inner = self.lock();
        let bytes = inner.collections.get(gr)?.objects.get(key)?.object.clone();
        drop(inner);
        serde_json::from_slice(&bytes).ok()
    }

    /// Number of objects of a group-resource.
    pub fn count(&self, gr: &GroupResource) -> usize {
        self.lock().collections.get(gr).map_or(0, |c| c.objects.len())
    }

    /// Whether any object with this uid exists.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.lock().uids.contains_key(uid)
    }

    /// A page of objects in key order, starting after `after`. `matches` sees the namespace,
    /// labels and serialized object.
    pub fn list(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
        after: Option<&ObjectKey>,
        limit: Option<usize>,
        matches: &dyn Fn(&BTreeMap<String, String>, &Bytes) -> bool,
    ) -> ListPage {
        let inner = self.lock();
        let rv = inner.rv;
        let Some(c) = inner.collections.get(gr) else {
            return ListPage { items: Vec::new(), rv, next: None, remaining: None };
        };
        let (lo, hi) = match namespace {
            Some(ns) => {
                (Bound::Included((ns.to_owned(), String::new())), Bound::Excluded((format!("{ns}\0"), String::new())))
            }
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        let lo = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => lo,
        };
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        let mut iter = c.objects.range((lo, hi)).filter(|(_, e)| matches(&e.labels, &e.object));
        for (key, e) in iter.by_ref() {
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                break;
            }
            items.push(e.object.clone());
            last = Some(key);
        }
        let (next, remaining) = if more { (last.cloned(), Some(1 + iter.count() as u64)) } else { (None, None) };
        ListPage { items, rv, next, remaining }
    }

    /// Stores a new object. The caller has filled in name, namespace, uid and timestamps;
    /// the store assigns `metadata.resourceVersion`.
    pub fn create(&self, gr: &GroupResource, key: ObjectKey, mut object: Value) -> Result<Value, StatusError> {
        let mut inner = self.lock();
        if inner.collections.get(gr).is_some_and(|c| c.objects.contains_key(&key)) {
            return Err(StatusError::already_exists(&gr.group, &gr.resource, &key.1));
        }
        inner.rv += 1;
        let rv = inner.rv;
        meta::meta_mut(&mut object).insert("resourceVersion".into(), Value::String(rv.to_string()));
        self.write(&mut inner, gr, key, &object, EventType::Added, rv)?;
        Ok(object)
    }

    /// Replaces an object. With `expected_rv`, a different current version is a 409 Conflict.
    /// An object marked for deletion whose finalizers are now empty is removed instead.
    pub fn replace(
        &self,
        gr: &GroupResource,
        key: &ObjectKey,
        mut object: Value,
        expected_rv: Option<&str>,
    ) -> Result<Value, StatusError> {
        let mut inner = self.lock();
        let current = inner
            .collections
            .get(gr)
            .and_then(|c| c.objects.get(key))
            .ok_or_else(|| StatusError::not_found(&gr.group, &gr.resource, &key.1))?;
        if let Some(expected) = expected_rv.filter(|e| !e.is_empty()) {
            let current: Value = serde_json::from_slice(&current.object).unwrap_or(Value::Null);
            if meta::meta_str(&current, "resourceVersion") != Some(expected) {
                return Err(StatusError::conflict(&gr.group, &gr.resource, &key.1));
            }
        }
        if meta::meta_str(&object, "deletionTimestamp").is_some() && !meta::has_finalizers(&object) {
            let removed = self.remove_locked(&mut inner, gr, key);
            let mut cascade = Vec::new();
            if let Some((_, uid)) = &removed {
                cascade.push((uid.clone(), Propagation::Background));
            }
            self.collect_garbage(&mut inner, cascade);
            return removed.map(|(v, _)| v).ok_or_else(|| StatusError::not_found(&gr.group, &gr.resource, &key.1));
        }
        inner.rv += 1;
        let rv = inner.rv;
        meta::meta_mut(&mut object).insert("resourceVersion".into(), Value::String(rv.to_string()));
        self.write(&mut inner, gr, key.clone(), &object, EventType::Modified, rv)?;
        Ok(object)
    }

    /// Deletes an object: with finalizers it is only marked (`deletionTimestamp`), otherwise it
    /// is removed and its dependents are handled as `propagation` says. Returns the object as
    /// it was last seen.
    pub fn delete(
        &self,
        gr: &GroupResource,
        key: &ObjectKey,
        propagation: Propagation,
        precondition_uid: Option<&str>,
    ) -> Result<Value, StatusError> {
        let mut inner = self.lock();
        let bytes = inner
            .collections
            .get(gr)
            .and_then(|c| c.objects.get(key))
            .map(|e| e.object.clone())
            .ok_or_else(|| StatusError::not_found(&gr.group, &gr.resource, &key.1))?;
        let mut object: Value = serde_json::from_slice(&bytes).map_err(|e| StatusError::internal(e.to_string()))?;
        if let Some(uid) = precondition_uid
            && meta::meta_str(&object, "uid") != Some(uid)
        {
            return Err(StatusError::custom(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::meta_str(&object, "uid").unwrap_or_default()
                ),
            ));
        }
        if propagation == Propagation::Foreground
            && let Some(uid) = meta::meta_str(&object, "uid").map(str::to_owned)
        {
            self.collect_garbage(&mut inner, vec![(uid, Propagation::Foreground)]);
        }
        if meta::has_finalizers(&object) {
            if meta::meta_str(&object, "deletionTimestamp").is_none() {
                let m = meta::meta_mut(&mut object);
                m.insert("deletionTimestamp".into(), Value::String(meta::now()));
                m.insert("deletionGracePeriodSeconds".into(), Value::from(0));
                inner.rv += 1;
                let rv = inner.rv;
                meta::meta_mut(&mut object).insert("resourceVersion".into(), Value::String(rv.to_string()));
                self.write(&mut inner, gr, key.clone(), &object, EventType::Modified, rv)?;
            }
            return Ok(object);
        }
        let removed = self.remove_locked(&mut inner, gr, key);
        if let Some((_, uid)) = &removed {
            self.collect_garbage(&mut inner, vec![(uid.clone(), propagation)]);
        }
        removed.map(|(v, _)| v).ok_or_else(|| StatusError::not_found(&gr.group, &gr.resource, &key.1))
    }

    /// Keys of every object in a namespace, across all group-resources (namespace deletion).
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<(GroupResource, ObjectKey)> {
        let inner = self.lock();
        inner
            .collections
            .iter()
            .flat_map(|(gr, c)| {
                c.objects.keys().filter(|(ns, _)| ns == namespace).map(move |k| (gr.clone(), k.clone()))
            })
            .collect()
    }

    /// Keys of every object of a group-resource (CRD deletion, deletecollection).
    pub fn keys(&self, gr: &GroupResource, namespace: Option<&str>) -> Vec<ObjectKey> {
        let inner = self.lock();
        inner
            .collections
            .get(gr)
            .map(|c| c.objects.keys().filter(|(ns, _)| namespace.is_none_or(|n| n == ns)).cloned().collect())
            .unwrap_or_default()
    }

    /// Subscribes to a group-resource's changes. Returns the events to send first and the live
    /// channel; both are taken under one lock so no change falls between them.
    pub fn watch(&self, gr: &GroupResource, start: WatchStart) -> Result<Subscription, StatusError> {
        let mut inner = self.lock();
        let rv = inner.rv;
        let c = inner.collections.entry(gr.clone()).or_insert_with(Collection::new);
        let rx = c.tx.subscribe();
        let initial = match start {
            WatchStart::Current => c
                .objects
                .iter()
                .map(|((ns, _), e)| {
                    Arc::new(StoredEvent {
                        kind: EventType::Added,
                        rv,
                        namespace: ns.clone(),
                        labels: e.labels.clone(),
                        object: e.object.clone(),
                    })
                })
                .collect(),
            WatchStart::After(from) => {
                if from < c.compacted_rv {
                    return Err(StatusError::expired(format!("too old resource version: {from} ({})", c.compacted_rv)));
                }
                c.history.iter().filter(|e| e.rv > from).cloned().collect()
            }
        };
        Ok((initial, rx))
    }

    /// Forgets every group-resource's event history, so resuming any watch from before now
    /// answers 410 Gone (etcd compaction).
    pub fn compact(&self) {
        let mut inner = self.lock();
        let rv = inner.rv;
        for c in inner.collections.values_mut() {
            c.history.clear();
            c.compacted_rv = rv;
        }
    }

    /// Closes every open watch (their streams end; clients re-watch).
    pub fn drop_watches(&self) {
        let mut inner = self.lock();
        for c in inner.collections.values_mut() {
            // Receivers see the channel closed once the old sender is gone.
            c.tx = broadcast::channel(WATCH_BUFFER).0;
        }
    }

    fn write(
        &self,
        inner: &mut Inner,
        gr: &GroupResource,
        key: ObjectKey,
        object: &Value,
        kind: EventType,
        rv: u64,
    ) -> Result<(), StatusError> {
        let bytes = Bytes::from(serde_json::to_vec(object).map_err(|e| StatusError::internal(e.to_string()))?);
        let labels = Arc::new(meta::labels(object));
        let uid = meta::meta_str(object, "uid").unwrap_or_default().to_owned();
        let owners = meta::owner_uids(object);
        let c = inner.collections.entry(gr.clone()).or_insert_with(Collection::new);
        let previous = c.objects.insert(
            key.clone(),
            Entry { object: bytes.clone(), labels: labels.clone(), uid: uid.clone(), owners: owners.clone() },
        );
        let event = Arc::new(StoredEvent { kind, rv, namespace: key.0.clone(), labels, object: bytes });
        self.record(c, event);
        if let Some(prev) = previous {
            for o in &prev.owners {
                if let Some(set) = inner.dependents.get_mut(o) {
                    set.remove(&(gr.clone(), key.clone()));
                }
            }
        }
        for o in owners {
            inner.dependents.entry(o).or_default().insert((gr.clone(), key.clone()));
        }
        if !uid.is_empty() {
            inner.uids.insert(uid, (gr.clone(), key));
        }
        Ok(())
    }

    fn record(&self, c: &mut Collection, event: Arc<StoredEvent>) {
        if c.history.len() >= self.history_limit
            && let Some(old) = c.history.pop_front()
        {
            c.compacted_rv = c.compacted_rv.max(old.rv);
        }
        c.history.push_back(event.clone());
        // No receivers is fine.
        let _ = c.tx.send(event);
    }

    /// Removes an object and emits DELETED; returns it (with the deletion's version) and its uid.
    fn remove_locked(&self, inner: &mut Inner, gr: &GroupResource, key: &ObjectKey) -> Option<(Value, String)> {
        inner.rv += 1;
        let rv = inner.rv;
        let c = inner.collections.get_mut(gr)?;
        let entry = c.objects.remove(key)?;
        let mut object: Value = serde_json::from_slice(&entry.object).unwrap_or(Value::Null);
        if object.is_object() {
            meta::meta_mut(&mut object).insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let bytes = serde_json::to_vec(&object).map(Bytes::from).unwrap_or(entry.object);
        let event = Arc::new(StoredEvent {
            kind: EventType::Deleted,
            rv,
            namespace: key.0.clone(),
            labels: entry.labels,
            object: bytes,
        });
        self.record(c, event);
        inner.uids.remove(&entry.uid);
        for o in &entry.owners {
            if let Some(set) = inner.dependents.get_mut(o) {
                set.remove(&(gr.clone(), key.clone()));
            }
        }
        Some((object, entry.uid))
    }

    /// kube-controller-manager's garbage collector, run synchronously after a deletion.
    fn collect_garbage(&self, inner: &mut Inner, mut work: Vec<(String, Propagation)>) {
        while let Some((owner_uid, propagation)) = work.pop() {
            let dependents: Vec<_> = inner.dependents.remove(&owner_uid).into_iter().flatten().collect();
            for (gr, key) in dependents {
                let Some(bytes) =
                    inner.collections.get(&gr).and_then(|c| c.objects.get(&key)).map(|e| e.object.clone())
                else {
                    continue;
                };
                let Ok(mut object) = serde_json::from_slice::<Value>(&bytes) else { continue };
                let live_owners: Vec<String> = meta::owner_uids(&object)
                    .into_iter()
                    .filter(|u| *u != owner_uid && (propagation == Propagation::Orphan || inner.uids.contains_key(u)))
                    .collect();
                let delete = propagation != Propagation::Orphan && live_owners.is_empty();
                if delete && !meta::has_finalizers(&object) {
                    if let Some((_, uid)) = self.remove_locked(inner, &gr, &key) {
                        work.push((uid, propagation));
                    }
                    continue;
                }
                // Drop the references to the deleted owner (and mark for deletion if finalizers hold it).
                if let Some(Value::Array(refs)) = meta::meta_mut(&mut object).get_mut("ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid.as_str()));
                }
                if delete && meta::meta_str(&object, "deletionTimestamp").is_none() {
                    meta::meta_mut(&mut object).insert("deletionTimestamp".into(), Value::String(meta::now()));
                }
                inner.rv += 1;
                let rv = inner.rv;
                meta::meta_mut(&mut object).insert("resourceVersion".into(), Value::String(rv.to_string()));
                let _ = self.write(inner, &gr, key, &object, EventType::Modified, rv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr(r: &str) -> GroupResource {
        GroupResource::new("", r)
    }

    fn obj(ns: &str, name: &str, uid: &str, owners: &[&str]) -> Value {
        let refs: Vec<Value> =
            owners.iter().map(|u| json!({"uid": u, "kind": "X", "name": "x", "apiVersion": "v1"})).collect();
        json!({"metadata": {"namespace": ns, "name": name, "uid": uid, "labels": {"app": name}, "ownerReferences": refs}})
    }

    fn key(ns: &str, name: &str) -> ObjectKey {
        (ns.to_owned(), name.to_owned())
    }

    #[test]
    fn resource_versions_increase_and_conflicts_are_detected() {
        let s = Store::new(100);
        let a = s.create(&gr("pods"), key("ns", "a"), obj("ns", "a", "u1", &[])).unwrap();
        let rv1 = meta::meta_str(&a, "resourceVersion").unwrap().to_owned();
        assert!(matches!(s.create(&gr("pods"), key("ns", "a"), obj("ns", "a", "u1", &[])), Err(e) if e.code == 409));
        let b = s.replace(&gr("pods"), &key("ns", "a"), a.clone(), Some(&rv1)).unwrap();
        let rv2 = meta::meta_str(&b, "resourceVersion").unwrap().to_owned();
        assert!(rv2.parse::<u64>().unwrap() > rv1.parse::<u64>().unwrap());
        let stale = s.replace(&gr("pods"), &key("ns", "a"), a, Some(&rv1)).unwrap_err();
        assert_eq!((stale.code, stale.reason), (409, "Conflict"));
    }

    #[test]
    fn lists_page_in_key_order_within_a_namespace() {
        let s = Store::new(100);
        for (ns, n) in [("a", "1"), ("b", "1"), ("b", "2"), ("b", "3"), ("c", "1")] {
            s.create(&gr("pods"), key(ns, n), obj(ns, n, &format!("{ns}{n}"), &[])).unwrap();
        }
        let all = |_: &BTreeMap<String, String>, _: &Bytes| true;
        let p1 = s.list(&gr("pods"), Some("b"), None, Some(2), &all);
        assert_eq!(p1.items.len(), 2);
        assert_eq!(p1.next, Some(key("b", "2")));
        assert_eq!(p1.remaining, Some(1));
        let p2 = s.list(&gr("pods"), Some("b"), p1.next.as_ref(), Some(2), &all);
        assert_eq!(p2.items.len(), 1);
        assert!(p2.next.is_none());
        let everything = s.list(&gr("pods"), None, None, None, &all);
        assert_eq!(everything.items.len(), 5);
        let only_2 = s.list(&gr("pods"), None, None, None, &|l, _| l.get("app").is_some_and(|v| v == "2"));
        assert_eq!(only_2.items.len(), 1);
    }

    #[test]
    fn watch_resumes_from_history_and_answers_410_after_compaction() {
        let s = Store::new(2);
        let a = s.create(&gr("cm"), key("n", "a"), obj("n", "a", "1", &[])).unwrap();
        let rv_a: u64 = meta::meta_str(&a, "resourceVersion").unwrap().parse().unwrap();
        s.create(&gr("cm"), key("n", "b"), obj("n", "b", "2", &[])).unwrap();
        let (events, _rx) = s.watch(&gr("cm"), WatchStart::After(rv_a)).unwrap();
        assert_eq!(events.len(), 1);
        s.create(&gr("cm"), key("n", "c"), obj("n", "c", "3", &[])).unwrap();
        // History holds 2 events: resuming from before the first kept one is 410.
        assert_eq!(s.watch(&gr("cm"), WatchStart::After(rv_a - 1)).unwrap_err().code, 410);
        assert!(s.watch(&gr("cm"), WatchStart::After(rv_a)).is_ok());
        s.compact();
        assert_eq!(s.watch(&gr("cm"), WatchStart::After(rv_a)).unwrap_err().code, 410);
        let (current, _) = s.watch(&gr("cm"), WatchStart::Current).unwrap();
        assert_eq!(current.len(), 3);
    }

    #[tokio::test]
    async fn live_events_reach_subscribers() {
        let s = Store::new(10);
        let (_, mut rx) = s.watch(&gr("cm"), WatchStart::Current).unwrap();
        s.create(&gr("cm"), key("n", "a"), obj("n", "a", "1", &[])).unwrap();
        s.delete(&gr("cm"), &key("n", "a"), Propagation::Background, None).unwrap();
        assert_eq!(rx.recv().await.unwrap().kind, EventType::Added);
        let deleted = rx.recv().await.unwrap();
        assert_eq!(deleted.kind, EventType::Deleted);
        s.drop_watches();
        assert!(rx.recv().await.is_err(), "dropped watches end");
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let s = Store::new(10);
        let mut o = obj("n", "a", "1", &[]);
        o["metadata"]["finalizers"] = json!(["example.com/x"]);
        s.create(&gr("cm"), key("n", "a"), o).unwrap();
        let marked = s.delete(&gr("cm"), &key("n", "a"), Propagation::Background, None).unwrap();
        assert!(meta::meta_str(&marked, "deletionTimestamp").is_some());
        assert!(s.get(&gr("cm"), &key("n", "a")).is_some());
        let mut cleared = marked;
        cleared["metadata"]["finalizers"] = json!([]);
        s.replace(&gr("cm"), &key("n", "a"), cleared, None).unwrap();
        assert!(s.get(&gr("cm"), &key("n", "a")).is_none());
    }

    #[test]
    fn garbage_collection_cascades_and_orphans() {
        let s = Store::new(100);
        let (d, rs, p) =
            (GroupResource::new("apps", "deployments"), GroupResource::new("apps", "replicasets"), gr("pods"));
        s.create(&d, key("n", "web"), obj("n", "web", "d1", &[])).unwrap();
        s.create(&rs, key("n", "web-1"), obj("n", "web-1", "r1", &["d1"])).unwrap();
        s.create(&p, key("n", "web-1-a"), obj("n", "web-1-a", "p1", &["r1"])).unwrap();
        s.create(&p, key("n", "shared"), obj("n", "shared", "p2", &["r1", "other"])).unwrap();
        s.create(&gr("x"), key("", "other"), obj("", "other", "other", &[])).unwrap();
        s.delete(&d, &key("n", "web"), Propagation::Background, None).unwrap();
        assert!(s.get(&rs, &key("n", "web-1")).is_none(), "replicaset collected");
        assert!(s.get(&p, &key("n", "web-1-a")).is_none(), "pod collected transitively");
        let shared = s.get(&p, &key("n", "shared")).expect("a dependent with a live owner survives");
        assert_eq!(meta::owner_uids(&shared), ["other"]);

        s.create(&rs, key("n", "keep"), obj("n", "keep", "r2", &[])).unwrap();
        s.create(&p, key("n", "orphan"), obj("n", "orphan", "p3", &["r2"])).unwrap();
        s.delete(&rs, &key("n", "keep"), Propagation::Orphan, None).unwrap();
        let orphan = s.get(&p, &key("n", "orphan")).unwrap();
        assert!(meta::owner_uids(&orphan).is_empty());
    }
}
