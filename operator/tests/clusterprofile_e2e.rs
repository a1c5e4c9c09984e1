//! End to end on a kubesim fleet: the real `pedia run` binary imports SIG-Multicluster
//! ClusterProfiles (upstream's CRD, applied unchanged) as PediaClusters. One profile is reached
//! through an exec credential plugin (a test script) whose first token the member refuses: the
//! 401 makes pedia run the plugin again and the rotated token gets the cluster synced; one
//! through the built-in `secretreader` named only in the deprecated `credentialProviders`. An
//! unhealthy profile is not imported, a profile without a known provider and one whose name is
//! taken get Warning Events and change nothing, a profile turning unhealthy keeps its data, and
//! a deleted profile takes its PediaCluster, Secret and rows with it (also when it was deleted
//! while pedia was stopped). What is imported is searchable with kubectl through pedia.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use common::{Pedia, pedia_command};

use std::path::Path;

use common::{Kubectl, condition, free_port, sync_conditions, until};
use http::Method;
use kubesim::KubeSim;
use kubesim::fleet::{self, Fleet};
use kubesim::kubeconfig::base64;
use kubesim::seed::SeedSize;
use pedia_storage::{Storage, StorageConfig};
use serde_json::{Value, json};

const NS: &str = "pedia-system";
const FLEET: &str = "fleet-prod";
const PROFILES: &str = "/apis/multicluster.x-k8s.io/v1alpha1/namespaces/fleet-prod/clusterprofiles";
const CLUSTERS: &str = "/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters";

fn start_pedia(host_kubeconfig: &Path, dir: &Path, providers: &Path, port: u16) -> Pedia {
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, "reader-token,reader,1,system:masters\n").unwrap();
    Pedia(
        pedia_command(&dir.join("pedia.log"))
            .args(["run", "--namespace", NS, "--secure-port", &port.to_string(), "--bind-address", "127.0.0.1"])
            .arg("--token-auth-file")
            .arg(&tokens)
            .arg("--kubeconfig")
            .arg(host_kubeconfig)
            .arg("--metrics-bind-address")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--storage")
            .arg(format!("sqlite://{}", dir.join("pedia.db").display()))
            .arg("--clusterprofile-provider-file")
            .arg(providers)
            .args(["--clusterprofile-sync-resources", "profile-sync", "--clusterprofile-healthy-only"])
            .spawn()
            .unwrap(),
    )
}

async fn get_opt(sim: &KubeSim, path: &str) -> Option<Value> {
    let (code, v) = sim.request(Method::GET, path, None).await;
    match code.as_u16() {
        404 => None,
        _ => {
            assert!(code.is_success(), "GET {path}: {code} {v}");
            Some(v)
        }
    }
}

fn healthy_conditions(status: &str) -> Value {
    json!([{"type": "ControlPlaneHealthy", "status": status, "reason": "Probe", "message": "", "lastTransitionTime": "2026-05-01T12:00:00Z"},
           {"type": "Joined", "status": "True", "reason": "Joined", "message": "", "lastTransitionTime": "2026-05-01T11:59:00Z"}])
}

/// Creates a profile, then writes its status (a status subresource ignores it on create).
async fn profile(sim: &KubeSim, name: &str, manager: &str, status: Value) {
    let p = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
                   "metadata": {"name": name, "namespace": FLEET, "labels": {"x-k8s.io/cluster-manager": manager}},
                   "spec": {"displayName": name, "clusterManager": {"name": manager}}});
    let created = sim.create(p).await.unwrap();
    set_status(sim, name, status, &created).await;
}

async fn set_status(sim: &KubeSim, name: &str, status: Value, current: &Value) {
    let mut p = current.clone();
    p["status"] = status;
    let (code, body) = sim.request(Method::PUT, &format!("{PROFILES}/{name}/status"), Some(&p)).await;
    assert!(code.is_success(), "{code} {body}");
}

