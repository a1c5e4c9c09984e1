//! End to end on kubesim: the real `pedia run` binary against a kubesim host cluster over
//! TLS, driven with the real kubectl. A policy, a fleet CRD and source objects are applied;
//! PediaClusters appear with the exact credentials, wait for readiness and for a Secret that
//! arrives later, follow a rotated secret, and go away with their source; a broken policy gets
//! a condition message and the controllers keep running.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use common::Pedia;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Kubectl, condition, reason, repo};
use kubesim::auth::Auth;
use kubesim::kubeconfig::{self, Credentials};
use kubesim::tls::Tls;
use kubesim::{Config, KubeSim};
use serde_json::Value;
use tokio::process::Command;

const TOKEN_1: &str = "ZXlKaGJHY2lPaUpTVXpJMU5pSjkuZmFrZT8+dG9rZW4vd2l0aD09Pz4="; // has + / =
const TOKEN_2: &str = "cm90YXRlZD8+K3Rva2VuLz09"; // a rotated token, also with + and /
const CA: &str =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUI+Pj4/Pz96Q0NBYUdnQXdJQkFnSVVlL3g9Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";

fn karmada_secret(token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: member-east, namespace: karmada-cluster}}\ndata:\n  token: {token}\n  caBundle: {CA}\n"
    )
}

const MEMBER_EAST: &str = r#"
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member-east}
spec:
  syncMode: Push
  apiEndpoint: https://10.20.0.5:6443
  secretRef: {namespace: karmada-cluster, name: member-east}
"#;

const READY: &str = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"ClusterReady","message":"ok","lastTransitionTime":"2026-01-10T08:00:00Z"}]}}"#;

struct Env {
    dir: PathBuf,
    _sim: KubeSim,
    server: kubesim::serve::Server,
    kubeconfig: PathBuf,
    k: Kubectl,
}

impl Env {
    /// A kubesim host over TLS with pedia's and the fleet managers' CRDs installed.
    async fn start(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pedia-import-e2e-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut auth = Auth { anonymous: false, ..Auth::default() };
        auth.add_token("admin-token", "admin", &["system:masters"]);
        let sim = KubeSim::new(Config { auth, ..Config::default() });
        let server =
            sim.serve_tls("127.0.0.1:0".parse().unwrap(), Tls::generate("import-e2e", &[]).unwrap()).await.unwrap();
        let kubeconfig = dir.join("kubeconfig");
        let text =
            kubeconfig::render("host", &server.url(), server.ca_pem(), &Credentials::Token("admin-token".into()));
        std::fs::write(&kubeconfig, text).unwrap();
        let k = Kubectl::new(kubeconfig.clone());
        k.ok(&["apply", "-f", repo().join("crds").to_str().unwrap()], None).await;
        k.ok(&["apply", "-f", repo().join("operator/tests/fixtures/fleet-crds.yaml").to_str().unwrap()], None).await;
        Self { dir, _sim: sim, server, kubeconfig, k }
    }

    /// `pedia run` against this host.
    fn pedia(&self) -> Pedia {
        Pedia(
            Command::new(env!("CARGO_BIN_EXE_pedia"))
                // The PediaClusters of this test name addresses that are not there: only the
                // import controllers run.
                .args([
                    "operator",
                    "--controllers",
                    "import",
                    "--namespace",
                    "default",
                    "--metrics-bind-address",
                    "127.0.0.1:0",
                ])
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg("--storage")
                .arg(format!("sqlite://{}", self.dir.join("pedia.db").display()))
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        )
    }

