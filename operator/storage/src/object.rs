//! What the store keeps of an object: pruned JSON plus the columns queries use.

use api_types::search::annotations;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde::ser::{Error as _, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::error::StorageError;

/// A stored object's JSON as read back, checked but not decoded: readers hand it on as it is
/// (the apiserver writes it into its response), so a page of 500 objects builds no tree of
/// values. [`decode`] gives a `Value` where one is needed.
pub type RawObject = Box<RawValue>;

/// Checks a stored object's text and keeps it as [`RawObject`] (no copy when the text has no
/// surrounding whitespace, which stored objects never have).
pub(crate) fn raw(text: String, namespace: &str, name: &str) -> Result<RawObject, StorageError> {
    RawValue::from_string(text).map_err(|e| StorageError::BadObject(format!("{namespace}/{name}"), e.to_string()))
}

/// The object as a JSON value.
pub fn decode(object: &RawValue) -> Result<Value, serde_json::Error> {
    serde_json::from_str(object.get())
}

/// The annotation `kubectl apply` keeps the whole applied object in; the store drops it.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An object ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub owner_uid: String,
    pub resource_version: String,
    pub created_at: i64,
    pub object: String,
    /// `metadata.labels` (string values only, as Kubernetes allows).
    pub labels: Vec<(String, String)>,
}

/// An object to be written, as the store reads it: its kind, its metadata and its top-level
/// fields in order. A [`Value`] is one; so is the sync engine's object, whose fields nobody
/// indexes (spec, status) stay JSON text from the member's response to the stored row.
pub trait Incoming: Sync {
    fn kind(&self) -> &str;
    /// `metadata`, when it is a map.
    fn metadata(&self) -> Option<&Map<String, Value>>;
    /// Every top-level field, `metadata` included (as a [`Field::Value`], so it can be pruned).
    fn fields(&self) -> impl Iterator<Item = (&str, Field<'_>)>;
}

/// A top-level field of an [`Incoming`] object.
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    Value(&'a Value),
    /// JSON text, written as it is.
    Raw(&'a RawValue),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(v) => v.serialize(s),
            Field::Raw(r) => r.serialize(s),
        }
    }
}

impl Incoming for Value {
    fn kind(&self) -> &str {
        self.get("kind").and_then(Value::as_str).unwrap_or_default()
    }

    fn metadata(&self) -> Option<&Map<String, Value>> {
        self.get("metadata").and_then(Value::as_object)
    }

    fn fields(&self) -> impl Iterator<Item = (&str, Field<'_>)> {
        self.as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), Field::Value(v)))
    }
}

/// Prunes what nobody searches for (managedFields, the last-applied annotation), stamps the
/// cluster annotation, and extracts the indexed columns.
pub fn prepare<O: Incoming + ?Sized>(cluster: &str, object: &O) -> Result<Row, StorageError> {
    let metadata = object.metadata();
    let meta = |field: &str| metadata.and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or_default();
    let name = meta("name").to_owned();
    if name.is_empty() {
        let kind = match object.kind() {
            "" => "?",
            kind => kind,
        };
        return Err(StorageError::BadObject(kind.to_owned(), "metadata.name is empty".into()));
    }
    let owner_uid = metadata
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true)))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let labels = metadata
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    let created_at = meta("creationTimestamp").parse::<Timestamp>().map(|t| t.as_millisecond()).unwrap_or(0);
    Ok(Row {
        kind: object.kind().to_owned(),
        namespace: meta("namespace").to_owned(),
        uid: meta("uid").to_owned(),
        owner_uid,
        resource_version: meta("resourceVersion").to_owned(),
        created_at,
        object: serde_json::to_string(&Stored { object, cluster })
            .map_err(|e| StorageError::BadObject(name.clone(), e.to_string()))?,
        name,
        labels,
    })
}

