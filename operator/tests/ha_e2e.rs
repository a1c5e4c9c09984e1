//! Replicas on one PostgreSQL: two `pedia operator` processes elect a leader on a Lease, only the
//! leader syncs, and when it is killed the other takes its clusters over within the lease
//! duration; a leader stopped with SIGTERM gives the lease up as it exits. A replica with
//! `--sharding-name east` syncs only the cluster of that shard.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use common::{free_port, fresh_postgres, http_get, pedia_command, sync_conditions, until};

use std::path::Path;
use std::time::Duration;

use http::Method;
use kubesim::KubeSim;
use kubesim::fleet::{self, Fleet};
use kubesim::kubeconfig::base64;
use kubesim::seed::SeedSize;
use pedia_storage::{Storage, StorageConfig};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const NS: &str = "pedia-ha";

struct Replica {
    child: Child,
    port: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn replica(host: &Path, storage: &str, shard: &str, log: &Path) -> Replica {
    let port = free_port();
    let child = pedia_command(log)
        .args(["operator", "--controllers", "clusters", "--namespace", NS, "--sharding-name", shard])
        .arg("--metrics-bind-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kubeconfig")
        .arg(host)
        .args(["--storage", storage])
        .spawn()
        .unwrap();
    Replica { child, port }
}

/// The clusters a replica runs a synchro for (its health series).
async fn synced_by(r: &Replica) -> Vec<String> {
    let metrics = http_get(r.port, "/metrics").await.unwrap_or_default();
    let mut clusters: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("pedia_cluster_healthy{cluster=\""))
        .filter_map(|l| l.split('"').next().map(str::to_owned))
        .collect();
    clusters.sort();
    clusters
}

async fn lease_holder(h: &KubeSim, name: &str) -> String {
    let (_, lease) =
        h.request(Method::GET, &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{name}"), None).await;
    lease["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned()
}

fn pedia_cluster(name: &str, m: &fleet::FleetCluster, shard: Option<&str>) -> Value {
    let mut pc = json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": name},
        "spec": {"apiserver": m.server.url(), "caData": base64(m.server.ca_pem().unwrap().as_bytes()),
                 "tokenData": base64(m.token.as_bytes()), "syncResources": [{"group": "", "resources": ["configmaps"]}]}});
    if let Some(s) = shard {
        pc["spec"]["shardingName"] = json!(s);
    }
    pc
}

