//! The Argo CD health checks in `docs/argocd/` run in a real Lua 5.4 (Debian's `lua5.4`, as Argo CD
//! runs gopher-lua) against recorded statuses, and the argocd-cm snippet carries them verbatim.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use std::path::PathBuf;

use serde_json::{Value, json};

fn dir() -> PathBuf {
    common::repo().join("docs/argocd")
}

/// A JSON value as a Lua table constructor.
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("{{{}}}", a.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => {
            format!("{{{}}}", m.iter().map(|(k, v)| format!("[{k:?}] = {}", lua(v))).collect::<Vec<_>>().join(", "))
        }
    }
}

/// Runs a health script on an object: `(status, message)`.
fn health(script: &str, obj: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal hs = dofile({:?})\nio.write(hs.status, \"\\t\", hs.message or \"\")",
        lua(obj),
        dir().join(script).to_str().unwrap()
    );
    let out = std::process::Command::new("lua5.4")
        .args(["-e", &program])
        .output()
        .expect("lua5.4 is missing: apt-get install lua5.4 (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (s, m) = text.split_once('\t').unwrap();
    (s.to_owned(), m.to_owned())
}

fn with_conditions(conditions: Value) -> Value {
    json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "c"},
           "status": {"conditions": conditions}})
}

fn cond(t: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-12-01T00:00:00Z"})
}

#[test]
fn pedia_cluster_health() {
    let s = "pediacluster-health.lua";
    // As the synchro writes them (operator/src/clusters/status.rs).
    let ready = with_conditions(json!([
        cond("Validated", "True", "Validated", "cluster is validated"),
        cond("SynchroRunning", "True", "Running", "cluster synchro is running"),
        cond("ClusterHealthy", "True", "Healthy", "cluster health responded with ok"),
        cond("Ready", "True", "Ready", "cluster is ready: validated, synchro running, healthy"),
    ]));
    assert_eq!(health(s, &ready).0, "Healthy");
    let invalid = with_conditions(json!([
        cond(
            "Validated",
            "False",
            "InvalidConfig",
            "invalid cluster config: Cluster APIServer's Token or Cert is required"
        ),
        cond("Ready", "False", "NotReady", "Validated condition is False, reason is InvalidConfig"),
    ]));
    assert_eq!(
        health(s, &invalid),
        ("Degraded".into(), "invalid cluster config: Cluster APIServer's Token or Cert is required".into())
    );
    let refused = with_conditions(json!([
        cond("Validated", "True", "Validated", "cluster is validated"),
        cond("ClusterHealthy", "False", "NotReachable", "GET /readyz: 401 Unauthorized"),
        cond("Ready", "False", "NotReady", "ClusterHealthy condition is False, reason is NotReachable"),
    ]));
    assert_eq!(health(s, &refused), ("Degraded".into(), "GET /readyz: 401 Unauthorized".into()));
    let listing = with_conditions(json!([
        cond("Validated", "True", "Validated", "cluster is validated"),
        cond("SynchroRunning", "False", "WaitInit", "pediacluster is validated"),
        cond("ClusterHealthy", "Unknown", "Pending", "wait cluster synchro"),
        cond("Ready", "False", "NotReady", "SynchroRunning condition is False, reason is WaitInit"),
    ]));
    let starting = ("Progressing".to_owned(), "SynchroRunning condition is False, reason is WaitInit".to_owned());
    assert_eq!(health(s, &listing), starting);
    let new =
        json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "c"}});
    assert_eq!(health(s, &new).0, "Progressing");
}

#[test]
fn cluster_import_policy_health() {
    let s = "clusterimportpolicy-health.lua";
    let policy = |conditions: Value| {
        json!({"apiVersion": "policy.clusterpedia.io/v1alpha1", "kind": "ClusterImportPolicy", "metadata": {"name": "p"},
               "status": {"conditions": conditions}})
    };
    // As the policy controller writes them (operator/src/import/policy_controller.rs).
    let working = policy(json!([
        cond("Validated", "True", "Success", ""),
        cond("Reconciling", "True", "ReconcileSourceResourceAndLifecycle", "")
    ]));
    assert_eq!(health(s, &working).0, "Healthy");
    let invalid = policy(json!([cond("Validated", "False", "InvalaidPolicy", "template: line 3: unexpected \"}\"")]));
    assert_eq!(health(s, &invalid), ("Degraded".into(), "template: line 3: unexpected \"}\"".into()));
    let waiting = policy(json!([
        cond("Validated", "True", "Success", ""),
        cond("Reconciling", "False", "WaitResourceSynced", "")
    ]));
    assert_eq!(health(s, &waiting).0, "Progressing");
    let failing = policy(json!([
        cond("Validated", "True", "Success", ""),
        cond("Reconciling", "False", "FailedReconcile", "creating lifecycle x: forbidden")
    ]));
    assert_eq!(health(s, &failing), ("Degraded".into(), "creating lifecycle x: forbidden".into()));
}

#[test]
fn the_argocd_cm_snippet_carries_the_scripts() {
    let cm: Value = serde_yaml::from_str(&std::fs::read_to_string(dir().join("argocd-cm.yaml")).unwrap()).unwrap();
    for (key, file) in [
        ("resource.customizations.health.cluster.clusterpedia.io_PediaCluster", "pediacluster-health.lua"),
        ("resource.customizations.health.policy.clusterpedia.io_ClusterImportPolicy", "clusterimportpolicy-health.lua"),
    ] {
        assert_eq!(cm["data"][key].as_str().unwrap(), std::fs::read_to_string(dir().join(file)).unwrap(), "{key}");
    }
    let app: Value = serde_yaml::from_str(&std::fs::read_to_string(dir().join("application.yaml")).unwrap()).unwrap();
    assert_eq!(app["spec"]["source"]["path"], "charts/pedia");
}
