//! `policy.clusterpedia.io/v1alpha1`: `ClusterImportPolicy` and `PediaClusterLifecycle`.
//!
//! Upstream types (`staging/.../api/policy/v1alpha1`) plus one addition: `spec.templateEngine`.
// kube-derive's repeated `printcolumn(...)` keys look like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the policy resources.
pub const GROUP: &str = "policy.clusterpedia.io";
/// API version of the policy resources.
pub const VERSION: &str = "v1alpha1";

/// Imports every object of a fleet source (Karmada clusters, Cluster API clusters, secrets...) as a
/// PediaCluster, through one PediaClusterLifecycle per source object.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "policy.clusterpedia.io",
    version = "v1alpha1",
    kind = "ClusterImportPolicy",
    status = "ClusterImportPolicyStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Validated",
        type_ = "string",
        json_path = ".status.conditions[?(@.type == 'Validated')].reason"
    ),
    printcolumn(
        name = "Reconciling",
        type_ = "string",
        json_path = ".status.conditions[?(@.type == 'Reconciling')].reason"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterImportPolicySpec {
    /// The fleet resource whose objects become clusters.
    pub source: SourceType,

    /// Further objects the templates may read, resolved in order (later ones may use earlier ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub references: Option<Vec<IntendReferenceResourceTemplate>>,

    /// Template of the PediaClusterLifecycle (and PediaCluster) name.
    pub name_template: String,

    /// Template that renders a PediaCluster manifest (YAML or JSON).
    pub template: String,

    /// The PediaCluster is created only when this renders `true`.
    pub creation_condition: String,

    /// Template dialect of every template field: `go` (default, Go text/template with Sprig
    /// functions) or `handlebars`. A pedia addition; Clusterpedia ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_engine: Option<TemplateEngine>,
}

/// Template dialects a policy may choose.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemplateEngine {
    /// Go text/template syntax with Sprig functions, as Clusterpedia policies are written.
    #[default]
    Go,
    /// Handlebars syntax over the same data model.
    Handlebars,
}

/// The source resource of a policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceType {
    /// API group, `""` for core.
    pub group: String,

    /// Acceptable versions; empty takes the preferred one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<String>>,

    /// Plural resource name.
    pub resource: String,

    /// A source object is used only when this renders `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector_template: Option<String>,
}

/// A referenced object, as a policy declares it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntendReferenceResourceTemplate {
    /// Name under which templates see the object (`.references.<key>`).
    pub key: String,
    pub group: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_template: Option<String>,
    pub name_template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<String>>,
}

/// Observed state of a ClusterImportPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterImportPolicyStatus {
    /// `Validated` and `Reconciling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,
}

/// One source object of a policy on its way to becoming a PediaCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "policy.clusterpedia.io",
    version = "v1alpha1",
    kind = "PediaClusterLifecycle",
    status = "PediaClusterLifecycleStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Created", type_ = "string", json_path = ".status.conditions[?(@.type == 'Created')].reason"),
    printcolumn(name = "Updating", type_ = "string", json_path = ".status.conditions[?(@.type == 'Updating')].reason")
)]
#[serde(rename_all = "camelCase")]
pub struct PediaClusterLifecycleSpec {
    /// The concrete source object.
    pub source: DependentResource,

    /// The policy's references with their negotiated versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub references: Option<Vec<ReferenceResourceTemplate>>,

    /// Copied from the policy.
    pub template: String,

    /// Copied from the policy.
    pub creation_condition: String,

    /// Copied from the policy: the dialect of `template` and `creationCondition` (pedia only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_engine: Option<TemplateEngine>,
}

/// A reference with its negotiated version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceResourceTemplate {
    pub key: String,
    pub group: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_template: Option<String>,
    pub name_template: String,
    pub version: String,
}

/// A concrete object: group/version/resource plus namespace and name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct DependentResource {
    pub group: String,
    pub version: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

/// Observed state of a PediaClusterLifecycle.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PediaClusterLifecycleStatus {
    /// `Created` and `Updating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// The resolved reference objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<DependentResource>>,
}
