//! The Python `kubernetes` client (PyPI, installed by `make tools`) against kubesim: list, then
//! watches resumed from the last resourceVersion after kubesim drops every watch connection
//! (`drop-watches`); every change arrives exactly once.
#![allow(clippy::unwrap_used)] // test code may panic

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use kubesim::auth::Auth;
use kubesim::tls::Tls;
use kubesim::{Config, KubeSim};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_watches_resume_after_dropped_connections() {
    let python_path = repo().join(".tools/python");
    assert!(python_path.join("kubernetes").is_dir(), "the Python kubernetes client is missing: run `make tools`");
    let mut auth = Auth { anonymous: false, ..Auth::default() };
    auth.add_token("py-token", "admin", &["system:masters"]);
    let sim = KubeSim::new(Config { auth, ..Config::default() });
    let server = sim.serve_tls("127.0.0.1:0".parse().unwrap(), Tls::generate("py", &[]).unwrap()).await.unwrap();
    // Watches of 10 s: within the first 6 s only the dropped connections end them.
    let mut py = tokio::process::Command::new("python3")
        .arg(repo().join("operator/tests/fixtures/watch_configmaps.py"))
        .args([&server.url(), "py-token", "7", "10"])
        .env("PYTHONPATH", &python_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(py.stdout.take().unwrap()));
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap();
    assert_eq!(first.as_deref(), Some("ready"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..6 {
        sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("py-{i}"), "namespace": "default"}}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if i % 2 == 1 {
            sim.drop_watches();
            // A change while no watch is open must come with the resumed one.
            sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("py-gap-{i}"), "namespace": "default"}}))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut watches = 0;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(80), lines.next_line()).await.unwrap().unwrap() {
        let v: Value = serde_json::from_str(&line).unwrap();
        if let Some(n) = v["watches"].as_u64() {
            watches = n;
        } else if v["type"] == "ADDED" {
            *seen.entry(v["name"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    assert!(py.wait().await.unwrap().success(), "the Python watch failed");
    assert!(watches >= 4, "three dropped connections, each resumed ({watches} watches)");
    let names: Vec<&String> = seen.keys().filter(|n| n.starts_with("py-")).collect();
    assert_eq!(names.len(), 9, "every change: {seen:?}");
    assert!(seen.values().all(|n| *n == 1), "each exactly once: {seen:?}");
    server.shutdown().await;
}
