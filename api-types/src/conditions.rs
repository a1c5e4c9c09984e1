//! Condition types, reasons and finalizers, spelled exactly as Clusterpedia spells them
//! (including its typos, since users match on them).

/// PediaCluster conditions (`status.conditions`).
pub mod cluster {
    pub const VALIDATED: &str = "Validated";
    pub const SYNCHRO_RUNNING: &str = "SynchroRunning";
    pub const CLUSTER_HEALTHY: &str = "ClusterHealthy";
    pub const READY: &str = "Ready";
    /// Deprecated; removed on every status update.
    pub const CLUSTER_SYNCHRO_INITIALIZED: &str = "ClusterSynchroInitialized";

    // Validated
    pub const REASON_VALIDATED: &str = "Validated";
    pub const REASON_INVALID_CONFIG: &str = "InvalidConfig";
    pub const REASON_INVALID_SYNC_RESOURCES: &str = "InvalidSyncResources";
    // SynchroRunning
    pub const REASON_WAIT_INIT: &str = "WaitInit";
    pub const REASON_INITIAL_FAILED: &str = "InitialFailed";
    pub const REASON_PENDING: &str = "Pending";
    pub const REASON_RUNNING: &str = "Running";
    pub const REASON_SHUTDOWN: &str = "Shutdown";
    // ClusterHealthy
    pub const REASON_MONITOR_STOP: &str = "MonitorStop";
    pub const REASON_HEALTHY: &str = "Healthy";
    pub const REASON_NOT_REACHABLE: &str = "NotReachable";
    pub const REASON_UNHEALTHY: &str = "Unhealthy";
    // Ready
    pub const REASON_READY: &str = "Ready";
    pub const REASON_NOT_READY: &str = "NotReady";

    /// Finalizer that makes deletion clean the cluster's stored rows first.
    pub const FINALIZER: &str = "clusterpedia.io/cluster-synchro-controller";
}

/// Per-resource sync conditions (`status.syncResources[].resources[].syncConditions[]`).
pub mod sync {
    pub const STATUS_PENDING: &str = "Pending";
    pub const STATUS_SYNCING: &str = "Syncing";
    pub const STATUS_STOP: &str = "Stop";
    pub const STATUS_UNKNOWN: &str = "Unknown";
    pub const STATUS_ERROR: &str = "Error";

    pub const REASON_SYNCHRO_CREATING: &str = "SynchroCreating";
    pub const REASON_SYNCHRO_CREATE_FAILED: &str = "SynchroCreateFailed";
    pub const REASON_RESOURCE_WATCH_FAILED: &str = "ResourceWatchFailed";
    pub const REASON_PAUSE: &str = "Pause";
    /// Upstream's spelling.
    pub const REASON_STORAGE_EXPECTION: &str = "StorageExpection";
    pub const REASON_SYNCHRO_REMOVED: &str = "SynchroRemoved";
    pub const REASON_CLEAN_RESOURCE_FAILED: &str = "CleanResourceFailed";
    pub const REASON_RESOURCE_SYNCHRO_NOT_FOUND: &str = "ResourceSynchroNotFound";
}

/// ClusterImportPolicy conditions.
pub mod policy {
    pub const VALIDATED: &str = "Validated";
    pub const RECONCILING: &str = "Reconciling";

    pub const REASON_FAILED_PARSE_LIFECYCLE_NAME: &str = "FailedParseLifecycleName";
    pub const REASON_FAILED_PARSE_SOURCE_SELECTOR: &str = "FailedParseSourceSelector";
    /// Upstream's spelling.
    pub const REASON_INVALAID_POLICY: &str = "InvalaidPolicy";
    pub const REASON_FAILED_NEGOTIATE_SOURCE_RESOURCE: &str = "FailedNegotiateSourceResource";
    pub const REASON_FAILED_NEGOTIATE_REFERENCE_RESOURCE: &str = "FailedNegotiateReferenceResource";
    pub const REASON_SUCCESS: &str = "Success";
    pub const REASON_WAIT_RESOURCE_SYNCED: &str = "WaitResourceSynced";
    pub const REASON_FAILED_CHECK_RESOURCE_SYNC: &str = "FailedCheckResourceSync";
    pub const REASON_FAILED_RECONCILE: &str = "FailedReconcile";
    pub const REASON_RECONCILE_SOURCE_RESOURCE_AND_LIFECYCLE: &str = "ReconcileSourceResourceAndLifecycle";

    pub const FINALIZER: &str = "clusterpedia.io/cluster-import-policy-controller";
}

/// PediaClusterLifecycle conditions.
pub mod lifecycle {
    pub const CREATED: &str = "Created";
    pub const UPDATING: &str = "Updating";

    pub const REASON_PEDIA_CLUSTER_EXISTED: &str = "PediaClusterExisted";
    pub const REASON_ORPHAN_LIFECYCLE: &str = "OrphanLifecycle";
    pub const REASON_WAIT_DEPENDENT_RESOURCE_SYNCED: &str = "WaitDependentResourceSynced";
    pub const REASON_SOURCE_RESOURCE_NOT_FOUND: &str = "SourceResourceNotFound";
    pub const REASON_FAILED_REFERENCE_RESOURCE_PARSE: &str = "FailedReferenceResourceParse";
    pub const REASON_REFERENCE_RESOURCE_NOT_FOUND: &str = "ReferenceResourceNotFound";
    pub const REASON_WAIT_CREATION_CONDITION: &str = "WaitCreationCondition";
    pub const REASON_FAILED_RESOLVE_AND_DECODE_PEDIA_CLUSTER: &str = "FailedResolveAndDecodePediaCluster";
    pub const REASON_FAILED_SET_OWNER: &str = "FailedSetOwner";
    pub const REASON_CREATION_FAILURE: &str = "CreationFailure";
    pub const REASON_PEDIA_CLUSTER_CREATED: &str = "PediaClusterCreated";
    pub const REASON_PEDIA_CLUSTER_UPDATED: &str = "PediaClusterUpdated";
    pub const REASON_FAILED_PATCH_PEDIA_CLUSTER: &str = "FailedPatchPediaCluster";

    pub const FINALIZER: &str = "clusterpedia.io/pediacluster-lifecycle-controller";
}

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Sets a condition by type, keeping `lastTransitionTime` unless the status changes (as
/// `meta.SetStatusCondition` does). Returns whether anything changed.
pub fn set(conditions: &mut Vec<Condition>, type_: &str, status: bool, reason: &str, message: &str) -> bool {
    set_status(conditions, type_, if status { "True" } else { "False" }, reason, message)
}

/// [`set`] with the status spelled out (`"True"`, `"False"` or `"Unknown"`).
pub fn set_status(conditions: &mut Vec<Condition>, type_: &str, status: &str, reason: &str, message: &str) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status && c.reason == reason && c.message == message => false,
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now();
            }
            c.status = status.to_owned();
            c.reason = reason.to_owned();
            c.message = message.to_owned();
            true
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                last_transition_time: now(),
                observed_generation: None,
            });
            true
        }
    }
}

/// Now, in whole seconds: what a `metav1.Time` keeps once written, so a status built in memory
/// compares equal to the same status read back.
pub fn now() -> Time {
    let t = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// Removes a condition by type; returns whether it was there.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    before != conditions.len()
}

/// The condition of a type, if set.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