    async fn stop(self, pedia: Pedia) {
        drop(pedia);
        self.server.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_turn_fleet_objects_into_pediaclusters() {
    let env = Env::start("lifecycle").await;
    let k = &env.k;
    k.ok(&["apply", "-f", repo().join("templates/karmada.yaml").to_str().unwrap()], None).await;
    k.ok(&["apply", "-f", repo().join("templates/cluster-api.yaml").to_str().unwrap()], None).await;
    let pedia = env.pedia();

    k.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: karmada-cluster}\n").await;
    k.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n").await;

    // The policy validates and reconciles.
    let policy = k
        .wait(&["clusterimportpolicy", "karmada"], "policy karmada reconciled", |p| {
            reason(p, "Reconciling").as_deref() == Some("ReconcileSourceResourceAndLifecycle")
        })
        .await
        .unwrap();
    assert_eq!(reason(Some(&policy), "Validated").as_deref(), Some("Success"));
    assert!(
        policy["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "clusterpedia.io/cluster-import-policy-controller")
    );

    // A cluster that is not ready yet: a lifecycle, no PediaCluster.
    k.apply(&karmada_secret(TOKEN_1)).await;
    k.apply(MEMBER_EAST).await;
    let lc = k
        .wait(&["pediaclusterlifecycle", "karmada-member-east"], "lifecycle waiting for readiness", |l| {
            reason(l, "Created").as_deref() == Some("WaitCreationCondition")
        })
        .await
        .unwrap();
    assert_eq!(lc["spec"]["source"]["name"], "member-east");
    assert_eq!(lc["spec"]["source"]["version"], "v1alpha1");
    assert_eq!(lc["metadata"]["ownerReferences"][0]["kind"], "ClusterImportPolicy");
    assert_eq!(lc["status"]["references"][0]["name"], "member-east");
    assert!(k.get(&["pediacluster", "karmada-member-east"]).await.is_none(), "not ready: no PediaCluster");

    // Ready: the PediaCluster appears with the exact credentials.
    k.ok(
        &["patch", "clusters.cluster.karmada.io", "member-east", "--subresource=status", "--type=merge", "-p", READY],
        None,
    )
    .await;
    let pc = k
        .wait(&["pediacluster", "karmada-member-east"], "PediaCluster karmada-member-east", |p| p.is_some())
        .await
        .unwrap();
    assert_eq!(pc["spec"]["apiserver"], "https://10.20.0.5:6443");
    assert_eq!(pc["spec"]["tokenData"], TOKEN_1);
    assert_eq!(pc["spec"]["caData"], CA);
    assert_eq!(pc["metadata"]["ownerReferences"][0]["kind"], "PediaClusterLifecycle");
    k.wait(&["pediaclusterlifecycle", "karmada-member-east"], "Created=True", |l| {
        reason(l, "Created").as_deref() == Some("PediaClusterCreated")
    })
    .await;

    // The secret is rotated: the credentials are patched.
    k.apply(&karmada_secret(TOKEN_2)).await;
    k.wait(&["pediacluster", "karmada-member-east"], "rotated token", |p| {
        p.is_some_and(|p| p["spec"]["tokenData"] == TOKEN_2)
    })
    .await;
    k.wait(&["pediaclusterlifecycle", "karmada-member-east"], "Updating=True", |l| {
        l.and_then(|l| condition(l, "Updating"))
            .is_some_and(|c| c["status"] == "True" && c["reason"] == "PediaClusterUpdated")
    })
    .await;

    // A broken policy: a condition with the field, line and problem; nothing created.
    let broken = r#"
apiVersion: policy.clusterpedia.io/v1alpha1
kind: ClusterImportPolicy
metadata: {name: broken}
spec:
  source: {group: cluster.karmada.io, resource: clusters}
  nameTemplate: 'broken-{{ .source.metadata.name }}'
  template: |
    spec:
      apiserver: '{{ if .source.spec.apiEndpoint }}'
  creationCondition: 'true'
"#;
    k.apply(broken).await;
    let b = k
        .wait(&["clusterimportpolicy", "broken"], "Validated=False on the broken policy", |p| {
            reason(p, "Validated").as_deref() == Some("InvalaidPolicy")
        })
        .await
        .unwrap();
    let message = condition(&b, "Validated").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("template: line 2") && message.contains("no {{end}}"), "{message}");
    assert!(k.get(&["pediaclusterlifecycle", "broken-member-east"]).await.is_none());

    // Cluster API: the kubeconfig Secret arrives after the Cluster.
    k.apply(
        r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata: {name: capi-dev-1, namespace: team-a}
spec: {clusterNetwork: {pods: {cidrBlocks: ["192.168.0.0/16"]}}}
"#,
    )
    .await;
    k.ok(
        &[
            "patch",
            "clusters.cluster.x-k8s.io",
            "capi-dev-1",
            "-n",
            "team-a",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Provisioned","initialization":{"controlPlaneInitialized":true}}}"#,
        ],
        None,
    )
    .await;
    let lc = k
        .wait(&["pediaclusterlifecycle", "capi-team-a-capi-dev-1"], "waiting for the kubeconfig secret", |l| {
            reason(l, "Created").as_deref() == Some("ReferenceResourceNotFound")
        })
        .await
        .unwrap();
    assert_eq!(lc["spec"]["source"]["version"], "v1beta2", "version negotiation follows the policy's list");
    let kubeconfig_b64 = "YXBpVmVyc2lvbjogdjEKa2luZDogQ29uZmlnCg==";
    k.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: capi-dev-1-kubeconfig, namespace: team-a}}\ndata: {{value: {kubeconfig_b64}}}\n"
    ))
    .await;
    let pc =
        k.wait(&["pediacluster", "capi-team-a-capi-dev-1"], "the CAPI PediaCluster", |p| p.is_some()).await.unwrap();
    assert_eq!(pc["spec"]["kubeconfig"], kubeconfig_b64);

    // The source goes away: lifecycle and PediaCluster follow.
    k.ok(&["delete", "clusters.cluster.karmada.io", "member-east"], None).await;
    k.wait(&["pediaclusterlifecycle", "karmada-member-east"], "the lifecycle to go", |l| l.is_none()).await;
    k.wait(&["pediacluster", "karmada-member-east"], "the PediaCluster to go", |p| p.is_none()).await;
    assert!(k.get(&["pediacluster", "capi-team-a-capi-dev-1"]).await.is_some(), "other imports stay");

    // Deleting the policy cascades to what it imported.
    k.ok(&["delete", "clusterimportpolicy", "cluster-api"], None).await;
    k.wait(&["pediacluster", "capi-team-a-capi-dev-1"], "cascade from the policy", |p| p.is_none()).await;
    k.wait(&["clusterimportpolicy", "cluster-api"], "the policy's finalizer released", |p| p.is_none()).await;

    env.stop(pedia).await;
}

