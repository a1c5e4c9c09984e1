//! `cluster.clusterpedia.io/v1alpha2`: `PediaCluster` and `ClusterSyncResources`.
//!
//! Field for field the upstream types (`staging/src/github.com/clusterpedia-io/api/cluster/v1alpha2`),
//! so manifests written for Clusterpedia deserialize unchanged.
// kube-derive's repeated `printcolumn(...)` keys look like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the cluster resources.
pub const GROUP: &str = "cluster.clusterpedia.io";
/// API version of the cluster resources.
pub const VERSION: &str = "v1alpha2";

/// A member cluster that pedia synchronizes into its store.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cluster.clusterpedia.io",
    version = "v1alpha2",
    kind = "PediaCluster",
    status = "PediaClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type == 'Ready')].status"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version"),
    printcolumn(name = "APIServer", type_ = "string", json_path = ".status.apiserver"),
    printcolumn(
        name = "Validated",
        type_ = "string",
        json_path = ".status.conditions[?(@.type == 'Validated')].reason",
        priority = "10"
    ),
    printcolumn(
        name = "SynchroRunning",
        type_ = "string",
        json_path = ".status.conditions[?(@.type == 'SynchroRunning')].reason",
        priority = "10"
    ),
    printcolumn(
        name = "ClusterHealthy",
        type_ = "string",
        json_path = ".status.conditions[?(@.type == 'ClusterHealthy')].reason",
        priority = "10"
    ),
    printcolumn(name = "ShardingName", type_ = "string", json_path = ".status.shardingName", priority = "10")
)]
#[serde(rename_all = "camelCase")]
pub struct PediaClusterSpec {
    /// Endpoint of the member cluster's kube-apiserver; required unless `kubeconfig` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apiserver: Option<String>,

    /// A whole kubeconfig file; it wins over `apiserver` and the inline credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bytes")]
    pub kubeconfig: Option<ByteString>,

    /// PEM CA bundle that signs the member apiserver's serving certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bytes")]
    pub ca_data: Option<ByteString>,

    /// Raw bearer token bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bytes")]
    pub token_data: Option<ByteString>,

    /// PEM client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bytes")]
    pub cert_data: Option<ByteString>,

    /// PEM client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bytes")]
    pub key_data: Option<ByteString>,

    /// Credentials read from Secrets in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_from: Option<ClusterAuthentication>,

    /// The resources to synchronize, per API group.
    pub sync_resources: Vec<ClusterGroupResources>,

    /// Synchronize every custom resource of the member cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_all_custom_resources: Option<bool>,

    /// Name of a ClusterSyncResources whose list is appended to `syncResources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_resources_ref_name: Option<String>,

    /// Selects which pedia shard owns this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_name: Option<String>,
}

/// Secret references for each credential; the Secrets live in the operator's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterAuthentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretKeyRef>,
}

/// One key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret (always in the operator's namespace).
    pub name: String,
    /// Key inside the Secret's data.
    pub key: String,
}

/// The resources of one API group to synchronize.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGroupResources {
    /// API group, `""` for core, `"*"` for every group.
    pub group: String,

    /// Versions to sync; empty negotiates one, `"*"` takes every served version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<String>>,

    /// Resource names (plural or singular, case-insensitive), `"*"` for all of the group.
    #[schemars(length(min = 1))]
    pub resources: Vec<String>,

    /// Resources whose related Events are attached to the stored objects (`"*"` for all of `resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_involved_resources: Option<Vec<String>>,
}

/// Observed state of a PediaCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PediaClusterStatus {
    /// The effective apiserver host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apiserver: Option<String>,

    /// The member cluster's `gitVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// `Validated`, `SynchroRunning`, `ClusterHealthy` and `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,

    /// What is being synchronized, per group and resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_resources: Option<Vec<ClusterGroupResourcesStatus>>,

    /// Sharding name of the pedia instance that owns the cluster now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_name: Option<String>,
}

/// Sync status of one API group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterGroupResourcesStatus {
    pub group: String,
    pub resources: Vec<ClusterResourceStatus>,
}

/// Sync status of one resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResourceStatus {
    pub name: String,
    pub kind: String,
    pub namespaced: bool,
    pub sync_conditions: Vec<ClusterResourceSyncCondition>,
}

/// Sync state of one version of a resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResourceSyncCondition {
    /// The negotiated version.
    pub version: String,

    /// Set only when the watched version differs from `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_version: Option<String>,

    /// Set only when the watched group-resource differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_resource: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_version: Option<String>,

    /// Set only when the storage group-resource differs from the synced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_resource: Option<String>,

    /// `Pending`, `Syncing`, `Stop`, `Unknown` or `Error`.
    pub status: String,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// True while the initial list has not finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_list_phase: Option<bool>,

    pub last_transition_time: Time,
}

/// A reusable list of resources to synchronize, referenced by `PediaCluster.spec.syncResourcesRefName`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cluster.clusterpedia.io",
    version = "v1alpha2",
    kind = "ClusterSyncResources",
    singular = "clustersyncresources",
    plural = "clustersyncresources",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSyncResourcesSpec {
    pub sync_resources: Vec<ClusterGroupResources>,
}
