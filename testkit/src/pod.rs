//! Pods: a builder for the fields a test cares about, and the benchmarks' realistic pod.

use serde_json::{Map, Value, json};

/// A Pod as JSON, built field by field: `apiVersion`, `kind`, name and namespace, then whatever a
/// test sets. Empty `spec` and `status` are left out.
#[derive(Debug, Clone, Default)]
pub struct Pod {
    metadata: Map<String, Value>,
    spec: Map<String, Value>,
    status: Map<String, Value>,
}

impl Pod {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self::default().meta("name", name).meta("namespace", namespace)
    }

    /// Sets `metadata.<key>`.
    pub fn meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `spec.<key>`.
    pub fn spec(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.spec.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `status.<key>`.
    pub fn status(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.status.insert(key.to_owned(), value.into());
        self
    }

    pub fn labels(self, labels: Value) -> Self {
        self.meta("labels", labels)
    }

    pub fn annotations(self, annotations: Value) -> Self {
        self.meta("annotations", annotations)
    }

    /// A controller owner reference, as a ReplicaSet or a Job sets it.
    pub fn owned_by(self, api_version: &str, kind: &str, name: &str, uid: &str) -> Self {
        self.meta(
            "ownerReferences",
            json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]),
        )
    }

    pub fn node(self, node: &str) -> Self {
        self.spec("nodeName", node)
    }

    /// Adds a container to `spec.containers`.
    pub fn container(mut self, container: Value) -> Self {
        match self.spec.get_mut("containers").and_then(Value::as_array_mut) {
            Some(containers) => containers.push(container),
            None => {
                self.spec.insert("containers".to_owned(), json!([container]));
            }
        }
        self
    }

    pub fn phase(self, phase: &str) -> Self {
        self.status("phase", phase)
    }

    pub fn build(self) -> Value {
        let mut pod = Map::new();
        pod.insert("apiVersion".to_owned(), json!("v1"));
        pod.insert("kind".to_owned(), json!("Pod"));
        pod.insert("metadata".to_owned(), Value::Object(self.metadata));
        for (key, section) in [("spec", self.spec), ("status", self.status)] {
            if !section.is_empty() {
                pod.insert(key.to_owned(), Value::Object(section));
            }
        }
        Value::Object(pod)
    }
}

/// A container running `image`, with an `http` port and CPU/memory requests and limits.
pub fn container(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image,
           "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}})
}

/// The benchmarks' realistic pod (~2.5 KB): pod `i` of member `cluster`, as kube-apiserver stores a
/// Deployment's pod (labels, owner, probes, projected token volume, container status). The same
/// arguments give the same bytes, so figures stay comparable across runs.
pub fn realistic_pod(cluster: usize, i: usize) -> Value {
    let ns = format!("ns-{}", i % 20);
    let app = format!("app-{}", i % 50);
    let image = format!("registry.example.com/team/{app}:1.27.3");
    let container = json!({"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"});
    Pod::new(&ns, &format!("{app}-{i:07}"))
        .meta("uid", format!("{cluster:04}-{i:012}-0000-4000-8000-000000000000"))
        .meta("resourceVersion", format!("{}", 100_000 + i))
        .meta("creationTimestamp", "2026-01-01T00:00:00Z")
        .meta("generateName", format!("{app}-"))
        .labels(json!({"app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-prod"), "pod-template-hash": "7d9f8c6b5",
                       "tier": if i.is_multiple_of(7) { "canary" } else { "stable" }, "team": format!("team-{}", i % 9)}))
        .annotations(json!({"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}))
        .owned_by("apps/v1", "ReplicaSet", &format!("{app}-7d9f8c6b5"), &format!("rs-{cluster}-{}", i % 50))
        .node(&format!("node-{}", i % 30))
        .spec("serviceAccountName", "default")
        .spec("restartPolicy", "Always")
        .spec("dnsPolicy", "ClusterFirst")
        .spec("terminationGracePeriodSeconds", 30)
        .spec("schedulerName", "default-scheduler")
        .spec("priority", 0)
        .container(container)
        .spec("volumes", json!([{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]))
        .spec("tolerations", json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]))
        .phase("Running")
        .status("hostIP", format!("10.0.{}.{}", i % 30, 10))
        .status("podIP", format!("10.244.{}.{}", (i / 250) % 250, i % 250))
        .status("startTime", "2026-01-01T00:00:05Z")
        .status("qosClass", "Burstable")
        .status("conditions", json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"},
                                     {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}]))
        .status("containerStatuses", json!([{"name": "main", "ready": true, "started": true, "restartCount": i % 3, "image": image,
            "imageID": "registry.example.com/team/app@sha256:4f1c0e3a6b2d8e9f00112233445566778899aabbccddeeff0011223344556677",
            "containerID": format!("containerd://{:064x}", i), "state": {"running": {"startedAt": "2026-01-01T00:00:08Z"}}}]))
        .build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_each_section_and_appends_containers() {
        let pod = Pod::new("ns", "p")
            .labels(json!({"app": "a"}))
            .owned_by("apps/v1", "ReplicaSet", "rs", "u1")
            .node("n1")
            .container(container("a", "img:1"))
            .container(container("b", "img:2"))
            .phase("Running")
            .build();
        assert_eq!(pod["metadata"]["namespace"], "ns");
        assert_eq!(pod["metadata"]["labels"]["app"], "a");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(pod["spec"]["nodeName"], "n1");
        let names: Vec<_> = pod["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
        assert_eq!(names, [json!("a"), json!("b")]);
        assert_eq!(pod["status"]["phase"], "Running");
    }

    #[test]
    fn realistic_pod_is_deterministic_and_about_two_and_a_half_kilobytes() {
        assert_eq!(realistic_pod(3, 12345), realistic_pod(3, 12345));
        assert_ne!(realistic_pod(3, 12345), realistic_pod(4, 12345));
        let len = realistic_pod(0, 0).to_string().len();
        assert!((2_000..3_200).contains(&len), "{len} bytes");
    }
}