fn read_yaml(path: &Path) -> Value {
    serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&std::fs::read_to_string(path).unwrap()).unwrap())
        .unwrap()
}

/// Every ready-made policy at once on one host (four of them watch Secrets together), with the
/// example source objects of `templates/examples`: exactly the expected PediaClusters appear,
/// with the credentials the render cases expect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_imports_its_examples() {
    let env = Env::start("templates").await;
    let k = &env.k;
    let examples = repo().join("templates/examples");
    let mut objects: Vec<PathBuf> = Vec::new();
    let mut expected: std::collections::BTreeMap<String, Value> = Default::default();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&examples).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".case.yaml"))
            .collect();
        cases.sort();
        for case_file in cases {
            let case = read_yaml(&case_file);
            if !case["policy"].as_str().unwrap().starts_with("../../") {
                continue; // upstream policies are rendered by policy_render.rs
            }
            let source = dir.join(case["source"].as_str().unwrap());
            // kubesim serves CRD versions without conversion: v1beta1 CAPI objects are covered
            // by the render cases only.
            if read_yaml(&source)["apiVersion"] == "cluster.x-k8s.io/v1beta1" {
                continue;
            }
            let expect = &case["expect"];
            let imported = expect["selector"].as_bool() != Some(false) && expect["creationCondition"] == true;
            let name = expect["name"].as_str().unwrap_or_default().to_owned();
            // One state per object: a case whose source another case shows in a different state is skipped.
            if !imported && expect["selector"].as_bool() != Some(false) {
                continue;
            }
            let mut files = vec![source];
            files.extend(
                case["references"].as_object().into_iter().flatten().map(|(_, f)| dir.join(f.as_str().unwrap())),
            );
            for f in files {
                if !objects.contains(&f) {
                    objects.push(f);
                }
            }
            if imported {
                expected.insert(name, expect.clone());
            }
        }
    }
    assert!(expected.len() >= 8, "{expected:?}");

    let mut namespaces = std::collections::BTreeSet::new();
    for f in &objects {
        if let Some(ns) = read_yaml(f)["metadata"]["namespace"].as_str() {
            namespaces.insert(ns.to_owned());
        }
    }
    for ns in namespaces {
        k.apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")).await;
    }
    for t in ["karmada", "cluster-api", "vcluster", "kubevela", "ocm", "argocd"] {
        k.ok(&["apply", "-f", repo().join(format!("templates/{t}.yaml")).to_str().unwrap()], None).await;
    }
    let pedia = env.pedia();
    for f in &objects {
        let path = f.to_str().unwrap();
        k.ok(&["apply", "-f", path], None).await;
        let obj = read_yaml(f);
        if obj["kind"] != "Secret" && obj.get("status").is_some() {
            let patch = serde_json::json!({"status": obj["status"]}).to_string();
            k.ok(&["patch", "-f", path, "--subresource=status", "--type=merge", "-p", &patch], None).await;
        }
    }

    let want: Vec<String> = expected.keys().cloned().collect();
    let list = k
        .wait(&["pediaclusters"], "the expected PediaClusters", |l| {
            let mut names: Vec<String> = l
                .and_then(|l| l["items"].as_array())
                .into_iter()
                .flatten()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names == want
        })
        .await
        .unwrap();
    for item in list["items"].as_array().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap();
        let expect = &expected[name];
        for (field, value) in expect["spec"].as_object().into_iter().flatten() {
            assert_eq!(&item["spec"][field], value, "{name}: spec.{field}");
        }
        for (label, value) in expect["labels"].as_object().into_iter().flatten() {
            assert_eq!(&item["metadata"]["labels"][label], value, "{name}: label {label}");
        }
    }
    // Every policy reconciled without failures.
    let policies = k.get(&["clusterimportpolicies"]).await.unwrap();
    for p in policies["items"].as_array().unwrap() {
        let r = condition(p, "Reconciling").map(|c| (c["reason"].clone(), c["message"].clone()));
        assert_eq!(
            r.as_ref().map(|(reason, _)| reason.as_str().unwrap_or_default()),
            Some("ReconcileSourceResourceAndLifecycle"),
            "{}: {r:?}",
            p["metadata"]["name"]
        );
    }
    env.stop(pedia).await;
}

