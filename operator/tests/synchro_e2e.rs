//! End to end on a kubesim fleet: the real `pedia run` binary syncs three members into SQLite.
//! PediaClusters with inline token, Secret (`authenticationFrom`) and inline kubeconfig
//! credentials go Ready; the store holds exactly what each member holds per resource (a CRD in
//! two versions included); changes on members arrive; dropped watches, a forced 410, an
//! unreachable member and a failing `/readyz` lose nothing; a wrong token is named in the
//! condition; a Secret rotation restarts only its cluster; a restart rewrites nothing unchanged;
//! deleting a PediaCluster deletes its rows.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use common::{Pedia, pedia_command};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Kubectl, condition, free_port, http_get, sync_conditions, until};
use http::Method;
use kubesim::KubeSim;
use kubesim::fleet::{self, Fleet};
use kubesim::kubeconfig::base64;
use kubesim::seed::SeedSize;
use pedia_storage::{Storage, StorageConfig};
use serde_json::{Value, json};

const NS: &str = "pedia-system";

fn start_pedia(host_kubeconfig: &Path, db: &Path, log: &Path, metrics_port: u16, extra: &[&str]) -> Pedia {
    Pedia(
        pedia_command(log)
            .args(["run", "--namespace", NS, "--secure-port", "0", "--bind-address", "127.0.0.1", "--kubeconfig"])
            .arg(host_kubeconfig)
            .arg("--metrics-bind-address")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--storage")
            .arg(format!("sqlite://{}", db.display()))
            .args(extra)
            .spawn()
            .unwrap(),
    )
}

async fn get(sim: &KubeSim, path: &str) -> Value {
    let (code, v) = sim.request(Method::GET, path, None).await;
    assert!(code.is_success(), "GET {path}: {code} {v}");
    v
}

async fn create(sim: &KubeSim, object: Value) {
    sim.create(object).await.unwrap();
}

async fn pedia_cluster(host: &KubeSim, name: &str) -> Value {
    get(host, &format!("/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/{name}")).await
}

fn cond_of(pc: &Value, t: &str) -> (String, String, String) {
    let c = condition(pc, t).cloned().unwrap_or(Value::Null);
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    (s("status"), s("reason"), s("message"))
}

/// Ready, and every resource watching with its initial list done.
async fn wait_synced(host: &KubeSim, name: &str, resources: usize) -> Value {
    until(&format!("{name} Ready and synced"), 60, || async {
        let pc = pedia_cluster(host, name).await;
        let conds = sync_conditions(&pc);
        let synced = conds.len() == resources && conds.values().all(|(s, _, listing)| s == "Syncing" && !listing);
        if cond_of(&pc, "Ready").0 == "True" && synced { Ok(pc) } else { Err(pc["status"].to_string()) }
    })
    .await
}

/// `(group, version, resource) -> objects` in the member, read straight from kubesim.
async fn member_count(sim: &KubeSim, gvr: (&str, &str, &str)) -> usize {
    let path = match gvr.0 {
        "" => format!("/api/{}/{}", gvr.1, gvr.2),
        g => format!("/apis/{g}/{}/{}", gvr.1, gvr.2),
    };
    get(sim, &path).await["items"].as_array().unwrap().len()
}

async fn stored(store: &Storage) -> BTreeMap<(String, String), i64> {
    store.stats().await.unwrap().rows.into_iter().map(|(c, gvr, n)| ((c, gvr.to_string()), n)).collect()
}

fn gvr_name(gvr: (&str, &str, &str)) -> String {
    if gvr.0.is_empty() { format!("{}/{}", gvr.1, gvr.2) } else { format!("{}/{}/{}", gvr.0, gvr.1, gvr.2) }
}

/// Waits until the store holds as many objects as the member for each resource.
async fn wait_counts(store: &Storage, cluster: &str, sim: &KubeSim, gvrs: &[(&str, &str, &str)]) {
    until(&format!("{cluster}: store equals member"), 60, || async {
        let rows = stored(store).await;
        let mut diff = Vec::new();
        for g in gvrs {
            let want = member_count(sim, *g).await as i64;
            let have = rows.get(&(cluster.to_owned(), gvr_name(*g))).copied().unwrap_or(0);
            if want != have {
                diff.push(format!("{}: member {want}, store {have}", gvr_name(*g)));
            }
        }
        if diff.is_empty() { Ok(()) } else { Err(diff.join("; ")) }
    })
    .await
}

