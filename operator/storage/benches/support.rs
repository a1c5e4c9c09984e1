//! What the benchmarks share: a realistic pod, command-line arguments, percentiles. Included by
//! `storage.rs` here and by the search apiserver's benchmark (`#[path]`).
#![allow(dead_code)] // not every benchmark uses every helper

use std::time::Duration;

use serde_json::{Value, json};

/// `--name value` from the command line, else `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
}

/// A realistic ~2.5 KB pod.
pub fn pod(cluster: usize, i: usize) -> Value {
    let ns = format!("ns-{}", i % 20);
    let app = format!("app-{}", i % 50);
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{app}-{i:07}"), "namespace": ns, "uid": format!("{cluster:04}-{i:012}-0000-4000-8000-000000000000"),
            "resourceVersion": format!("{}", 100_000 + i), "creationTimestamp": "2026-01-01T00:00:00Z", "generateName": format!("{app}-"),
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-prod"), "pod-template-hash": "7d9f8c6b5",
                       "tier": if i.is_multiple_of(7) { "canary" } else { "stable" }, "team": format!("team-{}", i % 9)},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8c6b5"), "uid": format!("rs-{cluster}-{}", i % 50), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"nodeName": format!("node-{}", i % 30), "serviceAccountName": "default", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler", "priority": 0,
            "containers": [{"name": "main", "image": format!("registry.example.com/team/{app}:1.27.3"), "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "hostIP": format!("10.0.{}.{}", i % 30, 10), "podIP": format!("10.244.{}.{}", (i / 250) % 250, i % 250),
            "startTime": "2026-01-01T00:00:05Z", "qosClass": "Burstable",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"},
                           {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "containerStatuses": [{"name": "main", "ready": true, "started": true, "restartCount": i % 3, "image": format!("registry.example.com/team/{app}:1.27.3"),
                "imageID": "registry.example.com/team/app@sha256:4f1c0e3a6b2d8e9f00112233445566778899aabbccddeeff0011223344556677",
                "containerID": format!("containerd://{:064x}", i), "state": {"running": {"startedAt": "2026-01-01T00:00:08Z"}}}]}})
}

/// The `p` quantile of `samples`, in milliseconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}
