//! A member's object as the sync engine reads it and hands it to the store. kube's
//! `DynamicObject` flattens its fields, so serde buffers every object into an intermediate tree,
//! parses the whole metadata into typed fields, and the store then serializes it all back. This
//! type parses only `metadata` into a tree (the store indexes it); the other top-level fields
//! (spec, status, data) stay the member's JSON text, copied into the stored row as they are.

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use pedia_storage::{Field, Incoming};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default)]
pub struct RawObject {
    /// `name`, `namespace` and `resourceVersion` only: what kube's watcher reads (boxed: the
    /// type has every field of ObjectMeta, ~450 bytes).
    meta: Box<ObjectMeta>,
    /// Null until sent or set by [`RawObject::typed`] (list items come without them).
    api_version: Value,
    kind: Value,
    /// `metadata` without `managedFields` and the last-applied annotation, which the store drops.
    metadata: Value,
    /// The other top-level fields, in the member's order.
    fields: Vec<(String, FieldValue)>,
}

/// A top-level field nobody indexes.
#[derive(Clone, Debug)]
enum FieldValue {
    /// The member's JSON text: read straight from serde_json's parser, no tree is built.
    Raw(Box<RawValue>),
    /// A tree, where serde buffered the payload before this type saw it and the text is gone
    /// (a watch event whose object comes before its type).
    Tree(Value),
}

impl RawObject {
    pub fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }

    pub fn resource_version(&self) -> &str {
        self.meta.resource_version.as_deref().unwrap_or_default()
    }

    /// The object with its type, as the store takes it.
    pub fn typed(mut self, api_version: &str, kind: &str) -> Self {
        self.api_version = Value::String(api_version.to_owned());
        self.kind = Value::String(kind.to_owned());
        self
    }
}

impl Incoming for RawObject {
    fn kind(&self) -> &str {
        self.kind.as_str().unwrap_or_default()
    }

    fn metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_object()
    }

    fn fields(&self) -> impl Iterator<Item = (&str, Field<'_>)> {
        let typed = [("apiVersion", &self.api_version), ("kind", &self.kind), ("metadata", &self.metadata)];
        let typed = typed.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, Field::Value(v)));
        typed.chain(self.fields.iter().map(|(k, v)| {
            let v = match v {
                FieldValue::Raw(raw) => Field::Raw(raw),
                FieldValue::Tree(tree) => Field::Value(tree),
            };
            (k.as_str(), v)
        }))
    }
}

/// Whether `D` is serde_json's parser, which can hand over a value's text ([`RawValue`]); any other
/// deserializer (serde's buffered content, a `Value`) cannot. A renamed parser type only costs
/// speed (trees are built); the unit tests notice it.
fn reads_json_text<D>() -> bool {
    std::any::type_name::<D>().starts_with("&mut serde_json::de::Deserializer<")
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match reads_json_text::<D>() {
            true => Box::<RawValue>::deserialize(deserializer).map(FieldValue::Raw),
            false => Value::deserialize(deserializer).map(FieldValue::Tree),
        }
    }
}

/// `metadata` as a tree, `managedFields` and the last-applied annotation skipped without being
/// built.
struct Metadata(Value);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetadataVisitor;
        impl<'de> Visitor<'de> for MetadataVisitor {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("object metadata")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Metadata, E> {
                Ok(Metadata(Value::Null))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut fields = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "managedFields" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        "annotations" => {
                            let annotations = map.next_value::<Annotations>()?.0;
                            fields.insert(key, annotations);
                        }
                        _ => {
                            fields.insert(key, map.next_value()?);
                        }
                    }
                }
                Ok(Metadata(Value::Object(fields)))
            }
        }
        deserializer.deserialize_any(MetadataVisitor)
    }
}

/// `metadata.annotations` without the last-applied annotation, which the store drops: it holds
/// the whole applied object as one escaped string, so skipping it spares copying and unescaping
/// kilobytes per object. Anything but a map is kept as it is.
struct Annotations(Value);

