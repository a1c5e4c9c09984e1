//! Resource negotiation: from a PediaCluster's sync list and what the member serves, the
//! group-version-resources to sync and the status skeleton that lists them. Pure; the
//! rules are upstream's (`resource_negotiator.go`), with its `"*"`-drops-events quirk fixed.

use std::collections::{BTreeMap, BTreeSet};

use api_types::Gvr;
use api_types::cluster::{ClusterGroupResources, ClusterGroupResourcesStatus, ClusterResourceStatus};

/// One resource a member serves in one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedResource {
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

/// One API group of a member: versions in the server's preference order, resources per version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedGroup {
    pub name: String,
    pub versions: Vec<String>,
    pub resources: BTreeMap<String, Vec<ServedResource>>,
}

/// What a member serves (its discovery), plus the groups its CRDs define.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    pub groups: Vec<ServedGroup>,
    pub crd_groups: BTreeSet<String>,
    /// Groups whose discovery failed this time: what they serve is unknown, not gone.
    pub failed_groups: BTreeSet<String>,
    /// Each CRD version's entry (`spec.versions[i]`: printer columns, schema), by resource.
    pub definitions: BTreeMap<Gvr, serde_json::Value>,
    /// Every CRD could be read: only then do `definitions` replace what the store holds.
    pub definitions_complete: bool,
}

/// The definitions of the custom resources among `targets` (the search apiserver's Tables and
/// OpenAPI use them), in target order.
pub fn definitions_of(targets: &[Target], served: &Served) -> Vec<(Gvr, serde_json::Value)> {
    targets.iter().filter_map(|t| served.definitions.get(&t.gvr).map(|d| (t.gvr.clone(), d.clone()))).collect()
}

/// `(group, version, plural) -> version entry` of one CRD object.
pub fn crd_definitions(crd: &serde_json::Value) -> Vec<(Gvr, serde_json::Value)> {
    let spec = &crd["spec"];
    let (Some(group), Some(plural)) = (spec["group"].as_str(), spec["names"]["plural"].as_str()) else {
        return Vec::new();
    };
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(|name| (Gvr::new(group, name, plural), v.clone())))
        .collect()
}

/// One (cluster, GVR) to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub gvr: Gvr,
    pub kind: String,
    pub namespaced: bool,
    /// Attach the Events of these objects (`eventsInvolvedResources`).
    pub sync_events: bool,
    /// The member's kube-apiserver serves it itself (a built-in kind or a CRD), so its initial
    /// list may be streamed; an aggregated API may not know streaming lists and is paged.
    pub streaming: bool,
}

/// The outcome: what to sync, the status skeleton, and what was asked for but cannot be synced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Negotiated {
    pub targets: Vec<Target>,
    pub status: Vec<ClusterGroupResourcesStatus>,
    pub skipped: Vec<String>,
    /// Groups the member's discovery could not read: their synchros keep running and their rows
    /// stay (a failed read is no proof that a resource went away).
    pub unknown_groups: BTreeSet<String>,
}

