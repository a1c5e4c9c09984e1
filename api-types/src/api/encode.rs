//! Response encodings both servers share: the `Accept` negotiation of `as=Table` /
//! `as=PartialObjectMetadata[List]`, list bodies concatenated from already-encoded items, list
//! metadata, PartialObjectMetadata, and watch event lines.

use serde_json::{Value, json};

/// What the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Whole objects.
    Full,
    /// `as=Table`.
    Table,
    /// `as=PartialObjectMetadata[List]`.
    Metadata,
}

impl Shape {
    /// The first `as=` kind of the Accept header that the server serves.
    pub fn from_accept(accept: &str) -> Self {
        for media in accept.split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            if params.contains(&"as=Table") {
                return Shape::Table;
            }
            if params.iter().any(|p| *p == "as=PartialObjectMetadataList" || *p == "as=PartialObjectMetadata") {
                return Shape::Metadata;
            }
            if params.first().is_some_and(|m| *m == "application/json" || *m == "*/*") && params.len() == 1 {
                return Shape::Full;
            }
        }
        Shape::Full
    }
}

/// An object served in another version than it is stored in gets that version's apiVersion.
pub fn relabel(object: &[u8], api_version: &str) -> Vec<u8> {
    let needle = format!("\"apiVersion\":\"{api_version}\"");
    if object.windows(needle.len()).any(|w| w == needle.as_bytes()) {
        return object.to_vec();
    }
    match serde_json::from_slice::<Value>(object) {
        Ok(mut v) => {
            v["apiVersion"] = json!(api_version);
            serde_json::to_vec(&v).unwrap_or_else(|_| object.to_vec())
        }
        Err(_) => object.to_vec(),
    }
}

/// `PartialObjectMetadata` of an object.
pub fn metadata_only(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A list's `metadata`: resourceVersion, and continue / remainingItemCount when present.
pub fn list_meta(resource_version: &str, cont: Option<&str>, remaining: Option<i64>) -> Value {
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    meta
}

/// `PartialObjectMetadataList` of objects.
pub fn metadata_list(meta: Value, objects: &[Value]) -> Value {
    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
           "items": objects.iter().map(metadata_only).collect::<Vec<_>>()})
}

/// `{"kind": "<Kind>List", ..., "items": [<items>]}` built by concatenation: items are already
/// JSON and are not decoded.
pub fn list<I: AsRef<[u8]>>(kind: &str, api_version: &str, meta: &Value, items: &[I]) -> Vec<u8> {
    let head = format!(r#"{{"kind":{},"apiVersion":{},"metadata":{meta},"items":["#, json!(kind), json!(api_version));
    let mut out = Vec::with_capacity(head.len() + items.iter().map(|i| i.as_ref().len() + 1).sum::<usize>() + 2);
    out.extend_from_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_ref());
    }
    out.extend_from_slice(b"]}");
    out
}

/// One watch line: `{"type":"ADDED","object":{...}}\n`.
pub fn watch_line(kind: &str, object: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(br#"","object":"#);
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    out
}

/// A watch BOOKMARK object: only `kind`, `apiVersion` and the resourceVersion (and, ending the
/// initial events of `sendInitialEvents`, the `k8s.io/initial-events-end` annotation).
pub fn bookmark(kind: &str, api_version: &str, resource_version: &str, initial_events_end: bool) -> Value {
    let mut object =
        json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version}});
    if initial_events_end {
        object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        assert_eq!(Shape::from_accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"), Shape::Table);
        assert_eq!(
            Shape::from_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Shape::Metadata
        );
        assert_eq!(Shape::from_accept("application/json, */*"), Shape::Full);
        assert_eq!(Shape::from_accept(""), Shape::Full);
    }

    #[test]
    fn lists_and_watch_lines_are_valid_json() {
        let items = [br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()];
        let meta = list_meta("7", Some("tok"), Some(3));
        let l: Value = serde_json::from_slice(&list("PodList", "v1", &meta, &items)).unwrap();
        assert_eq!(l["items"][1]["b"], 2);
        assert_eq!(l["metadata"]["resourceVersion"], "7");
        assert_eq!(l["metadata"]["continue"], "tok");
        assert_eq!(l["metadata"]["remainingItemCount"], 3);
        let empty: Value =
            serde_json::from_slice(&list::<Vec<u8>>("PodList", "v1", &list_meta("1", None, None), &[])).unwrap();
        assert_eq!(empty["items"], json!([]));
        assert!(empty["metadata"].get("continue").is_none());
        let w: Value = serde_json::from_slice(&watch_line("ADDED", br#"{"a":1}"#)).unwrap();
        assert_eq!(w["type"], "ADDED");
        let b = bookmark("Pod", "v1", "9", true);
        assert_eq!(b["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
        assert!(bookmark("Pod", "v1", "9", false)["metadata"].get("annotations").is_none());
    }

    #[test]
    fn relabel_only_rewrites_other_versions() {
        let o = br#"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler"}"#;
        let v: Value = serde_json::from_slice(&relabel(o, "autoscaling/v1")).unwrap();
        assert_eq!(v["apiVersion"], "autoscaling/v1");
        assert_eq!(&relabel(o, "autoscaling/v2")[..], &o[..]);
    }
}
