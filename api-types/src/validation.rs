//! Validation of objects against the OpenAPI schemas of CustomResourceDefinitions, the way
//! kube-apiserver with kubectl's default strict field validation does it: `null` values of
//! non-nullable fields are pruned, unknown fields are errors, then the structural schema is checked.
//! Errors name the field path (`spec.syncResources[0].resources`).

use std::fmt;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value};

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted field path, with `[i]` for list items.
    pub path: String,
    /// What is wrong, in kube-apiserver's words where it has them.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why an object is not accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("object is not a JSON/YAML mapping")]
    NotAnObject,
    #[error("object has no {0}")]
    MissingTypeMeta(&'static str),
    #[error("no CustomResourceDefinition serves kind {kind:?} in {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("{kind} {name:?} is invalid: {}", join(.errors))]
    Invalid { kind: String, name: String, errors: Vec<FieldError> },
}

fn join(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A CRD schema could not be compiled (a bug in the CRD, not in the object).
#[derive(Debug, thiserror::Error)]
#[error("schema of {crd} version {version} does not compile: {message}")]
pub struct SchemaError {
    pub crd: String,
    pub version: String,
    pub message: String,
}

struct KindSchema {
    api_version: String,
    kind: String,
    /// The CRD's OpenAPI schema, used for pruning and unknown-field detection.
    openapi: Value,
    compiled: jsonschema::Validator,
}

/// Validates objects of the kinds served by a set of CRDs.
pub struct SchemaValidator {
    kinds: Vec<KindSchema>,
}

impl SchemaValidator {
    /// Compiles the schema of every served version of every CRD.
    pub fn new<'a>(crds: impl IntoIterator<Item = &'a CustomResourceDefinition>) -> Result<Self, SchemaError> {
        let mut kinds = Vec::new();
        for crd in crds {
            for version in crd.spec.versions.iter().filter(|v| v.served) {
                let schema_err = |message: String| SchemaError {
                    crd: crd.metadata.name.clone().unwrap_or_default(),
                    version: version.name.clone(),
                    message,
                };
                let openapi = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| schema_err(e.to_string()))?
                    .unwrap_or_else(
                        || serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                    );
                let compiled = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .should_validate_formats(true)
                    .with_format("byte", is_base64)
                    .build(&to_json_schema(&openapi))
                    .map_err(|e| schema_err(e.to_string()))?;
                kinds.push(KindSchema {
                    api_version: format!("{}/{}", crd.spec.group, version.name),
                    kind: crd.spec.names.kind.clone(),
                    openapi,
                    compiled,
                });
            }
        }
        Ok(Self { kinds })
    }

    /// Whether some CRD of this validator serves `apiVersion` + `kind`.
    pub fn serves(&self, api_version: &str, kind: &str) -> bool {
        self.kinds.iter().any(|k| k.api_version == api_version && k.kind == kind)
    }

    /// Checks one object strictly (unknown fields are errors, as with kubectl's default
    /// `--validate=strict`); on success returns it with `null`s of non-nullable fields pruned,
    /// which is what the apiserver would store.
    pub fn validate(&self, object: &Value) -> Result<Value, ValidationError> {
        self.validate_with(object, UnknownFields::Reject)
    }

    /// Like [`validate`](Self::validate), choosing what unknown fields do.
    pub fn validate_with(&self, object: &Value, unknown: UnknownFields) -> Result<Value, ValidationError> {
        let map = object.as_object().ok_or(ValidationError::NotAnObject)?;
        let api_version =
            map.get("apiVersion").and_then(Value::as_str).ok_or(ValidationError::MissingTypeMeta("apiVersion"))?;
        let kind = map.get("kind").and_then(Value::as_str).ok_or(ValidationError::MissingTypeMeta("kind"))?;
        let schema = self
            .kinds
            .iter()
            .find(|k| k.api_version == api_version && k.kind == kind)
            .ok_or_else(|| ValidationError::UnknownKind { api_version: api_version.into(), kind: kind.into() })?;

        let mut pruned = object.clone();
        prune_nulls(&mut pruned, &schema.openapi);

        let mut errors = Vec::new();
        check_metadata(&pruned, &mut errors);
        match unknown {
            UnknownFields::Reject => unknown_fields(&pruned, &schema.openapi, &mut Vec::new(), true, &mut errors),
            UnknownFields::Prune => prune_unknown(&mut pruned, &schema.openapi, true),
        }
        errors.extend(schema.compiled.iter_errors(&pruned).map(|e| field_error(&e)));

        if errors.is_empty() {
            Ok(pruned)
        } else {
            let name = pruned.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            Err(ValidationError::Invalid { kind: kind.into(), name: name.into(), errors })
        }
    }
}

