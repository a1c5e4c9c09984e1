//! Replicas on one PostgreSQL: two `pedia operator` processes elect a leader on a Lease, only the
//! leader syncs, and when it is killed the other takes its clusters over within the lease
//! duration. A third replica with `--sharding-name east` syncs only the cluster of that shard.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use std::path::Path;
use std::process::Stdio;
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn replica(host: &Path, storage: &str, shard: &str, log: &Path) -> Replica {
    let port = free_port();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pedia"))
        .args(["operator", "--controllers", "clusters", "--namespace", NS, "--sharding-name", shard])
        .arg("--metrics-bind-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kubeconfig")
        .arg(host)
        .args(["--storage", storage])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Replica { child, port }
}

/// A throwaway PostgreSQL database (PEDIA_TEST_POSTGRES_URL names the server's admin database).
fn fresh_postgres(name: &str) -> String {
    let admin = std::env::var("PEDIA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
        let out = std::process::Command::new("psql").args([admin.as_str(), "-q", "-c", &sql]).output().unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).await.ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
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

async fn until<T, F, Fut>(desc: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if tokio::time::Instant::now() > deadline => panic!("timed out waiting for {desc}; last: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
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
    let a_identity = lease_holder(h, default_lease).await;
    assert!(!a_identity.is_empty());
    let b = replica(&host.kubeconfig, &url, "", &log);
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

    drop((b, east));
    let _ = std::fs::remove_dir_all(&dir);
}
