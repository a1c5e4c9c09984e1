//! A member's object as the sync engine reads it: the JSON map as the member sent it, and the
//! three metadata fields the engine and kube-runtime's watcher read. kube's `DynamicObject`
//! flattens its fields, so serde buffers every object into an intermediate tree before building
//! it, and it parses the whole metadata into typed fields only to write them back as JSON; the
//! store takes the JSON, so this type reads it once.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default)]
pub struct RawObject {
    /// `name`, `namespace` and `resourceVersion` only.
    metadata: ObjectMeta,
    /// Every field as sent (list items come without `apiVersion` and `kind`).
    fields: Map<String, Value>,
}

impl RawObject {
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn resource_version(&self) -> &str {
        self.metadata.resource_version.as_deref().unwrap_or_default()
    }

    /// The object as the store takes it, with its type.
    pub fn into_value(self, api_version: &str, kind: &str) -> Value {
        let mut fields = self.fields;
        fields.insert("apiVersion".into(), Value::String(api_version.to_owned()));
        fields.insert("kind".into(), Value::String(kind.to_owned()));
        Value::Object(fields)
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Map::deserialize(deserializer)?;
        let meta = fields.get("metadata");
        let text = |key: &str| meta.and_then(|m| m.get(key)).and_then(Value::as_str).map(str::to_owned);
        let metadata = ObjectMeta {
            name: text("name"),
            namespace: text("namespace"),
            resource_version: text("resourceVersion"),
            ..ObjectMeta::default()
        };
        Ok(RawObject { metadata, fields })
    }
}

impl Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_keep_every_field_as_sent_and_get_their_type() {
        // List items come without apiVersion and kind; the store needs both. Fields kube's typed
        // metadata does not know stay too.
        let item = json!({"metadata": {"name": "web-0", "namespace": "shop", "resourceVersion": "7", "labels": {"app": "web"},
                                       "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}], "futureField": 1},
                          "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}});
        let o: RawObject = serde_json::from_slice(item.to_string().as_bytes()).unwrap();
        assert_eq!((o.namespace(), o.name(), o.resource_version()), ("shop", "web-0", "7"));
        assert_eq!(o.meta().resource_version.as_deref(), Some("7"));
        let v = o.into_value("v1", "Pod");
        let mut want = item;
        want["apiVersion"] = json!("v1");
        want["kind"] = json!("Pod");
        assert_eq!(v, want);
    }

    #[test]
    fn a_cluster_scoped_object_has_no_namespace() {
        let o: RawObject = serde_json::from_value(json!({"metadata": {"name": "node-1"}})).unwrap();
        assert_eq!((o.namespace(), o.name(), o.resource_version()), ("", "node-1", ""));
        assert!(o.meta().namespace.is_none());
    }

    #[test]
    fn an_object_that_is_not_a_map_is_refused() {
        assert!(serde_json::from_value::<RawObject>(json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn watch_events_carry_it() {
        let line = json!({"type": "MODIFIED", "object": {"metadata": {"name": "a", "namespace": "n", "resourceVersion": "9"}}});
        let e: kube::core::WatchEvent<RawObject> = serde_json::from_str(&line.to_string()).unwrap();
        match e {
            kube::core::WatchEvent::Modified(o) => assert_eq!(o.resource_version(), "9"),
            other => panic!("{other:?}"),
        }
    }
}
