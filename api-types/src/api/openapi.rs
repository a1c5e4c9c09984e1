//! OpenAPI v3 documents, enough for `kubectl explain` and for kubectl to find server-side field
//! validation: custom resources carry their CRD schema, built-in kinds k8s-openapi's (that is,
//! Kubernetes') definitions. Both servers build them from what they serve: kubesim at the root,
//! the search apiserver under its resource prefixes.

use k8s_openapi::api;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::api::resources::ResourceInfo;
use crate::fields::Segment;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `GET <prefix>/openapi/v3`: one entry per served group-version. `prefix` is where the API is
/// served (empty at a server's root): clients fetch each entry at exactly its `serverRelativeURL`.
pub fn root(prefix: &str, served: &[&ResourceInfo]) -> Value {
    root_with(prefix, served, &[])
}

/// [`root`], plus group-versions served elsewhere (aggregated APIs, whose documents come from
/// their backends).
pub fn root_with(prefix: &str, served: &[&ResourceInfo], extra: &[(String, String)]) -> Value {
    use crate::api::discovery;
    let mut paths = Map::new();
    paths.insert("version".into(), json!({"serverRelativeURL": format!("{prefix}/openapi/v3/version")}));
    for (g, versions) in discovery::with_extra(discovery::groups(served), extra) {
        for v in versions {
            let p = gv_path(&g, &v);
            paths.insert(p.clone(), json!({"serverRelativeURL": format!("{prefix}/openapi/v3/{p}")}));
        }
    }
    json!({"paths": paths})
}

/// One resource of a group-version document: what discovery says of it and, for a custom
/// resource, its CRD's `openAPIV3Schema` (`None`: a built-in kind, or a schema-less one).
pub struct Served<'a> {
    pub info: &'a ResourceInfo,
    pub schema: Option<&'a Value>,
}

macro_rules! builtin_kinds {
    ($($gv:literal $kind:literal => $ty:ty),* $(,)?) => {
        /// The schema of a built-in kind, from k8s-openapi's types (definitions go into `generator`).
        fn builtin_schema(generator: &mut SchemaGenerator, api_version: &str, kind: &str) -> Option<Value> {
            match (api_version, kind) {
                $(($gv, $kind) => Some(generator.subschema_for::<$ty>().to_value()),)*
                _ => None,
            }
        }

        /// `(apiVersion, kind)` of every built-in kind with a schema.
        #[cfg(test)]
        pub(crate) const BUILTIN_KINDS: &[(&str, &str)] = &[$(($gv, $kind)),*];
    };
}

/// `(apiVersion, kind, definition name)`.
#[cfg(test)]
pub(crate) type KindDefinition = (&'static str, &'static str, String);

/// The definitions of every built-in kind (and of the types they use), and each kind's
/// definition name: the JSON names the protobuf field table is generated from.
#[cfg(test)]
pub(crate) fn builtin_definitions() -> (Map<String, Value>, Vec<KindDefinition>) {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut roots = Vec::new();
    for (api_version, kind) in BUILTIN_KINDS {
        if let Some(name) = builtin_schema(&mut generator, api_version, kind)
            .and_then(|r| r["$ref"].as_str().map(|r| r.trim_start_matches("#/components/schemas/").to_owned()))
        {
            roots.push((*api_version, *kind, name));
        }
    }
    // Subresource kinds clients send: scale, and kubectl create token's TokenRequest.
    let scale = generator.subschema_for::<api::autoscaling::v1::Scale>().to_value();
    let token = generator.subschema_for::<api::authentication::v1::TokenRequest>().to_value();
    for (api_version, kind, schema) in
        [("autoscaling/v1", "Scale", scale), ("authentication.k8s.io/v1", "TokenRequest", token)]
    {
        if let Some(name) = schema["$ref"].as_str() {
            roots.push((api_version, kind, name.trim_start_matches("#/components/schemas/").to_owned()));
        }
    }
    (generator.take_definitions(true).into_iter().collect(), roots)
}

