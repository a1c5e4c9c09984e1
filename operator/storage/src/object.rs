//! What the store keeps of an object: pruned JSON plus the columns queries use.

use api_types::search::annotations;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::error::StorageError;

/// A group-version-resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl Gvr {
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self { group: group.to_owned(), version: version.to_owned(), resource: resource.to_owned() }
    }
}

impl std::fmt::Display for Gvr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}/{}", self.version, self.resource)
        } else {
            write!(f, "{}/{}/{}", self.group, self.version, self.resource)
        }
    }
}

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

fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}")).and_then(Value::as_str).unwrap_or_default()
}

/// Prunes what nobody searches for (managedFields, the last-applied annotation), stamps the
/// cluster annotation, and extracts the indexed columns.
pub fn prepare(cluster: &str, object: &Value) -> Result<Row, StorageError> {
    let name = meta(object, "name").to_owned();
    if name.is_empty() {
        return Err(StorageError::BadObject(
            format!("{}", object.get("kind").unwrap_or(&json!("?"))),
            "metadata.name is empty".into(),
        ));
    }
    let mut o = object.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        let annotations = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = annotations.as_object_mut() {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a.insert(annotations::CLUSTER_NAME.into(), json!(cluster));
        }
    }
    let owner_uid = o
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true)))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let labels = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    let created_at = meta(&o, "creationTimestamp").parse::<Timestamp>().map(|t| t.as_millisecond()).unwrap_or(0);
    Ok(Row {
        kind: o.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
        namespace: meta(&o, "namespace").to_owned(),
        name,
        uid: meta(&o, "uid").to_owned(),
        owner_uid,
        resource_version: meta(&o, "resourceVersion").to_owned(),
        created_at,
        object: serde_json::to_string(&o)
            .map_err(|e| StorageError::BadObject(meta(object, "name").to_owned(), e.to_string()))?,
        labels,
    })
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
}
