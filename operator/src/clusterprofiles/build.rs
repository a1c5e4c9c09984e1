//! What a ClusterProfile becomes (pure): the PediaCluster's name, labels and spec, and the
//! kubeconfig in the Secret pedia owns that carries the credential to the synchro.

use std::collections::BTreeMap;

use api_types::cluster::{ClusterGroupResources, PediaCluster};
use api_types::multicluster::{ClusterProfile, KubeconfigCluster};
use kube::ResourceExt;
use serde_json::{Value, json};

use crate::exec_plugin::{Credential, user_entry};

/// Marks what the importer created; nothing without it is ever changed or deleted.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "pedia-clusterprofile-importer";
/// `<namespace>/<name>` of the profile a PediaCluster comes from.
pub const PROFILE: &str = "clusterprofile.clusterpedia.io/profile";
pub const PROFILE_NAMESPACE: &str = "clusterprofile.clusterpedia.io/namespace";
pub const PROFILE_NAME: &str = "clusterprofile.clusterpedia.io/name";
pub const HEALTHY: &str = "clusterprofile.clusterpedia.io/healthy";
pub const ACCESS_PROVIDER: &str = "clusterprofile.clusterpedia.io/access-provider";
/// The profile's properties, all of them, as JSON (labels take only the valid ones).
pub const PROPERTIES: &str = "clusterprofile.clusterpedia.io/properties";
/// The labels the importer set, so the ones a profile no longer has are removed.
pub const OWNED_LABELS: &str = "clusterprofile.clusterpedia.io/owned-labels";
/// On a profile: the ClusterSyncResources to sync instead of the default set.
pub const SYNC_RESOURCES: &str = "clusterprofile.clusterpedia.io/sync-resources";
pub const CLUSTER_MANAGER: &str = "x-k8s.io/cluster-manager";
pub const CLUSTERSET: &str = "multicluster.x-k8s.io/clusterset";
/// The KEP prose spells the clusterset label this way; both are read.
const CLUSTERSET_ALT: &str = "clusterset.multicluster.x-k8s.io";
/// The ClusterProperty naming the clusterset.
const CLUSTERSET_PROPERTY: &str = "clusterset.k8s.io";
/// The Secret key holding the kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// Longest PediaCluster name: a DNS label, since cluster names end up in label values and
/// search URLs.
const MAX_NAME: usize = 63;

/// `<prefix><namespace>-<name>`, shortened with a hash of the whole when too long.
pub fn cluster_name(prefix: &str, namespace: &str, name: &str) -> String {
    let full = format!("{prefix}{namespace}-{name}").to_ascii_lowercase();
    if full.len() <= MAX_NAME {
        return full;
    }
    let hash = format!("{:08x}", api_types::token::fnv(full.as_bytes()));
    let keep = full[..MAX_NAME - hash.len() - 1].trim_end_matches(['-', '.']);
    format!("{keep}-{hash}")
}

/// Whether the cluster manager says the member is healthy: `ControlPlaneHealthy=True` and not
/// `Joined=False`.
pub fn healthy(profile: &ClusterProfile) -> bool {
    let conds = profile.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let status = |t: &str| conds.iter().find(|c| c.type_ == t).map(|c| c.status.as_str());
    status("ControlPlaneHealthy") == Some("True") && status("Joined") != Some("False")
}

/// What the importer writes into a PediaCluster it keeps for a profile.
pub struct Inputs<'a> {
    pub prefix: &'a str,
    pub provider: &'a str,
    pub server: &'a str,
    pub default_sync_resources: Option<&'a str>,
    pub builtin_sync_resources: &'a [ClusterGroupResources],
}

