//! Storage benchmark: ingest through the write API beside the backend's own bulk load of the same
//! rows, query latencies (p50/p99) on a large store, and bytes per object. Prints figures;
//! asserts nothing. `make bench` runs it;
//! `-- --objects N --clusters C --backends sqlite,postgres,mysql --workers W`; `--no-stream` skips
//! the watch-stream ingest, `--updates` also times a stream of updates of every object,
//! `--queries-only` times the store a previous run left, `--bulk-parts` times SQLite's bulk load
//! with the label index, the change log and per-batch commits added one at a time, `--stream-only`
//! times the watch stream alone (no bulk loads, no pages: a quick A/B of the write path),
//! `--batch N` sets its objects per upsert (500; the sync engine writes 250).
#![allow(clippy::unwrap_used)] // a benchmark may panic

mod bulk;
mod support;

use std::time::{Duration, Instant};

use api_types::Gvr;
use api_types::search::{ListOptions, SearchQuery};
use bulk::{Parts, Reference, Settings, bulk_rate, bulk_rates, fresh_url, settle};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, SimpleAsyncConnection};
use pedia_storage::{Backend, ListRequest, Storage, StorageConfig};
use pedia_testkit::realistic_pod;
use serde_json::{Value, json};
use support::{arg, percentile};

/// `--workers W`: concurrent writers (sync workers), 4 unless given.
fn workers() -> usize {
    arg("--workers", "4").parse().unwrap()
}

/// `--batch N`: objects per upsert of the watch stream, 500 unless given (the sync engine
/// writes 250).
fn batch() -> usize {
    arg("--batch", "500").parse().unwrap()
}

fn url_of(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", std::env::temp_dir().join(format!("{name}.db")).display()),
        Backend::Postgres => format!("postgres://postgres@127.0.0.1:5432/{name}"),
        Backend::Mysql => format!("mysql://root@127.0.0.1:3306/{name}"),
    }
}

async fn timed_pages(s: &Storage, queries: &[String], continue_page: bool) -> (f64, f64) {
    let gvr = Gvr::new("", "v1", "pods");
    let mut samples = Vec::new();
    for q in queries {
        let opts = ListOptions::from_query(q).unwrap();
        let mut req = ListRequest {
            gvr: Some(gvr.clone()),
            resource_types: Vec::new(),
            query: SearchQuery::from_options(&opts, None, None).unwrap(),
        };
        if continue_page {
            let first = s.list(&req).await.unwrap();
            req.query.continue_token = first.continue_token;
        }
        let t = Instant::now();
        let page = s.list(&req).await.unwrap();
        samples.push(t.elapsed());
        std::hint::black_box(page.items.len());
    }
    (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99))
}

/// A store for the write API runs; `--no-returning` writes as on MySQL 8 (no `INSERT ... RETURNING`).
async fn writer(url: &str) -> Storage {
    let s = Storage::connect(&StorageConfig::from_url(url).unwrap(), 3).await.unwrap();
    if std::env::args().any(|a| a == "--no-returning") { s.without_returning() } else { s }
}

#[derive(Clone, Copy)]
enum Mode {
    Stream,
    Relist,
}

