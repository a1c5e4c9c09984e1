//! What the search API serves, built from the PediaClusters' `status.syncResources` (pure): per
//! cluster and for the global view (the union), the resources with their discovery details
//! (built-in kinds take kube-apiserver's short names and categories), and each cluster's
//! health warning.

use std::collections::BTreeMap;

use api_types::api::discovery;
use api_types::api::resources::{self, ResourceInfo};
use api_types::cluster::PediaCluster;
use api_types::conditions::cluster as conditions;

/// The verbs every served resource has: the search API is read-only.
pub const VERBS: [&str; 3] = ["get", "list", "watch"];

/// One PediaCluster as the search API sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterEntry {
    pub resources: Vec<ResourceInfo>,
    /// Set when the cluster is not healthy: responses that read it carry this warning.
    pub warning: Option<String>,
}

/// Every cluster's resources and the union of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    clusters: BTreeMap<String, ClusterEntry>,
    global: Vec<ResourceInfo>,
}

impl Catalog {
    /// Builds the catalog of the given PediaClusters; those being deleted are left out.
    pub fn build<'a>(clusters: impl IntoIterator<Item = &'a PediaCluster>) -> Self {
        let builtin = resources::builtin();
        let mut out = Catalog::default();
        for pc in clusters {
            let Some(name) = pc.metadata.name.clone() else { continue };
            if pc.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let entry = ClusterEntry { resources: cluster_resources(pc, &builtin), warning: warning(pc, &name) };
            out.clusters.insert(name, entry);
        }
        let mut global: Vec<ResourceInfo> = Vec::new();
        for r in out.clusters.values().flat_map(|c| c.resources.iter()) {
            if !global.iter().any(|g| same(g, r)) {
                global.push(r.clone());
            }
        }
        order(&mut global);
        out.global = global;
        out
    }

    /// The resources of one cluster, or of all (None when the cluster is unknown).
    pub fn resources(&self, cluster: Option<&str>) -> Option<Vec<&ResourceInfo>> {
        match cluster {
            None => Some(self.global.iter().collect()),
            Some(c) => self.clusters.get(c).map(|e| e.resources.iter().collect()),
        }
    }

    /// The resource served at `group/version/resource`, globally or in one cluster.
    pub fn find(&self, cluster: Option<&str>, group: &str, version: &str, resource: &str) -> Option<&ResourceInfo> {
        let list = match cluster {
            None => &self.global,
            Some(c) => &self.clusters.get(c)?.resources,
        };
        list.iter().find(|r| r.group == group && r.version == version && r.resource == resource)
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterEntry> {
        self.clusters.get(name)
    }

    pub fn cluster_names(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }
}

fn same(a: &ResourceInfo, b: &ResourceInfo) -> bool {
    a.group == b.group && a.version == b.version && a.resource == b.resource
}

/// Core group first, then groups by name; versions by priority (the preferred first); then
/// resources by name.
fn order(list: &mut [ResourceInfo]) {
    list.sort_by(|a, b| {
        (!a.group.is_empty(), &a.group)
            .cmp(&(!b.group.is_empty(), &b.group))
            .then_with(|| discovery::version_priority(&b.version).cmp(&discovery::version_priority(&a.version)))
            .then_with(|| a.version.cmp(&b.version))
            .then_with(|| a.resource.cmp(&b.resource))
    });
}

/// Every version listed in the status, whatever its sync state (as upstream): what was synced
/// once stays searchable while a member is away.
fn cluster_resources(pc: &PediaCluster, builtin: &[ResourceInfo]) -> Vec<ResourceInfo> {
    let mut out: Vec<ResourceInfo> = Vec::new();
    for group in pc.status.as_ref().and_then(|s| s.sync_resources.as_ref()).into_iter().flatten() {
        for r in &group.resources {
            let known = builtin.iter().find(|b| b.group == group.group && b.resource == r.name);
            for c in &r.sync_conditions {
                let info = ResourceInfo {
                    group: group.group.clone(),
                    version: c.version.clone(),
                    resource: r.name.clone(),
                    singular: known.map_or_else(|| r.kind.to_lowercase(), |b| b.singular.clone()),
                    kind: r.kind.clone(),
                    namespaced: r.namespaced,
                    verbs: VERBS.map(str::to_owned).to_vec(),
                    short_names: known.map(|b| b.short_names.clone()).unwrap_or_default(),
                    categories: known.map(|b| b.categories.clone()).unwrap_or_default(),
                    subresources: Vec::new(),
                };
                if !out.iter().any(|o| same(o, &info)) {
                    out.push(info);
                }
            }
        }
    }
    order(&mut out);
    out
}