impl<'de> Deserialize<'de> for Annotations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnnotationsVisitor;
        impl<'de> Visitor<'de> for AnnotationsVisitor {
            type Value = Annotations;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("object annotations")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Annotations, A::Error> {
                let mut kept = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == pedia_storage::object::LAST_APPLIED {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        kept.insert(key, map.next_value()?);
                    }
                }
                Ok(Annotations(Value::Object(kept)))
            }

            // Not a map (invalid, but stored as sent): the value itself.
            fn visit_unit<E: de::Error>(self) -> Result<Annotations, E> {
                Ok(Annotations(Value::Null))
            }

            fn visit_none<E: de::Error>(self) -> Result<Annotations, E> {
                Ok(Annotations(Value::Null))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Annotations, E> {
                Ok(Annotations(Value::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Annotations, E> {
                Ok(Annotations(Value::from(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Annotations, E> {
                Ok(Annotations(Value::from(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Annotations, E> {
                Ok(Annotations(Value::from(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Annotations, E> {
                Ok(Annotations(Value::String(v.to_owned())))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Annotations, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
                Ok(Annotations(Value::Array(items)))
            }
        }
        deserializer.deserialize_any(AnnotationsVisitor)
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Kubernetes object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut o = RawObject::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "metadata" => o.metadata = map.next_value::<Metadata>()?.0,
                        "apiVersion" => o.api_version = map.next_value()?,
                        "kind" => o.kind = map.next_value()?,
                        _ => {
                            let value = map.next_value::<FieldValue>()?;
                            // A repeated key: the last one counts, as with a JSON map.
                            match o.fields.iter_mut().find(|(k, _)| *k == key) {
                                Some(field) => field.1 = value,
                                None => o.fields.push((key, value)),
                            }
                        }
                    }
                }
                let text = |key: &str| o.metadata.get(key).and_then(Value::as_str).map(str::to_owned);
                o.meta = Box::new(ObjectMeta {
                    name: text("name"),
                    namespace: text("namespace"),
                    resource_version: text("resourceVersion"),
                    ..ObjectMeta::default()
                });
                Ok(o)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
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
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// A pod as a member sends it in a list page (no apiVersion and kind).
    fn item() -> Value {
        json!({"metadata": {"name": "web-0", "namespace": "shop", "resourceVersion": "7", "labels": {"app": "web"},
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
                            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}], "futureField": 1},
               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}})
    }

    /// What the store keeps of `o`, as a tree.
    fn stored<O: Incoming>(o: &O) -> (pedia_storage::object::Row, Value) {
        let row = pedia_storage::object::prepare("m1", o).unwrap();
        let object = serde_json::from_str(&row.object).unwrap();
        (row, object)
    }

    #[test]
    fn the_store_keeps_the_same_object_as_from_a_tree() {
        // Every field stays (fields kube's typed metadata does not know too), the type is added,
        // and the store's pruning applies as to any object.
        let o: RawObject = serde_json::from_str(&item().to_string()).unwrap();
        assert_eq!((o.namespace(), o.name(), o.resource_version()), ("shop", "web-0", "7"));
        assert_eq!(o.meta().resource_version.as_deref(), Some("7"));
        let mut tree = item();
        tree["apiVersion"] = json!("v1");
        tree["kind"] = json!("Pod");
        let (raw_row, raw) = stored(&o.typed("v1", "Pod"));
        let (tree_row, from_tree) = stored(&tree);
        assert_eq!(raw, from_tree);
        assert_eq!(raw_row.labels, tree_row.labels);
        assert_eq!((raw_row.kind.as_str(), raw_row.resource_version.as_str()), ("Pod", "7"));
        assert!(raw["metadata"].get("managedFields").is_none());
        assert_eq!(raw["metadata"]["futureField"], 1);
        assert_eq!(raw["metadata"]["annotations"], json!({"keep": "me", "shadow.clusterpedia.io/cluster-name": "m1"}));
    }

    #[test]
    fn the_last_applied_annotation_is_skipped_as_it_is_read() {
        let o: RawObject = serde_json::from_str(&item().to_string()).unwrap();
        assert_eq!(o.metadata["annotations"], json!({"keep": "me"}), "not even held in memory");
        // Annotations that are not a map are stored as sent, as from a tree.
        for odd in
            [json!(null), json!("text"), json!(["a", 1]), json!(true), json!(7), json!(-7), json!(1.5), json!({})]
        {
            let mut tree = item();
            tree["metadata"]["annotations"] = odd.clone();
            let o: RawObject = serde_json::from_str(&tree.to_string()).unwrap();
            assert_eq!(o.metadata["annotations"], odd);
            tree["apiVersion"] = json!("v1");
            tree["kind"] = json!("Pod");
            assert_eq!(stored(&o.typed("v1", "Pod")).1, stored(&tree).1, "{odd}");
        }
    }

    #[test]
    fn fields_stay_text_from_the_parser_and_become_trees_from_buffered_content() {
        let raw = |o: &RawObject| o.fields.iter().all(|(_, v)| matches!(v, FieldValue::Raw(_)));
        let text = item().to_string();
        let parsed: RawObject = serde_json::from_str(&text).unwrap();
        assert!(raw(&parsed), "{:?}", parsed.fields);
        assert!(raw(&serde_json::from_slice(text.as_bytes()).unwrap()));
        // A list page's items are read straight from the parser too (only ObjectList's unknown
        // fields are buffered for its flattened type fields).
        let page =
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": [item()]});
        let list: kube::core::ObjectList<RawObject> = serde_json::from_str(&page.to_string()).unwrap();
        assert!(raw(&list.items[0]));
        // A watch event whose object comes before its type is buffered: the text is gone.
        let line = format!(r#"{{"object":{text},"type":"ADDED"}}"#);
        let kube::core::WatchEvent::<RawObject>::Added(buffered) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}")
        };
        assert!(buffered.fields.iter().all(|(_, v)| matches!(v, FieldValue::Tree(_))));
        assert_eq!(stored(&buffered.typed("v1", "Pod")).1, stored(&parsed.typed("v1", "Pod")).1);
    }

    #[test]
    fn a_repeated_field_keeps_its_last_value() {
        let o: RawObject = serde_json::from_str(r#"{"metadata":{"name":"a"},"spec":{"x":1},"spec":{"x":2}}"#).unwrap();
        assert_eq!(stored(&o.typed("v1", "Pod")).1["spec"], json!({"x": 2}));
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
        assert!(serde_json::from_str::<RawObject>(r#"{"metadata": ["no"]}"#).is_err());
    }

    #[test]
    fn watch_events_carry_it() {
        // kube-apiserver writes the type first; serde buffers the object when it comes first.
        for line in [
            r#"{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"9"},"spec":{"x":1}}}"#,
            r#"{"object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"9"},"spec":{"x":1}},"type":"MODIFIED"}"#,
        ] {
            let e: kube::core::WatchEvent<RawObject> = serde_json::from_str(line).unwrap();
            match e {
                kube::core::WatchEvent::Modified(o) => {
                    assert_eq!(o.resource_version(), "9");
                    assert_eq!(stored(&o.typed("v1", "Pod")).1["spec"], json!({"x": 1}));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
