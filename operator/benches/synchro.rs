//! Sync engine benchmark: the real `pedia run` binary (release build) syncs a kubesim fleet into
//! SQLite and PostgreSQL. For each backend it prints the initial sync rate (pods only, the case
//! upstream was measured on: `kubesim fleet --members 10 --namespaces 10 --scale 500`), the
//! seconds until every PediaCluster is Ready and synced, the change-to-visible latency under a
//! steady stream of changes, the rate when deployments and services are added, and pedia's peak
//! RSS. The initial sync is compared with the backend's own bulk load of as many of the same pods,
//! measured just before it (the storage benchmark's bulk loads), `--rounds` times, with the
//! median of the rounds (runs on this machine vary by a quarter). Prints figures; asserts nothing.
//!
//! `cargo bench -p operator --bench synchro -- --members 10 --namespaces 10 --scale 500
//! --backends sqlite,postgres --rounds 3 --churn 500 --churn-seconds 20 [--streaming-lists false]`
//! (`PEDIA_BENCH_BIN=/path/to/pedia` runs another build of pedia; `PEDIA_BENCH_BIN=a,b` takes
//! turns round by round and prints each build's median: an A/B comparison on one fleet)
#![allow(clippy::unwrap_used)] // a benchmark may panic

#[path = "../storage/benches/bulk.rs"]
mod bulk;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use kubesim::KubeSim;
use kubesim::fleet::{self, Fleet};
use kubesim::kubeconfig::base64;
use kubesim::seed::SeedSize;
use pedia_storage::{Backend, ChangeFilter, Storage, StorageConfig};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
}

fn num(name: &str, default: usize) -> usize {
    arg(name, &default.to_string()).parse().unwrap()
}

/// Peak RSS, current RSS and current anonymous RSS (the heap, without mapped database pages) of
/// a process, MiB.
fn rss(pid: u32) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"), field("RssAnon:"))
}

/// CPU seconds a process has used (user + system); `self` for this one (the kubesim fleet).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are the 14th and 15th fields, in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

/// The pedia builds to run, round by round in turns (`PEDIA_BENCH_BIN`, comma-separated; this
/// crate's build by default).
fn builds() -> Vec<std::ffi::OsString> {
    match std::env::var("PEDIA_BENCH_BIN") {
        Ok(list) if !list.is_empty() => list.split(',').map(Into::into).collect(),
        _ => vec![env!("CARGO_BIN_EXE_pedia").into()],
    }
}

fn start_pedia(bin: &std::ffi::OsStr, host: &Path, storage: &str, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin)
        .args(["run", "--controllers", "clusters", "--namespace", "default", "--metrics-bind-address", "127.0.0.1:0"])
        .args(["--secure-port", "0", "--bind-address", "127.0.0.1"])
        .arg("--kubeconfig")
        .arg(host)
        .args(["--storage", storage])
        .arg(format!("--streaming-lists={}", arg("--streaming-lists", "true")))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn pedia_cluster(name: &str, m: &fleet::FleetCluster, resources: Value) -> Value {
    json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": name},
           "spec": {"apiserver": m.server.url(), "caData": base64(m.server.ca_pem().unwrap().as_bytes()),
                    "tokenData": base64(m.token.as_bytes()), "syncResources": resources}})
}

async fn rows(store: &Storage) -> i64 {
    store.stats().await.map(|s| s.rows.iter().map(|r| r.2).sum()).unwrap_or(0)
}