/// The labels of the PediaCluster: ours, the cluster manager, the clusterset and the
/// properties whose name and value are valid label parts.
pub fn labels(profile: &ClusterProfile, healthy: bool) -> BTreeMap<String, String> {
    let valid = |k: &str, v: &str| {
        api_types::selector::validate_key(k).is_ok() && api_types::selector::validate_value(v).is_ok()
    };
    let mut labels = BTreeMap::new();
    let status = profile.status.as_ref();
    for p in status.and_then(|s| s.properties.as_deref()).unwrap_or_default() {
        if valid(&p.name, &p.value) && !reserved(&p.name) {
            labels.insert(p.name.clone(), p.value.clone());
        }
    }
    let own = profile.labels();
    let clusterset = own
        .get(CLUSTERSET)
        .or_else(|| own.get(CLUSTERSET_ALT))
        .cloned()
        .or_else(|| labels.get(CLUSTERSET_PROPERTY).cloned());
    let manager = own.get(CLUSTER_MANAGER).cloned().unwrap_or_else(|| profile.spec.cluster_manager.name.clone());
    for (k, v) in [
        (CLUSTER_MANAGER, Some(manager)),
        (CLUSTERSET, clusterset),
        (PROFILE_NAMESPACE, profile.namespace()),
        (PROFILE_NAME, Some(profile.name_any())),
    ] {
        if let Some(v) = v.filter(|v| valid(k, v)) {
            labels.insert(k.to_owned(), v);
        }
    }
    labels.insert(HEALTHY.into(), healthy.to_string());
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    labels
}

fn reserved(key: &str) -> bool {
    key == MANAGED_BY || key.starts_with("clusterprofile.clusterpedia.io/")
}

/// The PediaCluster for a profile (its metadata and spec; status is the synchro's).
pub fn pedia_cluster(profile: &ClusterProfile, healthy: bool, i: &Inputs<'_>) -> Value {
    let ns = profile.namespace().unwrap_or_default();
    let name = cluster_name(i.prefix, &ns, &profile.name_any());
    let labels = labels(profile, healthy);
    let status = profile.status.as_ref();
    let properties: BTreeMap<&str, &str> = status
        .and_then(|s| s.properties.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    let mut annotations = json!({
        PROFILE: format!("{ns}/{}", profile.name_any()),
        ACCESS_PROVIDER: i.provider,
        OWNED_LABELS: labels.keys().cloned().collect::<Vec<_>>().join(","),
    });
    if !properties.is_empty() {
        annotations[PROPERTIES] = json!(serde_json::to_string(&properties).unwrap_or_default());
    }
    let mut spec = json!({
        "apiserver": i.server,
        "authenticationFrom": {"kubeconfig": {"name": name, "key": KUBECONFIG_KEY}},
    });
    match profile.annotations().get(SYNC_RESOURCES).map(String::as_str).or(i.default_sync_resources) {
        Some(csr) => {
            spec["syncResourcesRefName"] = json!(csr);
            spec["syncResources"] = json!([]);
        }
        None => spec["syncResources"] = json!(i.builtin_sync_resources),
    }
    json!({
        "apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
    })
}

/// The kubeconfig the synchro uses: the profile's cluster entry (extensions and the CA file
/// path dropped: neither applies here) and the credential.
pub fn kubeconfig(cluster: &KubeconfigCluster, credential: &Credential) -> Value {
    let entry = KubeconfigCluster { extensions: None, certificate_authority: None, ..cluster.clone() };
    json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "member",
        "clusters": [{"name": "member", "cluster": entry}],
        "users": [{"name": "member", "user": user_entry(credential)}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
    })
}

/// Whether a PediaCluster is the importer's, for this profile.
pub fn owned_by(pc: &PediaCluster, profile_key: &str) -> bool {
    pc.labels().get(MANAGED_BY).map(String::as_str) == Some(MANAGER)
        && pc.annotations().get(PROFILE).map(String::as_str) == Some(profile_key)
}

