//! Printers of storage kinds as kube-apiserver has them: persistent volumes and claims, storage
//! and volume attributes classes, CSI drivers and nodes, volume attachments.

use crate::table::at;
use serde_json::{Value, json};

use super::format::{items, quantity, text};
use super::{age, func, name, text_at};
use crate::table::Column;

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP, in that order, each once.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v == m);
    [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
        .iter()
        .filter(|(mode, _)| has(mode))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// The class of a volume or claim: the beta annotation first, then `spec.storageClassName`.
fn storage_class(o: &Value) -> String {
    at(o, "/metadata/annotations")
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(o, "/spec/storageClassName"))
        .to_owned()
}

/// `Terminating` while deleted, else the phase.
fn phase(o: &Value) -> String {
    match at(o, "/metadata/deletionTimestamp") {
        Some(t) if !t.is_null() => "Terminating".into(),
        _ => text(o, "/status/phase").to_owned(),
    }
}

fn unset(o: &Value, pointer: &str) -> String {
    at(o, pointer).and_then(Value::as_str).map_or("<unset>".into(), str::to_owned)
}

pub(super) fn persistent_volume() -> Vec<Column> {
    vec![
        name(),
        func("Capacity", "string", |o, _| {
            json!(quantity(at(o, "/spec/capacity/storage")).unwrap_or_else(|| "0".into()))
        }),
        func("Access Modes", "string", |o, _| json!(access_modes(items(o, "/spec/accessModes")))),
        text_at("Reclaim Policy", "string", "/spec/persistentVolumeReclaimPolicy"),
        func("Status", "string", |o, _| json!(phase(o))),
        func("Claim", "string", |o, _| {
            json!(match at(o, "/spec/claimRef") {
                Some(c) if c.is_object() => format!("{}/{}", text(c, "/namespace"), text(c, "/name")),
                _ => String::new(),
            })
        }),
        func("StorageClass", "string", |o, _| json!(storage_class(o))).describe("StorageClass of the pv"),
        func("VolumeAttributesClass", "string", |o, _| json!(unset(o, "/spec/volumeAttributesClassName")))
            .describe("VolumeAttributesClass of the pv"),
        text_at("Reason", "string", "/status/reason"),
        age(),
        func("VolumeMode", "string", |o, _| json!(unset(o, "/spec/volumeMode"))).priority(1),
    ]
}

/// A bound claim's capacity and access modes come from its status; unbound, they are empty.
fn bound(o: &Value) -> bool {
    !text(o, "/spec/volumeName").is_empty()
}

pub(super) fn persistent_volume_claim() -> Vec<Column> {
    vec![
        name(),
        func("Status", "string", |o, _| json!(phase(o))),
        text_at("Volume", "string", "/spec/volumeName"),
        func("Capacity", "string", |o, _| {
            json!(if bound(o) {
                quantity(at(o, "/status/capacity/storage")).unwrap_or_else(|| "0".into())
            } else {
                String::new()
            })
        }),
        func("Access Modes", "string", |o, _| {
            json!(if bound(o) { access_modes(items(o, "/status/accessModes")) } else { String::new() })
        }),
        func("StorageClass", "string", |o, _| json!(storage_class(o))).describe("StorageClass of the pvc"),
        func("VolumeAttributesClass", "string", |o, _| json!(unset(o, "/spec/volumeAttributesClassName")))
            .describe("VolumeAttributesClass of the pvc"),
        age(),
        func("VolumeMode", "string", |o, _| json!(unset(o, "/spec/volumeMode"))).priority(1),
    ]
}

/// The class name with ` (default)` when an annotation makes it the default.
fn class_name(o: &Value, annotations: &[&str]) -> String {
    let default = annotations
        .iter()
        .any(|a| at(o, "/metadata/annotations").and_then(|m| m.get(*a)).and_then(Value::as_str) == Some("true"));
    let name = text(o, "/metadata/name");
    if default { format!("{name} (default)") } else { name.to_owned() }
}

pub(super) fn storage_class_columns() -> Vec<Column> {
    vec![
        func("Name", "string", |o, _| {
            json!(class_name(
                o,
                &["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"]
            ))
        })
        .name_format(),
        text_at("Provisioner", "string", "/provisioner"),
        func("ReclaimPolicy", "string", |o, _| json!(o["reclaimPolicy"].as_str().unwrap_or("Delete"))),
        func("VolumeBindingMode", "string", |o, _| json!(o["volumeBindingMode"].as_str().unwrap_or("Immediate"))),
        func("AllowVolumeExpansion", "string", |o, _| json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false))),
        age(),
    ]
}