/// A CRD served in two versions (both stored separately, as upstream).
fn gadget_crd() -> Value {
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.org"},
           "spec": {"group": "example.org", "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                    "versions": [version("v1", true), version("v1beta1", false)]}})
}

fn member_access(m: &fleet::FleetCluster) -> (String, String) {
    (m.server.url(), base64(m.server.ca_pem().unwrap().as_bytes()))
}

fn compat(file: &str) -> PathBuf {
    let dir = std::env::var_os("PEDIA_COMPAT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("../shared/compat"))
        .join("clusterpedia/examples");
    assert!(dir.is_dir(), "upstream examples not found at {} (set PEDIA_COMPAT_DIR)", dir.display());
    dir.join(file)
}

fn yaml_file(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const CORE: [(&str, &str, &str); 2] = [("", "v1", "pods"), ("", "v1", "configmaps")];
const DEPLOYMENTS: (&str, &str, &str) = ("apps", "v1", "deployments");
const WIDGETS: (&str, &str, &str) = ("example.com", "v1", "widgets");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_is_synced_and_stays_correct() {
    let dir = std::env::temp_dir().join(format!("pedia-synchro-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let requests = dir.join("requests.log");
    let request_log = Arc::new(kubesim::request_log::RequestLog::file(&requests).unwrap());
    let Fleet { host, members } = fleet::start_with(3, &dir, SeedSize::default(), Some(request_log)).await.unwrap();
    // member-3 is a kube-apiserver without streaming lists (the WatchList feature off).
    members[2].sim.faults().set_streaming_lists(false);
    let h = &host.sim;
    let k = Kubectl::new(host.kubeconfig.clone());
    k.ok(&["apply", "--server-side", "-f", common::repo().join("crds").to_str().unwrap()], None).await;
    create(h, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})).await;

    // member-1 has a CRD in two versions.
    let m1 = &members[0].sim;
    create(m1, gadget_crd()).await;
    for i in 0..3 {
        create(m1, json!({"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": format!("g{i}"), "namespace": "shop-0"}})).await;
    }

    // member-1: upstream's example PediaCluster, its endpoint and client certificate filled in as
    // a user would.
    let mut example = yaml_file(&compat("pediacluster.yaml"));
    let (server, ca) = member_access(&members[0]);
    let (cert, key) = &members[0].admin_cert;
    example["metadata"]["name"] = json!("member-1");
    example["spec"]["apiserver"] = json!(server);
    example["spec"]["caData"] = json!(ca);
    example["spec"]["certData"] = json!(base64(cert.as_bytes()));
    example["spec"]["keyData"] = json!(base64(key.as_bytes()));
    example["spec"]["tokenData"] = Value::Null;
    example["spec"]["syncResources"].as_array_mut().unwrap().extend([
        json!({"group": "", "resources": ["configmaps"]}),
        json!({"group": "example.com", "resources": ["widget"]}),
        json!({"group": "example.org", "resources": ["gadgets"]}),
    ]);
    k.apply(&serde_json::to_string(&example).unwrap()).await;

    // member-2: credentials from a Secret in pedia's namespace.
    let (server2, ca2) = member_access(&members[1]);
    let secret = |token: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "member-2-credentials", "namespace": NS},
               "data": {"token": base64(token.as_bytes()), "ca.crt": ca2}})
    };
    create(h, secret(&members[1].token)).await;
    create(h, json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "member-2"},
        "spec": {"apiserver": server2,
                 "authenticationFrom": {"token": {"name": "member-2-credentials", "key": "token"}, "ca": {"name": "member-2-credentials", "key": "ca.crt"}},
                 "syncResources": [{"group": "", "resources": ["pods", "configmaps"]}, {"group": "apps", "resources": ["deployments"]},
                                   {"group": "stuff.example.net", "resources": ["*"]}]}})).await;

    // member-3: an inline kubeconfig whose user is an exec credential plugin, pods from
    // upstream's example ClusterSyncResources.
    k.ok(&["apply", "-f", compat("clustersyncresources.yaml").to_str().unwrap()], None).await;
    let plugin = dir.join("token-plugin.sh");
    let credential = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": members[2].token}});
    std::fs::write(&plugin, format!("#!/bin/sh\ncat <<'EOF'\n{credential}\nEOF\n")).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut kubeconfig3 = yaml_file(&members[2].kubeconfig);
    kubeconfig3["users"][0]["user"] = json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1",
        "command": plugin.to_str().unwrap(), "interactiveMode": "Never"}});
    let kubeconfig3 = serde_json::to_vec(&kubeconfig3).unwrap();
    create(h, json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "member-3"},
        "spec": {"kubeconfig": base64(&kubeconfig3), "syncResourcesRefName": "cluster-sync-resources-example",
                 "syncResources": [{"group": "", "resources": ["configmaps"]}]}})).await;

    // A wrong token: valid configuration, but the member answers 401.
    create(h, json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "wrong-token"},
        "spec": {"apiserver": server2, "caData": ca2, "tokenData": base64(b"not-the-token"),
                 "syncResources": [{"group": "", "resources": ["pods"]}]}})).await;
    // An exec plugin that fails: its error output is named in the condition.
    let failing = dir.join("failing-plugin.sh");
    std::fs::write(&failing, "#!/bin/sh\necho 'no credentials for this cluster' >&2\nexit 2\n").unwrap();
    std::fs::set_permissions(&failing, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut failing_kubeconfig = yaml_file(&members[2].kubeconfig);
    failing_kubeconfig["users"][0]["user"] = json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1",
        "command": failing.to_str().unwrap(), "interactiveMode": "Never"}});
    create(h, json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "failing-plugin"},
        "spec": {"kubeconfig": base64(&serde_json::to_vec(&failing_kubeconfig).unwrap()),
                 "syncResources": [{"group": "", "resources": ["pods"]}]}})).await;
    // Missing credentials: upstream's message.
    create(h, json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "no-token"},
        "spec": {"apiserver": server2, "syncResources": [{"group": "", "resources": ["pods"]}]}})).await;

    let db = dir.join("pedia.db");
    let log = dir.join("pedia.log");
    let port = free_port();
    let pedia = start_pedia(&host.kubeconfig, &db, &log, port, &[]);
    let store =
        Storage::connect(&StorageConfig::from_url(&format!("sqlite://{}", db.display())).unwrap(), 50).await.unwrap();

    // Ready within seconds, every resource listed, counts equal per resource.
    let pc1 = wait_synced(h, "member-1", 6).await;
    assert_eq!(
        common::malloc_arenas(pedia.0.id().unwrap()).as_deref(),
        Some(operator::malloc_arenas::ARENAS),
        "with a SQLite store pedia runs with few malloc arenas"
    );
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", pedia.0.id().unwrap())).unwrap();
    assert_eq!(comm.trim(), "pedia", "executed again, the process keeps its name (ps, pkill)");
    assert_eq!(pc1["status"]["version"], "v1.33.1");
    assert_eq!(pc1["status"]["apiserver"], json!(server));
    assert!(
        pc1["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .contains(&json!("clusterpedia.io/cluster-synchro-controller"))
    );
    let gadget_versions: Vec<String> = sync_conditions(&pc1).into_keys().filter(|k| k.contains("gadgets")).collect();
    assert_eq!(gadget_versions, ["example.org/v1/gadgets", "example.org/v1beta1/gadgets"]);
    wait_synced(h, "member-2", 3).await;
    wait_synced(h, "member-3", 2).await;
    let m1_gvrs = [
        CORE[0],
        CORE[1],
        DEPLOYMENTS,
        WIDGETS,
        ("example.org", "v1", "gadgets"),
        ("example.org", "v1beta1", "gadgets"),
    ];
    wait_counts(&store, "member-1", m1, &m1_gvrs).await;
    wait_counts(&store, "member-2", &members[1].sim, &[CORE[0], CORE[1], DEPLOYMENTS]).await;
    wait_counts(&store, "member-3", &members[2].sim, &CORE).await;
    assert!(stored(&store).await[&("member-1".to_owned(), "v1/pods".to_owned())] > 0);
    // Lists are streamed (sendInitialEvents) where the member serves that, paged where it does not.
    let request_lines = std::fs::read_to_string(&requests).unwrap();
    let pod_lists = |cluster: &str| -> Vec<String> {
        let prefix = format!("{cluster} GET /api/v1/pods?");
        request_lines.lines().filter(|l| l.starts_with(&prefix)).map(str::to_owned).collect()
    };
    let streamed = |l: &String| l.contains("sendInitialEvents=true") && l.contains("resourceVersionMatch=NotOlderThan");
    let lists1 = pod_lists("member-1");
    assert!(lists1.iter().any(|l| streamed(l) && l.contains("status=200")), "{lists1:#?}");
    assert!(!lists1.iter().any(|l| l.contains("limit=")), "member-1's pods are not listed in pages: {lists1:#?}");
    let lists3 = pod_lists("member-3");
    assert!(lists3.iter().any(|l| streamed(l) && l.contains("status=422")), "{lists3:#?}");
    assert!(
        lists3.iter().any(|l| l.contains("limit=500") && l.contains("status=200")),
        "member-3 falls back to pages: {lists3:#?}"
    );

    // kubectl shows the printer columns.
    let table = k.ok(&["get", "pediaclusters", "-o", "wide"], None).await;
    let row = table.lines().find(|l| l.starts_with("member-1 ")).unwrap();
    assert!(
        row.contains("True")
            && row.contains("v1.33.1")
            && row.contains("Validated")
            && row.contains("Running")
            && row.contains("Healthy"),
        "{table}"
    );

    // Wrong and missing credentials are named.
    until("wrong-token names the 401", 30, || async {
        let (status, reason, message) = cond_of(&pedia_cluster(h, "wrong-token").await, "ClusterHealthy");
        if status == "False" && reason == "NotReachable" && message.contains("401") { Ok(()) } else { Err(message) }
    })
    .await;
    until("no-token is InvalidConfig", 30, || async {
        let pc = pedia_cluster(h, "no-token").await;
        let v = cond_of(&pc, "Validated");
        if v == (
            "False".into(),
            "InvalidConfig".into(),
            "invalid cluster config: Cluster APIServer's Token or Cert is required".into(),
        ) && cond_of(&pc, "Ready").0 == "False"
        {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;

    until("failing-plugin names the plugin's error", 30, || async {
        let (status, reason, message) = cond_of(&pedia_cluster(h, "failing-plugin").await, "Validated");
        if status == "False" && reason == "InvalidConfig" && message.contains("no credentials for this cluster") {
            Ok(())
        } else {
            Err(message)
        }
    })
    .await;

    // A CRD created on member-2 later is synced at once (its group was asked for, not served yet).
    let mut things = gadget_crd();
    things["metadata"]["name"] = json!("things.stuff.example.net");
    things["spec"]["group"] = json!("stuff.example.net");
    things["spec"]["names"] =
        json!({"plural": "things", "singular": "thing", "kind": "Thing", "listKind": "ThingList"});
    things["spec"]["versions"] = json!([things["spec"]["versions"][0]]);
    create(&members[1].sim, things).await;
    for i in 0..2 {
        create(&members[1].sim, json!({"apiVersion": "stuff.example.net/v1", "kind": "Thing", "metadata": {"name": format!("t{i}"), "namespace": "default"}})).await;
    }
    let noticed = tokio::time::Instant::now();
    wait_synced(h, "member-2", 4).await;
    wait_counts(&store, "member-2", &members[1].sim, &[("stuff.example.net", "v1", "things")]).await;
    assert!(
        noticed.elapsed() < Duration::from_secs(20),
        "the new CRD took {:?} (rediscovery is every 30 s)",
        noticed.elapsed()
    );

    // Create, update, delete on a member arrive in the store.
    create(m1, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fresh", "namespace": "default"}, "data": {"k": "1"}})).await;
    let (code, _) = sim_patch(m1, "/api/v1/namespaces/default/configmaps/fresh", json!({"data": {"k": "2"}})).await;
    assert!(code.is_success());
    let (code, _) = m1.request(Method::DELETE, "/apis/apps/v1/namespaces/shop-0/deployments/web", None).await;
    assert!(code.is_success());
    wait_counts(&store, "member-1", m1, &[CORE[1], DEPLOYMENTS]).await;
    until("the update is stored", 30, || async {
        let obj = store_object(&store, "member-1", "configmaps", "default", "fresh").await;
        match obj {
            Some(o) if o["data"]["k"] == "2" => Ok(o),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let fresh = store_object(&store, "member-1", "configmaps", "default", "fresh").await.unwrap();
    assert_eq!(fresh["metadata"]["annotations"]["shadow.clusterpedia.io/cluster-name"], "member-1");
    assert_eq!(fresh["kind"], "ConfigMap");
    assert!(fresh["metadata"].get("managedFields").is_none());

    // Events of member-2's pods, switched on without a restart, are stored with them.
    let m2 = &members[1].sim;
    let pod_events =
        get(m2, "/api/v1/events?fieldSelector=involvedObject.kind%3DPod").await["items"].as_array().unwrap().len();
    assert!(pod_events > 0);
    let path = "/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/member-2";
    let mut pc2 = get(h, path).await;
    pc2["spec"]["syncResources"][0]["eventsInvolvedResources"] = json!(["pods"]);
    let (code, body) = h.request(Method::PUT, path, Some(&pc2)).await;
    assert!(code.is_success(), "{body}");
    until("member-2's pod events stored", 30, || async {
        let n = store.stats().await.unwrap().events as usize;
        if n == pod_events { Ok(()) } else { Err(format!("{n} of {pod_events}")) }
    })
    .await;

    // Dropped watches and a forced 410 on member-2 lose nothing and duplicate nothing.
    m2.drop_watches();
    create(
        m2,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-drop", "namespace": "default"}}),
    )
    .await;
    wait_counts(&store, "member-2", m2, &[CORE[1]]).await;
    let pods = get(m2, "/api/v1/namespaces/shop-1/pods").await;
    for p in pods["items"].as_array().unwrap().iter().take(2) {
        let name = p["metadata"]["name"].as_str().unwrap();
        m2.request(Method::DELETE, &format!("/api/v1/namespaces/shop-1/pods/{name}"), None).await;
    }
    create(
        m2,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "during-410", "namespace": "default"}}),
    )
    .await;
    m2.compact();
    m2.drop_watches();
    wait_counts(&store, "member-2", m2, &[CORE[0], CORE[1], DEPLOYMENTS]).await;

    // Unreachable member-3: objects deleted meanwhile are gone once it is back.
    let m3 = &members[2].sim;
    m3.faults().set_unreachable(true);
    let cms = get(m3, "/api/v1/namespaces/shop-0/configmaps").await;
    let victim = cms["items"][0]["metadata"]["name"].as_str().unwrap().to_owned();
    m3.request(Method::DELETE, &format!("/api/v1/namespaces/shop-0/configmaps/{victim}"), None).await;
    m3.compact();
    until("member-3 paused", 40, || async {
        let pc = pedia_cluster(h, "member-3").await;
        let paused = sync_conditions(&pc).values().all(|(s, r, _)| s == "Stop" && r == "Pause");
        if cond_of(&pc, "ClusterHealthy").1 == "NotReachable" && paused {
            Ok(())
        } else {
            Err(pc["status"].to_string())
        }
    })
    .await;
    m3.faults().set_unreachable(false);
    wait_synced(h, "member-3", 2).await;
    wait_counts(&store, "member-3", m3, &CORE).await;

    // A failing /readyz pauses member-1 and it resumes by itself, rewriting nothing.
    let head = store.log_state().await.unwrap().head;
    let writes_before = writes(port).await;
    m1.faults().set_ready(false);
    until("member-1 paused on /readyz", 40, || async {
        let pc = pedia_cluster(h, "member-1").await;
        let paused = sync_conditions(&pc).values().all(|(s, r, _)| s == "Stop" && r == "Pause");
        let healthy = cond_of(&pc, "ClusterHealthy");
        if healthy.1 == "NotReachable" && healthy.2.contains("500") && paused {
            Ok(())
        } else {
            Err(pc["status"].to_string())
        }
    })
    .await;
    m1.faults().set_ready(true);
    wait_synced(h, "member-1", 6).await;
    wait_counts(&store, "member-1", m1, &m1_gvrs).await;
    assert_eq!(store.log_state().await.unwrap().head, head, "resuming rewrote unchanged rows");
    assert_eq!(writes(port).await, writes_before, "resuming sent unchanged objects to the store again");

    // Secret rotation: a wrong token in member-2's Secret restarts only member-2.
    let before = pedia_cluster(h, "member-1").await["status"]["conditions"].clone();
    let (code, _) =
        sim_put(h, &format!("/api/v1/namespaces/{NS}/secrets/member-2-credentials"), secret("rotated-but-wrong")).await;
    assert!(code.is_success());
    until("member-2 uses the rotated (wrong) token", 30, || async {
        let (_, reason, message) = cond_of(&pedia_cluster(h, "member-2").await, "ClusterHealthy");
        if reason == "NotReachable" && message.contains("401") { Ok(()) } else { Err(message) }
    })
    .await;
    let (code, _) =
        sim_put(h, &format!("/api/v1/namespaces/{NS}/secrets/member-2-credentials"), secret(&members[1].token)).await;
    assert!(code.is_success());
    wait_synced(h, "member-2", 4).await;
    assert_eq!(pedia_cluster(h, "member-1").await["status"]["conditions"], before, "member-1 was not touched");

    // A restart of pedia resumes without rewriting unchanged rows.
    drop(pedia);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let head = store.log_state().await.unwrap().head;
    // Clear the statuses, so what is waited for below is the new process's report.
    for name in ["member-1", "member-2", "member-3"] {
        let path = format!("/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/{name}/status");
        let mut pc = pedia_cluster(h, name).await;
        pc["status"] = json!({});
        let (code, body) = h.request(Method::PUT, &path, Some(&pc)).await;
        assert!(code.is_success(), "{body}");
    }
    let port = free_port();
    // This time with a short change log: the leader trims it on its interval.
    let keep = 10;
    let pedia = start_pedia(
        &host.kubeconfig,
        &db,
        &log,
        port,
        &["--change-log-compact-interval", "1s", "--change-log-retention-entries", &keep.to_string()],
    );
    for (name, n) in [("member-1", 6), ("member-2", 4), ("member-3", 2)] {
        wait_synced(h, name, n).await;
    }
    wait_counts(&store, "member-1", m1, &m1_gvrs).await;
    assert_eq!(store.log_state().await.unwrap().head, head, "a restart rewrote unchanged rows");
    until("the change log is trimmed to its retention", 30, || async {
        let state = store.log_state().await.unwrap();
        if state.horizon > 0 && state.head - state.horizon <= keep { Ok(()) } else { Err(format!("{state:?}")) }
    })
    .await;
    // Counted by the synchros themselves: not one object was sent to the store again.
    let metrics = http_get(port, "/metrics").await.expect("/metrics answers");
    let total = |name: &str| -> f64 {
        metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(total("clustersynchro_resourcesynchro_resource_added_total"), 0.0, "{metrics}");
    assert_eq!(total("clustersynchro_resourcesynchro_resource_updated_total"), 0.0, "{metrics}");
    let rows: i64 = stored(&store).await.iter().filter(|((c, _), _)| c.starts_with("member-")).map(|(_, n)| n).sum();
    assert_eq!(total("clustersynchro_resourcesynchro_storaged_resource_total"), rows as f64, "{metrics}");
    assert!(metrics.contains("pedia_cluster_healthy{cluster=\"member-1\"} 1"), "{metrics}");
    assert!(metrics.contains("clusterpedia_build_info{"), "{metrics}");
    assert_eq!(http_get(port, "/readyz").await.as_deref(), Some("ok"));

    // A steady healthy cluster is not rewritten at every probe (status writes are coalesced).
    let before = pedia_cluster(h, "member-1").await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = pedia_cluster(h, "member-1").await;
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "status written while nothing changed:\n{}\n{}",
        before["status"], after["status"]
    );

    // Deleting a PediaCluster deletes its rows, then the object.
    let (code, _) =
        h.request(Method::DELETE, "/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/member-3", None).await;
    assert!(code.is_success());
    until("member-3 and its rows gone", 30, || async {
        let (code, _) =
            h.request(Method::GET, "/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/member-3", None).await;
        let rows = stored(&store).await.keys().filter(|(c, _)| c == "member-3").count();
        if code == 404 && rows == 0 { Ok(()) } else { Err(format!("{code}, {rows} resources left")) }
    })
    .await;
    assert!(stored(&store).await.keys().any(|(c, _)| c == "member-1"), "other clusters keep their rows");

    drop(pedia);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Objects the synchros added or updated so far (their metrics).
async fn writes(port: u16) -> f64 {
    let metrics = http_get(port, "/metrics").await.expect("/metrics answers");
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("clustersynchro_resourcesynchro_resource_added_total")
                || l.starts_with("clustersynchro_resourcesynchro_resource_updated_total")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn sim_patch(sim: &KubeSim, path: &str, patch: Value) -> (http::StatusCode, Value) {
    let current = get(sim, path).await;
    let mut next = current.clone();
    json_merge(&mut next, &patch);
    sim.request(Method::PUT, path, Some(&next)).await
}

async fn sim_put(sim: &KubeSim, path: &str, mut object: Value) -> (http::StatusCode, Value) {
    let current = get(sim, path).await;
    object["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    sim.request(Method::PUT, path, Some(&object)).await
}

fn json_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// One stored object, through the storage's query API.
async fn store_object(store: &Storage, cluster: &str, resource: &str, namespace: &str, name: &str) -> Option<Value> {
    store.get(cluster, &api_types::Gvr::new("", "v1", resource), namespace, name).await.unwrap()
}