builtin_kinds! {
    "v1" "Binding" => api::core::v1::Binding,
    "v1" "ComponentStatus" => api::core::v1::ComponentStatus,
    "v1" "ConfigMap" => api::core::v1::ConfigMap,
    "v1" "Endpoints" => api::core::v1::Endpoints,
    "v1" "Event" => api::core::v1::Event,
    "v1" "LimitRange" => api::core::v1::LimitRange,
    "v1" "Namespace" => api::core::v1::Namespace,
    "v1" "Node" => api::core::v1::Node,
    "v1" "PersistentVolumeClaim" => api::core::v1::PersistentVolumeClaim,
    "v1" "PersistentVolume" => api::core::v1::PersistentVolume,
    "v1" "Pod" => api::core::v1::Pod,
    "v1" "PodTemplate" => api::core::v1::PodTemplate,
    "v1" "ReplicationController" => api::core::v1::ReplicationController,
    "v1" "ResourceQuota" => api::core::v1::ResourceQuota,
    "v1" "Secret" => api::core::v1::Secret,
    "v1" "ServiceAccount" => api::core::v1::ServiceAccount,
    "v1" "Service" => api::core::v1::Service,
    "admissionregistration.k8s.io/v1" "MutatingWebhookConfiguration" => api::admissionregistration::v1::MutatingWebhookConfiguration,
    "admissionregistration.k8s.io/v1" "ValidatingAdmissionPolicy" => api::admissionregistration::v1::ValidatingAdmissionPolicy,
    "admissionregistration.k8s.io/v1" "ValidatingAdmissionPolicyBinding" => api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    "admissionregistration.k8s.io/v1" "ValidatingWebhookConfiguration" => api::admissionregistration::v1::ValidatingWebhookConfiguration,
    "apiextensions.k8s.io/v1" "CustomResourceDefinition" => k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    "apiregistration.k8s.io/v1" "APIService" => k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
    "apps/v1" "ControllerRevision" => api::apps::v1::ControllerRevision,
    "apps/v1" "DaemonSet" => api::apps::v1::DaemonSet,
    "apps/v1" "Deployment" => api::apps::v1::Deployment,
    "apps/v1" "ReplicaSet" => api::apps::v1::ReplicaSet,
    "apps/v1" "StatefulSet" => api::apps::v1::StatefulSet,
    "authentication.k8s.io/v1" "SelfSubjectReview" => api::authentication::v1::SelfSubjectReview,
    "authentication.k8s.io/v1" "TokenReview" => api::authentication::v1::TokenReview,
    "authorization.k8s.io/v1" "LocalSubjectAccessReview" => api::authorization::v1::LocalSubjectAccessReview,
    "authorization.k8s.io/v1" "SelfSubjectAccessReview" => api::authorization::v1::SelfSubjectAccessReview,
    "authorization.k8s.io/v1" "SelfSubjectRulesReview" => api::authorization::v1::SelfSubjectRulesReview,
    "authorization.k8s.io/v1" "SubjectAccessReview" => api::authorization::v1::SubjectAccessReview,
    "autoscaling/v1" "HorizontalPodAutoscaler" => api::autoscaling::v1::HorizontalPodAutoscaler,
    "autoscaling/v2" "HorizontalPodAutoscaler" => api::autoscaling::v2::HorizontalPodAutoscaler,
    "batch/v1" "CronJob" => api::batch::v1::CronJob,
    "batch/v1" "Job" => api::batch::v1::Job,
    "certificates.k8s.io/v1" "CertificateSigningRequest" => api::certificates::v1::CertificateSigningRequest,
    "coordination.k8s.io/v1" "Lease" => api::coordination::v1::Lease,
    "discovery.k8s.io/v1" "EndpointSlice" => api::discovery::v1::EndpointSlice,
    "events.k8s.io/v1" "Event" => api::events::v1::Event,
    "flowcontrol.apiserver.k8s.io/v1" "FlowSchema" => api::flowcontrol::v1::FlowSchema,
    "flowcontrol.apiserver.k8s.io/v1" "PriorityLevelConfiguration" => api::flowcontrol::v1::PriorityLevelConfiguration,
    "networking.k8s.io/v1" "IngressClass" => api::networking::v1::IngressClass,
    "networking.k8s.io/v1" "Ingress" => api::networking::v1::Ingress,
    "networking.k8s.io/v1" "IPAddress" => api::networking::v1::IPAddress,
    "networking.k8s.io/v1" "NetworkPolicy" => api::networking::v1::NetworkPolicy,
    "networking.k8s.io/v1" "ServiceCIDR" => api::networking::v1::ServiceCIDR,
    "node.k8s.io/v1" "RuntimeClass" => api::node::v1::RuntimeClass,
    "policy/v1" "PodDisruptionBudget" => api::policy::v1::PodDisruptionBudget,
    "rbac.authorization.k8s.io/v1" "ClusterRoleBinding" => api::rbac::v1::ClusterRoleBinding,
    "rbac.authorization.k8s.io/v1" "ClusterRole" => api::rbac::v1::ClusterRole,
    "rbac.authorization.k8s.io/v1" "RoleBinding" => api::rbac::v1::RoleBinding,
    "rbac.authorization.k8s.io/v1" "Role" => api::rbac::v1::Role,
    "scheduling.k8s.io/v1" "PriorityClass" => api::scheduling::v1::PriorityClass,
    "storage.k8s.io/v1" "CSIDriver" => api::storage::v1::CSIDriver,
    "storage.k8s.io/v1" "CSINode" => api::storage::v1::CSINode,
    "storage.k8s.io/v1" "CSIStorageCapacity" => api::storage::v1::CSIStorageCapacity,
    "storage.k8s.io/v1" "StorageClass" => api::storage::v1::StorageClass,
    "storage.k8s.io/v1" "VolumeAttachment" => api::storage::v1::VolumeAttachment,
}

