//! OpenAPI v3 documents, enough for `kubectl explain` and for kubectl to find server-side field
//! validation: custom resources carry their CRD schema; built-in kinds a minimal object schema.

use serde_json::{Map, Value, json};

use crate::builtin::ResourceInfo;
use crate::registry::Registry;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `GET /openapi/v3`: one entry per served group-version.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    paths.insert("version".into(), json!({"serverRelativeURL": "/openapi/v3/version"}));
    let mut seen = Vec::new();
    for (g, v) in registry_gvs(registry) {
        let p = gv_path(&g, &v);
        if !seen.contains(&p) {
            paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}")}));
            seen.push(p);
        }
    }
    json!({"paths": paths})
}

fn registry_gvs(registry: &Registry) -> Vec<(String, String)> {
    let groups = registry.group_list();
    let mut out = vec![(String::new(), "v1".to_owned())];
    for g in groups["groups"].as_array().into_iter().flatten() {
        for v in g["versions"].as_array().into_iter().flatten() {
            out.push((
                g["name"].as_str().unwrap_or_default().to_owned(),
                v["version"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

/// `GET /openapi/v3/apis/<group>/<version>`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let list = registry.resource_list(group, version)?;
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for r in list["resources"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or_default();
        if name.contains('/') {
            continue;
        }
        let Some(info) = registry.find(group, version, name) else { continue };
        let schema_name = schema_name(info);
        let gvk = json!([{"group": group, "version": version, "kind": info.kind}]);
        let mut schema = registry
            .custom_schema(group, version, name)
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "description": format!("{} (kubesim keeps no schema for built-in kinds)", info.kind), "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = gvk.clone();
        schemas.insert(schema_name.clone(), schema);
        let item = if info.namespaced {
            format!("/{}/namespaces/{{namespace}}/{name}/{{name}}", gv_path(group, version))
        } else {
            format!("/{}/{name}/{{name}}", gv_path(group, version))
        };
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", info.kind),
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk[0],
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}}
            })
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

fn schema_name(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() { "core".to_owned() } else { info.group.clone() };
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), info.version, info.kind)
}