/// Writes `sample` into every cluster through the write API with `workers` concurrent writers.
async fn ingest(
    s: &std::sync::Arc<Storage>,
    sample: &std::sync::Arc<Vec<Value>>,
    clusters: usize,
    workers: usize,
    mode: Mode,
) -> Duration {
    let t = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let (s, sample) = (s.clone(), sample.clone());
        handles.push(tokio::spawn(async move {
            let gvr = Gvr::new("", "v1", "pods");
            for c in (w..clusters).step_by(workers) {
                let cluster = format!("cluster-{c:03}");
                match mode {
                    Mode::Stream => {
                        for batch in sample.chunks(batch()) {
                            s.upsert(&cluster, &gvr, batch).await.unwrap();
                        }
                    }
                    Mode::Relist => {
                        s.replace_all(&cluster, &gvr, &sample).await.unwrap();
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    t.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let objects: usize = arg("--objects", "1000000").parse().unwrap();
    let clusters: usize = arg("--clusters", "100").parse().unwrap();
    let backends: Vec<Backend> = arg("--backends", "sqlite,postgres,mysql")
        .split(',')
        .map(|b| match b {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            _ => Backend::Mysql,
        })
        .collect();
    let per_cluster = objects / clusters;
    // One cluster's pods, built once and written for every cluster (rows differ by cluster), so
    // the timing measures the store, not the generator.
    let sample: std::sync::Arc<Vec<Value>> =
        std::sync::Arc::new((0..per_cluster).map(|i| realistic_pod(0, i)).collect());
    let raw_bytes: usize =
        sample.iter().map(|o| serde_json::to_string(o).unwrap().len()).sum::<usize>() / per_cluster.max(1);
    println!("storage bench: {objects} pods ({raw_bytes} bytes of JSON each) in {clusters} clusters");
    if backends.contains(&Backend::Mysql) {
        println!(
            "mysql: SET GLOBAL innodb_buffer_pool_size >= 6 GiB, innodb_log_file_size >= 1 GiB (see docs/storage.md)"
        );
    }
    // `--queries-only`: time the pages of the store a previous run left behind.
    let queries_only = std::env::args().any(|a| a == "--queries-only");
    // `--bulk-parts`: only SQLite's bulk load, one part of the write API's work added at a time.
    let bulk_parts_only = std::env::args().any(|a| a == "--bulk-parts");
    for backend in backends {
        let name = format!("pedia_bench_{}", backend.name());
        if bulk_parts_only {
            match backend {
                Backend::Sqlite => bulk_parts(&name, &sample, clusters).await,
                _ => println!("{:<8} --bulk-parts: SQLite only, nothing to do", backend.name()),
            }
            continue;
        }
        if std::env::args().any(|a| a == "--stream-only") {
            let workers = workers();
            let (stream, updates) = streams(backend, &name, &sample, clusters, workers).await;
            println!(
                "{:<8} ingest, watch stream (upserts of {}): {stream:.0} rows/s ({workers} writers)",
                backend.name(),
                batch()
            );
            if let Some(u) = updates {
                println!("{:<8} ingest, stream of updates: {u:.0} rows/s ({workers} writers)", backend.name());
            }
            continue;
        }
        if queries_only {
            let s = Storage::connect(&StorageConfig::from_url(&url_of(backend, &name)).unwrap(), 3).await.unwrap();
            report_size_and_pages(backend, &s, objects, raw_bytes, clusters).await;
            continue;
        }
        let (s, rates) = ingest_all(backend, &name, &sample, clusters).await;
        report_size_and_pages(backend, &s, objects, raw_bytes, clusters).await;
        // The last reference after the pages, so that its writes do not push the store's pages
        // out of MariaDB's buffer pool before they are timed, and with the store closed.
        drop(s);
        let after = bulk_rates(backend, &name, &sample, clusters).await;
        rates.report(backend, objects, &after);
    }
}

/// `--bulk-parts`: SQLite's bulk load with the writer's settings, adding what the write API writes
/// besides the resource rows one part at a time, then its commits per batch: where ingest goes.
async fn bulk_parts(name: &str, sample: &[Value], clusters: usize) {
    let all = Parts { labels: true, changes: true, commit_every: None };
    let steps = [
        ("resource rows, one transaction", Parts::default()),
        ("+ label index rows", Parts { labels: true, ..Parts::default() }),
        ("+ change-log rows", all),
        ("the same committing every 2,000 rows", Parts { commit_every: Some(2000), ..all }),
        ("the same committing every 500 rows", Parts { commit_every: Some(500), ..all }),
    ];
    for (label, parts) in steps {
        let rate = bulk_rate(Backend::Sqlite, name, sample, clusters, Settings::SqliteWriter, parts).await;
        println!("sqlite   bulk load with the writer's settings, {label}: {rate:.0} rows/s");
    }
}

/// What `ingest_all` measured: ingest rates and the bulk loads around them.
struct Ingest {
    /// Bulk loads before the watch stream, and between the stream and the initial sync.
    bulk: [Vec<f64>; 2],
    stream: Option<f64>,
    /// `--updates`: the same stream again with every object changed (labels kept).
    updates: Option<f64>,
    relist: f64,
    workers: usize,
}

impl Ingest {
    /// Prints each ingest rate against the mean of the bulk loads just before and just after it:
    /// the machine's speed drifts within minutes, so a reference taken once, minutes before or
    /// after, misstates the ratio (SQLite at 400,000 pods: 58% in one run, 82% in the next).
    fn report(&self, backend: Backend, objects: usize, bulk_after: &[f64]) {
        let [before, between] = &self.bulk;
        let name = backend.name();
        let references = Reference::of(backend);
        for (i, reference) in references.iter().enumerate() {
            println!(
                "{name:<8} bulk load of the same rows ({objects}), {}: {:.0} rows/s before the stream, {:.0} after it, \
                 {:.0} after the initial sync",
                reference.label(backend),
                before[i],
                between[i],
                bulk_after[i]
            );
        }
        let modes = [
            (format!("watch stream (upserts of {})", batch()), self.stream, before.as_slice(), between.as_slice()),
            (
                format!("watch stream of updates (upserts of {}, labels kept)", batch()),
                self.updates,
                before.as_slice(),
                between.as_slice(),
            ),
            ("initial sync (replace_all per cluster)".to_owned(), Some(self.relist), between.as_slice(), bulk_after),
        ];
        for (label, rate, a, b) in modes.into_iter().filter_map(|(l, r, a, b)| Some((l, r?, a, b))) {
            let pct = |reference: f64| 100.0 * rate / reference;
            let ratios: Vec<String> = references
                .iter()
                .enumerate()
                .map(|(i, reference)| {
                    format!(
                        "{:.0}% of the bulk loads around it with {} ({:.0}% / {:.0}%)",
                        pct((a[i] + b[i]) / 2.0),
                        reference.label(backend),
                        pct(a[i]),
                        pct(b[i])
                    )
                })
                .collect();
            println!("{name:<8} ingest, {label}: {rate:.0} rows/s ({} writers), {}", self.workers, ratios.join(", "));
        }
    }
}

/// Bulk load, watch-stream ingest, bulk load again and initial-sync ingest of `sample` in every
/// cluster, each into a fresh database; returns the rates and the store of the initial sync.
async fn ingest_all(
    backend: Backend,
    name: &str,
    sample: &std::sync::Arc<Vec<Value>>,
    clusters: usize,
) -> (Storage, Ingest) {
    let objects = sample.len() * clusters;
    // Physical limit: the backend's own bulk load of the same rows.
    let before = bulk_rates(backend, name, sample, clusters).await;

    // The write API as the sync engine uses it: a watch stream of upserts in batches of 500,
    // and initial syncs (one replace_all per cluster, as after a list).
    // Four sync workers (one per member cluster, as `pedia run` has) write concurrently; on
    // SQLite their transactions queue for the single writer connection.
    let workers = workers();
    // `--no-stream`: only the initial sync (a quicker way to a large store for the pages).
    let (stream, updates) = if std::env::args().any(|a| a == "--no-stream") {
        (None, None)
    } else {
        let (stream, updates) = streams(backend, name, sample, clusters, workers).await;
        (Some(stream), updates)
    };
    let between = bulk_rates(backend, name, sample, clusters).await;
    let url = fresh_url(backend, name).await;
    let s = std::sync::Arc::new(writer(&url).await);
    s.migrate().await.unwrap();
    settle(backend).await;
    let relist = ingest(&s, sample, clusters, workers, Mode::Relist).await;
    // Fresh planner statistics, as autovacuum / auto-analyze would have by now.
    s.analyze().await.unwrap();
    let rates =
        Ingest { bulk: [before, between], stream, updates, relist: objects as f64 / relist.as_secs_f64(), workers };
    (std::sync::Arc::try_unwrap(s).ok().unwrap(), rates)
}

/// The watch stream of upserts of `--batch` into a fresh store (and with `--updates` the same stream
/// of changed objects after it): rows per second of each. The store is emptied afterwards.
async fn streams(
    backend: Backend,
    name: &str,
    sample: &std::sync::Arc<Vec<Value>>,
    clusters: usize,
    workers: usize,
) -> (f64, Option<f64>) {
    let objects = sample.len() * clusters;
    let url = fresh_url(backend, &format!("{name}_stream")).await;
    let s = std::sync::Arc::new(writer(&url).await);
    s.migrate().await.unwrap();
    settle(backend).await;
    let t = ingest(&s, sample, clusters, workers, Mode::Stream).await;
    let mut updates = None;
    if std::env::args().any(|a| a == "--updates") {
        // `--updates`: the same stream again with every object changed (new resourceVersion,
        // same labels), as most watch events are.
        let changed: Vec<Value> = sample
            .iter()
            .map(|o| {
                let mut o = o.clone();
                let rv = o["metadata"]["resourceVersion"].as_str().unwrap_or("0").parse::<u64>().unwrap_or(0);
                o["metadata"]["resourceVersion"] = json!((rv + 10_000_000).to_string());
                o["status"]["containerStatuses"][0]["restartCount"] = json!(7);
                o
            })
            .collect();
        settle(backend).await;
        let u = ingest(&s, &std::sync::Arc::new(changed), clusters, workers, Mode::Stream).await;
        updates = Some(objects as f64 / u.as_secs_f64());
    }
    drop(s);
    // Leave no second copy behind (fresh_url empties the database).
    fresh_url(backend, &format!("{name}_stream")).await;
    (objects as f64 / t.as_secs_f64(), updates)
}

/// Bytes per object and page latencies (p50/p99) of the store.
async fn report_size_and_pages(backend: Backend, s: &Storage, objects: usize, raw_bytes: usize, clusters: usize) {
    if backend == Backend::Mysql {
        // MariaDB compresses pages as it writes them out: write them all before measuring.
        let url = url_of(backend, &format!("pedia_bench_{}", backend.name()));
        let mut c = AsyncMysqlConnection::establish(&url).await.unwrap();
        c.batch_execute("FLUSH TABLES resources, resource_labels, changes, events FOR EXPORT; UNLOCK TABLES")
            .await
            .unwrap();
    }
    let stats = s.stats().await.unwrap();
    let sizes = [("size", stats.size_bytes), ("size of the uncompressed pages", stats.uncompressed_bytes)];
    for (label, size) in sizes.into_iter().filter_map(|(l, s)| Some((l, s?))) {
        let per = size as f64 / objects as f64;
        println!(
            "{:<8} {label}: {:.0} MiB, {per:.0} bytes per object = {:.2}x the raw JSON",
            backend.name(),
            size as f64 / 1048576.0,
            per / raw_bytes as f64
        );
    }
    let pick = |i: usize| format!("cluster-{:03}", (i * 37) % clusters);
    let mk = |f: &dyn Fn(usize) -> String| (0..60).map(f).collect::<Vec<String>>();
    let cases: [(&str, Vec<String>, bool); 7] = [
        ("first page, cluster", mk(&|i| format!("limit=500&clusters={}", pick(i))), false),
        (
            "first page, cluster+namespace",
            mk(&|i| format!("limit=500&clusters={}&namespaces=ns-{}", pick(i), i % 20)),
            false,
        ),
        ("first page, name", mk(&|i| format!("limit=500&names=app-{}-{:07}", i % 50, i * 13)), false),
        (
            "label selector page",
            mk(&|i| format!("limit=500&labelSelector=app.kubernetes.io%2Fname%3Dapp-{}%2Ctier%3Dcanary", i % 50)),
            false,
        ),
        (
            // The same pages, the wide label first (the store drives with the narrow one).
            "label page, wide label first",
            mk(&|i| format!("limit=500&labelSelector=tier%3Dcanary%2Capp.kubernetes.io%2Fname%3Dapp-{}", i % 50)),
            false,
        ),
        ("continue page, cluster", mk(&|i| format!("limit=500&clusters={}", pick(i))), true),
        ("continue page, all clusters", mk(&|_| "limit=500".to_owned()), true),
    ];
    for (label, queries, cont) in cases {
        let (p50, p99) = timed_pages(s, &queries, cont).await;
        println!("{:<8} {label:<32} p50 {p50:7.1} ms  p99 {p99:7.1} ms", backend.name());
    }
}
