//! Reading manifests: multi-document YAML (or JSON) into objects, and decoding the kinds pedia
//! owns into their Rust types.

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cluster::{ClusterSyncResources, PediaCluster};
use crate::multicluster::ClusterProfile;
use crate::policy::{ClusterImportPolicy, PediaClusterLifecycle};

/// A manifest that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("document {index}: {source}")]
    Yaml { index: usize, source: serde_yaml::Error },
    #[error("{kind} {name:?} does not decode: {source}")]
    Decode { kind: String, name: String, source: serde_json::Error },
}

/// Every object of a YAML stream (JSON is YAML too), in order. Empty documents are skipped and
/// `kind: List` objects are expanded into their items.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut objects = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value: Value =
            serde::Deserialize::deserialize(doc).map_err(|source| ManifestError::Yaml { index, source })?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(Value::Array(items)) = map.get("items") {
                    objects.extend(items.iter().cloned());
                }
            }
            other => objects.push(other),
        }
    }
    Ok(objects)
}

/// Decodes an object of one of pedia's kinds into its Rust type and encodes it back, which is
/// what pedia's controllers do with it. `Ok(None)` for kinds pedia has no type for.
pub fn roundtrip(object: &Value) -> Result<Option<Value>, ManifestError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    match (api_version, kind) {
        (v, k) if is::<PediaCluster>(v, k) => typed::<PediaCluster>(object),
        (v, k) if is::<ClusterSyncResources>(v, k) => typed::<ClusterSyncResources>(object),
        (v, k) if is::<ClusterImportPolicy>(v, k) => typed::<ClusterImportPolicy>(object),
        (v, k) if is::<PediaClusterLifecycle>(v, k) => typed::<PediaClusterLifecycle>(object),
        (v, k) if is::<ClusterProfile>(v, k) => typed::<ClusterProfile>(object),
        _ => Ok(None),
    }
}

fn is<K: Resource<DynamicType = ()>>(api_version: &str, kind: &str) -> bool {
    K::api_version(&()) == api_version && K::kind(&()) == kind
}

fn typed<K: Resource<DynamicType = ()> + DeserializeOwned + Serialize>(
    object: &Value,
) -> Result<Option<Value>, ManifestError> {
    let decode_err = |source| ManifestError::Decode {
        kind: K::kind(&()).into_owned(),
        name: object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        source,
    };
    let typed: K = serde_json::from_value(object.clone()).map_err(decode_err)?;
    serde_json::to_value(&typed).map(Some).map_err(decode_err)
}