/// Built-in Kubernetes groups (1.33) and the versions of them that ever existed. Built-in kinds
/// sync one version: the first the member prefers that Kubernetes knows.
const BUILTIN: &[(&str, &[&str])] = &[
    ("", &["v1"]),
    ("admissionregistration.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("apiextensions.k8s.io", &["v1", "v1beta1"]),
    ("apiregistration.k8s.io", &["v1", "v1beta1"]),
    ("apps", &["v1", "v1beta2", "v1beta1"]),
    ("authentication.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("authorization.k8s.io", &["v1", "v1beta1"]),
    ("autoscaling", &["v1", "v2", "v2beta2", "v2beta1"]),
    ("batch", &["v1", "v1beta1"]),
    ("certificates.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("coordination.k8s.io", &["v1", "v1beta1", "v1alpha2"]),
    ("discovery.k8s.io", &["v1", "v1beta1"]),
    ("events.k8s.io", &["v1", "v1beta1"]),
    ("extensions", &["v1beta1"]),
    ("flowcontrol.apiserver.k8s.io", &["v1", "v1beta3", "v1beta2", "v1beta1"]),
    ("internal.apiserver.k8s.io", &["v1alpha1"]),
    ("networking.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("node.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("policy", &["v1", "v1beta1"]),
    ("rbac.authorization.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("resource.k8s.io", &["v1beta2", "v1beta1", "v1alpha3"]),
    ("scheduling.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("storage.k8s.io", &["v1", "v1beta1", "v1alpha1"]),
    ("storagemigration.k8s.io", &["v1alpha1"]),
];

/// The versions Kubernetes itself defines for a built-in group; `None` for CRDs and aggregated APIs.
pub fn builtin_versions(group: &str) -> Option<&'static [&'static str]> {
    BUILTIN.iter().find(|(g, _)| *g == group).map(|(_, v)| *v)
}

/// The versions to sync of one resource. Built-in (`known` = the versions Kubernetes defines):
/// the first of `supported` (member preference order) that Kubernetes knows, whatever was
/// asked. Others: the listed ones that are served, all with `"*"`, else the first three.
pub fn sync_versions(known: Option<&[&str]>, wanted: &[String], supported: &[String]) -> Result<Vec<String>, String> {
    if let Some(known) = known {
        return supported
            .iter()
            .find(|v| known.contains(&v.as_str()))
            .map(|v| vec![v.clone()])
            .ok_or_else(|| format!("no served version is known to Kubernetes (served: {})", supported.join(", ")));
    }
    if wanted.is_empty() {
        return Ok(supported.iter().take(3).cloned().collect());
    }
    if wanted.iter().any(|w| w == "*") {
        return Ok(supported.to_vec());
    }
    let chosen: Vec<String> = supported.iter().filter(|s| wanted.contains(s)).cloned().collect();
    if chosen.is_empty() {
        return Err(format!("none of the versions {} is served (served: {})", wanted.join(", "), supported.join(", ")));
    }
    Ok(chosen)
}

impl Served {
    fn group(&self, name: &str) -> Option<&ServedGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

impl ServedGroup {
    /// Resolves a plural or singular name (any case) to the resource and the versions serving it,
    /// in preference order.
    fn find(&self, name: &str) -> Option<(&ServedResource, Vec<String>)> {
        let name = name.to_ascii_lowercase();
        let mut found: Option<&ServedResource> = None;
        let mut versions = Vec::new();
        for v in &self.versions {
            let hit = self
                .resources
                .get(v)
                .and_then(|rs| rs.iter().find(|r| r.plural == name || (!r.singular.is_empty() && r.singular == name)));
            if let Some(r) = hit {
                found.get_or_insert(r);
                versions.push(v.clone());
            }
        }
        found.map(|r| (r, versions))
    }

    /// Every top-level resource of the group, sorted by name.
    fn resource_names(&self) -> Vec<String> {
        let set: BTreeSet<String> =
            self.resources.values().flatten().filter(|r| !r.plural.contains('/')).map(|r| r.plural.clone()).collect();
        set.into_iter().collect()
    }
}

/// Expands wildcards: group `"*"` (every resource of the member, every version), resources
/// `"*"` (every resource of the group), and `syncAllCustomResources`.
fn expand(wanted: &[ClusterGroupResources], sync_all_custom: bool, served: &Served) -> Vec<ClusterGroupResources> {
    if wanted.iter().any(|g| g.group == "*") {
        let mut groups: Vec<&ServedGroup> = served.groups.iter().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        return groups
            .into_iter()
            .map(|g| ClusterGroupResources {
                group: g.name.clone(),
                versions: Some(vec!["*".into()]),
                resources: g.resource_names(),
                events_involved_resources: None,
            })
            .collect();
    }
    let mut out: Vec<ClusterGroupResources> = wanted
        .iter()
        .map(|g| {
            if !g.resources.iter().any(|r| r == "*") {
                return g.clone();
            }
            let resources = served.group(&g.group).map(ServedGroup::resource_names).unwrap_or_default();
            ClusterGroupResources { resources, ..g.clone() }
        })
        .collect();
    if sync_all_custom {
        out.retain(|g| !served.crd_groups.contains(&g.group));
        for name in &served.crd_groups {
            if let Some(g) = served.group(name) {
                out.push(ClusterGroupResources {
                    group: name.clone(),
                    versions: Some(vec!["*".into()]),
                    resources: g.resource_names(),
                    events_involved_resources: None,
                });
            }
        }
    }
    out
}

/// Negotiates the effective sync list against what the member serves.
pub fn negotiate(wanted: &[ClusterGroupResources], sync_all_custom: bool, served: &Served) -> Negotiated {
    let mut out = Negotiated { unknown_groups: served.failed_groups.clone(), ..Negotiated::default() };
    let mut seen = BTreeSet::new();
    let original: BTreeMap<&str, &ClusterGroupResources> = wanted.iter().map(|g| (g.group.as_str(), g)).collect();
    for entry in expand(wanted, sync_all_custom, served) {
        let events: Vec<String> = original
            .get(entry.group.as_str())
            .and_then(|g| g.events_involved_resources.clone())
            .or(entry.events_involved_resources.clone())
            .unwrap_or_default();
        let versions = entry.versions.clone().unwrap_or_default();
        for name in &entry.resources {
            let what = if entry.group.is_empty() { name.clone() } else { format!("{name}.{}", entry.group) };
            let Some(group) = served.group(&entry.group) else {
                out.skipped.push(format!("{what}: the member does not serve group {:?}", entry.group));
                continue;
            };
            let Some((resource, supported)) = group.find(name) else {
                out.skipped.push(format!("{what}: the member does not serve this resource"));
                continue;
            };
            if !(resource.verbs.iter().any(|v| v == "list") && resource.verbs.iter().any(|v| v == "watch")) {
                out.skipped.push(format!("{what}: the member does not allow list and watch on it"));
                continue;
            }
            let chosen = match sync_versions(builtin_versions(&entry.group), &versions, &supported) {
                Ok(v) => v,
                Err(why) => {
                    out.skipped.push(format!("{what}: {why}"));
                    continue;
                }
            };
            let sync_events = events.iter().any(|e| e == "*" || e.eq_ignore_ascii_case(name));
            for version in chosen {
                let gvr = Gvr::new(&entry.group, &version, &resource.plural);
                if !seen.insert(gvr.clone()) {
                    continue;
                }
                add_status(&mut out.status, &gvr, resource);
                out.targets.push(Target {
                    gvr,
                    kind: resource.kind.clone(),
                    namespaced: resource.namespaced,
                    sync_events,
                    streaming: builtin_versions(&entry.group).is_some() || served.crd_groups.contains(&entry.group),
                });
            }
        }
    }
    for g in &mut out.status {
        for r in &mut g.resources {
            r.sync_conditions.sort_by(|a, b| a.version.cmp(&b.version));
        }
    }
    out
}

impl Negotiated {
    /// Carries over, from the previous negotiation, the targets and status of groups whose
    /// discovery failed this time: they keep syncing and stay listed.
    pub fn keep_unknown_from(&mut self, previous: &Negotiated) {
        for group in &self.unknown_groups {
            for t in previous.targets.iter().filter(|t| &t.gvr.group == group) {
                if !self.targets.iter().any(|x| x.gvr == t.gvr) {
                    self.targets.push(t.clone());
                }
            }
            if let Some(g) = previous.status.iter().find(|g| &g.group == group)
                && !self.status.iter().any(|x| &x.group == group)
            {
                self.status.push(g.clone());
            }
        }
    }

    /// Of the resources synced (or stored) so far, those this negotiation retires: neither
    /// negotiated nor in a group whose discovery failed.
    pub fn retired<'a>(&self, current: impl IntoIterator<Item = &'a Gvr>) -> Vec<Gvr> {
        current
            .into_iter()
            .filter(|g| !self.unknown_groups.contains(&g.group) && !self.targets.iter().any(|t| &t.gvr == *g))
            .cloned()
            .collect()
    }
}

fn add_status(status: &mut Vec<ClusterGroupResourcesStatus>, gvr: &Gvr, r: &ServedResource) {
    let group = match status.iter_mut().position(|g| g.group == gvr.group) {
        Some(i) => &mut status[i],
        None => {
            status.push(ClusterGroupResourcesStatus { group: gvr.group.clone(), resources: Vec::new() });
            status.last_mut().expect("just pushed")
        }
    };
    let resource = match group.resources.iter_mut().position(|x| x.name == r.plural) {
        Some(i) => &mut group.resources[i],
        None => {
            group.resources.push(ClusterResourceStatus {
                name: r.plural.clone(),
                kind: r.kind.clone(),
                namespaced: r.namespaced,
                sync_conditions: Vec::new(),
            });
            group.resources.last_mut().expect("just pushed")
        }
    };
    resource.sync_conditions.push(crate::status::pending(&gvr.version));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const APPS: Option<&[&str]> = Some(&["v1", "v1beta2", "v1beta1"]);

    #[test]
    fn custom_resources_carry_their_crd_version_entries() {
        let crd = serde_json::json!({"spec": {"group": "example.io", "names": {"plural": "widgets"}, "versions": [
            {"name": "v1", "additionalPrinterColumns": [{"name": "Size", "type": "string", "jsonPath": ".spec.size"}]},
            {"name": "v2"}]}});
        let defs = crd_definitions(&crd);
        assert_eq!(
            defs.iter().map(|(g, _)| g.to_string()).collect::<Vec<_>>(),
            ["example.io/v1/widgets", "example.io/v2/widgets"]
        );
        assert_eq!(defs[0].1["additionalPrinterColumns"][0]["name"], "Size");
        assert!(crd_definitions(&serde_json::json!({"spec": {}})).is_empty(), "a malformed CRD defines nothing");
        let served = Served { definitions: defs.into_iter().collect(), ..Served::default() };
        let target = |r: &str| Target {
            gvr: Gvr::new("example.io", "v1", r),
            kind: "K".into(),
            namespaced: true,
            sync_events: false,
            streaming: true,
        };
        let picked = definitions_of(&[target("widgets"), target("gadgets")], &served);
        assert_eq!(picked.len(), 1, "only synced resources with a definition");
        assert_eq!(picked[0].0, Gvr::new("example.io", "v1", "widgets"));
    }

    #[test]
    fn builtin_kinds_take_the_first_known_version_whatever_was_asked() {
        // Upstream's resource_negotiator_test.go cases for apps/Deployment.
        assert_eq!(sync_versions(APPS, &v(&["v1"]), &v(&["v1"])).unwrap(), v(&["v1"]));
        assert_eq!(sync_versions(APPS, &v(&["v1beta1"]), &v(&["v1", "v1beta2", "v1beta1"])).unwrap(), v(&["v1"]));
        assert_eq!(sync_versions(APPS, &[], &v(&["v1beta2", "v1beta1"])).unwrap(), v(&["v1beta2"]));
        assert_eq!(sync_versions(APPS, &[], &v(&["v2", "v1", "v1beta2"])).unwrap(), v(&["v1"]));
        assert_eq!(sync_versions(APPS, &[], &v(&["v2", "v1beta2"])).unwrap(), v(&["v1beta2"]));
        assert!(sync_versions(APPS, &[], &v(&["v2"])).is_err());
        assert!(sync_versions(APPS, &[], &v(&["v2", "v1alpha2"])).is_err());
    }

    #[test]
    fn custom_kinds_take_up_to_three_or_the_listed_ones() {
        let five = v(&["v2", "v1", "v1beta2", "v1beta1", "v1alpha1"]);
        assert_eq!(sync_versions(None, &[], &v(&["v1beta2", "v1beta1"])).unwrap(), v(&["v1beta2", "v1beta1"]));
        assert_eq!(sync_versions(None, &[], &five).unwrap(), v(&["v2", "v1", "v1beta2"]));
        assert_eq!(sync_versions(None, &v(&["*"]), &five).unwrap(), five);
        let supported = v(&["v1beta2", "v1beta1", "v1alpha2"]);
        assert_eq!(sync_versions(None, &v(&["v1beta2"]), &supported).unwrap(), v(&["v1beta2"]));
        assert_eq!(sync_versions(None, &v(&["v1alpha2", "v1beta2"]), &supported).unwrap(), v(&["v1beta2", "v1alpha2"]));
        assert_eq!(sync_versions(None, &v(&["v2beta1", "v1alpha2"]), &supported).unwrap(), v(&["v1alpha2"]));
        assert!(sync_versions(None, &v(&["v2beta1"]), &supported).is_err());
    }

    fn res(plural: &str, singular: &str, kind: &str, namespaced: bool) -> ServedResource {
        ServedResource {
            plural: plural.into(),
            singular: singular.into(),
            kind: kind.into(),
            namespaced,
            verbs: v(&["get", "list", "watch"]),
        }
    }

    fn served() -> Served {
        let core = ServedGroup {
            name: "".into(),
            versions: v(&["v1"]),
            resources: [(
                "v1".to_string(),
                vec![
                    res("pods", "pod", "Pod", true),
                    res("pods/status", "", "Pod", true),
                    res("configmaps", "configmap", "ConfigMap", true),
                    res("namespaces", "namespace", "Namespace", false),
                ],
            )]
            .into(),
        };
        let apps = ServedGroup {
            name: "apps".into(),
            versions: v(&["v1"]),
            resources: [("v1".to_string(), vec![res("deployments", "deployment", "Deployment", true)])].into(),
        };
        let widgets = ServedGroup {
            name: "example.io".into(),
            versions: v(&["v2", "v1"]),
            resources: [
                ("v1".to_string(), vec![res("widgets", "widget", "Widget", true)]),
                ("v2".to_string(), vec![res("widgets", "widget", "Widget", true)]),
            ]
            .into(),
        };
        Served {
            groups: vec![core, apps, widgets],
            crd_groups: ["example.io".to_string()].into(),
            ..Default::default()
        }
    }

    fn entry(group: &str, resources: &[&str]) -> ClusterGroupResources {
        ClusterGroupResources { group: group.into(), resources: v(resources), ..Default::default() }
    }

    fn gvrs(n: &Negotiated) -> Vec<String> {
        n.targets.iter().map(|t| t.gvr.to_string()).collect()
    }

    #[test]
    fn singular_and_mixed_case_names_resolve_to_the_plural() {
        let n = negotiate(&[entry("", &["Pod", "configmaps"]), entry("apps", &["deployment"])], false, &served());
        assert_eq!(gvrs(&n), v(&["v1/pods", "v1/configmaps", "apps/v1/deployments"]));
        assert_eq!(n.status[0].resources[0].name, "pods");
        assert_eq!(n.status[0].resources[0].sync_conditions[0].status, "Pending");
        assert_eq!(n.status[0].resources[0].sync_conditions[0].reason.as_deref(), Some("SynchroCreating"));
    }

    #[test]
    fn a_crd_syncs_every_served_version_up_to_three_sorted_in_status() {
        let n = negotiate(&[entry("example.io", &["widgets"])], false, &served());
        assert_eq!(gvrs(&n), v(&["example.io/v2/widgets", "example.io/v1/widgets"]));
        let versions: Vec<&str> = n.status[0].resources[0].sync_conditions.iter().map(|c| c.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v2"]);
    }

    #[test]
    fn lists_are_streamed_only_from_what_the_apiserver_serves_itself() {
        let mut fleet = served();
        fleet.groups.push(ServedGroup {
            name: "metrics.k8s.io".into(),
            versions: v(&["v1beta1"]),
            resources: [("v1beta1".to_string(), vec![res("pods", "", "PodMetrics", true)])].into(),
        });
        let wanted = [entry("", &["pods"]), entry("example.io", &["widgets"]), entry("metrics.k8s.io", &["pods"])];
        let n = negotiate(&wanted, false, &fleet);
        let streamed: Vec<(String, bool)> = n.targets.iter().map(|t| (t.gvr.to_string(), t.streaming)).collect();
        assert_eq!(
            streamed,
            [
                ("v1/pods".to_string(), true),
                ("example.io/v2/widgets".to_string(), true),
                ("example.io/v1/widgets".to_string(), true),
                ("metrics.k8s.io/v1beta1/pods".to_string(), false)
            ],
            "built-in kinds and CRDs stream; an aggregated API is paged"
        );
    }

    #[test]
    fn wildcards_expand_and_keep_events() {
        let mut all_core = entry("", &["*"]);
        all_core.events_involved_resources = Some(v(&["*"]));
        let n = negotiate(&[all_core], false, &served());
        assert_eq!(gvrs(&n), v(&["v1/configmaps", "v1/namespaces", "v1/pods"]), "subresources are left out");
        assert!(n.targets.iter().all(|t| t.sync_events), "upstream drops events here; pedia keeps them");
        let everything = negotiate(&[entry("*", &["*"])], false, &served());
        assert_eq!(everything.targets.len(), 6);
        assert_eq!(everything.status.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["", "apps", "example.io"]);
    }

    #[test]
    fn sync_all_custom_resources_adds_every_crd_version() {
        let n = negotiate(&[entry("", &["pods"])], true, &served());
        assert_eq!(gvrs(&n), v(&["v1/pods", "example.io/v2/widgets", "example.io/v1/widgets"]));
    }

    #[test]
    fn unknown_or_unwatchable_resources_are_skipped_with_a_reason() {
        let mut s = served();
        s.groups[0].resources.get_mut("v1").unwrap()[2].verbs = v(&["get"]);
        let n = negotiate(&[entry("", &["pods", "nosuch", "configmaps"]), entry("nosuch.io", &["x"])], false, &s);
        assert_eq!(gvrs(&n), v(&["v1/pods"]));
        assert_eq!(n.skipped.len(), 3, "{:?}", n.skipped);
        assert!(n.skipped[1].contains("list and watch"), "{:?}", n.skipped);
    }

    #[test]
    fn a_failed_discovery_retires_nothing_of_its_group() {
        let mut s = served();
        s.groups.retain(|g| g.name != "apps");
        s.failed_groups.insert("apps".into());
        let n = negotiate(&[entry("", &["pods"]), entry("apps", &["deployments"])], false, &s);
        let current =
            [Gvr::new("apps", "v1", "deployments"), Gvr::new("", "v1", "pods"), Gvr::new("", "v1", "secrets")];
        assert_eq!(n.retired(&current), vec![Gvr::new("", "v1", "secrets")]);
    }

    #[test]
    fn a_failed_discovery_keeps_the_group_listed_and_synced() {
        let wanted = [entry("", &["pods"]), entry("apps", &["deployments"])];
        let before = negotiate(&wanted, false, &served());
        let mut s = served();
        s.groups.retain(|g| g.name != "apps");
        s.failed_groups.insert("apps".into());
        let mut now = negotiate(&wanted, false, &s);
        now.keep_unknown_from(&before);
        assert_eq!(gvrs(&now), v(&["v1/pods", "apps/v1/deployments"]));
        assert_eq!(now.status.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["", "apps"]);
        assert!(now.retired(&[Gvr::new("apps", "v1", "deployments")]).is_empty());
    }

    #[test]
    fn a_resource_listed_twice_is_synced_once() {
        let n = negotiate(&[entry("", &["pods"]), entry("", &["pod"])], false, &served());
        assert_eq!(gvrs(&n), v(&["v1/pods"]));
        assert_eq!(n.status[0].resources.len(), 1);
    }
}
