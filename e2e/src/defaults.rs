//! What kube-apiserver does to an object on every write before storing it, where a reader
//! depends on it: Secrets' `stringData` merged into `data`, Services' cluster IPs and policies,
//! the defaults of Pods and Deployments that kubectl and controllers read back. Pure.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Normalises a built-in object being written (create, update or patch).
pub fn on_write(group: &str, resource: &str, object: &mut Value) {
    match (group, resource) {
        ("", "secrets") => secret(object),
        ("", "services") => service(object),
        ("", "pods") => pod_spec(&mut object["spec"]),
        ("apps", "deployments") => deployment(object),
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

fn pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else { return };
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                let latest = c
                    .get("image")
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.ends_with(":latest") || !i.rsplit('/').next().unwrap_or(i).contains(':'));
                default(c, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
                default(c, "terminationMessagePath", json!("/dev/termination-log"));
                default(c, "terminationMessagePolicy", json!("File"));
                default(c, "resources", json!({}));
            }
        }
    }
}

fn deployment(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    default(
        spec,
        "strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    );
    if let Some(template) = spec.get_mut("template") {
        pod_spec(&mut template["spec"]);
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
    fn pods_and_deployments_get_their_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "reg:5000/b:1.2"}]}}}});
        on_write("apps", "deployments", &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always", "no tag means latest");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "IfNotPresent");
        let mut p = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x:1", "imagePullPolicy": "Never"}]}});
        on_write("", "pods", &mut p);
        assert_eq!(
            (p["spec"]["restartPolicy"].as_str(), p["spec"]["containers"][0]["imagePullPolicy"].as_str()),
            (Some("Never"), Some("Never")),
            "given values stay"
        );
        assert_eq!(p["spec"]["dnsPolicy"], "ClusterFirst");
    }
}
