//! What kube-apiserver does to an object on every write before storing it, where a reader
//! depends on it: Secrets' `stringData` merged into `data`, Services' cluster IPs and policies,
//! the Deployment fields kubectl and controllers read back (replicas, strategy), a Pod's `podIPs`
//! and `hostIPs` from `podIP` and `hostIP` (the pod printer reads `podIPs`). Other Pod-level
//! defaults are left out on purpose: no reader of ours depends on them, and they would make every
//! stored pod a quarter larger. Pure.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Normalises a built-in object being written (create, update or patch).
pub fn on_write(group: &str, resource: &str, object: &mut Value) {
    match (group, resource) {
        ("", "secrets") => secret(object),
        ("", "services") => service(object),
        ("apps", "deployments") => deployment(object),
        ("", "pods") => pod(object),
        _ => {}
    }
}

/// `stringData` is write-only: its values move into `data`, base64-encoded, replacing the same
/// keys (kube-apiserver's Secret strategy).
fn secret(object: &mut Value) {
    let Some(Value::Object(strings)) = object.as_object_mut().and_then(|o| o.remove("stringData")) else { return };
    if !object["data"].is_object() {
        object["data"] = json!({});
    }
    for (k, v) in strings {
        let text = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
        object["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
    if object.get("type").is_none() {
        object["type"] = json!("Opaque");
    }
}

/// kube-apiserver's v1 conversion fills the dual-stack lists from the single addresses: a pod
/// written with `status.podIP` reads back with `status.podIPs: [{ip}]` too (`hostIP` likewise).
fn pod(object: &mut Value) {
    let Some(status) = object.get_mut("status").and_then(Value::as_object_mut) else { return };
    for (single, list) in [("podIP", "podIPs"), ("hostIP", "hostIPs")] {
        let ip = status.get(single).and_then(Value::as_str).filter(|ip| !ip.is_empty()).map(str::to_owned);
        if let Some(ip) = ip
            && status.get(list).and_then(Value::as_array).is_none_or(Vec::is_empty)
        {
            status.insert(list.to_owned(), json!([{"ip": ip}]));
        }
    }
}

fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_owned()).or_insert(value);
}

/// A ClusterIP from the object's name (stable, inside 10.96.0.0/12 like kubeadm's default range).
fn cluster_ip(seed: &str) -> String {
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("10.{}.{}.{}", 96 + (h % 16), (h >> 8) % 256, 1 + (h >> 16) % 254)
}

fn service(object: &mut Value) {
    let seed = format!(
        "{}/{}",
        object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default(),
        object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    );
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    let external = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
    if !external {
        let ip = match spec.get("clusterIP").and_then(Value::as_str) {
            Some(ip) if !ip.is_empty() => ip.to_owned(),
            _ => cluster_ip(&seed),
        };
        spec.insert("clusterIP".into(), json!(ip));
        default(spec, "clusterIPs", json!([ip]));
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        if ip != "None" {
            default(spec, "ipFamilies", json!([family]));
        }
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default(p, "targetPort", port);
            }
        }
    }
}

fn deployment(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    // Field by field, as kube-apiserver: `strategy: {}` gets the same defaults as none.
    default(spec, "strategy", json!({}));
    let Some(strategy) = spec.get_mut("strategy").and_then(Value::as_object_mut) else { return };
    default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        default(strategy, "rollingUpdate", json!({}));
        if let Some(rolling) = strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
            default(rolling, "maxUnavailable", json!("25%"));
            default(rolling, "maxSurge", json!("25%"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_becomes_data() {
        let mut s = json!({"kind": "Secret", "data": {"a": "b2xk", "keep": "eA=="}, "stringData": {"a": "new", "server": "https://x"}});
        on_write("", "secrets", &mut s);
        assert_eq!(
            s,
            json!({"kind": "Secret", "type": "Opaque", "data": {"a": "bmV3", "keep": "eA==", "server": "aHR0cHM6Ly94"}})
        );
        let mut plain = json!({"data": {"a": "eA=="}, "type": "kubernetes.io/tls"});
        let before = plain.clone();
        on_write("", "secrets", &mut plain);
        assert_eq!(plain, before, "nothing to merge, nothing changes");
    }

    #[test]
    fn services_get_their_ips_and_policies() {
        let mut s = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}});
        on_write("", "services", &mut s);
        let ip = s["spec"]["clusterIP"].as_str().unwrap().to_owned();
        assert!(ip.starts_with("10."), "{ip}");
        assert_eq!(s["spec"]["clusterIPs"], json!([ip]));
        assert_eq!(
            (s["spec"]["type"].as_str(), s["spec"]["ipFamilies"][0].as_str()),
            (Some("ClusterIP"), Some("IPv4"))
        );
        assert_eq!(s["spec"]["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
        let mut again = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {}});
        on_write("", "services", &mut again);
        assert_eq!(again["spec"]["clusterIP"], ip.as_str(), "stable per name");
        let mut given = json!({"spec": {"clusterIP": "10.96.0.10"}});
        on_write("", "services", &mut given);
        assert_eq!(given["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        on_write("", "services", &mut headless);
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert!(headless["spec"].get("ipFamilies").is_none());
        let mut external = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        on_write("", "services", &mut external);
        assert!(external["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn deployments_get_their_defaults_and_pods_stay_as_sent() {
        let mut d =
            json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}}});
        on_write("apps", "deployments", &mut d);
        assert_eq!(d["spec"]["replicas"], 3, "given values stay");
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        let mut empty = json!({"spec": {"strategy": {}}});
        on_write("apps", "deployments", &mut empty);
        assert_eq!(empty["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%", "an empty strategy is defaulted");
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        on_write("apps", "deployments", &mut recreate);
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        let mut p = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let before = p.clone();
        on_write("", "pods", &mut p);
        assert_eq!(p, before);
        let mut running = json!({"status": {"podIP": "10.0.0.1", "hostIP": "192.168.0.10"}});
        on_write("", "pods", &mut running);
        assert_eq!(running["status"]["podIPs"], json!([{"ip": "10.0.0.1"}]), "the dual-stack list backfilled");
        assert_eq!(running["status"]["hostIPs"], json!([{"ip": "192.168.0.10"}]));
        let mut dual = json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}});
        on_write("", "pods", &mut dual);
        assert_eq!(dual["status"]["podIPs"][1]["ip"], "fd00::1", "a given list stays");
    }
}
