//! Search apiserver benchmark: a store of `--pods` pods across `--clusters` clusters (SQLite and
//! PostgreSQL), the server in this process over HTTPS, a kube-rs client. Prints end-to-end page
//! latencies (p50 / p99) for JSON and Table pages of 500 (first pages, label-selector pages,
//! continue pages), a `--chunk-size=500` walk of 100,000 pods, and watch delivery while
//! `--rate` changes per second are written: `--watchers` watchers of one cluster each plus
//! `--global-watchers` of every cluster, every change counted and its delivery time measured.
//! Asserts nothing. `make bench` runs it; `SEARCH_BENCH_ARGS` passes
//! `--pods N --clusters C --backends sqlite,postgres --watchers W --rate R --seconds S --samples N`;
//! `--reuse true` keeps the store of the previous run when it holds those pods (query-side work).
#![allow(clippy::unwrap_used)] // a benchmark may panic

#[path = "../../storage/benches/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api_types::Gvr;
use api_types::cluster::PediaCluster;
use futures_util::{AsyncBufReadExt, StreamExt};
use pedia_apiserver::auth::{Authenticator, Authorizer, User};
use pedia_apiserver::catalog::Catalog;
use pedia_storage::{Storage, StorageConfig};
use pedia_testkit::realistic_pod;
use serde_json::{Value, json};
use support::{arg, percentile};

const WRITTEN: &str = "bench.pedia.io/written";
const TOKEN: &str = "bench-token";

fn cluster_name(c: usize) -> String {
    format!("c{c:03}")
}

fn fresh_url(backend: &str, name: &str) -> String {
    match backend {
        "sqlite" => {
            let p = std::env::temp_dir().join(format!("{name}.db"));
            pedia_storage::remove_sqlite(&p);
            format!("sqlite://{}", p.display())
        }
        "postgres" => {
            for sql in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
                let out = std::process::Command::new("psql")
                    .args(["postgres://postgres@127.0.0.1:5432/postgres", "-q", "-c", &sql])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
            }
            format!("postgres://postgres@127.0.0.1:5432/{name}")
        }
        other => panic!("unknown backend {other} (sqlite, postgres)"),
    }
}

/// The previous run's store of `backend`, when `--reuse true` and it holds `want` objects.
async fn reuse_store(backend: &str, want: i64) -> Option<Arc<Storage>> {
    if arg("--reuse", "false") != "true" {
        return None;
    }
    let url = match backend {
        "sqlite" => format!("sqlite://{}", std::env::temp_dir().join("pedia_search_bench.db").display()),
        _ => "postgres://postgres@127.0.0.1:5432/pedia_search_bench".to_owned(),
    };
    let storage = Storage::connect(&StorageConfig::from_url(&url).ok()?, 5).await.ok()?;
    storage.migrate().await.ok()?;
    let stored: i64 = storage.stats().await.ok()?.rows.iter().map(|(_, _, n)| n).sum();
    (stored == want).then(|| Arc::new(storage))
}

