//! The APIServices kube-aggregator registers for what the server itself serves: one per
//! built-in group-version (`v1.`, `v1.apps`, ...) and per CRD group-version, `spec.service: null`,
//! `Available=True/Local`, kept in step with CRDs. Discovery clients that wait for APIService
//! events before reporting themselves synced (as Clusterpedia's member discovery does) need them.

use serde_json::{Value, json};

use api_types::api::discovery;
use api_types::api::resources::ResourceInfo;

/// The label kube-aggregator puts on the APIServices it manages.
pub const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// `<version>.<group>` (the core group's is `v1.`).
pub fn name(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// The local APIServices for `served`; `is_custom` tells a CRD's group-version (label `true`)
/// from a built-in one (label `onstart`). Pure.
pub fn desired(served: &[&ResourceInfo], is_custom: &dyn Fn(&str, &str) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    let groups = discovery::groups(served);
    for (i, (group, versions)) in groups.iter().enumerate() {
        for (j, version) in versions.iter().enumerate() {
            let custom =
                served.iter().any(|r| &r.group == group && &r.version == version && is_custom(group, &r.resource));
            // Built-in groups rank in discovery order above CRD groups, as kube-aggregator's
            // priority table ranks them; the preferred version first.
            let (group_priority, version_priority) =
                if custom { (1000, 100 - j as i64) } else { (18000 - 100 * i as i64, 15 - j as i64) };
            out.push(json!({
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": name(group, version), "labels": {AUTOMANAGED: if custom { "true" } else { "onstart" }}},
                "spec": {"group": group, "version": version, "service": null,
                         "groupPriorityMinimum": group_priority, "versionPriority": version_priority},
                "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
                    "message": "Local APIServices are always available", "lastTransitionTime": crate::meta::now()}]}
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::api::resources::builtin;

    #[test]
    fn one_per_group_version_with_the_label_and_condition() {
        let all = builtin();
        let widget = ResourceInfo {
            group: "example.com".into(),
            resource: "widgets".into(),
            kind: "Widget".into(),
            ..all[0].clone()
        };
        let mut served: Vec<&ResourceInfo> = all.iter().collect();
        served.push(&widget);
        let list = desired(&served, &|g, r| g == "example.com" && r == "widgets");
        let names: Vec<&str> = list.iter().map(|a| a["metadata"]["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"v1.") && names.contains(&"v1.apps") && names.contains(&"v2.autoscaling"), "{names:?}");
        let w = list.iter().find(|a| a["metadata"]["name"] == "v1.example.com").unwrap();
        assert_eq!(w["metadata"]["labels"][AUTOMANAGED], "true");
        assert!(w["spec"]["service"].is_null());
        let core = list.iter().find(|a| a["metadata"]["name"] == "v1.").unwrap();
        assert_eq!(core["metadata"]["labels"][AUTOMANAGED], "onstart");
        assert_eq!(core["status"]["conditions"][0]["reason"], "Local");
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "one each");
    }
}
