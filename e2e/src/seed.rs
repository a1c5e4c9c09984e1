//! Realistic workloads for simulated member clusters: nodes, namespaces, deployments with their
//! replicasets and pods (owner references, container statuses), services, configmaps, secrets,
//! events, and a CRD with objects. Objects carry managedFields and the last-applied annotation,
//! as objects in real clusters do.

use api_types::status::StatusError;
use pedia_testkit::Pod;
use serde_json::{Value, json};

use crate::kubeconfig::base64;
use crate::meta;
use crate::sim::KubeSim;

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct SeedSize {
    pub namespaces: usize,
    pub deployments_per_namespace: usize,
    pub replicas: usize,
    pub nodes: usize,
}

impl Default for SeedSize {
    fn default() -> Self {
        Self { namespaces: 2, deployments_per_namespace: 2, replicas: 2, nodes: 2 }
    }
}

const APPS: [&str; 6] = ["web", "api", "worker", "cache", "db", "queue"];

/// The CRD every member has, so custom resources are exercised too.
pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
                ],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "color": {"type": "string"}}},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
                }}}
            }]
        }
    })
}

fn last_applied(o: &Value) -> String {
    let mut copy = o.clone();
    if let Some(m) = copy.as_object_mut() {
        m.remove("status");
    }
    copy.to_string()
}

fn with_last_applied(mut o: Value) -> Value {
    let la = last_applied(&o);
    o["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!(la);
    o
}

/// A short stable hash, like the pod-template-hash of a replicaset.
fn short_hash(s: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10).map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char).collect()
}

fn node(cluster: &str, i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("{cluster}-node-{i}"), "labels": {
            "kubernetes.io/hostname": format!("{cluster}-node-{i}"), "kubernetes.io/os": "linux",
            "node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
        "spec": {"podCIDR": format!("10.244.{i}.0/24")},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3800m", "memory": "15Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": meta::now(), "lastTransitionTime": meta::now()}],
            "addresses": [{"type": "InternalIP", "address": format!("192.168.0.{}", 10 + i)}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12", "containerRuntimeVersion": "containerd://1.7.24",
                         "kernelVersion": "6.1.0", "operatingSystem": "linux", "architecture": "amd64"}
        }
    })
}

fn labels(app: &str) -> Value {
    json!({"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop", "tier": if app == "db" || app == "cache" { "data" } else { "app" }})
}

fn container(app: &str) -> Value {
    let mut container = pedia_testkit::container(app, &format!("registry.example.com/{app}:1.4.2"));
    container["env"] = json!([{"name": "APP", "value": app}]);
    container
}

fn owner(api_version: &str, kind: &str, o: &Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": o["metadata"]["name"], "uid": o["metadata"]["uid"],
           "controller": true, "blockOwnerDeletion": true})
}

/// Seeds one member cluster. `cluster` prefixes node names.
pub async fn seed(sim: &KubeSim, cluster: &str, size: SeedSize) -> Result<(), StatusError> {
    for i in 0..size.nodes {
        let created = sim.create(node(cluster, i)).await?;
        let name = created["metadata"]["name"].as_str().unwrap_or_default();
        let uid = created["metadata"]["uid"].as_str().unwrap_or_default();
        sim.create(crate::bootstrap::node_lease(name, uid)).await?;
    }
    sim.create(widget_crd()).await?;
    for n in 0..size.namespaces {
        let ns = format!("shop-{n}");
        sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": format!("team-{}", n % 2)}}})).await?;
        for d in 0..size.deployments_per_namespace {
            let app = if d < APPS.len() { APPS[d].to_owned() } else { format!("{}-{d}", APPS[d % APPS.len()]) };
            seed_app(sim, cluster, &ns, &app, size).await?;
        }
        sim.create(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": format!("widget-{n}"), "namespace": ns, "labels": {"color": if n % 2 == 0 { "blue" } else { "green" }}},
            "spec": {"size": 3 + n, "color": if n % 2 == 0 { "blue" } else { "green" }},
            "status": {"phase": "Ready"}})).await?;
    }
    Ok(())
}

