//! The CustomResourceDefinitions pedia installs, generated from the Rust types.
//!
//! `crds/` and the Helm chart hold the output of [`pedia_crds`]; a test fails when they drift.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::cluster::{ClusterSyncResources, PediaCluster};
use crate::multicluster::ClusterProfile;
use crate::policy::{ClusterImportPolicy, PediaClusterLifecycle};

/// The four CRDs of Clusterpedia's API groups, in a stable order.
pub fn pedia_crds() -> Vec<CustomResourceDefinition> {
    [ClusterSyncResources::crd(), PediaCluster::crd(), ClusterImportPolicy::crd(), PediaClusterLifecycle::crd()]
        .into_iter()
        .map(finish)
        .collect()
}

/// CRDs of types pedia reads but does not own (cluster managers install them).
pub fn consumed_crds() -> Vec<CustomResourceDefinition> {
    vec![finish(ClusterProfile::crd())]
}

/// The file name upstream uses for a CRD: `<group>_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// A CRD as one YAML document (with a leading `---`, like controller-gen writes).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!("---\n{}", serde_yaml::to_string(crd)?))
}

/// Every CRD of [`pedia_crds`] as one multi-document YAML stream.
pub fn pedia_crds_yaml() -> Result<String, serde_yaml::Error> {
    pedia_crds().iter().map(to_yaml).collect()
}

/// Brings a derived CRD in line with what controller-gen emits for the upstream types.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    for version in &mut crd.spec.versions {
        if let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            strip_nullable(schema);
            schema.title = None;
            let props = schema.properties.get_or_insert_with(Default::default);
            props.insert("apiVersion".into(), string_prop(API_VERSION_DOC));
            props.insert("kind".into(), string_prop(KIND_DOC));
            props.insert("metadata".into(), JSONSchemaProps { type_: Some("object".into()), ..Default::default() });
        }
    }
    crd
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. \
Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. \
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";

const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. \
Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. \
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn string_prop(description: &str) -> JSONSchemaProps {
    JSONSchemaProps { type_: Some("string".into()), description: Some(description.into()), ..Default::default() }
}

/// schemars marks every `Option` as `nullable`; upstream fields are not nullable, so an explicit
/// `null` in a manifest is pruned by the apiserver instead of being stored.
fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    if let Some(props) = schema.properties.as_mut() {
        props.values_mut().for_each(strip_nullable);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(s)) => strip_nullable(s),
        Some(JSONSchemaPropsOrArray::Schemas(v)) => v.iter_mut().for_each(strip_nullable),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = schema.additional_properties.as_mut() {
        strip_nullable(s);
    }
}

/// Reasons a schema is not structural (Kubernetes 1.15+ rejects such CRDs in `apiextensions/v1`):
/// every node needs a `type` unless it preserves unknown fields or is int-or-string, and
/// `nullable` is not used here because upstream's fields are not nullable. Empty when fine.
pub fn structural_violations(crd: &CustomResourceDefinition) -> Vec<String> {
    let mut out = Vec::new();
    for version in &crd.spec.versions {
        match version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) {
            Some(schema) => check_structural(schema, &format!("{}/{}", crd.spec.names.kind, version.name), &mut out),
            None => out.push(format!("{} {}: no openAPIV3Schema", crd.spec.names.kind, version.name)),
        }
    }
    out
}

fn check_structural(schema: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    let free_form =
        schema.x_kubernetes_preserve_unknown_fields == Some(true) || schema.x_kubernetes_int_or_string == Some(true);
    if schema.type_.is_none() && !free_form {
        out.push(format!("{path}: no type"));
    }
    if schema.nullable.is_some() {
        out.push(format!("{path}: nullable"));
    }
    for (keyword, list) in [("anyOf", &schema.any_of), ("oneOf", &schema.one_of), ("allOf", &schema.all_of)] {
        if list.as_ref().is_some_and(|l| l.iter().any(|s| s.type_.is_some() || s.properties.is_some())) {
            out.push(format!("{path}: {keyword} declares types or properties"));
        }
    }
    if let Some(props) = &schema.properties {
        for (name, prop) in props {
            check_structural(prop, &format!("{path}.{name}"), out);
        }
    }
    match &schema.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => check_structural(s, &format!("{path}[]"), out),
        Some(JSONSchemaPropsOrArray::Schemas(_)) => out.push(format!("{path}: items must be one schema")),
        None if schema.type_.as_deref() == Some("array") => out.push(format!("{path}: array without items")),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = &schema.additional_properties {
        check_structural(s, &format!("{path}{{}}"), out);
    }
}