fn pedia_cluster(name: &str) -> PediaCluster {
    serde_json::from_value(json!({
        "apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": name},
        "spec": {"syncResources": []},
        "status": {"conditions": [{"type": "ClusterHealthy", "status": "True", "reason": "Healthy", "message": "",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                   "syncResources": [{"group": "", "resources": [{"name": "pods", "kind": "Pod", "namespaced": true,
                       "syncConditions": [{"version": "v1", "status": "Syncing", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}]}
    }))
    .unwrap()
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

async fn seed(storage: &Storage, pods: usize, clusters: usize) {
    let gvr = Gvr::new("", "v1", "pods");
    let per = pods / clusters;
    let t = Instant::now();
    for c in 0..clusters {
        let objects: Vec<Value> = (0..per).map(|i| realistic_pod(c, i)).collect();
        for chunk in objects.chunks(1000) {
            storage.upsert(&cluster_name(c), &gvr, chunk).await.unwrap();
        }
    }
    let _ = storage.analyze().await;
    println!(
        "  seeded {} pods in {:.1} s ({:.0} objects/s)",
        per * clusters,
        t.elapsed().as_secs_f64(),
        (per * clusters) as f64 / t.elapsed().as_secs_f64()
    );
}

async fn get(client: &kube::Client, path: &str, table: bool) -> Value {
    let mut req = http::Request::get(path);
    if table {
        req = req.header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
    }
    let text = client.request_text(req.body(Vec::new()).unwrap()).await.unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn pages(client: &kube::Client, label: &str, queries: &[String], table: bool, continue_page: bool) {
    let mut samples = Vec::new();
    for q in queries {
        let mut path = format!("/api/v1/pods?limit=500&{q}");
        if continue_page {
            let first = get(client, &path, false).await;
            path = format!("{path}&continue={}", first["metadata"]["continue"].as_str().unwrap());
        }
        let t = Instant::now();
        let v = get(client, &path, table).await;
        samples.push(t.elapsed());
        let n =
            if table { v["rows"].as_array().map_or(0, Vec::len) } else { v["items"].as_array().map_or(0, Vec::len) };
        assert!(n > 0, "{path}: an empty page");
    }
    println!(
        "  {label:<44} {} p50 {:>6.1} ms  p99 {:>6.1} ms",
        if table { "Table" } else { "JSON " },
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
}

async fn walk(client: &kube::Client, clusters: usize, per: usize) {
    let n = (100_000 / per.max(1)).clamp(1, clusters);
    let list: Vec<String> = (0..n).map(cluster_name).collect();
    let mut path = format!("/api/v1/pods?limit=500&clusters={}", list.join(","));
    let t = Instant::now();
    let mut count = 0;
    loop {
        let v = get(client, &path, false).await;
        count += v["items"].as_array().unwrap().len();
        match v["metadata"]["continue"].as_str() {
            Some(c) => path = format!("/api/v1/pods?limit=500&clusters={}&continue={c}", list.join(",")),
            None => break,
        }
    }
    println!("  walk of {count} pods in pages of 500 (kubectl --chunk-size=500): {:.2} s", t.elapsed().as_secs_f64());
}

/// One watcher: counts events and records each one's delivery time.
async fn watcher(
    client: kube::Client,
    path: String,
    seen: Arc<AtomicUsize>,
    latencies: Arc<std::sync::Mutex<Vec<Duration>>>,
) {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    let stream = client.request_stream(req).await.unwrap();
    let mut lines = stream.lines();
    let needle = format!("\"{WRITTEN}\":\"");
    while let Some(Ok(line)) = lines.next().await {
        let Some(at) = line.find(&needle) else { continue };
        let digits: String = line[at + needle.len()..].chars().take_while(char::is_ascii_digit).collect();
        let Ok(written) = digits.parse::<u128>() else { continue };
        let latency = Duration::from_nanos(now_ns().saturating_sub(written) as u64);
        seen.fetch_add(1, Ordering::Relaxed);
        latencies.lock().unwrap().push(latency);
    }
}

/// The watch part's shape.
#[derive(Clone, Copy)]
struct WatchLoad {
    clusters: usize,
    per_cluster: usize,
    watchers: usize,
    global: usize,
    rate: usize,
    seconds: u64,
}

async fn watch(client: &kube::Client, storage: &Storage, load: &WatchLoad) {
    let WatchLoad { clusters, per_cluster: per, watchers, global, rate, seconds } = *load;
    let head = storage.log_state().await.unwrap().head;
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut per_watcher = Vec::new();
    let mut tasks = Vec::new();
    for w in 0..watchers + global {
        let seen = Arc::new(AtomicUsize::new(0));
        let filter = if w < watchers { format!("&clusters={}", cluster_name(w % clusters)) } else { String::new() };
        let path = format!("/api/v1/pods?watch=1&resourceVersion={head}&timeoutSeconds=600{filter}");
        tasks.push(tokio::spawn(watcher(client.clone(), path, seen.clone(), latencies.clone())));
        per_watcher.push((w, seen));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Writes: every 100 ms, `rate / 10` changes over 10 clusters (each cluster every second).
    let mut written = vec![0usize; clusters];
    let tick = Duration::from_millis(100);
    let per_tick = (rate / 10).max(1);
    let clusters_per_tick = 10.min(clusters);
    let start = Instant::now();
    let mut step = 0usize;
    let mut late_ticks = 0;
    let run = now_ns() / 1_000_000_000;
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    ticker.tick().await;
    while start.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        let stamp = now_ns().to_string();
        let mut writes = Vec::new();
        for k in 0..clusters_per_tick {
            let c = (step * clusters_per_tick + k) % clusters;
            let n = per_tick / clusters_per_tick;
            let objects: Vec<Value> = (0..n)
                .map(|j| {
                    let mut p = realistic_pod(c, (step * n + j) % per);
                    p["metadata"]["annotations"][WRITTEN] = json!(stamp);
                    // A new version, as a member's change has (the store skips unchanged ones);
                    // new in every run, so a reused store logs each one too.
                    p["metadata"]["resourceVersion"] = json!(format!("{run}{step:08}"));
                    p
                })
                .collect();
            written[c] += n;
            writes.push(async move { storage.upsert(&cluster_name(c), &Gvr::new("", "v1", "pods"), &objects).await });
        }
        for r in futures_util::future::join_all(writes).await {
            r.unwrap();
        }
        step += 1;
        if t.elapsed() > tick {
            late_ticks += 1;
        }
        // Ticks on the clock, not after each write: a tick the runtime woke late is made up by
        // the next ones, so the rate is the one asked for unless the writes cannot keep it.
        ticker.tick().await;
    }
    let total: usize = written.iter().sum();
    let actual_rate = total as f64 / start.elapsed().as_secs_f64();
    // Let the last changes arrive.
    let expect = |w: usize| if w < watchers { written[w % clusters] } else { total };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && per_watcher.iter().any(|(w, s)| s.load(Ordering::Relaxed) < expect(*w)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in &tasks {
        t.abort();
    }
    let complete = per_watcher.iter().filter(|(w, s)| s.load(Ordering::Relaxed) == expect(*w)).count();
    let delivered: usize = per_watcher.iter().map(|(_, s)| s.load(Ordering::Relaxed)).sum();
    let mut l = latencies.lock().unwrap().clone();
    println!(
        "  watch: {watchers} one-cluster + {global} all-cluster watchers, {actual_rate:.0} changes/s for {seconds} s ({late_ticks} late write ticks): \
         {complete}/{} watchers saw every change, {delivered} events, delivery p50 {:.0} ms p99 {:.0} ms",
        watchers + global,
        if l.is_empty() { f64::NAN } else { percentile(&mut l, 0.5) },
        if l.is_empty() { f64::NAN } else { percentile(&mut l, 0.99) },
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pods: usize = arg("--pods", "1000000").parse().unwrap();
    let clusters: usize = arg("--clusters", "100").parse().unwrap();
    let watchers: usize = arg("--watchers", "100").parse().unwrap();
    let global: usize = arg("--global-watchers", "1").parse().unwrap();
    let rate: usize = arg("--rate", "1000").parse().unwrap();
    let seconds: u64 = arg("--seconds", "10").parse().unwrap();
    // A p99 needs well over 100 samples (of 40, it is the slowest one).
    let samples: usize = arg("--samples", "200").parse().unwrap();
    let backends = arg("--backends", "sqlite,postgres");
    println!("search apiserver: {pods} pods across {clusters} clusters, HTTPS, kube-rs client, server in this process");
    for backend in backends.split(',') {
        println!("{backend}:");
        let want = (pods / clusters * clusters) as i64;
        let storage = match reuse_store(backend, want).await {
            Some(storage) => {
                println!("  reusing the {want} stored pods");
                storage
            }
            None => {
                let url = fresh_url(backend, "pedia_search_bench");
                let storage = Arc::new(Storage::connect(&StorageConfig::from_url(&url).unwrap(), 5).await.unwrap());
                storage.migrate().await.unwrap();
                seed(&storage, pods, clusters).await;
                storage
            }
        };
        let clusters_list: Vec<PediaCluster> = (0..clusters).map(|c| pedia_cluster(&cluster_name(c))).collect();
        let (_tx, catalog) = tokio::sync::watch::channel(Arc::new(Catalog::build(&clusters_list)));
        let mut authn = Authenticator::default();
        authn.tokens.insert(TOKEN.into(), User { name: "bench".into(), ..User::default() });
        let state = Arc::new(pedia_apiserver::State {
            storage: storage.clone(),
            catalog,
            authn,
            authz: Authorizer::Authenticated,
            redact_secrets: false,
            watch: pedia_apiserver::WatchSettings::default(),
            feed: pedia_apiserver::feed::Feed::start(storage.clone(), pedia_apiserver::WatchSettings::default().poll),
        });
        let tls =
            pedia_apiserver::tls::server_config(pedia_apiserver::tls::ServingCert::self_signed(&[]).unwrap(), &[])
                .unwrap();
        let server = pedia_apiserver::server::start("127.0.0.1:0".parse().unwrap(), tls, state).await.unwrap();
        let mut config = kube::Config::new(
            format!("https://{}/apis/clusterpedia.io/v1beta1/resources", server.addr).parse().unwrap(),
        );
        config.accept_invalid_certs = true;
        config.auth_info.token = Some(TOKEN.to_owned().into());
        let client = kube::Client::try_from(config).unwrap();

        let per = pods / clusters;
        let firsts: Vec<String> = (0..samples).map(|i| format!("clusters={}", cluster_name(i % clusters))).collect();
        let global_firsts: Vec<String> = (0..samples).map(|i| format!("namespaces=ns-{}", i % 20)).collect();
        let labels: Vec<String> =
            (0..samples).map(|i| format!("labelSelector=app.kubernetes.io%2Fname%3Dapp-{}", i % 50)).collect();
        for table in [false, true] {
            pages(&client, "first page, one cluster", &firsts, table, false).await;
            pages(&client, "first page, one namespace of every cluster", &global_firsts, table, false).await;
            pages(&client, "label selector page", &labels, table, false).await;
            pages(&client, "second page (continue), one cluster", &firsts, table, true).await;
        }
        walk(&client, clusters, per).await;
        let load = WatchLoad { clusters, per_cluster: per, watchers, global, rate, seconds };
        watch(&client, &storage, &load).await;
        server.abort();
    }
}
