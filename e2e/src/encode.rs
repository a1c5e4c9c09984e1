//! Response encodings: lists (plain, metadata-only), continue tokens, watch event lines.

use api_types::status::StatusError;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use crate::store::ObjectKey;

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
    /// The first `as=` kind of the Accept header that kubesim serves.
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
pub fn relabel(object: &[u8], api_version: &str) -> Bytes {
    let needle = format!("\"apiVersion\":\"{api_version}\"");
    if memfind(object, needle.as_bytes()) {
        return Bytes::copy_from_slice(object);
    }
    match serde_json::from_slice::<Value>(object) {
        Ok(mut v) => {
            v["apiVersion"] = json!(api_version);
            serde_json::to_vec(&v).map(Bytes::from).unwrap_or_else(|_| Bytes::copy_from_slice(object))
        }
        Err(_) => Bytes::copy_from_slice(object),
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `PartialObjectMetadata` of an object.
pub fn metadata_only(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object.get("metadata").cloned().unwrap_or(json!({}))})
}

/// `{"kind": "<Kind>List", ..., "items": [<items>]}` built by concatenation.
pub fn list(
    kind: &str,
    api_version: &str,
    rv: u64,
    cont: Option<&str>,
    remaining: Option<u64>,
    items: &[Bytes],
) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let head = format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{meta},"items":["#);
    let mut out = BytesMut::with_capacity(head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.put_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(item);
    }
    out.put_slice(b"]}");
    out.freeze()
}

/// One watch line: `{"type":"ADDED","object":{...}}\n`.
pub fn watch_line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(br#"{"type":""#);
    out.put_slice(kind.as_bytes());
    out.put_slice(br#"","object":"#);
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

/// A continue token: opaque to clients (the list version and the last key, checksummed).
pub fn continue_token(rv: u64, key: &ObjectKey) -> String {
    api_types::token::encode(&json!({"rv": rv, "ns": key.0, "name": key.1}))
}

/// Decodes [`continue_token`]; anything else is a 400, as with kube-apiserver.
pub fn parse_continue(token: &str) -> Result<(u64, ObjectKey), StatusError> {
    let bad = || StatusError::bad_request(format!("continue key is not valid: {token:?}"));
    let v = api_types::token::decode(token).ok_or_else(bad)?;
    match (v["rv"].as_u64(), v["ns"].as_str(), v["name"].as_str()) {
        (Some(rv), Some(ns), Some(name)) => Ok((rv, (ns.to_owned(), name.to_owned()))),
        _ => Err(bad()),
    }
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
        let items = [Bytes::from_static(br#"{"a":1}"#), Bytes::from_static(br#"{"b":2}"#)];
        let l: Value = serde_json::from_slice(&list("PodList", "v1", 7, Some("tok"), Some(3), &items)).unwrap();
        assert_eq!(l["items"][1]["b"], 2);
        assert_eq!(l["metadata"]["resourceVersion"], "7");
        assert_eq!(l["metadata"]["remainingItemCount"], 3);
        let w: Value = serde_json::from_slice(&watch_line("ADDED", br#"{"a":1}"#)).unwrap();
        assert_eq!(w["type"], "ADDED");
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_tampering() {
        let t = continue_token(5, &("ns".into(), "a".into()));
        assert_eq!(parse_continue(&t).unwrap(), (5, ("ns".into(), "a".into())));
        assert_eq!(parse_continue("zz").unwrap_err().code, 400);
        assert_eq!(parse_continue(&t[..t.len() - 2]).unwrap_err().code, 400);
    }

    #[test]
    fn relabel_only_rewrites_other_versions() {
        let o = br#"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler"}"#;
        let v: Value = serde_json::from_slice(&relabel(o, "autoscaling/v1")).unwrap();
        assert_eq!(v["apiVersion"], "autoscaling/v1");
        assert_eq!(&relabel(o, "autoscaling/v2")[..], &o[..]);
    }
}