async fn seed_app(sim: &KubeSim, cluster: &str, ns: &str, app: &str, size: SeedSize) -> Result<(), StatusError> {
    let template = json!({"metadata": {"labels": labels(app)}, "spec": {"containers": [container(app)]}});
    let deploy = with_last_applied(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "namespace": ns, "labels": labels(app), "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": size.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": app}}, "template": template},
        "status": {"observedGeneration": 1, "replicas": size.replicas, "updatedReplicas": size.replicas, "readyReplicas": size.replicas,
                   "availableReplicas": size.replicas,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
                                   "lastUpdateTime": meta::now(), "lastTransitionTime": meta::now()}]}
    }));
    let deploy = sim.create(deploy).await?;
    let hash = short_hash(&format!("{ns}/{app}"));
    let rs = sim
        .create(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{app}-{hash}"), "namespace": ns,
                         "labels": {"app.kubernetes.io/name": app, "pod-template-hash": hash},
                         "ownerReferences": [owner("apps/v1", "Deployment", &deploy)]},
            "spec": {"replicas": size.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": app, "pod-template-hash": hash}}, "template": template},
            "status": {"replicas": size.replicas, "readyReplicas": size.replicas, "availableReplicas": size.replicas, "fullyLabeledReplicas": size.replicas, "observedGeneration": 1}
        }))
        .await?;
    for r in 0..size.replicas {
        let name = format!("{app}-{hash}-{}", meta::name_suffix());
        let node = format!("{cluster}-node-{}", r % size.nodes.max(1));
        let mut pod_labels = labels(app);
        pod_labels["pod-template-hash"] = json!(hash);
        let rs_name = rs["metadata"]["name"].as_str().unwrap_or_default();
        let rs_uid = rs["metadata"]["uid"].as_str().unwrap_or_default();
        let pod = Pod::new(ns, &name)
            .labels(pod_labels)
            .owned_by("apps/v1", "ReplicaSet", rs_name, rs_uid)
            .container(container(app))
            .node(&node)
            .spec("restartPolicy", "Always")
            .spec("serviceAccountName", "default")
            .phase("Running")
            .status("podIP", format!("10.244.{}.{}", r % 250, 10 + r % 200))
            .status("hostIP", "192.168.0.10")
            .status("qosClass", "Burstable")
            .status("startTime", meta::now())
            .status("conditions", json!([{"type": "Ready", "status": "True", "lastTransitionTime": meta::now()},
                                         {"type": "PodScheduled", "status": "True", "lastTransitionTime": meta::now()}]))
            .status("containerStatuses", json!([{"name": app, "ready": true, "started": true, "restartCount": r % 3,
                                                 "image": format!("registry.example.com/{app}:1.4.2"), "imageID": "sha256:0f3c",
                                                 "containerID": format!("containerd://{}", short_hash(&name)),
                                                 "state": {"running": {"startedAt": meta::now()}}}]));
        let pod = sim.create(pod.build()).await?;
        sim.create(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{}", short_hash(&format!("{name}-scheduled"))), "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns, "uid": pod["metadata"]["uid"]},
            "reason": "Scheduled", "message": format!("Successfully assigned {ns}/{name} to {node}"), "type": "Normal",
            "source": {"component": "default-scheduler"}, "firstTimestamp": meta::now(), "lastTimestamp": meta::now(), "count": 1,
            "reportingComponent": "default-scheduler"
        }))
        .await?;
    }
    sim.create(with_last_applied(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": app, "namespace": ns, "labels": labels(app)},
        "spec": {"type": "ClusterIP", "clusterIP": format!("10.96.{}.{}", app.len(), ns.len()), "selector": {"app.kubernetes.io/name": app},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    })))
    .await?;
    sim.create(with_last_applied(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{app}-config"), "namespace": ns, "labels": labels(app)},
        "data": {"LOG_LEVEL": "info", "FEATURE_X": "true"}
    })))
    .await?;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": format!("{app}-credentials"), "namespace": ns, "labels": labels(app)},
        "data": {"password": base64(format!("{app}-s3cr3t+/=").as_bytes())}
    }))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[tokio::test]
    async fn seeded_objects_are_linked_and_have_status() {
        let sim = KubeSim::new(crate::Config::default());
        seed(&sim, "m1", SeedSize::default()).await.unwrap();
        let (_, pods) = sim.request(Method::GET, "/api/v1/pods", None).await;
        let pods = pods["items"].as_array().unwrap();
        assert_eq!(pods.len(), 2 * 2 * 2);
        assert!(
            pods.iter()
                .all(|p| p["status"]["phase"] == "Running"
                    && p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet")
        );
        assert!(pods.iter().all(|p| p["metadata"]["managedFields"].is_array()));
        let (_, deploys) = sim.request(Method::GET, "/apis/apps/v1/namespaces/shop-0/deployments", None).await;
        assert!(
            deploys["items"][0]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .is_string()
        );
        let (_, widgets) = sim.request(Method::GET, "/apis/example.com/v1/widgets", None).await;
        assert_eq!(widgets["items"].as_array().unwrap().len(), 2);
        assert_eq!(widgets["items"][0]["status"]["phase"], "Ready");
        let (_, events) =
            sim.request(Method::GET, "/api/v1/events?fieldSelector=involvedObject.kind%3DPod", None).await;
        assert_eq!(events["items"].as_array().unwrap().len(), 8);
        let (_, nodes) = sim.request(Method::GET, "/api/v1/nodes", None).await;
        assert_eq!(nodes["items"].as_array().unwrap().len(), 2);
    }
}