/// Upstream's warning for a cluster whose `ClusterHealthy` condition is missing or not True.
fn warning(pc: &PediaCluster, name: &str) -> Option<String> {
    let healthy = pc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == conditions::CLUSTER_HEALTHY));
    match healthy {
        Some(c) if c.status == "True" => None,
        Some(c) if !c.reason.is_empty() => {
            Some(format!("{name} is not ready and the resources obtained may be inaccurate, reason: {}", c.reason))
        }
        _ => Some(format!("{name} is not ready and the resources obtained may be inaccurate.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(name: &str, healthy: Option<(&str, &str)>, resources: serde_json::Value) -> PediaCluster {
        let mut conds = vec![];
        if let Some((status, reason)) = healthy {
            conds.push(json!({"type": "ClusterHealthy", "status": status, "reason": reason, "message": "",
                              "lastTransitionTime": "2026-01-01T00:00:00Z"}));
        }
        serde_json::from_value(json!({
            "apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster",
            "metadata": {"name": name},
            "spec": {"syncResources": []},
            "status": {"conditions": conds, "syncResources": resources}
        }))
        .unwrap()
    }

    fn synced(group: &str, name: &str, kind: &str, namespaced: bool, versions: &[&str]) -> serde_json::Value {
        let conds: Vec<_> = versions
            .iter()
            .map(|v| json!({"version": v, "status": "Syncing", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
            .collect();
        json!({"group": group, "resources": [{"name": name, "kind": kind, "namespaced": namespaced, "syncConditions": conds}]})
    }

    #[test]
    fn global_view_is_the_union_and_clusters_keep_their_own() {
        let a = cluster(
            "a",
            Some(("True", "Healthy")),
            json!([
                synced("", "pods", "Pod", true, &["v1"]),
                synced("apps", "deployments", "Deployment", true, &["v1"])
            ]),
        );
        let b = cluster(
            "b",
            Some(("False", "Unhealthy")),
            json!([
                synced("", "pods", "Pod", true, &["v1"]),
                synced("example.com", "widgets", "Widget", false, &["v1beta1", "v1"])
            ]),
        );
        let c = Catalog::build(&[a, b]);
        let names = |cl: Option<&str>| -> Vec<String> {
            c.resources(cl).unwrap().iter().map(|r| format!("{}/{}/{}", r.group, r.version, r.resource)).collect()
        };
        assert_eq!(
            names(None),
            ["/v1/pods", "apps/v1/deployments", "example.com/v1/widgets", "example.com/v1beta1/widgets"]
        );
        assert_eq!(names(Some("a")), ["/v1/pods", "apps/v1/deployments"]);
        assert!(c.resources(Some("nope")).is_none());
        let pods = c.find(None, "", "v1", "pods").unwrap();
        assert_eq!(
            (pods.short_names.clone(), pods.categories.clone()),
            (vec!["po".to_owned()], vec!["all".to_owned()])
        );
        assert_eq!(pods.verbs, VERBS);
        assert!(pods.subresources.is_empty(), "no subresource is served");
        let w = c.find(Some("b"), "example.com", "v1", "widgets").unwrap();
        assert_eq!((w.singular.as_str(), w.namespaced), ("widget", false));
        assert!(c.find(Some("a"), "example.com", "v1", "widgets").is_none());
        assert!(c.cluster("a").unwrap().warning.is_none());
        assert_eq!(
            c.cluster("b").unwrap().warning.as_deref(),
            Some("b is not ready and the resources obtained may be inaccurate, reason: Unhealthy")
        );
        assert_eq!(c.cluster_names().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn clusters_without_health_or_being_deleted() {
        let fresh = cluster("fresh", None, json!([]));
        let mut gone = cluster("gone", Some(("True", "Healthy")), json!([synced("", "pods", "Pod", true, &["v1"])]));
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-01-01T00:00:00Z".parse().unwrap()));
        let c = Catalog::build(&[fresh, gone]);
        assert_eq!(
            c.cluster("fresh").unwrap().warning.as_deref(),
            Some("fresh is not ready and the resources obtained may be inaccurate.")
        );
        assert!(c.cluster("gone").is_none());
        assert!(c.resources(None).unwrap().is_empty());
    }
}
