//! `kubesim fleet`: a host cluster and N member clusters, each on its own HTTPS port with its own
//! CA and bearer token, members seeded with workloads, and an optional steady trickle of changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use crate::auth::Auth;
use crate::kubeconfig::{self, Credentials};
use crate::meta;
use crate::request_log::RequestLog;
use crate::seed::{self, SeedSize};
use crate::serve::Server;
use crate::tls::{Tls, TlsError};
use crate::{Config, KubeSim};

/// Options of `kubesim fleet`.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// Number of member clusters.
    #[arg(long, default_value_t = 2)]
    pub members: usize,
    /// Where `host.kubeconfig` and `member-<i>.kubeconfig` are written.
    #[arg(long, default_value = ".fleet")]
    pub dir: PathBuf,
    /// Changes per second in each member (configmap edits, pod replacements); 0 for none.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Deployments per namespace in each member (each with 2 pods, a service, a configmap and a secret).
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
    /// Namespaces with workloads in each member.
    #[arg(long, default_value_t = 2)]
    pub namespaces: usize,
    /// Log every API request of every cluster (method, path and query, content type, status,
    /// bytes, duration, user) to stderr, or to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub log_requests: Option<PathBuf>,
}

/// Errors starting a fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("starting {cluster}: {source}")]
    Listen { cluster: String, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("seeding {cluster}: {source}")]
    Seed { cluster: String, source: api_types::status::StatusError },
    #[error("waiting for Ctrl-C: {0}")]
    Signal(std::io::Error),
}

/// One running cluster of a fleet.
pub struct FleetCluster {
    pub name: String,
    pub sim: KubeSim,
    pub server: Server,
    pub token: String,
    /// A client certificate and key (PEM) for the same admin, signed by the cluster's CA.
    pub admin_cert: (String, String),
    pub kubeconfig: PathBuf,
}

/// A running fleet.
pub struct Fleet {
    pub host: FleetCluster,
    pub members: Vec<FleetCluster>,
}

async fn start_cluster(name: &str, dir: &Path, log: Option<&Arc<RequestLog>>) -> Result<FleetCluster, FleetError> {
    let token = format!("{name}-{:016x}", meta::random_u64());
    // A fresh cluster's RBAC: the admin may do everything, others nothing.
    let mut auth = Auth::cluster_default();
    auth.add_token(&token, "admin", &[crate::auth::MASTERS]);
    let sim = KubeSim::new(Config { name: name.to_owned(), auth, request_log: log.cloned(), ..Config::default() });
    let tls = Tls::generate(name, &[])?;
    let admin_cert = tls.client_cert("admin", Some(crate::auth::MASTERS))?;
    let server = sim
        .serve_tls(
            "127.0.0.1:0".parse().map_err(|_| FleetError::Listen {
                cluster: name.into(),
                source: std::io::ErrorKind::InvalidInput.into(),
            })?,
            tls,
        )
        .await
        .map_err(|source| FleetError::Listen { cluster: name.into(), source })?;
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    let text = kubeconfig::render(name, &server.url(), server.ca_pem(), &Credentials::Token(token.clone()));
    std::fs::write(&kubeconfig, text).map_err(|source| FleetError::Write { path: kubeconfig.clone(), source })?;
    Ok(FleetCluster { name: name.to_owned(), sim, server, token, admin_cert, kubeconfig })
}

/// Starts a host and `members` seeded member clusters, writing kubeconfigs into `dir`.
pub async fn start(members: usize, dir: &Path, size: SeedSize) -> Result<Fleet, FleetError> {
    start_with(members, dir, size, None).await
}

/// [`start`], every cluster logging its requests to `log`.
pub async fn start_with(
    members: usize,
    dir: &Path,
    size: SeedSize,
    log: Option<Arc<RequestLog>>,
) -> Result<Fleet, FleetError> {
    std::fs::create_dir_all(dir).map_err(|source| FleetError::Write { path: dir.to_owned(), source })?;
    let host = start_cluster("host", dir, log.as_ref()).await?;
    let mut list = Vec::new();
    for i in 1..=members {
        let c = start_cluster(&format!("member-{i}"), dir, log.as_ref()).await?;
        seed::seed(&c.sim, &c.name, size)
            .await
            .map_err(|source| FleetError::Seed { cluster: c.name.clone(), source })?;
        list.push(c);
    }
    Ok(Fleet { host, members: list })
}

/// One change in a member: edit a configmap, or replace a pod.
pub async fn churn_once(sim: &KubeSim, step: u64) {
    let (_, cms) =
        sim.request(Method::GET, "/api/v1/configmaps?labelSelector=app.kubernetes.io%2Fpart-of%3Dshop", None).await;
    let (_, pods) =
        sim.request(Method::GET, "/api/v1/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dshop", None).await;
    let pick = |list: &serde_json::Value| {
        list["items"].as_array().and_then(|a| a.get(step as usize % a.len().max(1)).cloned())
    };
    if step.is_multiple_of(2) {
        if let Some(cm) = pick(&cms) {
            let path = format!(
                "/api/v1/namespaces/{}/configmaps/{}",
                cm["metadata"]["namespace"].as_str().unwrap_or_default(),
                cm["metadata"]["name"].as_str().unwrap_or_default()
            );
            let mut next = cm.clone();
            next["data"]["CHURN"] = json!(step.to_string());
            let _ = sim.request(Method::PUT, &path, Some(&next)).await;
        }
    } else if let Some(pod) = pick(&pods) {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let _ = sim.request(Method::DELETE, &format!("/api/v1/namespaces/{ns}/pods/{name}"), None).await;
        let mut replacement = pod.clone();
        let base = name.rsplit_once('-').map_or(name.as_str(), |(b, _)| b).to_owned();
        replacement["metadata"] = json!({"name": format!("{base}-{}", meta::name_suffix()), "namespace": ns,
            "labels": pod["metadata"]["labels"], "ownerReferences": pod["metadata"]["ownerReferences"]});
        let _ = sim.create(replacement).await;
    }
}

/// Runs a fleet until Ctrl-C.
pub async fn run(args: FleetArgs) -> Result<(), FleetError> {
    let size = SeedSize { namespaces: args.namespaces, deployments_per_namespace: args.scale, ..SeedSize::default() };
    let log = match &args.log_requests {
        Some(p) => Some(Arc::new(
            RequestLog::from_flag(Some(p)).map_err(|source| FleetError::Write { path: p.clone(), source })?,
        )),
        None => None,
    };
    let fleet = start_with(args.members, &args.dir, size, log).await?;
    let members: Vec<String> = fleet.members.iter().map(|m| format!("{}={}", m.name, m.server.url())).collect();
    println!(
        "kubesim fleet ready: host={} {} (kubeconfigs in {})",
        fleet.host.server.url(),
        members.join(" "),
        args.dir.display()
    );
    if args.churn > 0.0 {
        let sims: Vec<KubeSim> = fleet.members.iter().map(|m| m.sim.clone()).collect();
        let period = Duration::from_secs_f64(1.0 / args.churn);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut step = 0u64;
            loop {
                tick.tick().await;
                step += 1;
                for s in &sims {
                    churn_once(s, step).await;
                }
            }
        });
    }
    tokio::signal::ctrl_c().await.map_err(FleetError::Signal)?;
    Ok(())
}
