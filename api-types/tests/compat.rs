//! Compatibility with the manifests Clusterpedia users already have (`../shared/compat/`):
//! upstream objects decode into our types losslessly and validate against our generated CRDs,
//! and every field of every upstream CRD exists in ours with the same type.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use std::collections::BTreeMap;

use api_types::crd;
use api_types::validation::{SchemaValidator, ValidationError};
use common::{compat_dir, diff, objects, without_nulls, yaml_files};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use serde_json::{Value, json};

fn our_crds() -> Vec<CustomResourceDefinition> {
    crd::pedia_crds().into_iter().chain(crd::consumed_crds()).collect()
}

fn validator() -> SchemaValidator {
    SchemaValidator::new(&our_crds()).expect("our CRD schemas compile")
}

/// Every object of the example and import-policy manifests.
fn upstream_objects() -> Vec<(String, Value)> {
    let base = compat_dir().join("clusterpedia");
    ["examples", "clusterimportpolicy"]
        .iter()
        .flat_map(|d| yaml_files(&base.join(d)))
        .flat_map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            objects(&f).into_iter().map(move |o| (name.clone(), o))
        })
        .collect()
}

fn upstream_crds() -> Vec<CustomResourceDefinition> {
    let dirs = [compat_dir().join("clusterpedia/crds"), compat_dir().join("cluster-inventory-api/crds")];
    dirs.iter()
        .flat_map(|d| yaml_files(d))
        .flat_map(|f| objects(&f))
        .map(|o| serde_json::from_value(o).expect("upstream CRD decodes"))
        .collect()
}

#[test]
fn upstream_manifests_roundtrip_through_our_types_without_loss() {
    let mut typed = 0;
    for (file, object) in upstream_objects() {
        let original = without_nulls(&object);
        let back = match api_types::manifest::roundtrip(&object).unwrap_or_else(|e| panic!("{file}: {e}")) {
            Some(v) => {
                typed += 1;
                v
            }
            None => {
                kube_builtin_roundtrip(&object).unwrap_or_else(|| panic!("{file}: unexpected kind {}", object["kind"]))
            }
        };
        let mut lost = Vec::new();
        diff(&original, &back, "", &mut lost);
        assert!(lost.is_empty(), "{file}: round trip changed the object:\n{}", lost.join("\n"));
    }
    // examples: 1 policy + 1 ClusterSyncResources + 1 PediaCluster; shipped policies: 4.
    assert_eq!(typed, 7, "every pedia-kind manifest was decoded");
}

/// The RBAC example holds built-in kinds; they round-trip through k8s-openapi's types.
fn kube_builtin_roundtrip(object: &Value) -> Option<Value> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(o: &Value) -> Value {
        serde_json::to_value(serde_json::from_value::<T>(o.clone()).unwrap()).unwrap()
    }
    match object["kind"].as_str()? {
        "ClusterRole" => Some(rt::<ClusterRole>(object)),
        "ClusterRoleBinding" => Some(rt::<ClusterRoleBinding>(object)),
        "ServiceAccount" => Some(rt::<ServiceAccount>(object)),
        _ => None,
    }
}

