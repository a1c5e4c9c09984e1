//! kubesim at scale: create 100k pods over HTTP, list them in pages of 500, stream 10k watch
//! events, and report rates and the process RSS. Prints figures; asserts nothing.
//! Run with `make bench` (or `cargo bench -p kubesim --bench kubesim -- --pods N`).
#![allow(clippy::unwrap_used)] // a benchmark may panic

use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kubesim::{Config, KubeSim};
use serde_json::json;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn pod(i: usize) -> Pod {
    let pod = pedia_testkit::Pod::new("default", &format!("pod-{i:06}"))
        .labels(json!({"app": format!("app-{}", i % 50), "tier": "web"}))
        .annotations(json!({"note": "x".repeat(200)}))
        .node(&format!("node-{}", i % 20))
        .container(json!({"name": "c", "image": "registry.example.com/app:1.0", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                          "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}))
        .phase("Running")
        .status("podIP", "10.0.0.1");
    serde_json::from_value(pod.build()).unwrap()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pods = arg("--pods", 100_000);
    let events = arg("--events", 10_000);
    let sim = KubeSim::new(Config { history_limit: events + 10, ..Config::default() });
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = kube::Config::new(server.url().parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss_start = rss_mib();

    let t = Instant::now();
    let concurrency = 16;
    futures_util::stream::iter(0..pods)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &pod(i)).await.map(|_| ()) }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let create = t.elapsed();
    println!(
        "kubesim create: {pods} pods in {:.2}s = {:.0} pods/s (HTTP, {concurrency} in flight)",
        create.as_secs_f64(),
        pods as f64 / create.as_secs_f64()
    );
    println!(
        "kubesim rss after create: {:.0} MiB (started at {:.0} MiB; server and client in one process)",
        rss_mib(),
        rss_start
    );

    let t = Instant::now();
    let mut listed = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await.unwrap();
        listed += page.items.len();
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    let list = t.elapsed();
    println!(
        "kubesim paged list, typed kube-rs client: {listed} pods in {:.2}s (pages of 500) = {:.0} pods/s",
        list.as_secs_f64(),
        listed as f64 / list.as_secs_f64()
    );

    // The same list read as raw pages: what the server costs without typed decoding in the client.
    #[derive(serde::Deserialize)]
    struct Page {
        metadata: Meta,
        items: Vec<serde::de::IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "continue")]
        cont: Option<String>,
    }
    let t = Instant::now();
    let (mut raw_listed, mut bytes, mut cont) = (0, 0, String::new());
    loop {
        let url = format!("/api/v1/namespaces/default/pods?limit=500&continue={cont}");
        let text = client.request_text(http::Request::get(url).body(Vec::new()).unwrap()).await.unwrap();
        bytes += text.len();
        let page: Page = serde_json::from_str(&text).unwrap();
        raw_listed += page.items.len();
        match page.metadata.cont {
            Some(c) if !c.is_empty() => cont = c,
            _ => break,
        }
    }
    let raw = t.elapsed();
    println!(
        "kubesim paged list, raw pages: {raw_listed} pods ({:.0} MiB) in {:.2}s = {:.0} pods/s",
        bytes as f64 / 1048576.0,
        raw.as_secs_f64(),
        raw_listed as f64 / raw.as_secs_f64()
    );

    let t = Instant::now();
    let page = api.list(&ListParams::default().labels("app=app-7")).await.unwrap();
    println!(
        "kubesim label-selector list: {} of {pods} pods in {:.1} ms",
        page.items.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );

    let start_rv = page.metadata.resource_version.unwrap();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..events {
                let name = format!("pod-{:06}", i % pods.max(1));
                let patch = json!({"metadata": {"labels": {"bench": i.to_string()}}});
                api.patch(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
            }
        })
    };
    writer.await.unwrap();
    let t = Instant::now();
    let mut stream = api.watch(&WatchParams::default().timeout(290), &start_rv).await.unwrap().boxed();
    let mut received = 0;
    while received < events {
        match stream.next().await {
            Some(Ok(WatchEvent::Modified(_))) => received += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("watch error: {e}"),
            None => break,
        }
    }
    let watch = t.elapsed();
    println!(
        "kubesim watch: {received} events streamed in {:.2}s = {:.0} events/s",
        watch.as_secs_f64(),
        received as f64 / watch.as_secs_f64()
    );
    println!("kubesim rss at end: {:.0} MiB", rss_mib());
    server.shutdown().await;
}