/// `GET [<prefix>]/openapi/v3/apis/<group>/<version>`: the resources' schemas and one path per
/// resource with the operations its verbs allow; `None` when none of `resources` is in it.
/// Paths are spelled as at a server's root whatever the prefix: kubectl explain finds a
/// resource's schema by its path.
pub fn group_version(group: &str, version: &str, resources: &[Served<'_>]) -> Option<Value> {
    if !resources.iter().any(|s| s.info.group == group && s.info.version == version) {
        return None;
    }
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut schemas = Map::new();
    let mut gvks: Vec<(String, Value)> = Vec::new();
    let mut paths = Map::new();
    for Served { info, schema } in resources.iter().filter(|s| s.info.group == group && s.info.version == version) {
        let gvk = json!([{"group": group, "version": version, "kind": info.kind}]);
        let builtin = match schema {
            Some(_) => None,
            None => builtin_schema(&mut generator, &info.api_version(), &info.kind),
        };
        let schema_name = match builtin.as_ref().and_then(|r| r["$ref"].as_str()) {
            // Built-in kinds keep k8s-openapi's (= Kubernetes') definition names.
            Some(r) => r.trim_start_matches("#/components/schemas/").to_owned(),
            None => {
                let mut schema = schema.cloned().unwrap_or_else(
                    || json!({"type": "object", "description": info.kind.clone(), "x-kubernetes-preserve-unknown-fields": true}),
                );
                schema["x-kubernetes-group-version-kind"] = gvk.clone();
                let schema_name = schema_name(info);
                schemas.insert(schema_name.clone(), schema);
                schema_name
            }
        };
        if builtin.is_some() {
            gvks.push((schema_name.clone(), gvk.clone()));
        }
        let item = if info.namespaced {
            format!("/{}/namespaces/{{namespace}}/{}/{{name}}", gv_path(group, version), info.resource)
        } else {
            format!("/{}/{}/{{name}}", gv_path(group, version), info.resource)
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
        let mut operations = Map::new();
        for (verb, method) in [("get", "get"), ("update", "put"), ("patch", "patch"), ("delete", "delete")] {
            if info.verbs.iter().any(|v| v == verb) {
                operations.insert(method.into(), op(method));
            }
        }
        paths.insert(item, Value::Object(operations));
    }
    for (name, mut schema) in generator.take_definitions(true) {
        if let Some((_, gvk)) = gvks.iter().find(|(n, _)| *n == name) {
            schema["x-kubernetes-group-version-kind"] = gvk.clone();
        }
        schemas.insert(name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

/// Every group-version document of `resources` (what the v2 document is made from).
pub fn all_group_versions(resources: &[Served<'_>]) -> Vec<Value> {
    let infos: Vec<&ResourceInfo> = resources.iter().map(|s| s.info).collect();
    crate::api::discovery::groups(&infos)
        .into_iter()
        .flat_map(|(g, versions)| versions.into_iter().map(move |v| (g.clone(), v)))
        .filter_map(|(g, v)| group_version(&g, &v, resources))
        .collect()
}

fn schema_name(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() { "core".to_owned() } else { info.group.clone() };
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), info.version, info.kind)
}

/// Whether objects of `info`'s kind can have the field at `path`, by its schema: `schema` (a
/// custom resource's CRD schema), else Kubernetes' definition of the built-in kind. `None` when
/// there is no schema to tell (a custom resource without one).
pub fn has_field(info: &ResourceInfo, schema: Option<&Value>, path: &[Segment]) -> Option<bool> {
    match schema {
        Some(s) => Some(schema_has_field(s, &Map::new(), path)),
        None => {
            let built = builtin_with_definitions(&info.api_version(), &info.kind)?;
            Some(schema_has_field(&built.0, &built.1, path))
        }
    }
}

/// A built-in kind's schema and the definitions it refers to, generated once per kind (a list
/// request with a field path asks for them).
fn builtin_with_definitions(api_version: &str, kind: &str) -> Option<std::sync::Arc<(Value, Map<String, Value>)>> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex, PoisonError};
    type Cache = Mutex<HashMap<(String, String), Option<Arc<(Value, Map<String, Value>)>>>>;
    static CACHE: LazyLock<Cache> = LazyLock::new(Cache::default);
    let key = (api_version.to_owned(), kind.to_owned());
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .entry(key)
        .or_insert_with(|| {
            let mut generator = SchemaSettings::openapi3().into_generator();
            let root = builtin_schema(&mut generator, api_version, kind)?;
            Some(Arc::new((root, generator.take_definitions(true))))
        })
        .clone()
}

/// Follows `$ref`s and single-element `allOf`s (how schemars and k8s-openapi wrap references).
fn resolve<'a>(mut node: &'a Value, definitions: &'a Map<String, Value>) -> &'a Value {
    for _ in 0..32 {
        if let Some(target) = node["$ref"].as_str() {
            match definitions.get(target.trim_start_matches("#/components/schemas/")) {
                Some(d) => node = d,
                None => break,
            }
        } else if let Some([only]) = node["allOf"].as_array().map(Vec::as_slice) {
            node = only;
        } else {
            break;
        }
    }
    node
}

fn schema_has_field(schema: &Value, definitions: &Map<String, Value>, path: &[Segment]) -> bool {
    let mut node = schema;
    for segment in path {
        node = resolve(node, definitions);
        let open = node["x-kubernetes-preserve-unknown-fields"] == json!(true);
        let next = match segment {
            Segment::Field(name) => node["properties"].get(name).or_else(|| match &node["additionalProperties"] {
                Value::Object(_) => Some(&node["additionalProperties"]),
                _ => None,
            }),
            Segment::Index(_) => node.get("items"),
        };
        match next {
            Some(n) => node = n,
            // Anything may stand beneath a field that keeps unknown fields, or a map of any value.
            None => return open || node["additionalProperties"] == json!(true),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::builtin;

    #[test]
    fn roots_point_under_the_prefix() {
        let all = builtin();
        let some: Vec<&ResourceInfo> = all
            .iter()
            .filter(|r| ["pods", "configmaps", "deployments", "replicasets"].contains(&r.resource.as_str()))
            .collect();
        let doc = root("/apis/x/v1/resources", &some);
        assert_eq!(doc["paths"]["apis/apps/v1"]["serverRelativeURL"], "/apis/x/v1/resources/openapi/v3/apis/apps/v1");
        assert_eq!(doc["paths"]["api/v1"]["serverRelativeURL"], "/apis/x/v1/resources/openapi/v3/api/v1");
        assert_eq!(doc["paths"].as_object().unwrap().len(), 3, "version, api/v1, apis/apps/v1");
    }

    #[test]
    fn built_in_and_custom_schemas() {
        let pods = builtin().into_iter().find(|r| r.resource == "pods").unwrap();
        let read_only = ResourceInfo { verbs: vec!["get".into(), "list".into()], ..pods.clone() };
        let doc = group_version("", "v1", &[Served { info: &read_only, schema: None }]).unwrap();
        assert!(group_version("apps", "v1", &[Served { info: &read_only, schema: None }]).is_none());
        let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        assert!(pod["properties"]["spec"].is_object(), "k8s-openapi's Pod schema");
        let ops = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"].as_object().unwrap();
        assert_eq!(ops.keys().collect::<Vec<_>>(), ["get"], "only the operations the verbs allow");

        let widget =
            ResourceInfo { group: "example.io".into(), kind: "Widget".into(), resource: "widgets".into(), ..pods };
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "description": "the widget"}}});
        let doc = group_version("example.io", "v1", &[Served { info: &widget, schema: Some(&schema) }]).unwrap();
        let w = &doc["components"]["schemas"]["io.example.v1.Widget"];
        assert_eq!(w["properties"]["spec"]["description"], "the widget");
        assert_eq!(w["x-kubernetes-group-version-kind"][0]["group"], "example.io");
    }

    #[test]
    fn fields_are_found_in_the_kinds_schema() {
        let all = builtin();
        let info = |resource: &str| all.iter().find(|r| r.resource == resource).unwrap();
        let has = |info: &ResourceInfo, schema: Option<&Value>, path: &str| {
            has_field(info, schema, &crate::fields::parse_path(path).unwrap())
        };
        let pods = info("pods");
        for path in [
            "status.phase",
            "status.podIP",
            "metadata.labels['app']",
            "metadata.labels.app",
            "spec.containers[0].name",
            "metadata.creationTimestamp",
            "spec.containers[0].resources.limits.cpu",
        ] {
            assert_eq!(has(pods, None, path), Some(true), "{path}");
        }
        for path in ["x", "status.phaze", "status.phase.deeper", "spec.containers[0].nope", "metadata.labels.app.more"]
        {
            assert_eq!(has(pods, None, path), Some(false), "{path}");
        }
        assert_eq!(has(info("configmaps"), None, "data.anykey"), Some(true));
        assert_eq!(has(info("deployments"), None, "spec.replicas"), Some(true));
        assert_eq!(has(info("events"), None, "involvedObject.name"), Some(true));

        let widget = ResourceInfo {
            group: "example.io".into(),
            kind: "Widget".into(),
            resource: "widgets".into(),
            ..pods.clone()
        };
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        assert_eq!(has(&widget, Some(&schema), "spec.size"), Some(true));
        assert_eq!(has(&widget, Some(&schema), "status.anything.below"), Some(true), "status keeps unknown fields");
        assert_eq!(has(&widget, Some(&schema), "spec.colour"), Some(false));
        assert_eq!(has(&widget, None, "spec.colour"), None, "no schema: nothing to tell");
    }
}