#[test]
fn upstream_manifests_validate_against_our_crds() {
    let validator = validator();
    let mut checked = 0;
    for (file, object) in upstream_objects() {
        let (api_version, kind) = (object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap());
        if !validator.serves(api_version, kind) {
            assert!(api_version.contains("k8s.io") || api_version == "v1", "{file}: {api_version} {kind} not served");
            continue;
        }
        validator.validate(&object).unwrap_or_else(|e| panic!("{file}: {e}"));
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[test]
fn upstream_manifests_also_validate_against_upstream_crds() {
    // Guards the validator itself: what upstream accepts, it must accept.
    let validator = SchemaValidator::new(&upstream_crds()).expect("upstream schemas compile");
    for (file, object) in upstream_objects() {
        if validator.serves(object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap()) {
            validator.validate(&object).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

/// `path -> "type[/format]"` for every node of a schema, plus list-type markers.
fn schema_paths(schema: &JSONSchemaProps, path: &str, out: &mut BTreeMap<String, String>) {
    let mut t = schema.type_.clone().unwrap_or_else(|| "<none>".into());
    if let Some(f) = &schema.format {
        t = format!("{t}/{f}");
    }
    if let Some(l) = &schema.x_kubernetes_list_type {
        t = format!("{t} listType={l} keys={:?}", schema.x_kubernetes_list_map_keys);
    }
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) {
        t = format!("{t} preserve-unknown");
    }
    out.insert(path.to_owned(), t);
    for (name, prop) in schema.properties.iter().flatten() {
        schema_paths(prop, &format!("{path}.{name}"), out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        schema_paths(items, &format!("{path}[]"), out);
    }
}

#[test]
fn every_upstream_crd_field_exists_in_ours_with_the_same_type() {
    let ours = our_crds();
    let upstream = upstream_crds();
    assert_eq!(upstream.len(), 5, "4 Clusterpedia CRDs + ClusterProfile");
    let mut problems = Vec::new();
    for up in &upstream {
        let name = up.metadata.name.clone().unwrap();
        let Some(our) = ours.iter().find(|c| c.metadata.name.as_deref() == Some(name.as_str())) else {
            problems.push(format!("{name}: we have no such CRD"));
            continue;
        };
        if (
            &our.spec.scope,
            &our.spec.names.kind,
            &our.spec.names.plural,
            &our.spec.names.singular,
            &our.spec.names.list_kind,
        ) != (
            &up.spec.scope,
            &up.spec.names.kind,
            &up.spec.names.plural,
            &up.spec.names.singular,
            &up.spec.names.list_kind,
        ) {
            problems.push(format!(
                "{name}: names or scope differ: ours {:?}, upstream {:?}",
                our.spec.names, up.spec.names
            ));
        }
        for up_version in &up.spec.versions {
            let Some(our_version) = our.spec.versions.iter().find(|v| v.name == up_version.name) else {
                problems.push(format!("{name}: version {} missing", up_version.name));
                continue;
            };
            let columns = |v: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion| {
                v.additional_printer_columns
                    .iter()
                    .flatten()
                    .map(|c| (c.name.clone(), c.type_.clone(), c.json_path.clone(), c.priority.unwrap_or(0)))
                    .collect::<Vec<_>>()
            };
            if columns(our_version) != columns(up_version) {
                problems.push(format!(
                    "{name}: printer columns differ:\n  ours     {:?}\n  upstream {:?}",
                    columns(our_version),
                    columns(up_version)
                ));
            }
            if our_version.subresources != up_version.subresources {
                problems.push(format!("{name}: subresources differ"));
            }
            let schema = |v: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion| {
                let mut paths = BTreeMap::new();
                schema_paths(v.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap(), "", &mut paths);
                paths
            };
            let (our_paths, up_paths) = (schema(our_version), schema(up_version));
            for (path, up_type) in &up_paths {
                match our_paths.get(path) {
                    None => problems.push(format!("{name}: {path} ({up_type}) is missing")),
                    Some(t) if t != up_type => problems.push(format!("{name}: {path} is {t}, upstream {up_type}")),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "our CRDs drop or retype upstream fields:\n{}", problems.join("\n"));
}

#[test]
fn our_crds_are_structural() {
    for c in our_crds() {
        let v = crd::structural_violations(&c);
        assert!(v.is_empty(), "{:?} is not structural: {v:?}", c.metadata.name);
    }
}

#[test]
fn structural_check_catches_untyped_nodes() {
    let mut c = crd::pedia_crds().remove(1);
    let schema = c.spec.versions[0].schema.as_mut().unwrap().open_api_v3_schema.as_mut().unwrap();
    schema.properties.as_mut().unwrap().get_mut("spec").unwrap().type_ = None;
    assert_eq!(crd::structural_violations(&c), ["PediaCluster/v1alpha2.spec: no type"]);
}

fn pedia_cluster(spec: Value) -> Value {
    json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "c1"}, "spec": spec})
}

fn field_errors(object: &Value) -> Vec<(String, String)> {
    match validator().validate(object) {
        Err(ValidationError::Invalid { errors, .. }) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn wrong_type_names_the_field_path() {
    let errors = field_errors(&pedia_cluster(json!({"syncResources": "pods"})));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "spec.syncResources");
    assert!(errors[0].1.contains("must be of type array"), "{errors:?}");
    let message = validator().validate(&pedia_cluster(json!({"syncResources": "pods"}))).unwrap_err().to_string();
    assert!(message.contains("PediaCluster \"c1\"") && message.contains("spec.syncResources"), "{message}");
}

#[test]
fn bad_input_is_reported_per_field() {
    let cases = [
        (json!({"syncResources": [{"group": ""}]}), "spec.syncResources[0].resources", "Required value"),
        (json!({"syncResources": [{"group": "", "resources": []}]}), "spec.syncResources[0].resources", "at least 1"),
        (json!({"syncResources": [], "caData": "not base64!"}), "spec.caData", "base64"),
        (json!({"syncResources": [], "apiServer": "https://x"}), "spec.apiServer", "unknown field"),
        (json!({"syncResources": [{"group": 1, "resources": ["pods"]}]}), "spec.syncResources[0].group", "type string"),
        (json!({}), "spec.syncResources", "Required value"),
    ];
    for (spec, path, needle) in cases {
        let errors = field_errors(&pedia_cluster(spec.clone()));
        assert!(
            errors.iter().any(|(p, m)| p == path && m.contains(needle)),
            "{spec}: expected {path} / {needle:?}, got {errors:?}"
        );
    }
}

#[test]
fn policy_template_engine_is_an_enum() {
    let policy = json!({
        "apiVersion": "policy.clusterpedia.io/v1alpha1", "kind": "ClusterImportPolicy", "metadata": {"name": "p"},
        "spec": {"source": {"group": "", "resource": "secrets"}, "nameTemplate": "x", "template": "y",
                 "creationCondition": "true", "templateEngine": "jinja"}
    });
    let errors = field_errors(&policy);
    assert_eq!(errors[0].0, "spec.templateEngine");
    assert!(errors[0].1.contains("Unsupported value"), "{errors:?}");
}

#[test]
fn names_and_kinds_are_checked() {
    let v = validator();
    let mut bad_name = pedia_cluster(json!({"syncResources": []}));
    bad_name["metadata"]["name"] = json!("Bad_Name");
    assert!(v.validate(&bad_name).unwrap_err().to_string().contains("metadata.name"));
    let unknown =
        json!({"apiVersion": "cluster.clusterpedia.io/v1alpha1", "kind": "PediaCluster", "metadata": {"name": "a"}});
    assert!(matches!(v.validate(&unknown), Err(ValidationError::UnknownKind { .. })));
    assert!(matches!(v.validate(&json!("x")), Err(ValidationError::NotAnObject)));
}

#[test]
fn explicit_nulls_are_pruned_like_the_apiserver_does() {
    let object = pedia_cluster(json!({"syncResources": [{"group": "", "resources": ["pods"]}], "caData": null}));
    let stored = validator().validate(&object).unwrap();
    assert!(stored["spec"].get("caData").is_none());
}