/// A cluster Secret written the way Argo CD's documentation writes them (`stringData`) is
/// imported: the API server merges `stringData` into `data`, which the template reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_secrets_written_with_string_data_are_imported() {
    let env = Env::start("argocd-string-data").await;
    let k = &env.k;
    k.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n").await;
    k.ok(&["apply", "-f", repo().join("templates/argocd.yaml").to_str().unwrap()], None).await;
    let config =
        format!(r#"{{"bearerToken": "sd-token", "tlsClientConfig": {{"insecure": false, "caData": "{CA}"}}}}"#);
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cluster-sd", "namespace": "argocd", "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
        "type": "Opaque",
        "stringData": {"name": "sd", "server": "https://sd.example.test:6443", "config": config}});
    k.apply(&secret.to_string()).await;
    let stored = k.get(&["secret", "cluster-sd", "-n", "argocd"]).await.unwrap();
    assert!(stored.get("stringData").is_none(), "stringData is write-only: {stored}");
    assert_eq!(stored["data"]["server"], "aHR0cHM6Ly9zZC5leGFtcGxlLnRlc3Q6NjQ0Mw==");
    let pedia = env.pedia();
    let list = k
        .wait(&["pediaclusters"], "the PediaCluster of the stringData Secret", |l| {
            l.and_then(|l| l["items"].as_array())
                .is_some_and(|items| items.iter().any(|i| i["spec"]["apiserver"] == "https://sd.example.test:6443"))
        })
        .await
        .unwrap();
    let item = list["items"].as_array().unwrap().iter().find(|i| i["metadata"]["name"] == "argocd-cluster-sd").unwrap();
    assert_eq!(item["spec"]["tokenData"], "c2QtdG9rZW4=", "the bearer token, base64");
    assert_eq!(item["spec"]["caData"], CA);
    env.stop(pedia).await;
}