/// Runs CPU-heavy `work` (serializing a batch of objects) without stalling the runtime's other
/// tasks: on a multi-threaded runtime the worker thread first hands its queued tasks to another
/// thread. Serializing 500 pods holds a thread for tens of milliseconds, and the task holding
/// SQLite's writer connection must be polled between its statements; with two worker threads,
/// two serializing callers could leave it waiting.
pub(crate) fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// [`prepare`] for many objects, on every core when there are enough of them (a relist of
/// thousands of objects spent a fifth of its time here, on one core).
pub fn prepare_all<O: Incoming>(cluster: &str, objects: &[O]) -> Result<Vec<Row>, StorageError> {
    const PER_THREAD: usize = 512;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(objects.len() / PER_THREAD);
    if threads <= 1 {
        return objects.iter().map(|o| prepare(cluster, o)).collect();
    }
    let size = objects.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = objects
            .chunks(size)
            .map(|part| scope.spawn(move || part.iter().map(|o| prepare(cluster, o)).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut rows = Vec::with_capacity(objects.len());
        for part in parts {
            rows.extend(part.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(rows)
    })
}

/// `object` as stored, serialized without copying it first (a deep clone of every object was a
/// fifth of the write path's time): `metadata` goes through [`StoredMetadata`].
struct Stored<'a, O: ?Sized> {
    object: &'a O,
    cluster: &'a str,
}

impl<O: Incoming + ?Sized> Serialize for Stored<'_, O> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.object.fields() {
            match v {
                Field::Value(Value::Object(m)) if k == "metadata" => {
                    map.serialize_entry(k, &StoredMetadata { metadata: m, cluster: self.cluster })?
                }
                _ => map.serialize_entry(k, &v)?,
            }
        }
        map.end()
    }
}

/// Metadata without managedFields, with the last-applied annotation dropped and the cluster
/// annotation set (annotations are created when absent; a non-object is left as it is).
struct StoredMetadata<'a> {
    metadata: &'a Map<String, Value>,
    cluster: &'a str,
}

impl Serialize for StoredMetadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        let cluster_only = || json!({ annotations::CLUSTER_NAME: self.cluster });
        let stamp = json!(self.cluster);
        for (k, v) in self.metadata {
            match (k.as_str(), v) {
                ("managedFields", _) => {}
                ("annotations", Value::Object(a)) => {
                    let kept = a
                        .iter()
                        .map(|(k, v)| (k.as_str(), v))
                        .filter(|(k, _)| *k != LAST_APPLIED && *k != annotations::CLUSTER_NAME);
                    let stamped = kept.chain(std::iter::once((annotations::CLUSTER_NAME, &stamp)));
                    map.serialize_entry(k, &Entries(std::cell::RefCell::new(Some(stamped))))?
                }
                ("annotations", Value::Null) => map.serialize_entry(k, &cluster_only())?,
                _ => map.serialize_entry(k, v)?,
            }
        }
        if !self.metadata.contains_key("annotations") {
            map.serialize_entry("annotations", &cluster_only())?;
        }
        map.end()
    }
}

/// A map serialized from an iterator of entries (consumed once).
struct Entries<I>(std::cell::RefCell<Option<I>>);