/// The JSON merge patch that turns the existing PediaCluster into the desired one, `None` when
/// nothing changes: labels the importer set before and no longer wants are removed, labels
/// others added stay.
pub fn patch(existing: &PediaCluster, desired: &Value) -> Option<Value> {
    let mut labels = desired["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    for k in existing.annotations().get(OWNED_LABELS).map(|s| s.split(',')).into_iter().flatten() {
        if !k.is_empty() && !labels.contains_key(k) {
            labels.insert(k.to_owned(), Value::Null);
        }
    }
    let annotations = desired["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    // A merge patch of a map changes something when a key gets another value or goes away.
    let changes = |patch: &serde_json::Map<String, Value>, have: &BTreeMap<String, String>| {
        patch.iter().any(|(k, v)| match v {
            Value::Null => have.contains_key(k),
            v => have.get(k).map(|h| h.as_str()) != v.as_str(),
        })
    };
    let mut spec = desired["spec"].clone();
    if spec.get("syncResourcesRefName").is_none() {
        spec["syncResourcesRefName"] = Value::Null;
    }
    // A spec that does not serialize (it cannot: plain fields) reads as changed and is patched,
    // never as unchanged.
    let current = serde_json::to_value(&existing.spec).unwrap_or(Value::Null);
    let spec_changed = ["apiserver", "authenticationFrom", "syncResources", "syncResourcesRefName"]
        .iter()
        .any(|k| spec.get(*k).unwrap_or(&Value::Null) != current.get(*k).unwrap_or(&Value::Null));
    if !(spec_changed || changes(&labels, existing.labels()) || changes(&annotations, existing.annotations())) {
        return None;
    }
    Some(json!({"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn profile(v: Value) -> ClusterProfile {
        serde_json::from_value(v).unwrap()
    }

    fn ocm() -> ClusterProfile {
        profile(json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
            "metadata": {"name": "ocm-spoke-a", "namespace": "fleet-prod",
                         "labels": {"x-k8s.io/cluster-manager": "open-cluster-management", "multicluster.x-k8s.io/clusterset": "prod"}},
            "spec": {"displayName": "spoke-a", "clusterManager": {"name": "open-cluster-management"}},
            "status": {
                "properties": [
                    {"name": "cluster.clusterset.k8s.io", "value": "1f2e3d4c-0000-4000-8000-00000000000a"},
                    {"name": "clusterset.k8s.io", "value": "prod"},
                    {"name": "topology.kubernetes.io/region", "value": "eu-central-1"},
                    {"name": "note", "value": "has spaces, not a label value"},
                    {"name": "app.kubernetes.io/managed-by", "value": "someone"}],
                "conditions": [
                    {"type": "ControlPlaneHealthy", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-05-01T12:00:00Z"},
                    {"type": "Joined", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-05-01T12:00:00Z"}]}
        }))
    }

    fn inputs() -> Inputs<'static> {
        Inputs {
            prefix: "",
            provider: "secretreader",
            server: "https://spoke-a:6443",
            default_sync_resources: None,
            builtin_sync_resources: &[],
        }
    }

    #[test]
    fn names_are_deterministic_and_short_enough() {
        assert_eq!(cluster_name("", "fleet-prod", "ocm-spoke-a"), "fleet-prod-ocm-spoke-a");
        assert_eq!(cluster_name("cp-", "Fleet", "A"), "cp-fleet-a");
        let long = cluster_name("", "fleet-cluster-inventory", &"x".repeat(80));
        assert_eq!(long.len(), 63);
        assert_eq!(long, cluster_name("", "fleet-cluster-inventory", &"x".repeat(80)));
        assert_ne!(long, cluster_name("", "fleet-cluster-inventory", &"x".repeat(81)));
        assert!(api_types::validation::is_dns_subdomain(&long));
    }

    #[test]
    fn health_gates_on_control_plane_and_joined() {
        assert!(healthy(&ocm()));
        let mut p = ocm();
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[1].status = "False".into();
        assert!(!healthy(&p));
        p.status.as_mut().unwrap().conditions.as_mut().unwrap().remove(1);
        assert!(healthy(&p));
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "Unknown".into();
        assert!(!healthy(&p));
        assert!(!healthy(&profile(json!({"metadata": {"name": "x"}, "spec": {"clusterManager": {"name": "m"}}}))));
    }

    #[test]
    fn labels_annotations_and_spec() {
        let pc = pedia_cluster(&ocm(), true, &inputs());
        let labels = &pc["metadata"]["labels"];
        assert_eq!(pc["metadata"]["name"], "fleet-prod-ocm-spoke-a");
        assert_eq!(labels[CLUSTER_MANAGER], "open-cluster-management");
        assert_eq!(labels[CLUSTERSET], "prod");
        assert_eq!(labels["topology.kubernetes.io/region"], "eu-central-1");
        assert_eq!(labels["cluster.clusterset.k8s.io"], "1f2e3d4c-0000-4000-8000-00000000000a");
        assert_eq!(labels[PROFILE_NAMESPACE], "fleet-prod");
        assert_eq!(labels[MANAGED_BY], MANAGER, "a property cannot take over the ownership label");
        assert_eq!(labels[HEALTHY], "true");
        assert!(labels.get("note").is_none(), "invalid label values stay in the annotation only");
        let props: Value = serde_json::from_str(pc["metadata"]["annotations"][PROPERTIES].as_str().unwrap()).unwrap();
        assert_eq!(props["note"], "has spaces, not a label value");
        assert_eq!(pc["metadata"]["annotations"][PROFILE], "fleet-prod/ocm-spoke-a");
        assert_eq!(
            pc["spec"]["authenticationFrom"]["kubeconfig"],
            json!({"name": "fleet-prod-ocm-spoke-a", "key": "kubeconfig"})
        );
        assert_eq!(pc["spec"]["apiserver"], "https://spoke-a:6443");

        // The sync set: a profile annotation beats the default ClusterSyncResources.
        let with_default = Inputs { default_sync_resources: Some("fleet-default"), ..inputs() };
        assert_eq!(pedia_cluster(&ocm(), true, &with_default)["spec"]["syncResourcesRefName"], "fleet-default");
        let mut annotated = ocm();
        annotated.annotations_mut().insert(SYNC_RESOURCES.into(), "only-pods".into());
        assert_eq!(pedia_cluster(&annotated, true, &with_default)["spec"]["syncResourcesRefName"], "only-pods");
    }

    #[test]
    fn patches_only_what_changed_and_remove_dropped_labels() {
        let desired = pedia_cluster(&ocm(), true, &inputs());
        let mut existing: PediaCluster = serde_json::from_value(desired.clone()).unwrap();
        existing.labels_mut().insert("team".into(), "added-by-a-user".into());
        assert_eq!(patch(&existing, &desired), None, "no change, no write");

        let mut p = ocm();
        p.status.as_mut().unwrap().properties.as_mut().unwrap().retain(|p| p.name != "topology.kubernetes.io/region");
        let next = pedia_cluster(&p, false, &inputs());
        let patch = patch(&existing, &next).unwrap();
        assert_eq!(patch["metadata"]["labels"]["topology.kubernetes.io/region"], Value::Null);
        assert_eq!(patch["metadata"]["labels"][HEALTHY], "false");
        assert!(patch["metadata"]["labels"].get("team").is_none(), "others' labels are left alone");
        assert_eq!(patch["spec"]["syncResourcesRefName"], Value::Null);
    }

    #[test]
    fn the_kubeconfig_carries_the_cluster_entry_and_credential() {
        let cluster: KubeconfigCluster = serde_json::from_value(json!({
            "server": "https://m", "certificate-authority-data": "Q0E=", "tls-server-name": "m.internal",
            "certificate-authority": "/etc/ca.pem",
            "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"clusterName": "a"}}]}))
        .unwrap();
        let k = kubeconfig(&cluster, &Credential { token: Some("t".into()), cert: None, key: None, expires: None });
        let c = &k["clusters"][0]["cluster"];
        assert_eq!((c["server"].as_str(), c["tls-server-name"].as_str()), (Some("https://m"), Some("m.internal")));
        assert!(c.get("extensions").is_none() && c.get("certificate-authority").is_none());
        assert_eq!(k["users"][0]["user"], json!({"token": "t"}));
        let parsed: kube::config::Kubeconfig = serde_json::from_value(k).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("member"));
    }
}