async fn stored(store: &Storage, cluster: &str) -> i64 {
    store.stats().await.unwrap().rows.iter().filter(|r| r.0 == cluster).map(|r| r.2).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_elect_a_leader_and_take_over() {
    let dir = std::env::temp_dir().join(format!("pedia-ha-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let size = SeedSize { namespaces: 1, deployments_per_namespace: 1, ..SeedSize::default() };
    let Fleet { host, members } = fleet::start(2, &dir, size).await.unwrap();
    let h = &host.sim;
    for crd in api_types::crd::pedia_crds() {
        h.create(serde_json::to_value(&crd).unwrap()).await.unwrap();
    }
    h.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})).await.unwrap();
    h.create(pedia_cluster("default-shard", &members[0], None)).await.unwrap();
    h.create(pedia_cluster("east-shard", &members[1], Some("east"))).await.unwrap();

    let url = fresh_postgres(&format!("pedia_ha_{}", std::process::id()));
    let store = Storage::connect(&StorageConfig::from_url(&url).unwrap(), 5).await.unwrap();
    store.migrate().await.unwrap();
    let log = dir.join("replicas.log");
    let a = replica(&host.kubeconfig, &url, "", &log);
    let default_lease = "clusterpedia-clustersynchro-manager";
    until("replica a leads and syncs default-shard", 30, || async {
        let synced = synced_by(&a).await;
        if synced == ["default-shard"] { Ok(()) } else { Err(format!("{synced:?}")) }
    })
    .await;
    assert_eq!(
        common::malloc_arenas(a.child.id().unwrap()),
        None,
        "with a database server pedia keeps glibc's default arenas"
    );
    let a_identity = lease_holder(h, default_lease).await;
    assert!(!a_identity.is_empty());
    let mut b = replica(&host.kubeconfig, &url, "", &log);
    let east = replica(&host.kubeconfig, &url, "east", &log);
    until("the east replica syncs east-shard only", 30, || async {
        let synced = synced_by(&east).await;
        if synced == ["east-shard"] { Ok(()) } else { Err(format!("{synced:?}")) }
    })
    .await;
    let (_, pc) = h.request(Method::GET, "/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/east-shard", None).await;
    assert_eq!(pc["status"]["shardingName"], "east");
    assert!(!lease_holder(h, "clusterpedia-clustersynchro-manager-east").await.is_empty());

    // b waits: serving its metrics, syncing nothing, the lease still a's.
    until("replica b serves metrics", 20, || async {
        http_get(b.port, "/readyz").await.ok_or_else(|| "no answer".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(synced_by(&b).await.is_empty(), "the standby replica syncs nothing");
    assert_eq!(lease_holder(h, default_lease).await, a_identity);
    until("default-shard stored", 30, || async {
        let n = stored(&store, "default-shard").await;
        if n > 0 { Ok(()) } else { Err("no rows".into()) }
    })
    .await;

    // a is killed: b takes over within the lease duration, and changes keep arriving.
    drop(a);
    let took = tokio::time::Instant::now();
    until("replica b takes over", 40, || async {
        let synced = synced_by(&b).await;
        if synced == ["default-shard"] { Ok(()) } else { Err(format!("{synced:?}")) }
    })
    .await;
    assert!(took.elapsed() < Duration::from_secs(30), "took over after {:?}", took.elapsed());
    assert_ne!(lease_holder(h, default_lease).await, a_identity);
    let m = &members[0].sim;
    m.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-failover", "namespace": "default"}}))
        .await
        .unwrap();
    let (_, list) = m.request(Method::GET, "/api/v1/configmaps", None).await;
    let want = list["items"].as_array().unwrap().len() as i64;
    until("the new leader stores new changes", 30, || async {
        let n = stored(&store, "default-shard").await;
        if n == want { Ok(()) } else { Err(format!("{n} of {want}")) }
    })
    .await;
    assert!(synced_by(&east).await == ["east-shard"], "the east shard is untouched");

    // b is stopped as Kubernetes stops a pod (SIGTERM): it gives the lease up on its way out, so
    // the standby c does not wait for the lease to expire.
    let c = replica(&host.kubeconfig, &url, "", &log);
    until("replica c serves metrics", 20, || async {
        http_get(c.port, "/readyz").await.ok_or_else(|| "no answer".to_owned())
    })
    .await;
    let b_identity = lease_holder(h, default_lease).await;
    assert!(!b_identity.is_empty());
    let pid = b.child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let exit =
        tokio::time::timeout(Duration::from_secs(20), b.child.wait()).await.expect("b stops on SIGTERM").unwrap();
    assert!(exit.success(), "b exited with {exit}");
    assert_ne!(lease_holder(h, default_lease).await, b_identity, "the stopped leader gave its lease up");
    until("replica c takes over", 20, || async {
        let synced = synced_by(&c).await;
        if synced == ["default-shard"] { Ok(()) } else { Err(format!("{synced:?}")) }
    })
    .await;

    drop((b, c, east));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn sync_reasons(h: &KubeSim, name: &str) -> Vec<String> {
    let (_, pc) =
        h.request(Method::GET, &format!("/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/{name}"), None).await;
    sync_conditions(&pc).into_values().map(|(status, reason, _)| format!("{status}/{reason}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("pedia-outage-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let size = SeedSize { namespaces: 1, deployments_per_namespace: 2, ..SeedSize::default() };
    let Fleet { host, members } = fleet::start(1, &dir, size).await.unwrap();
    let h = &host.sim;
    for crd in api_types::crd::pedia_crds() {
        h.create(serde_json::to_value(&crd).unwrap()).await.unwrap();
    }
    h.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})).await.unwrap();
    h.create(pedia_cluster("member", &members[0], None)).await.unwrap();
    let url = fresh_postgres(&format!("pedia_outage_{}", std::process::id()));
    let store = Storage::connect(&StorageConfig::from_url(&url).unwrap(), 5).await.unwrap();
    store.migrate().await.unwrap();
    let (server, db) = url.split_once("://").unwrap().1.split_once('@').unwrap().1.split_once('/').unwrap();
    let proxy = common::Proxy::start(server).await;
    let through_proxy = format!("postgres://postgres@127.0.0.1:{}/{db}", proxy.port);
    let _pedia = replica(&host.kubeconfig, &through_proxy, "", &dir.join("pedia.log"));

    let m = &members[0].sim;
    let member_count = || async {
        let (_, list) = m.request(Method::GET, "/api/v1/configmaps", None).await;
        list["items"].as_array().unwrap().len() as i64
    };
    let want = member_count().await;
    until("initial sync", 30, || async {
        let n = stored(&store, "member").await;
        if n == want { Ok(()) } else { Err(format!("{n} of {want}")) }
    })
    .await;

    // The store goes away; changes on the member meanwhile.
    proxy.set_up(false);
    for i in 0..3 {
        m.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("during-outage-{i}"), "namespace": "default"}}))
            .await
            .unwrap();
    }
    let (_, list) = m.request(Method::GET, "/api/v1/namespaces/shop-0/configmaps", None).await;
    let gone = list["items"][0]["metadata"]["name"].as_str().unwrap().to_owned();
    m.request(Method::DELETE, &format!("/api/v1/namespaces/shop-0/configmaps/{gone}"), None).await;
    until("the condition says the storage is failing", 40, || async {
        let reasons = sync_reasons(h, "member").await;
        if reasons == ["Stop/StorageExpection"] { Ok(()) } else { Err(format!("{reasons:?}")) }
    })
    .await;

    // It comes back: everything arrives, nothing was dropped.
    proxy.set_up(true);
    let want = member_count().await;
    until("the changes made during the outage are stored", 60, || async {
        let n = stored(&store, "member").await;
        let reasons = sync_reasons(h, "member").await;
        if n == want && reasons == ["Syncing/"] { Ok(()) } else { Err(format!("{n} of {want}, {reasons:?}")) }
    })
    .await;
    assert!(
        store.get("member", &api_types::Gvr::new("", "v1", "configmaps"), "shop-0", &gone).await.unwrap().is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_the_crds_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pedia-nocrds-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Fleet { host, .. } = fleet::start(0, &dir, SeedSize::default()).await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pedia"))
        .args([
            "run",
            "--leader-elect=false",
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--secure-port",
            "0",
            "--kubeconfig",
        ])
        .arg(&host.kubeconfig)
        .arg("--storage")
        .arg(format!("sqlite://{}", dir.join("pedia.db").display()))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the PediaCluster CRD is not installed on the host cluster"), "{stderr}");
    assert!(stderr.contains("pedia crds | kubectl apply --server-side -f -"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
