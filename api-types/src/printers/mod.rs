//! Table columns of built-in kinds after kube-apiserver's printers
//! (`pkg/printers/internalversion`, and kube-aggregator's for APIServices): the same column
//! names, types, wide (priority 1) columns and cells, so `kubectl get` through pedia prints what
//! it prints against the member. Kinds without a printer get kube-apiserver's default table.

mod cluster;
mod format;
mod network;
mod pods;
mod storage;
mod workloads;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::table::{CellSource, Column};

fn name() -> Column {
    Column::new("Name", "string", CellSource::Name).describe("Name must be unique within a namespace.")
}

fn age() -> Column {
    Column::new("Age", "string", CellSource::Age)
}

/// A printer's cell: computed from the object at a time.
type Cell = fn(&Value, Timestamp) -> Value;

fn func(n: &str, t: &str, f: Cell) -> Column {
    Column::new(n, t, CellSource::Func(f))
}

/// An integer field (0 when absent, as Go's zero value prints).
fn integer(n: &str, t: &str, pointer: &str) -> Column {
    Column::new(n, t, CellSource::Integer(pointer.to_owned()))
}

/// A string field ("" when absent).
fn text_at(n: &str, t: &str, pointer: &str) -> Column {
    Column::new(n, t, CellSource::Text(pointer.to_owned()))
}

/// Columns for a built-in kind.
pub fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Pod" => pods::columns(),
        "PodTemplate" => workloads::pod_template(),
        "Deployment" => workloads::deployment(),
        "ReplicaSet" => workloads::replica_set(),
        "ReplicationController" => workloads::replication_controller(),
        "StatefulSet" => workloads::stateful_set(),
        "DaemonSet" => workloads::daemon_set(),
        "Job" => workloads::job(),
        "CronJob" => workloads::cron_job(),
        "HorizontalPodAutoscaler" => workloads::horizontal_pod_autoscaler(),
        "PodDisruptionBudget" => workloads::pod_disruption_budget(),
        "ControllerRevision" => workloads::controller_revision(),
        "Service" => network::service(),
        "Endpoints" => network::endpoints_columns(),
        "EndpointSlice" => network::endpoint_slice(),
        "Ingress" => network::ingress(),
        "IngressClass" => network::ingress_class(),
        "NetworkPolicy" => network::network_policy(),
        "PersistentVolume" => storage::persistent_volume(),
        "PersistentVolumeClaim" => storage::persistent_volume_claim(),
        "StorageClass" => storage::storage_class_columns(),
        "VolumeAttributesClass" => storage::volume_attributes_class(),
        "CSIDriver" => storage::csi_driver(),
        "CSINode" => storage::csi_node(),
        "CSIStorageCapacity" => storage::csi_storage_capacity(),
        "VolumeAttachment" => storage::volume_attachment(),
        "Node" => cluster::node(),
        "Namespace" => cluster::namespace(),
        "Event" => cluster::event(),
        "ConfigMap" => cluster::config_map(),
        "Secret" => cluster::secret(),
        "ServiceAccount" => cluster::service_account(),
        "RoleBinding" | "ClusterRoleBinding" => cluster::role_binding(kind),
        "Lease" => cluster::lease(),
        "PriorityClass" => cluster::priority_class(),
        "ResourceQuota" => cluster::resource_quota(),
        "RuntimeClass" => cluster::runtime_class(),
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => cluster::webhook_configuration(),
        "ValidatingAdmissionPolicy" => cluster::admission_policy("Validations"),
        "MutatingAdmissionPolicy" => cluster::admission_policy("Mutations"),
        "ValidatingAdmissionPolicyBinding" | "MutatingAdmissionPolicyBinding" => cluster::admission_policy_binding(),
        "CertificateSigningRequest" => cluster::certificate_signing_request(),
        "APIService" => cluster::api_service(),
        _ => cluster::default_columns(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::build;
    use serde_json::json;

    /// The cells of one object's row under its kind's columns.
    pub(super) fn cells(kind: &str, o: &Value) -> Vec<Value> {
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let t = build(&columns(kind), vec![o.clone()], &[], json!({}), now);
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    #[test]
    fn every_row_has_a_cell_per_column() {
        for kind in
            ["Pod", "Deployment", "Job", "CronJob", "Service", "Ingress", "PersistentVolume", "Node", "Event", "Role"]
        {
            let o = json!({"metadata": {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"}});
            assert_eq!(cells(kind, &o).len(), columns(kind).len(), "{kind}");
        }
        let names: Vec<String> = columns("Pod").iter().map(|c| c.name.clone()).collect();
        assert_eq!(
            names,
            ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
        );
        let wide: Vec<i64> = columns("Pod").iter().map(|c| c.priority).collect();
        assert_eq!(wide, [0, 0, 0, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn pod_rows() {
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}],
                       "containerStatuses": [{"ready": true, "restartCount": 2, "state": {"running": {}}},
                                             {"ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(
            cells("Pod", &pod),
            [
                json!("p"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("3"),
                json!("60m"),
                json!("10.0.0.1"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