pub(super) fn volume_attributes_class() -> Vec<Column> {
    vec![
        func("Name", "string", |o, _| json!(class_name(o, &["storage.kubernetes.io/is-default-class"]))).name_format(),
        text_at("DriverName", "string", "/driverName"),
        age(),
    ]
}

pub(super) fn csi_driver() -> Vec<Column> {
    vec![
        name(),
        func("AttachRequired", "boolean", |o, _| {
            json!(at(o, "/spec/attachRequired").and_then(Value::as_bool).unwrap_or(true))
        }),
        func("PodInfoOnMount", "boolean", |o, _| {
            json!(at(o, "/spec/podInfoOnMount").and_then(Value::as_bool).unwrap_or(false))
        }),
        func("StorageCapacity", "boolean", |o, _| {
            json!(at(o, "/spec/storageCapacity").and_then(Value::as_bool).unwrap_or(false))
        }),
        func("TokenRequests", "string", |o, _| {
            json!(match at(o, "/spec/tokenRequests").and_then(Value::as_array) {
                Some(t) => t.iter().map(|r| r["audience"].as_str().unwrap_or_default()).collect::<Vec<_>>().join(","),
                None => "<unset>".into(),
            })
        }),
        func("RequiresRepublish", "boolean", |o, _| {
            json!(at(o, "/spec/requiresRepublish").and_then(Value::as_bool).unwrap_or(false))
        }),
        func("Modes", "string", |o, _| {
            let modes: Vec<&str> = items(o, "/spec/volumeLifecycleModes").iter().filter_map(Value::as_str).collect();
            json!(if modes.is_empty() { "<none>".into() } else { modes.join(",") })
        }),
        age(),
    ]
}

pub(super) fn csi_node() -> Vec<Column> {
    vec![
        name(),
        func("Drivers", "integer", |o, _| json!(items(o, "/spec/drivers").len()))
            .describe("Drivers indicates the number of CSI drivers registered on the node"),
        age(),
    ]
}

pub(super) fn volume_attachment() -> Vec<Column> {
    vec![
        name(),
        text_at("Attacher", "string", "/spec/attacher").name_format(),
        text_at("PV", "string", "/spec/source/persistentVolumeName"),
        text_at("Node", "string", "/spec/nodeName"),
        func("Attached", "boolean", |o, _| json!(at(o, "/status/attached").and_then(Value::as_bool).unwrap_or(false))),
        age(),
    ]
}

pub(super) fn csi_storage_capacity() -> Vec<Column> {
    vec![
        name(),
        text_at("StorageClassName", "string", "/storageClassName"),
        func("Capacity", "string", |o, _| json!(quantity(o.get("capacity")).unwrap_or_else(|| "<unset>".into()))),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::cells;
    use serde_json::json;

    #[test]
    fn volumes_and_claims() {
        let pv = json!({"metadata": {"name": "pv1", "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "ns", "name": "data"},
                     "storageClassName": "fast", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        let c = cells("PersistentVolume", &pv);
        assert_eq!(
            c[1..9],
            [
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("ns/data"),
                json!("old"),
                json!("<unset>"),
                json!("")
            ]
        );
        assert_eq!(c[10], json!("Filesystem"));
        let pvc = |volume: &str| {
            json!({"metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"volumeName": volume, "storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOncePod"]}})
        };
        assert_eq!(
            cells("PersistentVolumeClaim", &pvc("pv1"))[1..7],
            [json!("Terminating"), json!("pv1"), json!("2Gi"), json!("RWOP"), json!("fast"), json!("<unset>")]
        );
        assert_eq!(
            cells("PersistentVolumeClaim", &pvc(""))[3..5],
            [json!(""), json!("")],
            "unbound: nothing from the status"
        );
    }

    #[test]
    fn classes_and_csi() {
        let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            cells("StorageClass", &sc)[..5],
            [
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false)
            ]
        );
        let drv = json!({"metadata": {"name": "d"}, "spec": {"tokenRequests": [{"audience": "a"}, {"audience": "b"}], "volumeLifecycleModes": ["Persistent"]}});
        assert_eq!(
            cells("CSIDriver", &drv)[1..7],
            [json!(true), json!(false), json!(false), json!("a,b"), json!(false), json!("Persistent")]
        );
        let va = json!({"metadata": {"name": "v"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
        assert_eq!(
            cells("VolumeAttachment", &va)[1..5],
            [json!("csi.example.com"), json!("pv1"), json!("n1"), json!(true)]
        );
    }
}
