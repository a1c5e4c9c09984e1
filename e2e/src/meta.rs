//! Small helpers over object JSON: metadata fields, timestamps and generated names.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value};

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The metadata object, created (and the object made a mapping) when missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    as_map(as_map(obj).entry("metadata").or_insert_with(|| Value::Object(Map::new())))
}

/// The value as a mapping, replacing anything else with an empty one.
pub fn as_map(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("the value was just made an object"),
    }
}

/// Labels as a sorted map (non-string values are ignored, as the apiserver would reject them).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| l.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// UIDs of the owners in `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// `metadata.finalizers` is non-empty.
pub fn has_finalizers(obj: &Value) -> bool {
    obj.get("metadata").and_then(|m| m.get("finalizers")).and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

/// Now, as Kubernetes writes timestamps (seconds, UTC).
pub fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now with microseconds (`MicroTime`, as Leases' renewTime).
pub fn now_micro() -> String {
    let t = Timestamp::now();
    format!("{}.{:06}Z", t.strftime("%Y-%m-%dT%H:%M:%S"), t.subsec_microsecond())
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// 64 random-looking bits: a per-process random key hashed with a counter.
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A version-4-shaped UID.
pub fn new_uid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Five characters of `[bcdfghjklmnpqrstvwxz2456789]`, as `generateName` appends.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A JSON value at a dotted path (`spec.nodeName`, `involvedObject.uid`), as a string.
pub fn field_value(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_and_suffixes_have_kubernetes_shapes() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uid(), u);
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }

    #[test]
    fn metadata_helpers() {
        let mut o = serde_json::json!({"metadata": {"labels": {"a": "b"}, "ownerReferences": [{"uid": "u1"}],
            "finalizers": ["x"]}, "spec": {"nodeName": "n1", "replicas": 3}});
        assert_eq!(labels(&o).get("a").map(String::as_str), Some("b"));
        assert_eq!(owner_uids(&o), ["u1"]);
        assert!(has_finalizers(&o));
        assert_eq!(field_value(&o, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(field_value(&o, "spec.replicas").as_deref(), Some("3"));
        meta_mut(&mut o).insert("name".into(), "x".into());
        assert_eq!(meta_str(&o, "name"), Some("x"));
        let mut empty = serde_json::json!({});
        meta_mut(&mut empty).insert("name".into(), "y".into());
        assert_eq!(meta_str(&empty, "name"), Some("y"));
    }
}
