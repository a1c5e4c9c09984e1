//! The OpenAPI v2 document (`GET /openapi/v2`), made from the same schemas as the v3 documents.
//! kubectl still reads it, in gnostic's protobuf form, to validate what v3 cannot cover (the
//! items of a `kind: List`); other clients take it as JSON.

use serde_json::{Map, Value, json};

use crate::api::protobuf::wire::put_bytes;
use crate::api::protobuf::wire::{self as w, put_key, put_varint};

/// The media type kubectl asks for.
pub const PROTOBUF_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The Content-Type it is answered with, as kube-apiserver does: Go's MIME parser refuses the
/// `@` of the media type kubectl asks for.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/octet-stream";

/// Whether an Accept header asks for the protobuf form (kubectl's only media type there).
pub fn wants_protobuf(accept: &str) -> bool {
    accept.split(',').any(|m| m.trim().starts_with("application/com.github.proto-openapi.spec.v2"))
}

/// The v2 document from group-version v3 documents (`openapi::group_version`'s): their schemas
/// become `definitions`, their references point there.
pub fn document(v3: &[Value]) -> Value {
    let mut definitions = Map::new();
    for doc in v3 {
        if let Some(schemas) = doc["components"]["schemas"].as_object() {
            for (name, schema) in schemas {
                definitions.entry(name.clone()).or_insert_with(|| to_v2(schema));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": {},
        "definitions": definitions
    })
}

/// A v3 schema in v2 terms: references under `#/definitions/`, one type (v2 has no `null`), no
/// v3-only keywords.
fn to_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => {
            let mut out = Map::new();
            // `allOf: [{$ref}]` (how v3 puts a description beside a reference) is a plain
            // `$ref` in v2: kubectl's v2 models follow only `$ref`.
            if let Some([single]) = o.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
                && single.get("$ref").is_some()
            {
                let mut flat = o.clone();
                flat.remove("allOf");
                flat.insert("$ref".into(), single["$ref"].clone());
                return to_v2(&Value::Object(flat));
            }
            for (k, v) in o {
                match k.as_str() {
                    "$ref" => {
                        let r = v.as_str().unwrap_or_default().replace("#/components/schemas/", "#/definitions/");
                        out.insert(k.clone(), json!(r));
                    }
                    "type" => {
                        let t = match v {
                            Value::Array(types) => types.iter().find(|t| *t != "null").cloned(),
                            t => Some(t.clone()),
                        };
                        if let Some(t) = t {
                            out.insert(k.clone(), t);
                        }
                    }
                    "nullable" | "oneOf" | "anyOf" | "not" | "writeOnly" | "deprecated" => {}
                    "properties" => {
                        let props = v.as_object().map(|p| p.iter().map(|(n, s)| (n.clone(), to_v2(s))).collect());
                        out.insert(k.clone(), Value::Object(props.unwrap_or_default()));
                    }
                    "items" | "additionalProperties" | "allOf" => {
                        out.insert(k.clone(), to_v2(v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

/// The document in gnostic's `openapi.v2.Document` protobuf encoding.
pub fn to_protobuf(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, 1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Vec::new();
    put_str(&mut info, 1, doc["info"]["title"].as_str().unwrap_or_default());
    put_str(&mut info, 2, doc["info"]["version"].as_str().unwrap_or_default());
    put_bytes(&mut out, 2, &info);
    put_bytes(&mut out, 8, &[]);
    let mut definitions = Vec::new();
    for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
        definitions_entry(&mut definitions, 1, name, schema);
    }
    put_bytes(&mut out, 9, &definitions);
    out
}

fn put_str(out: &mut Vec<u8>, tag: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, tag, s.as_bytes());
    }
}

/// `NamedSchema {name = 1, value = 2}` as field `tag`.
fn definitions_entry(out: &mut Vec<u8>, tag: u32, name: &str, schema: &Value) {
    let mut named = Vec::new();
    put_str(&mut named, 1, name);
    put_bytes(&mut named, 2, &schema_pb(schema));
    put_bytes(out, tag, &named);
}

/// gnostic's `Any {yaml = 2}`: the value as YAML.
fn any(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, 2, &serde_yaml::to_string(value).unwrap_or_default());
    out
}

fn put_f64(out: &mut Vec<u8>, tag: u32, v: &Value) {
    if let Some(f) = v.as_f64() {
        put_key(out, tag, w::FIXED64);
        out.extend_from_slice(&f.to_bits().to_le_bytes());
    }
}

fn put_i64(out: &mut Vec<u8>, tag: u32, v: &Value) {
    if let Some(i) = v.as_i64() {
        put_key(out, tag, w::VARINT);
        put_varint(out, i as u64);
    }
}

fn put_bool(out: &mut Vec<u8>, tag: u32, v: &Value) {
    if v.as_bool() == Some(true) {
        put_key(out, tag, w::VARINT);
        put_varint(out, 1);
    }
}

/// gnostic's `Schema` message (field numbers of openapiv2/OpenAPIv2.proto).
fn schema_pb(s: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(o) = s.as_object() else { return out };
    for (k, v) in o {
        match k.as_str() {
            "$ref" => put_str(&mut out, 1, v.as_str().unwrap_or_default()),
            "format" => put_str(&mut out, 2, v.as_str().unwrap_or_default()),
            "title" => put_str(&mut out, 3, v.as_str().unwrap_or_default()),
            "description" => put_str(&mut out, 4, v.as_str().unwrap_or_default()),
            "default" => put_bytes(&mut out, 5, &any(v)),
            "multipleOf" => put_f64(&mut out, 6, v),
            "maximum" => put_f64(&mut out, 7, v),
            "exclusiveMaximum" => put_bool(&mut out, 8, v),
            "minimum" => put_f64(&mut out, 9, v),
            "exclusiveMinimum" => put_bool(&mut out, 10, v),
            "maxLength" => put_i64(&mut out, 11, v),
            "minLength" => put_i64(&mut out, 12, v),
            "pattern" => put_str(&mut out, 13, v.as_str().unwrap_or_default()),
            "maxItems" => put_i64(&mut out, 14, v),
            "minItems" => put_i64(&mut out, 15, v),
            "uniqueItems" => put_bool(&mut out, 16, v),
            "maxProperties" => put_i64(&mut out, 17, v),
            "minProperties" => put_i64(&mut out, 18, v),
            "required" => {
                v.as_array().into_iter().flatten().filter_map(Value::as_str).for_each(|r| put_str(&mut out, 19, r))
            }
            "enum" => v.as_array().into_iter().flatten().for_each(|e| put_bytes(&mut out, 20, &any(e))),
            "additionalProperties" => {
                let mut item = Vec::new();
                match v {
                    Value::Bool(b) => {
                        put_key(&mut item, 2, w::VARINT);
                        put_varint(&mut item, u64::from(*b));
                    }
                    schema => put_bytes(&mut item, 1, &schema_pb(schema)),
                }
                put_bytes(&mut out, 21, &item);
            }
            "type" => {
                let mut t = Vec::new();
                put_str(&mut t, 1, v.as_str().unwrap_or_default());
                put_bytes(&mut out, 22, &t);
            }
            "items" => {
                let mut items = Vec::new();
                match v {
                    Value::Array(schemas) => schemas.iter().for_each(|s| put_bytes(&mut items, 1, &schema_pb(s))),
                    schema => put_bytes(&mut items, 1, &schema_pb(schema)),
                }
                put_bytes(&mut out, 23, &items);
            }
            "allOf" => v.as_array().into_iter().flatten().for_each(|s| put_bytes(&mut out, 24, &schema_pb(s))),
            "properties" => {
                let mut props = Vec::new();
                for (name, schema) in v.as_object().into_iter().flatten() {
                    definitions_entry(&mut props, 1, name, schema);
                }
                put_bytes(&mut out, 25, &props);
            }
            "readOnly" => put_bool(&mut out, 27, v),
            "example" => put_bytes(&mut out, 30, &any(v)),
            x if x.starts_with("x-") => {
                let mut named = Vec::new();
                put_str(&mut named, 1, x);
                put_bytes(&mut named, 2, &any(v));
                put_bytes(&mut out, 31, &named);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::protobuf::wire::{LEN, Reader};

    /// `(tag, bytes)` of every length-delimited field of a message.
    fn fields(b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut r = Reader::new(b);
        let mut out = Vec::new();
        while !r.done() {
            let (tag, wire) = r.key().unwrap();
            if wire == LEN {
                out.push((tag, r.bytes().unwrap().to_vec()));
            } else {
                r.skip(wire).unwrap();
            }
        }
        out
    }

    #[test]
    fn v3_schemas_become_v2_definitions() {
        let v3 = json!({"components": {"schemas": {
            "io.k8s.api.core.v1.ConfigMap": {
                "type": "object", "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}],
                "properties": {
                    "metadata": {"$ref": "#/components/schemas/meta.ObjectMeta", "nullable": true},
                    "spec": {"allOf": [{"$ref": "#/components/schemas/meta.ObjectMeta"}], "description": "d"},
                    "data": {"type": ["object", "null"], "additionalProperties": {"type": "string"}}
                }
            },
            "meta.ObjectMeta": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        }}});
        let doc = document(&[v3.clone(), v3]);
        let cm = &doc["definitions"]["io.k8s.api.core.v1.ConfigMap"];
        assert_eq!(cm["properties"]["metadata"], json!({"$ref": "#/definitions/meta.ObjectMeta"}));
        assert_eq!(cm["properties"]["data"]["type"], "object", "one type, not null");
        assert_eq!(cm["properties"]["spec"], json!({"$ref": "#/definitions/meta.ObjectMeta", "description": "d"}));
        assert_eq!(doc["definitions"].as_object().unwrap().len(), 2);

        let pb = to_protobuf(&doc);
        let top = fields(&pb);
        assert_eq!(top[0], (1, b"2.0".to_vec()));
        let definitions = &top.iter().find(|(t, _)| *t == 9).unwrap().1;
        let named = fields(definitions);
        assert_eq!(named.len(), 2);
        let first = fields(&named[0].1);
        assert_eq!(first[0], (1, b"io.k8s.api.core.v1.ConfigMap".to_vec()));
        let schema = fields(&first[1].1);
        let ext = schema.iter().find(|(t, _)| *t == 31).unwrap();
        let ext = fields(&ext.1);
        assert_eq!(ext[0].1, b"x-kubernetes-group-version-kind");
        let yaml = String::from_utf8(fields(&ext[1].1)[0].1.clone()).unwrap();
        assert!(yaml.contains("kind: ConfigMap"), "{yaml}");
        let ty = schema.iter().find(|(t, _)| *t == 22).unwrap();
        assert_eq!(fields(&ty.1), vec![(1, b"object".to_vec())]);
        assert!(wants_protobuf("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"));
        assert!(!wants_protobuf("application/json"));
    }
}