impl<'v, I: Iterator<Item = (&'v str, &'v Value)>> Serialize for Entries<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.0.borrow_mut().take().ok_or_else(|| S::Error::custom("entries serialized twice"))?;
        s.collect_map(entries)
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_prunes_and_extracts() {
        let o = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "x"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
            "ownerReferences": [{"uid": "other"}, {"uid": "rs-1", "controller": true}]}});
        let r = prepare("m1", &o).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.namespace.as_str(), r.uid.as_str(), r.owner_uid.as_str()),
            ("Pod", "ns", "u", "rs-1")
        );
        assert_eq!(r.created_at, 1_767_225_600_000);
        let stored: Value = serde_json::from_str(&r.object).unwrap();
        assert!(stored["metadata"].get("managedFields").is_none());
        assert_eq!(
            stored["metadata"]["annotations"],
            json!({"keep": "me", "shadow.clusterpedia.io/cluster-name": "m1"})
        );
        assert!(prepare("m1", &json!({"kind": "Pod", "metadata": {}})).is_err());
    }

    #[test]
    fn prepare_all_keeps_order_and_reports_errors() {
        let objects: Vec<Value> = (0..2000)
            .map(|i| json!({"kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "ns"}}))
            .collect();
        let rows = prepare_all("m1", &objects).unwrap();
        let sequential: Vec<Row> = objects.iter().map(|o| prepare("m1", o).unwrap()).collect();
        assert_eq!(rows, sequential);
        let mut bad = objects.clone();
        bad[1500] = json!({"kind": "Pod", "metadata": {}});
        assert!(matches!(prepare_all("m1", &bad), Err(StorageError::BadObject(..))));
    }

    /// An object whose fields are JSON text: written as they are, in the object's order, with the
    /// metadata pruned and indexed as for a tree.
    #[test]
    fn raw_fields_are_written_as_they_are() {
        struct Split {
            kind: Value,
            metadata: Value,
            spec: Box<RawValue>,
        }
        impl Incoming for Split {
            fn kind(&self) -> &str {
                self.kind.as_str().unwrap_or_default()
            }
            fn metadata(&self) -> Option<&Map<String, Value>> {
                self.metadata.as_object()
            }
            fn fields(&self) -> impl Iterator<Item = (&str, Field<'_>)> {
                [
                    ("kind", Field::Value(&self.kind)),
                    ("metadata", Field::Value(&self.metadata)),
                    ("spec", Field::Raw(&self.spec)),
                ]
                .into_iter()
            }
        }
        let split = Split {
            kind: json!("Pod"),
            metadata: json!({"name": "p", "labels": {"a": "b"}, "managedFields": [], "uid": "u"}),
            spec: RawValue::from_string(r#"{"z": 1, "a": [true]}"#.to_owned()).unwrap(),
        };
        let row = prepare("m1", &split).unwrap();
        assert_eq!(
            row.object,
            r#"{"kind":"Pod","metadata":{"labels":{"a":"b"},"name":"p","uid":"u","annotations":{"shadow.clusterpedia.io/cluster-name":"m1"}},"spec":{"z": 1, "a": [true]}}"#
        );
        assert_eq!((row.uid.as_str(), row.labels.clone()), ("u", vec![("a".to_owned(), "b".to_owned())]));
    }

    /// The stored JSON equals pruning a copy of the object (how it was done before the view).
    #[test]
    fn stored_json_equals_pruned_copy() {
        let pruned_copy = |o: &Value| {
            let mut o = o.clone();
            let m = o["metadata"].as_object_mut().unwrap();
            m.remove("managedFields");
            let a = m.entry("annotations").or_insert_with(|| json!({}));
            if a.is_null() {
                *a = json!({});
            }
            if let Some(a) = a.as_object_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
                a.insert(annotations::CLUSTER_NAME.into(), json!("m1"));
            }
            o
        };
        let cases = [
            json!({"kind": "Pod", "metadata": {"name": "no-annotations", "labels": {"a": "b"}}, "spec": {"x": [1, {"y": null}]}}),
            json!({"kind": "Pod", "metadata": {"name": "null", "annotations": null, "managedFields": []}}),
            json!({"kind": "Pod", "metadata": {"name": "stale", "annotations": {"shadow.clusterpedia.io/cluster-name": "old", "z": "1",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"}}}),
            json!({"kind": "Pod", "metadata": {"name": "odd", "annotations": "not a map"}}),
        ];
        for o in cases {
            let stored: Value = serde_json::from_str(&prepare("m1", &o).unwrap().object).unwrap();
            assert_eq!(stored, pruned_copy(&o), "{o}");
        }
    }
}