async fn all_ready(host: &KubeSim) -> bool {
    let (_, list) = host.request(Method::GET, "/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters", None).await;
    list["items"].as_array().is_some_and(|items| {
        items.iter().all(|pc| {
            pc["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
    })
}

/// Waits until the store holds `want` rows and every PediaCluster is Ready; the seconds it took.
async fn until_synced(host: &KubeSim, store: &Storage, want: i64, since: Instant) -> f64 {
    loop {
        // Readiness first: counting the rows is a scan that would compete with the sync's writes.
        if all_ready(host).await && rows(store).await >= want {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            since.elapsed() < Duration::from_secs(1800),
            "not synced after 30 min: {} of {want} rows",
            rows(store).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// When the first and the last stored row were written (their `synced_at`, Unix milliseconds).
async fn written_span(backend: Backend, url: &str) -> (i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct Span {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        first: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        last: i64,
    }
    const SPAN: &str = "SELECT MIN(synced_at) AS first, MAX(synced_at) AS last FROM resources";
    let span: Span = match backend {
        Backend::Sqlite => {
            use diesel::{Connection, RunQueryDsl};
            let path = url.trim_start_matches("sqlite://").to_owned();
            tokio::task::spawn_blocking(move || {
                let mut c = diesel::SqliteConnection::establish(&path).unwrap();
                diesel::sql_query(SPAN).get_result(&mut c).unwrap()
            })
            .await
            .unwrap()
        }
        _ => {
            use diesel_async::{AsyncConnection, RunQueryDsl};
            let mut c = diesel_async::AsyncPgConnection::establish(url).await.unwrap();
            diesel::sql_query(SPAN).get_result(&mut c).await.unwrap()
        }
    };
    (span.first, span.last)
}

async fn count(sim: &KubeSim, path: &str) -> usize {
    sim.request(Method::GET, path, None).await.1["items"].as_array().map_or(0, Vec::len)
}

/// `changes` pod updates per second across the fleet for `seconds`; latency from each update
/// to its row in the store (read from the change log, as a watch would).
async fn churn(fleet: &Fleet, store: Arc<Storage>, changes: usize, seconds: u64) -> (usize, f64, f64) {
    let mut pods: Vec<(usize, String, String)> = Vec::new();
    for (i, m) in fleet.members.iter().enumerate() {
        let (_, list) = m.sim.request(Method::GET, "/api/v1/pods", None).await;
        for p in list["items"].as_array().unwrap().iter().step_by(7) {
            pods.push((
                i,
                p["metadata"]["namespace"].as_str().unwrap().into(),
                p["metadata"]["name"].as_str().unwrap().into(),
            ));
        }
    }
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let start = store.log_state().await.unwrap().head;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (sent, latencies, stop, store) = (sent.clone(), latencies.clone(), stop.clone(), store.clone());
        tokio::spawn(async move {
            let mut position = start;
            let mut reads = (0u32, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let t = Instant::now();
                let page = store.changes_since(position, &ChangeFilter::default(), 1000).await.unwrap();
                reads = (reads.0 + 1, reads.1 + t.elapsed());
                position = page.position;
                let now = Instant::now();
                for c in page.changes {
                    let step =
                        c.value().ok().and_then(|v| v["metadata"]["labels"]["bench-step"].as_str().map(str::to_owned));
                    if let Some(t) = step.and_then(|s| lock(&sent).remove(&s)) {
                        lock(&latencies).push(now - t);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            println!(
                "   change log reads: {:.1} ms each ({} reads; part of the latency)",
                reads.1.as_secs_f64() * 1000.0 / f64::from(reads.0.max(1)),
                reads.0
            );
        })
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / changes as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let t = Instant::now();
    let mut step = 0usize;
    while t.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let (member, ns, name) = &pods[step % pods.len()];
        let sim = &fleet.members[*member].sim;
        let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
        let (_, mut pod) = sim.request(Method::GET, &path, None).await;
        pod["metadata"]["labels"]["bench-step"] = json!(step.to_string());
        lock(&sent).insert(step.to_string(), Instant::now());
        sim.request(Method::PUT, &path, Some(&pod)).await;
        step += 1;
    }
    let rate = step as f64 / t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.await.unwrap();
    let mut l = lock(&latencies).clone();
    let lost = lock(&sent).len();
    if lost > 0 {
        println!("   {lost} changes not seen in the store within 3 s after the stream");
    }
    println!("   churn: {step} pod updates at {rate:.0}/s");
    (l.len(), percentile(&mut l, 0.5), percentile(&mut l, 0.99))
}

/// Read, change, write back; again on a conflict (the status writer updates the same object).
async fn update(sim: &KubeSim, path: &str, change: impl Fn(&mut Value)) {
    for _ in 0..20 {
        let (_, mut object) = sim.request(Method::GET, path, None).await;
        change(&mut object);
        let (code, body) = sim.request(Method::PUT, path, Some(&object)).await;
        if code.is_success() {
            return;
        }
        assert_eq!(code, 409, "PUT {path}: {body}");
    }
    panic!("PUT {path}: conflicts 20 times in a row");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap()
}

/// pedia after an initial sync.
struct Synced {
    pedia: Child,
    store: Arc<Storage>,
    url: String,
    /// Until every PediaCluster was Ready and every pod stored.
    secs: f64,
    /// When pedia was started, Unix milliseconds.
    started_ms: i64,
}

/// A fresh store, a PediaCluster per member (pods only), and pedia started on them until every
/// pod is stored.
async fn initial_sync(
    fleet: &Fleet,
    bin: &std::ffi::OsStr,
    backend: Backend,
    name: &str,
    pods: usize,
    dir: &Path,
) -> Synced {
    let h = &fleet.host.sim;
    let url = bulk::fresh_url(backend, name).await;
    let store = Arc::new(Storage::connect(&StorageConfig::from_url(&url).unwrap(), 5).await.unwrap());
    store.migrate().await.unwrap();
    // As the storage bench does before each timed phase: the sync does not pay for checkpointing
    // what the bulk load (and an earlier run) left in PostgreSQL's WAL.
    bulk::settle(backend).await;
    for (i, m) in fleet.members.iter().enumerate() {
        let pc = pedia_cluster(&format!("member-{}", i + 1), m, json!([{"group": "", "resources": ["pods"]}]));
        h.create(pc).await.unwrap();
    }
    let t = Instant::now();
    let started_ms = epoch_ms();
    let fleet_cpu = cpu_seconds("self");
    let pedia = start_pedia(bin, &fleet.host.kubeconfig, &url, &dir.join(format!("pedia-{}.log", backend.name())));
    let pid = pedia.id().unwrap();
    let secs = until_synced(h, &store, pods as i64, t).await;
    println!(
        "   CPU seconds during the initial sync: pedia {:.1}, the kubesim fleet and this bench {:.1} (of {:.1} on 2 cores)",
        cpu_seconds(&pid.to_string()),
        cpu_seconds("self") - fleet_cpu,
        2.0 * secs
    );
    Synced { pedia, store, url, secs, started_ms }
}

/// `rate` as a percentage of each bulk load's.
fn percents(backend: Backend, rate: f64, bulk: &[f64]) -> String {
    let each = bulk::Reference::of(backend).iter().zip(bulk);
    let each = each.map(|(reference, bulk)| {
        format!("{:.0}% of the bulk load with {}", 100.0 * rate / bulk, reference.label(backend))
    });
    each.collect::<Vec<_>>().join(", ")
}

/// Stops pedia as Kubernetes stops a pod (it gives its lease up, so the next one does not wait for
/// it to expire: that wait was counted in the next initial sync) and deletes the PediaClusters.
async fn stop(h: &KubeSim, mut pedia: Child, members: usize) {
    if let Some(pid) = pedia.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(20), pedia.wait()).await.is_err() {
        let _ = pedia.start_kill();
        let _ = pedia.wait().await;
    }
    for i in 0..members {
        let path = format!("/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/member-{}", i + 1);
        update(h, &path, |pc| pc["metadata"]["finalizers"] = json!([])).await;
        h.request(Method::DELETE, &path, None).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let members = num("--members", 10);
    let size = SeedSize {
        namespaces: num("--namespaces", 10),
        deployments_per_namespace: num("--scale", 500),
        ..SeedSize::default()
    };
    let backends = arg("--backends", "sqlite,postgres");
    let changes = num("--churn", 500);
    let churn_seconds = num("--churn-seconds", 20) as u64;
    let rounds = num("--rounds", 3).max(1);
    let builds = builds();
    let dir = std::env::temp_dir().join(format!("pedia-synchro-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let t = Instant::now();
    let fleet = fleet::start(members, &dir, size).await.unwrap();
    let pods: usize = {
        let mut n = 0;
        for m in &fleet.members {
            n += count(&m.sim, "/api/v1/pods").await;
        }
        n
    };
    let mut more = 0;
    for m in &fleet.members {
        more += count(&m.sim, "/apis/apps/v1/deployments").await + count(&m.sim, "/api/v1/services").await;
    }
    println!(
        "synchro  fleet: {members} members, {pods} pods (+{more} deployments and services) seeded in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let h = &fleet.host.sim;
    for crd in api_types::crd::pedia_crds() {
        h.create(serde_json::to_value(&crd).unwrap()).await.unwrap();
    }

    // The bulk loads' rows: the first member's pods as the sync engine stores them, once per member.
    let sample: Vec<Value> = {
        let (_, list) = fleet.members[0].sim.request(Method::GET, "/api/v1/pods", None).await;
        let mut items = list["items"].as_array().cloned().unwrap_or_default();
        for pod in &mut items {
            pod["apiVersion"] = json!("v1");
            pod["kind"] = json!("Pod");
            pod["metadata"]["annotations"]["shadow.clusterpedia.io/cluster-name"] = json!("member-1");
            if let Some(m) = pod["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
        items
    };

    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let backend = match backend {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("unknown backend {other}: use sqlite or postgres"),
        };
        let name = "pedia_synchro_bench";
        let backend_name = backend.name();
        let bulk_rows = sample.len() * fleet.members.len();
        // The initial sync and its bulk loads `rounds` times, one after the other, and the median
        // of each figure: runs on this machine differ by a quarter from one to the next.
        let mut ratios: Vec<Vec<f64>> = Vec::new();
        let mut rates = Vec::new();
        let mut by_build = vec![Vec::new(); builds.len()];
        let mut run: Option<Synced> = None;
        for round in 1..=rounds {
            if let Some(earlier) = run.take() {
                stop(h, earlier.pedia, fleet.members.len()).await;
            }
            // Before the store is opened: a SQLite bulk load beside open connections borrows their caches.
            let bulk = bulk::bulk_rates(backend, name, &sample, fleet.members.len()).await;
            for (reference, rate) in bulk::Reference::of(backend).iter().zip(&bulk) {
                println!(
                    "{backend_name:<8} round {round}: bulk load of {bulk_rows} of the same pods, {}: {rate:.0} rows/s",
                    reference.label(backend)
                );
            }
            let build = (round - 1) % builds.len();
            let synced = initial_sync(&fleet, &builds[build], backend, name, pods, &dir).await;
            let rate = pods as f64 / synced.secs;
            let (peak, now, anon) = rss(synced.pedia.id().unwrap());
            let which = if builds.len() > 1 { format!(" (build {})", build + 1) } else { String::new() };
            println!(
                "{backend_name:<8} round {round}{which}: initial sync, pods only: {pods} objects in {:.1}s = {rate:.0} objects/s until every PediaCluster is Ready ({}); pedia RSS peak {peak:.0} MiB, {now:.0} MiB after ({anon:.0} MiB anonymous)",
                synced.secs,
                percents(backend, rate, &bulk)
            );
            // Like a bulk load's clock, from the first row written to the last (the time before it
            // is pedia starting, reading its PediaClusters and probing and discovering the members).
            let (first, last) = written_span(backend, &synced.url).await;
            let flow_rate = pods as f64 / ((last - first).max(1) as f64 / 1000.0);
            println!(
                "   rows written from {:.1}s after pedia started to {:.1}s: {flow_rate:.0} objects/s ({})",
                (first - synced.started_ms) as f64 / 1000.0,
                (last - synced.started_ms) as f64 / 1000.0,
                percents(backend, flow_rate, &bulk)
            );
            rates.push(rate);
            ratios.push(bulk.iter().map(|b| rate / b).collect());
            by_build[build].push(rate);
            run = Some(synced);
        }
        // The middle value, or the mean of the two middle ones.
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n.is_multiple_of(2) { (v[n / 2 - 1] + v[n / 2]) / 2.0 } else { v[n / 2] }
        };
        let medians: Vec<String> = bulk::Reference::of(backend)
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "{:.0}% of the bulk load with {}",
                    100.0 * median(ratios.iter().map(|v| v[i]).collect()),
                    r.label(backend)
                )
            })
            .collect();
        println!(
            "{backend_name:<8} initial sync, median of {rounds} rounds: {:.0} objects/s, {} (each round against its own bulk loads)",
            median(rates.clone()),
            medians.join(", ")
        );
        if builds.len() > 1 {
            for (i, (bin, rates)) in builds.iter().zip(&by_build).enumerate().filter(|(_, (_, r))| !r.is_empty()) {
                println!(
                    "{backend_name:<8} build {} ({}): median of {} rounds {:.0} objects/s",
                    i + 1,
                    bin.to_string_lossy(),
                    rates.len(),
                    median(rates.clone())
                );
            }
        }
        let Some(Synced { pedia, store, .. }) = run else { continue };
        let pid = pedia.id().unwrap();

        let (n, p50, p99) = churn(&fleet, store.clone(), changes, churn_seconds).await;
        println!(
            "{backend_name:<8} steady state: change -> visible in the store p50 {p50:.0} ms, p99 {p99:.0} ms ({n} samples)"
        );

        bulk::settle(backend).await;
        for i in 0..fleet.members.len() {
            let path = format!("/apis/cluster.clusterpedia.io/v1alpha2/pediaclusters/member-{}", i + 1);
            let resources = json!([{"group": "", "resources": ["pods", "services"]}, {"group": "apps", "resources": ["deployments"]}]);
            update(h, &path, |pc| pc["spec"]["syncResources"] = resources.clone()).await;
        }
        let t = Instant::now();
        let secs = until_synced(h, &store, (pods + more) as i64, t).await;
        let (peak, now, anon) = rss(pid);
        println!(
            "{backend_name:<8} adding deployments and services: {more} objects in {secs:.1}s = {:.0} objects/s; pedia RSS peak {peak:.0} MiB, {now:.0} MiB now ({anon:.0} MiB anonymous, {} objects synced)",
            more as f64 / secs,
            pods + more
        );

        stop(h, pedia, fleet.members.len()).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
