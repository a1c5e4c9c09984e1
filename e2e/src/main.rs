//! The `kubesim` binary: one simulated cluster (`serve`) or a whole fleet (`fleet`).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kubesim::auth::{Auth, PolicyFile};
use kubesim::kubeconfig::{self, Credentials};
use kubesim::tls::Tls;
use kubesim::{Config, KubeSim};

/// kubesim is an in-memory Kubernetes API server for tests and demos: discovery, CRUD, patches,
/// list/watch with resourceVersions and 410 Gone, CRDs, finalizers, garbage collection, bearer
/// token and client-certificate auth, and fault injection. Nothing is persisted.
#[derive(Debug, Parser)]
#[command(name = "kubesim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one cluster.
    ///
    /// Example: `kubesim serve --addr 127.0.0.1:6443 --tls --token admin-token --kubeconfig-out kc.yaml`
    /// then `kubectl --kubeconfig kc.yaml get ns`.
    Serve(ServeArgs),
    /// Start a host cluster and N member clusters seeded with workloads.
    ///
    /// Example: `kubesim fleet --members 3 --dir .fleet` writes `.fleet/host.kubeconfig` and
    /// `.fleet/member-<i>.kubeconfig` and prints one line when all are serving.
    Fleet(kubesim::fleet::FleetArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Serve HTTPS with a CA generated at start (client certificates signed by it authenticate).
    #[arg(long)]
    tls: bool,
    /// Accept this bearer token (user `admin`, group `system:masters`); repeatable.
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// YAML policy: `tokens: {TOKEN: {name, groups}}`, `rules: [{users, groups, verbs, resources}]`,
    /// `anonymous: bool`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write a kubeconfig for this server (first token, or none).
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Proxy an aggregated API to a backend, like an APIService: `v1beta1.clusterpedia.io=https://127.0.0.1:8443`
    /// (front-proxy client certificate, X-Remote-User/X-Remote-Group headers); repeatable.
    #[arg(long = "aggregate", value_name = "VERSION.GROUP=URL")]
    aggregate: Vec<String>,
    /// Events kept per resource for watch resumption; older resumes get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Log every API request (method, path and query, content type, status, bytes, duration,
    /// user) to stderr, or to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    log_requests: Option<PathBuf>,
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Fleet(args) => kubesim::fleet::run(args).await.map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let mut auth = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let policy: PolicyFile =
                serde_yaml::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
            Auth::from_policy(policy)
        }
        None => Auth::open(),
    };
    for t in &args.tokens {
        auth.add_token(t, "admin", &["system:masters"]);
    }
    if !args.tokens.is_empty() && args.policy.is_none() {
        auth.anonymous = false;
    }
    let request_log = match &args.log_requests {
        Some(p) => Some(std::sync::Arc::new(
            kubesim::request_log::RequestLog::from_flag(Some(p))
                .map_err(|e| format!("--log-requests {}: {e}", p.display()))?,
        )),
        None => None,
    };
    let sim = KubeSim::new(Config { auth, history_limit: args.history, request_log, ..Config::default() });
    for spec in &args.aggregate {
        let (name, url) =
            spec.split_once('=').ok_or_else(|| format!("--aggregate {spec:?}: expected VERSION.GROUP=URL"))?;
        let (version, group) =
            name.split_once('.').ok_or_else(|| format!("--aggregate {spec:?}: expected VERSION.GROUP=URL"))?;
        sim.aggregate(group, version, url).await.map_err(|e| format!("--aggregate {spec:?}: {e}"))?;
    }
    let server = if args.tls {
        let tls = Tls::generate("kubesim", &[]).map_err(|e| e.to_string())?;
        sim.serve_tls(args.addr, tls).await
    } else {
        sim.serve(args.addr).await
    }
    .map_err(|e| format!("listening on {}: {e}", args.addr))?;
    if let Some(path) = &args.kubeconfig_out {
        let creds = args.tokens.first().map_or(Credentials::None, |t| Credentials::Token(t.clone()));
        let text = kubeconfig::render("kubesim", &server.url(), server.ca_pem(), &creds);
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("kubesim serving at {}", server.url());
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    server.shutdown().await;
    Ok(())
}
