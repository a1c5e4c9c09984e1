//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch and
//! server-side apply.
//!
//! Strategic merge and apply are approximations (see the kubesim README): maps merge, lists of
//! objects that all carry a `name` merge item by item on `name` (containers, env, ports, volumes,
//! conditions keyed by `type`), other lists are replaced; `$patch: delete` removes an item or key.
//! Apply does not track field ownership, so it never reports conflicts.

use api_types::status::StatusError;
use serde_json::{Map, Value};

/// The patch formats the apiserver accepts, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Result<Self, StatusError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(StatusError::unsupported_media_type(other)),
        }
    }
}

/// Applies a patch body to the current object.
pub fn apply(kind: PatchType, current: &Value, body: &[u8]) -> Result<Value, StatusError> {
    let bad = |e: String| StatusError::bad_request(format!("the patch is not valid: {e}"));
    match kind {
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &patch).map_err(|e| {
                StatusError::custom(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Strategic | PatchType::Apply => {
            let patch: Value = if kind == PatchType::Apply {
                serde_yaml::from_slice(body).map_err(|e| bad(e.to_string()))?
            } else {
                serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?
            };
            if !patch.is_object() {
                return Err(bad("the body must be a JSON object".into()));
            }
            let mut doc = current.clone();
            strategic_merge(&mut doc, &patch);
            Ok(doc)
        }
    }
}

fn is_delete_directive(v: &Value) -> bool {
    v.get("$patch").and_then(Value::as_str) == Some("delete")
}

/// Merge by name-like keys, recursively.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_maps(t, p),
        (t, p) => *t = strip_directives(p),
    }
}

fn merge_maps(t: &mut Map<String, Value>, p: &Map<String, Value>) {
    for (k, pv) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        match pv {
            Value::Null => {
                t.remove(k);
            }
            v if is_delete_directive(v) => {
                t.remove(k);
            }
            Value::Object(_) => match t.get_mut(k) {
                Some(existing @ Value::Object(_)) => strategic_merge(existing, pv),
                _ => {
                    t.insert(k.clone(), strip_directives(pv));
                }
            },
            Value::Array(items) => match (t.get_mut(k), merge_key(items)) {
                (Some(Value::Array(existing)), Some(key))
                    if merge_key(existing) == Some(key) || existing.is_empty() =>
                {
                    merge_lists(existing, items, key)
                }
                _ => {
                    t.insert(
                        k.clone(),
                        Value::Array(items.iter().filter(|i| !is_delete_directive(i)).map(strip_directives).collect()),
                    );
                }
            },
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

/// The key that identifies items of a list of objects, when every item has it.
fn merge_key(items: &[Value]) -> Option<&'static str> {
    ["name", "type", "containerPort", "mountPath", "devicePath", "ip"]
        .into_iter()
        .find(|k| !items.is_empty() && items.iter().all(|i| i.get(*k).is_some()))
}

fn merge_lists(existing: &mut Vec<Value>, patch: &[Value], key: &str) {
    for item in patch {
        let id = item.get(key);
        let pos = existing.iter().position(|e| e.get(key) == id);
        match (pos, is_delete_directive(item)) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item),
            (None, false) => existing.push(strip_directives(item)),
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(kind: PatchType, current: Value, body: &str) -> Value {
        apply(kind, &current, body.as_bytes()).unwrap()
    }

    #[test]
    fn merge_patch_replaces_lists_and_removes_nulls() {
        let v = run(
            PatchType::Merge,
            json!({"a": {"b": 1, "c": 2}, "l": [1, 2]}),
            r#"{"a": {"b": null, "d": 3}, "l": [3]}"#,
        );
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_operations_and_failed_tests() {
        let v = run(
            PatchType::Json,
            json!({"a": [1]}),
            r#"[{"op": "add", "path": "/a/-", "value": 2}, {"op": "add", "path": "/b", "value": "x"}]"#,
        );
        assert_eq!(v, json!({"a": [1, 2], "b": "x"}));
        let err =
            apply(PatchType::Json, &json!({"a": 1}), br#"[{"op": "test", "path": "/a", "value": 2}]"#).unwrap_err();
        assert_eq!(err.code, 422);
        let err = apply(PatchType::Json, &json!({}), b"not json").unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn strategic_merge_merges_named_lists() {
        let current = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
        let v = run(
            PatchType::Strategic,
            current.clone(),
            r#"{"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}}"#,
        );
        let images: Vec<&str> =
            v["spec"]["containers"].as_array().unwrap().iter().map(|c| c["image"].as_str().unwrap()).collect();
        assert_eq!(images, ["a:1", "b:2", "c:1"]);
        let v = run(PatchType::Strategic, current, r#"{"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}"#);
        assert_eq!(v["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn apply_reads_yaml() {
        let v = run(PatchType::Apply, json!({"metadata": {"name": "x"}, "data": {"a": "1"}}), "data:\n  b: '2'\n");
        assert_eq!(v["data"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchType::Merge
        );
        assert_eq!(PatchType::from_content_type("application/json").unwrap_err().code, 415);
    }
}
