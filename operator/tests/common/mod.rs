//! What the operator's end-to-end tests share: the real kubectl, condition lookups.
#![allow(clippy::unwrap_used, dead_code)] // test code may panic; not every test uses every helper

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `pedia` as the end-to-end tests start it: logs at info appended to `log`, stdout dropped,
/// killed when the test lets go of it. The caller adds the arguments.
pub fn pedia_command(log: &Path) -> tokio::process::Command {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_pedia"));
    c.env("RUST_LOG", "info").stdout(std::process::Stdio::null()).stderr(log).kill_on_drop(true);
    c
}

/// A `pedia` process, killed when the test lets go of it.
pub struct Pedia(pub tokio::process::Child);

impl Drop for Pedia {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[allow(unused_imports)] // not every test runs kubectl
pub use kubesim::kubectl::Kubectl;

pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn reason(obj: Option<&Value>, type_: &str) -> Option<String> {
    condition(obj?, type_).and_then(|c| c["reason"].as_str()).map(str::to_owned)
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` until it returns Ok, or panics after `secs` with `desc` and the last state.
pub async fn until<T, F, Fut>(desc: &str, secs: u64, mut check: F) -> T
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

/// A plain HTTP/1.1 GET on loopback: the body of a 200 answer, None otherwise (or no answer).
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A throwaway PostgreSQL database (PEDIA_TEST_POSTGRES_URL names the server's admin database).
pub fn fresh_postgres(name: &str) -> String {
    let admin = std::env::var("PEDIA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
        let out = std::process::Command::new("psql").args([admin.as_str(), "-q", "-c", &sql]).output().unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Every sync condition of a PediaCluster: `group/version/resource -> (status, reason, initialListPhase)`.
pub fn sync_conditions(pc: &Value) -> std::collections::BTreeMap<String, (String, String, bool)> {
    let mut out = std::collections::BTreeMap::new();
    for g in pc["status"]["syncResources"].as_array().into_iter().flatten() {
        for r in g["resources"].as_array().into_iter().flatten() {
            for c in r["syncConditions"].as_array().into_iter().flatten() {
                let key = format!(
                    "{}/{}/{}",
                    g["group"].as_str().unwrap_or_default(),
                    c["version"].as_str().unwrap_or_default(),
                    r["name"].as_str().unwrap_or_default()
                );
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                out.insert(key, (s("status"), s("reason"), c["initialListPhase"].as_bool().unwrap_or(false)));
            }
        }
    }
    out
}

/// A TCP proxy that can be taken down (live connections cut, new ones closed at once) and
/// brought back: a store unavailable to one process only, or a client's dropped connection.
pub struct Proxy {
    pub port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, _) = tokio::sync::watch::channel(true);
        let state = up.clone();
        let target = target.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let mut down = state.subscribe();
                if !*down.borrow_and_update() {
                    continue; // dropped: the connection closes at once
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { port, up }
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Cuts every live connection; new ones are served again shortly after (the pause lets
    /// every connection see the change: a watch channel only keeps the latest value).
    pub async fn cut(&self) {
        self.set_up(false);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.set_up(true);
    }
}

/// A host whose RBAC allows admins everything and alice to read the search API; eve may do
/// nothing.
pub async fn search_host(dir: &Path) -> (kubesim::KubeSim, kubesim::serve::Server, PathBuf) {
    let mut auth = kubesim::auth::Auth { anonymous: false, ..kubesim::auth::Auth::default() };
    auth.add_token("admin-token", "admin", &["system:masters"]);
    auth.add_token("alice-token", "alice", &["dev"]);
    auth.add_token("eve-token", "eve", &[]);
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    auth.rules = Some(vec![
        kubesim::auth::Rule {
            users: vec![],
            groups: strings(&["system:masters"]),
            verbs: strings(&["*"]),
            resources: strings(&["*"]),
        },
        kubesim::auth::Rule {
            users: strings(&["alice"]),
            groups: vec![],
            verbs: strings(&["get", "list", "watch"]),
            resources: strings(&["resources", "collectionresources"]),
        },
    ]);
    let sim = kubesim::KubeSim::new(kubesim::Config { name: "host".into(), auth, ..kubesim::Config::default() });
    let server =
        sim.serve_tls("127.0.0.1:0".parse().unwrap(), kubesim::tls::Tls::generate("host", &[]).unwrap()).await.unwrap();
    let kc = dir.join("host.kubeconfig");
    std::fs::write(
        &kc,
        kubesim::kubeconfig::render(
            "host",
            &server.url(),
            server.ca_pem(),
            &kubesim::kubeconfig::Credentials::Token("admin-token".into()),
        ),
    )
    .unwrap();
    (sim, server, kc)
}

/// The `MALLOC_ARENA_MAX` in a running process's environment (pedia sets it for itself, see
/// `operator::malloc_arenas`).
pub fn malloc_arenas(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("MALLOC_ARENA_MAX=").map(str::to_owned))
}