fn access(name: &str, m: &fleet::FleetCluster, config: Value) -> Value {
    json!({"name": name, "cluster": {
        "server": m.server.url(), "certificate-authority-data": base64(m.server.ca_pem().unwrap().as_bytes()),
        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": config}]}})
}

fn cond<'a>(pc: &'a Value, t: &str) -> (&'a str, &'a str) {
    let c = condition(pc, t);
    (
        c.and_then(|c| c["status"].as_str()).unwrap_or_default(),
        c.and_then(|c| c["message"].as_str()).unwrap_or_default(),
    )
}

async fn wait_synced(host: &KubeSim, name: &str) -> Value {
    until(&format!("{name} Ready and synced"), 60, || async {
        let pc = get_opt(host, &format!("{CLUSTERS}/{name}")).await.ok_or("no PediaCluster")?;
        let conds = sync_conditions(&pc);
        let synced = conds.len() == 2 && conds.values().all(|(s, _, listing)| s == "Syncing" && !listing);
        if cond(&pc, "Ready").0 == "True" && synced { Ok(pc) } else { Err(pc["status"].to_string()) }
    })
    .await
}

/// Waits until the store holds the member's pods and configmaps.
async fn wait_rows(store: &Storage, cluster: &str, member: &KubeSim) {
    until(&format!("{cluster}: store equals member"), 60, || async {
        let rows = store.stats().await.unwrap().rows;
        let mut diff = Vec::new();
        for (gvr, path) in [("v1/pods", "/api/v1/pods"), ("v1/configmaps", "/api/v1/configmaps")] {
            let (_, list) = member.request(Method::GET, path, None).await;
            let want = list["items"].as_array().unwrap().len() as i64;
            let have = rows.iter().find(|(c, g, _)| c == cluster && g.to_string() == gvr).map_or(0, |r| r.2);
            if want != have {
                diff.push(format!("{gvr}: member {want}, store {have}"));
            }
        }
        if diff.is_empty() { Ok(()) } else { Err(diff.join("; ")) }
    })
    .await
}

async fn rows_of(store: &Storage, cluster: &str) -> i64 {
    store.stats().await.unwrap().rows.iter().filter(|(c, _, _)| c == cluster).map(|r| r.2).sum()
}

/// The reasons of the Warning Events about a profile.
async fn warnings(host: &KubeSim, profile: &str) -> Vec<(String, String)> {
    let (code, list) =
        host.request(Method::GET, &format!("/apis/events.k8s.io/v1/namespaces/{FLEET}/events"), None).await;
    assert!(code.is_success(), "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["regarding"]["name"] == profile && e["type"] == "Warning")
        .map(|e| {
            (e["reason"].as_str().unwrap_or_default().to_owned(), e["note"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_profiles_become_synced_pedia_clusters() {
    let dir = std::env::temp_dir().join(format!("pedia-clusterprofile-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Fleet { host, members } = fleet::start(2, &dir, SeedSize::default()).await.unwrap();
    let h = &host.sim;
    let k = Kubectl::new(host.kubeconfig.clone());
    k.ok(&["apply", "--server-side", "-f", common::repo().join("crds").to_str().unwrap()], None).await;
    let upstream_crd =
        common::repo().join("../shared/compat/cluster-inventory-api/crds/multicluster.x-k8s.io_clusterprofiles.yaml");
    k.ok(&["apply", "--server-side", "-f", upstream_crd.to_str().unwrap()], None).await;
    for ns in [NS, FLEET] {
        h.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await.unwrap();
    }
    h.create(json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "ClusterSyncResources",
                    "metadata": {"name": "profile-sync"},
                    "spec": {"syncResources": [{"group": "", "resources": ["pods", "configmaps"]}]}}))
        .await
        .unwrap();

    // The exec plugin: prints the token in token.txt, valid for 4 s, and logs each call with
    // the exec info it was given.
    let token_file = dir.join("token.txt");
    std::fs::write(&token_file, "stale-token").unwrap();
    let calls = dir.join("calls.log");
    let plugin = dir.join("plugin.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho \"$KUBERNETES_EXEC_INFO\" >> {calls}\nexp=$(date -u -d '+4 seconds' +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\",\"expirationTimestamp\":\"%s\"}}}}' \"$(cat {token})\" \"$exp\"\n",
            calls = calls.display(),
            token = token_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let providers = dir.join("providers.json");
    let provider_file = json!({"providers": [
        {"name": "test-plugin", "execConfig": {"apiVersion": "client.authentication.k8s.io/v1", "command": plugin, "provideClusterInfo": true}},
        {"name": "secretreader"}, {"name": "kubeconfig-secretreader"}]});
    std::fs::write(&providers, provider_file.to_string()).unwrap();

    // spoke-a (member-1): offers secretreader first, but pedia prefers its plugin.
    profile(
        h,
        "spoke-a",
        "open-cluster-management",
        json!({
        "conditions": healthy_conditions("True"),
        "version": {"kubernetes": "1.33.1"},
        "properties": [{"name": "clusterset.k8s.io", "value": "prod"}, {"name": "location", "value": "eu-central-1"}],
        "accessProviders": [access("secretreader", &members[0], json!({"clusterName": "nowhere"})),
                            access("test-plugin", &members[0], json!({"clusterName": "spoke-a"}))]}),
    )
    .await;
    // spoke-b (member-2): the built-in secretreader, deprecated field only.
    h.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "spoke-b", "namespace": NS},
                    "data": {"token": base64(members[1].token.as_bytes())}}))
        .await
        .unwrap();
    profile(
        h,
        "spoke-b",
        "inhouse",
        json!({"conditions": healthy_conditions("True"),
        "credentialProviders": [access("secretreader", &members[1], json!({"clusterName": "spoke-b"}))]}),
    )
    .await;
    // spoke-c (member-2 again): the built-in kubeconfig-secretreader, the kubeconfig in the
    // profile's namespace as Cluster API keeps them.
    let kubeconfig = std::fs::read(&members[1].kubeconfig).unwrap();
    h.create(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "spoke-c-kubeconfig", "namespace": FLEET},
                    "data": {"value": base64(&kubeconfig)}}),
    )
    .await
    .unwrap();
    profile(
        h,
        "spoke-c",
        "cluster-api",
        json!({"conditions": healthy_conditions("True"),
        "accessProviders": [access("kubeconfig-secretreader", &members[1],
                                   json!({"name": "spoke-c-kubeconfig", "key": "value", "namespace": FLEET}))]}),
    )
    .await;
    // Not healthy: not imported.
    profile(
        h,
        "gke-c",
        "gke-fleet",
        json!({"conditions": healthy_conditions("Unknown"),
        "accessProviders": [access("secretreader", &members[1], json!({"clusterName": "spoke-b"}))]}),
    )
    .await;
    // No provider pedia knows.
    profile(
        h,
        "no-provider",
        "gke-fleet",
        json!({"conditions": healthy_conditions("True"),
        "accessProviders": [access("google", &members[1], json!({}))]}),
    )
    .await;
    // A PediaCluster of that name exists already, not pedia's.
    let theirs = json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster",
        "metadata": {"name": "fleet-prod-taken"},
        "spec": {"apiserver": "https://elsewhere.invalid", "tokenData": base64(b"x"), "syncResources": []}});
    h.create(theirs).await.unwrap();
    profile(
        h,
        "taken",
        "inhouse",
        json!({"conditions": healthy_conditions("True"),
        "accessProviders": [access("secretreader", &members[1], json!({"clusterName": "spoke-b"}))]}),
    )
    .await;

    let port = free_port();
    let pedia = start_pedia(&host.kubeconfig, &dir, &providers, port);
    let store = Storage::connect(
        &StorageConfig::from_url(&format!("sqlite://{}", dir.join("pedia.db").display())).unwrap(),
        50,
    )
    .await
    .unwrap();

    // spoke-b: synced through the built-in reader, labelled from its profile.
    let b = wait_synced(h, "fleet-prod-spoke-b").await;
    let labels = &b["metadata"]["labels"];
    assert_eq!(labels["x-k8s.io/cluster-manager"], "inhouse");
    assert_eq!(labels["clusterprofile.clusterpedia.io/namespace"], FLEET);
    assert_eq!(b["spec"]["syncResourcesRefName"], "profile-sync");
    assert_eq!(b["metadata"]["annotations"]["clusterprofile.clusterpedia.io/access-provider"], "secretreader");
    wait_rows(&store, "fleet-prod-spoke-b", &members[1].sim).await;
    let c = wait_synced(h, "fleet-prod-spoke-c").await;
    assert_eq!(
        c["metadata"]["annotations"]["clusterprofile.clusterpedia.io/access-provider"],
        "kubeconfig-secretreader"
    );
    wait_rows(&store, "fleet-prod-spoke-c", &members[1].sim).await;
    // Searchable with kubectl through pedia, narrowed to the clusters of a cluster manager.
    let search = dir.join("search.kubeconfig");
    let server = format!("https://127.0.0.1:{port}/apis/clusterpedia.io/v1beta1/resources");
    std::fs::write(
        &search,
        json!({"apiVersion": "v1", "kind": "Config", "current-context": "pedia",
        "clusters": [{"name": "pedia", "cluster": {"server": server, "insecure-skip-tls-verify": true}}],
        "users": [{"name": "u", "user": {"token": "reader-token"}}],
        "contexts": [{"name": "pedia", "context": {"cluster": "pedia", "user": "u"}}]})
        .to_string(),
    )
    .unwrap();
    let search = Kubectl::new(search);
    let inhouse = k.ok(&["get", "pediaclusters", "-l", "x-k8s.io/cluster-manager=inhouse", "-o", "name"], None).await;
    assert_eq!(inhouse.trim(), "pediacluster.cluster.clusterpedia.io/fleet-prod-spoke-b");
    let found = search
        .ok(&["get", "pods", "-A", "-l", "search.clusterpedia.io/clusters in (fleet-prod-spoke-b)", "-o", "name"], None)
        .await;
    let (_, pods) = members[1].sim.request(Method::GET, "/api/v1/pods", None).await;
    assert!(!pods["items"].as_array().unwrap().is_empty());
    assert_eq!(found.lines().count(), pods["items"].as_array().unwrap().len(), "{found}");

    // spoke-a: the plugin's first token is refused and the condition says so.
    until("spoke-a reports the refused token", 60, || async {
        let pc = get_opt(h, &format!("{CLUSTERS}/fleet-prod-spoke-a")).await.ok_or("no PediaCluster")?;
        let (status, message) = cond(&pc, "ClusterHealthy");
        if status == "False" && message.contains("401") { Ok(()) } else { Err(pc["status"].to_string()) }
    })
    .await;
    let exec_info: Value =
        serde_json::from_str(std::fs::read_to_string(&calls).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(exec_info["spec"]["cluster"]["config"], json!({"clusterName": "spoke-a"}));
    assert_eq!(exec_info["spec"]["cluster"]["server"], json!(members[0].server.url()));
    assert_eq!(exec_info["spec"]["interactive"], false);
    // The token rotates: pedia runs the plugin again after the 401 and the cluster syncs.
    std::fs::write(&token_file, &members[0].token).unwrap();
    let a = wait_synced(h, "fleet-prod-spoke-a").await;
    wait_rows(&store, "fleet-prod-spoke-a", &members[0].sim).await;
    assert_eq!(a["metadata"]["labels"]["multicluster.x-k8s.io/clusterset"], "prod");
    assert_eq!(a["metadata"]["labels"]["location"], "eu-central-1");
    assert_eq!(a["metadata"]["annotations"]["clusterprofile.clusterpedia.io/access-provider"], "test-plugin");
    // The token lives in pedia's Secret, referenced from the spec, never in the spec itself.
    assert!(a["spec"].get("tokenData").is_none() && a["spec"].get("kubeconfig").is_none());
    let secret = get_opt(h, &format!("/api/v1/namespaces/{NS}/secrets/fleet-prod-spoke-a")).await.unwrap();
    assert_eq!(secret["metadata"]["ownerReferences"][0]["name"], "fleet-prod-spoke-a");
    // The credential expires after 4 s: pedia renews it before then, again and again.
    let before = std::fs::read_to_string(&calls).unwrap().lines().count();
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let after = std::fs::read_to_string(&calls).unwrap().lines().count();
    assert!(after >= before + 2, "the plugin ran {} times in 8 s", after - before);
    assert!(after <= before + 8, "the plugin ran {} times in 8 s: more than its expiry asks", after - before);
    assert_eq!(cond(&get_opt(h, &format!("{CLUSTERS}/fleet-prod-spoke-a")).await.unwrap(), "Ready").0, "True");

    // Not imported: the unhealthy profile, the one without a known provider (an event says
    // why), the one whose name is taken (left alone, an event says so).
    assert!(get_opt(h, &format!("{CLUSTERS}/fleet-prod-gke-c")).await.is_none());
    assert!(get_opt(h, &format!("{CLUSTERS}/fleet-prod-no-provider")).await.is_none());
    let events = until("no-provider's warning", 30, || async {
        let w = warnings(h, "no-provider").await;
        if w.is_empty() { Err("no event".to_owned()) } else { Ok(w) }
    })
    .await;
    assert_eq!(events[0].0, "NoAccessProvider");
    assert!(events[0].1.contains("google") && events[0].1.contains("test-plugin"), "{}", events[0].1);
    until("taken's warning", 30, || async {
        let w = warnings(h, "taken").await;
        if w.iter().any(|(r, _)| r == "NameTaken") { Ok(()) } else { Err(format!("{w:?}")) }
    })
    .await;
    let taken = get_opt(h, &format!("{CLUSTERS}/fleet-prod-taken")).await.unwrap();
    assert_eq!(taken["spec"]["apiserver"], "https://elsewhere.invalid");
    assert!(taken["metadata"]["labels"].get("app.kubernetes.io/managed-by").is_none());
    let log = std::fs::read_to_string(dir.join("pedia.log")).unwrap();
    assert!(!log.contains(members[0].token.as_str()), "a token reached the log");

    // spoke-b turns unhealthy: kept, data kept, labelled.
    let current = get_opt(h, &format!("{PROFILES}/spoke-b")).await.unwrap();
    let mut status = current["status"].clone();
    status["conditions"] = healthy_conditions("False");
    set_status(h, "spoke-b", status, &current).await;
    until("spoke-b labelled unhealthy", 30, || async {
        let pc = get_opt(h, &format!("{CLUSTERS}/fleet-prod-spoke-b")).await.ok_or("gone")?;
        let l = &pc["metadata"]["labels"]["clusterprofile.clusterpedia.io/healthy"];
        if l == "false" { Ok(()) } else { Err(l.to_string()) }
    })
    .await;
    assert!(rows_of(&store, "fleet-prod-spoke-b").await > 0);

    // spoke-a's profile is deleted: its PediaCluster, Secret and rows go.
    assert!(rows_of(&store, "fleet-prod-spoke-a").await > 0);
    let (code, body) = h.request(Method::DELETE, &format!("{PROFILES}/spoke-a"), None).await;
    assert!(code.is_success(), "{body}");
    until("spoke-a removed", 60, || async {
        let pc = get_opt(h, &format!("{CLUSTERS}/fleet-prod-spoke-a")).await;
        let secret = get_opt(h, &format!("/api/v1/namespaces/{NS}/secrets/fleet-prod-spoke-a")).await;
        let rows = rows_of(&store, "fleet-prod-spoke-a").await;
        if pc.is_none() && secret.is_none() && rows == 0 {
            Ok(())
        } else {
            Err(format!("rows {rows}, pc {}", pc.is_some()))
        }
    })
    .await;

    // spoke-b's profile is deleted while pedia is stopped: the sweep after the next list finds it.
    drop(pedia);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (code, body) = h.request(Method::DELETE, &format!("{PROFILES}/spoke-b"), None).await;
    assert!(code.is_success(), "{body}");
    let _pedia = start_pedia(&host.kubeconfig, &dir, &providers, port);
    until("spoke-b removed after the restart", 60, || async {
        let pc = get_opt(h, &format!("{CLUSTERS}/fleet-prod-spoke-b")).await;
        let rows = rows_of(&store, "fleet-prod-spoke-b").await;
        if pc.is_none() && rows == 0 { Ok(()) } else { Err(format!("rows {rows}, pc {}", pc.is_some())) }
    })
    .await;
    assert!(
        get_opt(h, &format!("{CLUSTERS}/fleet-prod-taken")).await.is_some(),
        "a PediaCluster pedia did not create was deleted"
    );
}