/// What validation does with fields the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownFields {
    /// Report them (`fieldValidation=Strict`, kubectl's default).
    Reject,
    /// Drop them silently, as the apiserver stores objects from clients that do not ask for
    /// strict validation.
    Prune,
}

/// Go's `[]byte` JSON encoding: standard base64 with padding.
fn is_base64(s: &str) -> bool {
    s.len().is_multiple_of(4)
        && s.trim_end_matches('=').len() + 2 >= s.len()
        && s.trim_end_matches('=').bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Turns a structural OpenAPI v3 schema into plain JSON Schema (draft 4): `nullable` becomes a
/// `null` type and `x-kubernetes-int-or-string` an integer-or-string type.
fn to_json_schema(openapi: &Value) -> Value {
    match openapi {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    "properties" | "patternProperties" | "definitions" => {
                        let props = value
                            .as_object()
                            .map(|p| p.iter().map(|(k, v)| (k.clone(), to_json_schema(v))).collect::<Map<_, _>>());
                        out.insert(key.clone(), props.map(Value::Object).unwrap_or_else(|| value.clone()));
                    }
                    "items" | "additionalProperties" | "not" => {
                        out.insert(key.clone(), to_json_schema(value));
                    }
                    "allOf" | "anyOf" | "oneOf" => {
                        let list = value.as_array().map(|l| l.iter().map(to_json_schema).collect::<Vec<_>>());
                        out.insert(key.clone(), list.map(Value::Array).unwrap_or_else(|| value.clone()));
                    }
                    k if k.starts_with("x-kubernetes-") || k == "nullable" => {}
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = out.get("type").cloned()
            {
                out.insert("type".into(), serde_json::json!([t, "null"]));
            }
            if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
                out.remove("type");
                out.insert("type".into(), serde_json::json!(["integer", "string"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn is_nullable(schema: &Value) -> bool {
    schema.get("nullable") == Some(&Value::Bool(true))
}

fn preserves_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

fn property_schema<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

/// The apiserver drops `null` values of fields that are not `nullable` before validating.
fn prune_nulls(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, v| !v.is_null() || property_schema(schema, key).is_some_and(is_nullable));
            for (key, v) in map.iter_mut() {
                if let Some(s) = property_schema(schema, key) {
                    prune_nulls(v, s);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|v| prune_nulls(v, s));
            }
        }
        _ => {}
    }
}

/// kubectl validates strictly by default: a field the schema does not know is an error.
/// Root fields every object may carry, whether or not a CRD's schema declares them.
const TYPE_META: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn unknown_fields(value: &Value, schema: &Value, path: &mut Vec<String>, root: bool, errors: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => {
            if preserves_unknown(schema) && schema.get("properties").is_none() {
                return;
            }
            let open = preserves_unknown(schema) || schema.get("additionalProperties").is_some();
            for (key, v) in map {
                if root && TYPE_META.contains(&key.as_str()) {
                    continue; // Always allowed at the root; ObjectMeta is checked on its own.
                }
                path.push(if path.is_empty() { key.clone() } else { format!(".{key}") });
                match property_schema(schema, key) {
                    Some(s) => unknown_fields(v, s, path, false, errors),
                    None if !open => errors.push(FieldError {
                        path: path.concat(),
                        message: format!("field not declared in schema (unknown field {key:?})"),
                    }),
                    None => {}
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    unknown_fields(v, s, path, false, errors);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Removes undeclared fields, as the apiserver's pruning does.
fn prune_unknown(value: &mut Value, schema: &Value, root: bool) {
    match value {
        Value::Object(map) => {
            if preserves_unknown(schema) && schema.get("properties").is_none() {
                return;
            }
            let open = preserves_unknown(schema) || schema.get("additionalProperties").is_some();
            map.retain(|key, _| {
                open || (root && TYPE_META.contains(&key.as_str())) || property_schema(schema, key).is_some()
            });
            for (key, v) in map.iter_mut() {
                if root && key == "metadata" {
                    continue;
                }
                if let Some(s) = property_schema(schema, key) {
                    prune_unknown(v, s, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|v| prune_unknown(v, s, false));
            }
        }
        _ => {}
    }
}

/// The parts of ObjectMeta validation that matter for manifests: a valid name.
fn check_metadata(object: &Value, errors: &mut Vec<FieldError>) {
    let meta = object.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let generate = meta.and_then(|m| m.get("generateName")).and_then(Value::as_str);
    match (name, generate) {
        (None | Some(""), None | Some("")) => errors.push(FieldError {
            path: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        }),
        (Some(n), _) if !n.is_empty() && !is_dns_subdomain(n) => errors.push(FieldError {
            path: "metadata.name".into(),
            message: format!(
                "Invalid value: {n:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                 characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        }),
        _ => {}
    }
}

/// RFC 1123 subdomain, as Kubernetes requires for most object names.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn field_error(err: &jsonschema::ValidationError<'_>) -> FieldError {
    let mut path = String::new();
    for segment in err.instance_path().iter() {
        match segment {
            LocationSegment::Property(p) if path.is_empty() => path.push_str(&p),
            LocationSegment::Property(p) => {
                path.push('.');
                path.push_str(&p);
            }
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    let instance = err.instance();
    let message = match err.kind() {
        ValidationErrorKind::Required { property } => {
            let field = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            path = if path.is_empty() { field } else { format!("{path}.{field}") };
            "Required value".to_owned()
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
            };
            format!("Invalid value: {instance}: must be of type {expected}")
        }
        ValidationErrorKind::Enum { options } => {
            format!("Unsupported value: {instance}: supported values: {options}")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("Invalid value: {instance}: must have at least {limit} items")
        }
        ValidationErrorKind::Format { format } if format == "byte" => {
            format!("Invalid value: {instance}: must be base64-encoded binary data (format byte)")
        }
        ValidationErrorKind::Format { format } => {
            format!("Invalid value: {instance}: must be a valid {format} string")
        }
        _ => format!("Invalid value: {instance}: {err}"),
    };
    FieldError { path, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_check_follows_go() {
        assert!(is_base64(""));
        assert!(is_base64("YQ=="));
        assert!(is_base64("a+b/cw=="));
        assert!(!is_base64("YQ="));
        assert!(!is_base64("not base64!"));
        assert!(!is_base64("Y==="));
    }

    #[test]
    fn dns_subdomain() {
        assert!(is_dns_subdomain("cluster-1.example"));
        assert!(!is_dns_subdomain("Cluster"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_subdomain("a..b"));
    }

    #[test]
    fn unknown_fields_are_rejected_or_pruned() {
        let schema = serde_json::json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        let mut obj = serde_json::json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x", "labels": {"l": "v"}},
            "spec": {"a": "1", "b": 2}, "status": {"free": true}, "extra": 1});
        let mut errors = Vec::new();
        unknown_fields(&obj, &schema, &mut Vec::new(), true, &mut errors);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["extra", "spec.b"]);
        prune_unknown(&mut obj, &schema, true);
        assert_eq!(
            obj,
            serde_json::json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x", "labels": {"l": "v"}},
            "spec": {"a": "1"}, "status": {"free": true}})
        );
    }

    #[test]
    fn nullable_and_int_or_string_become_json_schema() {
        let s = to_json_schema(&serde_json::json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": true},
                "b": {"x-kubernetes-int-or-string": true}
            }
        }));
        assert_eq!(s["properties"]["a"]["type"], serde_json::json!(["string", "null"]));
        assert_eq!(s["properties"]["b"]["type"], serde_json::json!(["integer", "string"]));
    }
}
