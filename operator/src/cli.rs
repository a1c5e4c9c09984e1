//! Command line of `pedia`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` for the command's output: a reader that goes away (`pedia storage stats | head`)
/// ends the command quietly, as for other command-line tools, instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            exit_on_closed_pipe(e);
        }
    }};
}

/// `print!` counterpart of [`out!`].
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            exit_on_closed_pipe(e);
        }
    }};
}

fn exit_on_closed_pipe(e: std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing the output: {e}");
    std::process::exit(2);
}

/// pedia imports a fleet of Kubernetes clusters, keeps their resources in one SQL store and lets
/// you search all of them with kubectl. It is compatible with Clusterpedia's APIs and manifests.
#[derive(Debug, Parser)]
#[command(name = "pedia", version, propagate_version = true)]
pub struct Cli {
    /// Log filter (`error`, `warn`, `info`, `debug`, or a tracing directive); RUST_LOG overrides it.
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions (PediaCluster, ClusterSyncResources, ClusterImportPolicy,
    /// PediaClusterLifecycle) as YAML, or write one file per CRD.
    ///
    /// Example: `pedia crds | kubectl apply --server-side -f -`
    Crds(CrdsArgs),

    /// Check manifests (files, directories, or `-` for stdin) against pedia's CRDs the way the
    /// apiserver would: unknown fields, types, required values, object names. Objects of other
    /// kinds are listed as skipped. Exits 1 when any object is invalid.
    ///
    /// Example: `pedia validate clusters/ policies/karmada.yaml`
    Validate(ValidateArgs),

    /// Manage the SQL store: `migrate` applies the schema, `stats` prints rows per cluster and
    /// resource and the database size, `compact` trims the change log behind watch.
    ///
    /// Example: `pedia storage stats --storage postgres://pedia@db/pedia`
    #[command(subcommand)]
    Storage(StorageCommand),

    /// Work with ClusterImportPolicies offline: `render` shows what a policy makes of a source
    /// object (and its references) without a cluster.
    ///
    /// Example: `pedia policy render --policy karmada.yaml --source member1.yaml --reference secret=member1-secret.yaml`
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Run all of pedia against the host cluster until stopped (Ctrl-C): the PediaCluster
    /// controller and its sync engine (every PediaCluster's resources kept in the store), the
    /// ClusterImportPolicy / PediaClusterLifecycle controllers that turn fleet objects (Karmada
    /// clusters, Cluster API clusters, Argo CD cluster secrets, ...) into PediaClusters, and the
    /// search apiserver (clusterpedia.io/v1beta1 over HTTPS) that kubectl reads the store through.
    /// Install the CRDs first (`pedia crds | kubectl apply --server-side -f -`).
    ///
    /// Example: `pedia run --kubeconfig ~/.kube/config --storage sqlite://pedia.db --token-auth-file tokens.csv`
    Run(RunArgs),

    /// The controllers of `pedia run` without the search apiserver (for a Deployment that runs
    /// `pedia apiserver` as a separate container on the same store).
    ///
    /// Example: `pedia operator --storage postgres://pedia@db/pedia --namespace clusterpedia-system`
    Operator(OperatorArgs),

    /// The search apiserver alone: Clusterpedia's aggregated API (`clusterpedia.io/v1beta1`)
    /// over the store the operator fills. Behind the host's aggregator (an APIService
    /// `v1beta1.clusterpedia.io`) it trusts the front proxy and asks the host to authorize each
    /// request; standalone it takes bearer tokens (--token-auth-file) or client certificates
    /// (--client-ca-file).
    ///
    /// Example: `pedia apiserver --storage postgres://pedia@db/pedia --secure-port 8443`
    Apiserver(ApiserverArgs),

    /// Print a kubeconfig for searching with kubectl: context `pedia` (every cluster at once) and
    /// one context per PediaCluster (that cluster alone), like upstream's gen-clusterconfigs
    /// script. By default the entries go through the host's aggregated API and reuse the host
    /// context's TLS settings and user; --server points them at pedia's own address instead.
    ///
    /// Example: `pedia kubeconfig --kubeconfig host.kubeconfig > pedia.kubeconfig && kubectl --kubeconfig pedia.kubeconfig get pods -A`
    Kubeconfig(KubeconfigArgs),
}

#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// Kubeconfig of the host cluster (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the host kubeconfig (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// pedia's own address (`https://HOST:8443`) instead of the host's aggregated path.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for --server (one of pedia's --token-auth-file).
    #[arg(long, requires = "server")]
    pub token: Option<String>,
    /// CA of pedia's serving certificate for --server (default: not verified, for the
    /// self-signed certificate pedia generates).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub certificate_authority: Option<PathBuf>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `pedia run`: the controllers and the search apiserver.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub serve: crate::apiserver::ServeArgs,
}

/// `pedia apiserver`.
#[derive(Debug, clap::Args)]
pub struct ApiserverArgs {
    /// Kubeconfig of the host cluster (PediaClusters, SubjectAccessReviews); without it,
    /// $KUBECONFIG, ~/.kube/config or the in-cluster service account are used.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    #[command(flatten)]
    pub serve: crate::apiserver::ServeArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, clap::Args)]
pub struct OperatorArgs {
    /// Kubeconfig of the host cluster; without it, $KUBECONFIG, ~/.kube/config or the in-cluster
    /// service account are used.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the credential Secrets (`authenticationFrom`) and Leases; default: the pod's
    /// namespace, else clusterpedia-system.
    #[arg(long, env = "CLUSTERPEDIA_NAMESPACE")]
    pub namespace: Option<String>,
    /// Sync only the PediaClusters whose spec.shardingName is this (default: those without one).
    #[arg(long, default_value = "")]
    pub sharding_name: String,
    /// Objects per page of a member's initial list and relists where they are not streamed
    /// (aggregated APIs, members without streaming lists).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// List built-in kinds and CRDs as streaming lists (`sendInitialEvents`) where the member
    /// serves them; `false` lists everything in pages.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub streaming_lists: bool,
    /// Allow `group: "*"` in syncResources (every resource of a member).
    #[arg(long)]
    pub allow_sync_all_resources: bool,
    /// Elect a leader on a Lease in --namespace before running the controllers, so replicas
    /// never work at once (`clusterpedia-clustersynchro-manager[-<sharding name>]` for the
    /// cluster controller, `clusterpedia-controller-manager` for the import controllers). A
    /// leader stopped with SIGTERM or Ctrl-C gives its Lease up: a standby takes over within ~2 s.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub leader_elect: bool,
    /// Which controllers run, comma separated: `clusters` (PediaClusters synced into the
    /// store), `import` (ClusterImportPolicy and PediaClusterLifecycle) and `clusterprofiles`
    /// (SIG-Multicluster ClusterProfiles become PediaClusters; off by itself when the host has no
    /// ClusterProfile CRD).
    #[arg(long, value_delimiter = ',', default_value = "clusters,import,clusterprofiles")]
    pub controllers: Vec<Controllers>,
    #[command(flatten)]
    pub clusterprofiles: ClusterProfileArgs,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub metrics_bind_address: std::net::SocketAddr,
    /// Labels of the `clustersynchro_resourcesynchro_*` metrics: `empty`, or a comma list of
    /// `cluster`, `gv`, `resource`, `gvr` (as upstream).
    #[arg(long, default_value = "empty")]
    pub resource_synchro_metrics_labels: pedia_synchro::metrics::LabelScope,
    /// How long the change log keeps entries: a watch resuming from an older position gets 410
    /// Gone and relists (`90s`, `30m`, `2h`, `1d`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub change_log_retention: std::time::Duration,
    /// At most this many change log entries are kept.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1..))]
    pub change_log_retention_entries: i64,
    /// How often the sync leader trims the change log to the retention.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub change_log_compact_interval: std::time::Duration,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// The controllers `pedia run` can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Controllers {
    /// PediaCluster -> cluster synchro -> store.
    Clusters,
    /// ClusterImportPolicy -> PediaClusterLifecycle -> PediaCluster.
    Import,
    /// ClusterProfile (multicluster.x-k8s.io) -> PediaCluster.
    Clusterprofiles,
}

/// The ClusterProfile importer (`--controllers clusterprofiles`).
#[derive(Debug, clap::Args)]
pub struct ClusterProfileArgs {
    /// Import the ClusterProfiles of these namespaces only (comma separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub clusterprofile_namespaces: Vec<String>,
    /// Access providers in order of preference, in cluster-inventory-api's format
    /// (`{"providers": [{"name", "execConfig", ...}]}`). A provider without `execConfig` named
    /// `secretreader` or `kubeconfig-secretreader` is built in. Default: those two built-ins.
    #[arg(long, value_name = "FILE")]
    pub clusterprofile_provider_file: Option<PathBuf>,
    /// Put before `<namespace>-<name>` in the names of the PediaClusters made from profiles.
    #[arg(long, default_value = "")]
    pub clusterprofile_name_prefix: String,
    /// The ClusterSyncResources a profile's PediaCluster syncs, unless the profile's annotation
    /// `clusterprofile.clusterpedia.io/sync-resources` names another (default: namespaces,
    /// nodes, pods, services, configmaps, deployments, statefulsets, daemonsets).
    #[arg(long, value_name = "NAME")]
    pub clusterprofile_sync_resources: Option<String>,
    /// Import only profiles the cluster manager reports healthy (`ControlPlaneHealthy=True`, not
    /// `Joined=False`); a PediaCluster already imported is kept, with its data, when its profile
    /// turns unhealthy.
    #[arg(long)]
    pub clusterprofile_healthy_only: bool,
    /// How long an exec credential plugin may run.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub clusterprofile_exec_timeout: std::time::Duration,
}

impl ClusterProfileArgs {
    fn settings(&self, namespace: &str) -> Result<crate::clusterprofiles::Settings, CliError> {
        use crate::clusterprofiles::providers::ProviderFile;
        let providers = match &self.clusterprofile_provider_file {
            None => ProviderFile::builtins(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::ProviderFile { path: path.clone(), message: e.to_string() })?;
                ProviderFile::parse(&text)
                    .map_err(|e| CliError::ProviderFile { path: path.clone(), message: e.to_string() })?
            }
        };
        Ok(crate::clusterprofiles::Settings {
            namespace: namespace.to_owned(),
            watch_namespaces: self.clusterprofile_namespaces.iter().filter(|n| !n.is_empty()).cloned().collect(),
            prefix: self.clusterprofile_name_prefix.clone(),
            providers,
            default_sync_resources: self.clusterprofile_sync_resources.clone(),
            healthy_only: self.clusterprofile_healthy_only,
            exec_timeout: self.clusterprofile_exec_timeout,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Render a policy for one source object: prints `selector: true|false` (when the policy has
    /// a selectorTemplate), `name: <lifecycle name>`, `creationCondition: true|false`, then the
    /// PediaCluster as YAML. Exits 1 with the error (field, line, column) on a bad template or
    /// unreadable input.
    Render(RenderArgs),
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The ClusterImportPolicy (YAML or JSON file).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The source object the policy watches (e.g. a Karmada Cluster); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub source: PathBuf,
    /// A referenced object, by the reference's key (repeat for each reference).
    #[arg(long = "reference", value_name = "KEY=FILE")]
    pub references: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Apply pending schema migrations and exit (refuses a schema newer than this pedia).
    Migrate(StorageArgs),
    /// Print rows per cluster and resource, the number of stored events, the change log, and the
    /// database size.
    Stats(StorageArgs),
    /// Drop change log entries beyond the retention; watches resuming from before them get 410
    /// Gone and relist.
    ///
    /// Example: `pedia storage compact --retention 30m --retention-entries 500000`
    Compact(CompactArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Keep entries younger than this (`90s`, `30m`, `2h`, `1d`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub retention: std::time::Duration,
    /// Keep at most this many entries.
    #[arg(long, default_value_t = 1_000_000)]
    pub retention_entries: i64,
}

/// `90s`, `30m`, `2h`, `1d` (one number and one unit; a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{text:?}: expected a number and a unit such as 30m"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use s, m, h or d)")),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}

impl Cli {
    /// Whether the command runs until stopped with a SQLite store in this process (`run`,
    /// `operator`, `apiserver`), whose page caches are part of pedia's memory.
    pub fn keeps_sqlite_store(&self) -> bool {
        let storage = match &self.command {
            Command::Run(r) => &r.operator.storage,
            Command::Operator(o) => &o.storage,
            Command::Apiserver(a) => &a.storage,
            _ => return false,
        };
        storage.is_sqlite()
    }
}

impl StorageArgs {
    /// Whether the store is a SQLite file (a config file is read for its `type`; one that cannot
    /// be read counts as not, and fails later with its own message).
    pub fn is_sqlite(&self) -> bool {
        let config = match &self.storage_config {
            Some(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|text| pedia_storage::internalstorage::from_file(&text, &|k| std::env::var(k).ok()).ok()),
            None => pedia_storage::StorageConfig::from_url(&self.storage).ok(),
        };
        config.is_some_and(|c| c.backend == pedia_storage::Backend::Sqlite)
    }
}

#[derive(Debug, clap::Args)]
pub struct StorageArgs {
    /// `sqlite://PATH` (the default: sqlite://pedia.db), `postgres://USER:PASS@HOST/DB`,
    /// or `mysql://USER:PASS@HOST/DB` (MySQL 8, MariaDB 10.11).
    #[arg(long, env = "PEDIA_STORAGE", default_value = "sqlite://pedia.db")]
    pub storage: String,
    /// Clusterpedia's internalstorage config file (YAML: type, host, port, user, password,
    /// database, sslMode, dsn, params, connPool); `DB_*` environment variables override it, as
    /// upstream. Wins over --storage.
    #[arg(long, value_name = "FILE")]
    pub storage_config: Option<PathBuf>,
    /// How many times to try connecting (with backoff) before giving up.
    #[arg(long, default_value_t = 5)]
    pub connect_attempts: u32,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`, `*.json`); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CrdsArgs {
    /// Write `<group>_<plural>.yaml` files into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Errors of the command line itself.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("serializing the CRDs to YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
    #[error(transparent)]
    Storage(#[from] pedia_storage::StorageError),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("connecting to the Kubernetes API server: {0}")]
    Kubeconfig(String),
    #[error(transparent)]
    Import(#[from] crate::import::Error),
    #[error(transparent)]
    Clusters(#[from] crate::clusters::StartError),
    #[error(transparent)]
    Leader(#[from] crate::leader::LeaderError),
    #[error("serving metrics on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Serve(#[from] crate::apiserver::ServeError),
    #[error(transparent)]
    ClusterProfiles(#[from] crate::clusterprofiles::Error),
    #[error("--clusterprofile-provider-file {}: {message}", path.display())]
    ProviderFile { path: PathBuf, message: String },
}

/// Runs one command; the exit code tells scripts whether it succeeded.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Crds(args) => crds(args),
        Command::Validate(args) => validate(args),
        Command::Storage(cmd) => storage(cmd),
        Command::Run(args) => run_controllers(args.operator, Some(args.serve)),
        Command::Operator(args) => run_controllers(args, None),
        Command::Apiserver(args) => run_apiserver(args),
        Command::Kubeconfig(args) => kubeconfig(args),
        Command::Policy(PolicyCommand::Render(args)) => {
            match crate::import::dry_run::render(&args.policy, &args.source, &args.references) {
                Ok(out) => {
                    out_raw!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// The host cluster's client from --kubeconfig / --context, else the usual inference.
async fn host_client(kubeconfig: Option<&PathBuf>, context: Option<&String>) -> Result<kube::Client, CliError> {
    let options = kube::config::KubeConfigOptions { context: context.cloned(), ..Default::default() };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CliError::Kubeconfig(format!("reading {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| e.to_string())
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await.map_err(|e| e.to_string()),
        (None, None) => kube::Config::infer().await.map_err(|e| e.to_string()),
    }
    .map_err(CliError::Kubeconfig)?;
    kube::Client::try_from(config).map_err(|e| CliError::Kubeconfig(e.to_string()))
}

fn kubeconfig(args: KubeconfigArgs) -> Result<ExitCode, CliError> {
    let path = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => std::env::var_os("KUBECONFIG")
            .and_then(|k| std::env::split_paths(&k).next())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")))
            .ok_or_else(|| CliError::Kubeconfig("no kubeconfig: give --kubeconfig".into()))?,
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| CliError::Kubeconfig(format!("reading {}: {e}", path.display())))?;
    let host: serde_json::Value =
        serde_yaml::from_str(&text).map_err(|e| CliError::Kubeconfig(format!("parsing {}: {e}", path.display())))?;
    let mut target = crate::kubeconfig::from_host(&host, args.context.as_deref()).map_err(CliError::Kubeconfig)?;
    if let Some(server) = &args.server {
        target.server = server.clone();
        target.tls = serde_json::Map::new();
        match &args.certificate_authority {
            Some(ca) => {
                let pem =
                    std::fs::read(ca).map_err(|e| CliError::Kubeconfig(format!("reading {}: {e}", ca.display())))?;
                target.tls.insert("certificate-authority-data".into(), base64_encode(&pem).into());
            }
            None => {
                target.tls.insert("insecure-skip-tls-verify".into(), true.into());
            }
        }
        if let Some(token) = &args.token {
            target.user = ("pedia".into(), serde_json::json!({"token": token}));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    let names = runtime.block_on(async {
        let client = host_client(Some(&path), args.context.as_ref()).await?;
        let api: kube::Api<api_types::cluster::PediaCluster> = kube::Api::all(client);
        let list = api
            .list(&Default::default())
            .await
            .map_err(|e| CliError::Kubeconfig(format!("listing PediaClusters on the host: {e}")))?;
        Ok::<_, CliError>(list.items.into_iter().filter_map(|c| c.metadata.name).collect::<Vec<_>>())
    })?;
    let yaml = serde_yaml::to_string(&crate::kubeconfig::build(&target, &names))?;
    match &args.output {
        Some(out) => {
            std::fs::write(out, yaml).map_err(|source| CliError::Write { path: out.clone(), source })?;
            eprintln!("wrote {} (contexts: pedia, {})", out.display(), names.join(", "));
        }
        None => out_raw!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn run_apiserver(args: ApiserverArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let client = host_client(args.kubeconfig.as_ref(), args.context.as_ref()).await?;
        let (store, storage_config) = connect_storage(&args.storage).await?;
        store.migrate().await?;
        tracing::info!(storage = %storage_config.redacted(), "starting the search apiserver");
        let server = crate::apiserver::start(&args.serve, client, std::sync::Arc::new(store)).await?;
        tokio::select! {
            _ = server.wait() => {}
            _ = crate::shutdown::requested() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn run_controllers(args: OperatorArgs, serve: Option<crate::apiserver::ServeArgs>) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let client = host_client(args.kubeconfig.as_ref(), args.context.as_ref()).await?;
        let mut registry = crate::metrics::registry();
        let metrics = pedia_synchro::metrics::Metrics::new(&mut registry, args.resource_synchro_metrics_labels);
        let endpoints = std::sync::Arc::new(crate::metrics::Endpoints { registry, ready: false.into() });
        let bound = crate::metrics::serve(args.metrics_bind_address, endpoints.clone())
            .await
            .map_err(|e| CliError::Listen { addr: args.metrics_bind_address, source: e })?;
        tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
        let (store, storage_config) = connect_storage(&args.storage).await?;
        let store = std::sync::Arc::new(store);
        store.migrate().await?;
        let settings = crate::clusters::Settings {
            namespace: args.namespace.clone().unwrap_or_else(default_namespace),
            sharding_name: args.sharding_name.clone(),
            page_size: args.page_size,
            streaming_lists: args.streaming_lists,
            allow_sync_all_resources: args.allow_sync_all_resources,
            metrics,
        };
        crate::clusters::check_crds(&client).await?;
        // The search API serves on every replica: it only reads.
        let _search = match &serve {
            Some(serve) => Some(crate::apiserver::start(serve, client.clone(), store.clone()).await?),
            None => None,
        };
        endpoints.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(storage = %storage_config.redacted(), "starting the controllers");
        let namespace = settings.namespace.clone();
        let identity = crate::leader::identity();
        let leader = |name: String| {
            let (client, namespace, identity) = (client.clone(), namespace.clone(), identity.clone());
            async move {
                match args.leader_elect {
                    true => Some(crate::leader::Leadership::acquire(client, &namespace, &name, identity).await),
                    false => None,
                }
            }
        };
        // Set once a stop is requested: each controller set gives its lease up and returns.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let profiles = match args.controllers.contains(&Controllers::Clusterprofiles) {
            true => Some(args.clusterprofiles.settings(&namespace)?),
            false => None,
        };
        let import = async {
            let policies = args.controllers.contains(&Controllers::Import);
            if policies || profiles.is_some() {
                let work = async {
                    let policies = async {
                        if policies {
                            crate::import::run(client.clone()).await?;
                        }
                        Ok::<(), CliError>(())
                    };
                    let profiles = async {
                        if let Some(settings) = profiles {
                            crate::clusterprofiles::run(client.clone(), settings).await?;
                        }
                        Ok::<(), CliError>(())
                    };
                    tokio::try_join!(policies, profiles).map(|_| ())
                };
                led(leader("clusterpedia-controller-manager".into()), work, stopping.clone()).await?;
            }
            stopped(stopping.clone()).await;
            Ok::<(), CliError>(())
        };
        let clusters = async {
            if args.controllers.contains(&Controllers::Clusters) {
                let name = match args.sharding_name.as_str() {
                    "" => "clusterpedia-clustersynchro-manager".to_owned(),
                    shard => format!("clusterpedia-clustersynchro-manager-{shard}"),
                };
                let retention = pedia_storage::Retention {
                    max_age: args.change_log_retention,
                    max_entries: args.change_log_retention_entries,
                };
                let interval = args.change_log_compact_interval.max(std::time::Duration::from_secs(1));
                let work = async {
                    // The leader trims the log it writes (shards' leaders alike: a trim is idempotent).
                    tokio::select! {
                        result = crate::clusters::run(client.clone(), store.clone(), settings) => Ok(result?),
                        () = crate::compaction::run(store.clone(), retention, interval) => Ok(()),
                    }
                };
                led(leader(name), work, stopping.clone()).await?;
            }
            stopped(stopping.clone()).await;
            Ok::<(), CliError>(())
        };
        let signal = async {
            crate::shutdown::requested().await;
            let _ = stop.send(true);
            Ok::<(), CliError>(())
        };
        tokio::try_join!(import, clusters, signal)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves once a stop is requested (or nothing can request one any more).
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Runs `work` once `lease` is held (at once without leader election) until a stop is requested.
/// Losing the lease ends the process with an error, as upstream (its replacement starts clean);
/// otherwise the lease is given up when the work ends, so a replacement need not wait for it to
/// expire.
async fn led(
    lease: impl std::future::Future<Output = Option<crate::leader::Leadership>>,
    work: impl std::future::Future<Output = Result<(), CliError>>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Result<(), CliError> {
    let lease = tokio::select! {
        lease = lease => lease,
        () = stopped(stopping.clone()) => return Ok(()),
    };
    let result = match &lease {
        None => tokio::select! {
            result = work => result,
            () = stopped(stopping) => Ok(()),
        },
        Some(lease) => tokio::select! {
            result = work => result,
            lost = lease.keep() => return Err(CliError::Leader(lost)),
            () = stopped(stopping) => Ok(()),
        },
    };
    if let Some(lease) = lease {
        lease.release().await;
    }
    result
}

/// The pod's namespace in a cluster, else upstream's default.
fn default_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "clusterpedia-system".to_owned())
}

/// `--storage-config FILE` (Clusterpedia's internalstorage file) or `--storage URL`.
async fn connect_storage(
    args: &StorageArgs,
) -> Result<(pedia_storage::Storage, pedia_storage::StorageConfig), CliError> {
    let config = match &args.storage_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| pedia_storage::StorageError::Config(format!("reading {}: {e}", path.display())))?;
            pedia_storage::internalstorage::from_file(&text, &|k| std::env::var(k).ok())?
        }
        None => pedia_storage::StorageConfig::from_url(&args.storage)?,
    };
    Ok((pedia_storage::Storage::connect(&config, args.connect_attempts).await?, config))
}

fn storage(cmd: StorageCommand) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let args = match &cmd {
            StorageCommand::Migrate(a) | StorageCommand::Stats(a) => a,
            StorageCommand::Compact(c) => &c.storage,
        };
        let (store, config) = connect_storage(args).await?;
        let config_name = config.redacted();
        match cmd {
            StorageCommand::Migrate(_) => {
                let applied = store.migrate().await?;
                if applied.is_empty() {
                    out!("{config_name}: schema is up to date");
                } else {
                    out!("{config_name}: applied {}", applied.join(", "));
                }
            }
            StorageCommand::Stats(_) => {
                store.migrate().await?;
                let stats = store.stats().await?;
                out!("{:<24} {:<40} {:>10}", "CLUSTER", "RESOURCE", "ROWS");
                for (cluster, gvr, n) in &stats.rows {
                    out!("{cluster:<24} {:<40} {n:>10}", gvr.to_string());
                }
                let total: i64 = stats.rows.iter().map(|r| r.2).sum();
                out!("{total} objects in {} cluster-resources, {} events", stats.rows.len(), stats.events);
                out!("connection: {}", store.connection_security().await?);
                let log = store.log_state().await?;
                out!(
                    "change log: head {}, horizon {} ({} entries kept for watch)",
                    log.head,
                    log.horizon,
                    log.head - log.horizon
                );
                let mib = |b: i64| b as f64 / 1048576.0;
                match (stats.size_bytes, stats.uncompressed_bytes) {
                    (Some(b), Some(u)) => out!(
                        "database size: {:.1} MiB on disk ({b} bytes), {:.1} MiB uncompressed (pages count on disk once written out)",
                        mib(b),
                        mib(u)
                    ),
                    (Some(b), None) => out!("database size: {:.1} MiB ({b} bytes)", mib(b)),
                    (None, _) => out!("database size: unknown"),
                }
            }
            StorageCommand::Compact(args) => {
                store.migrate().await?;
                let retention =
                    pedia_storage::Retention { max_age: args.retention, max_entries: args.retention_entries };
                let dropped = store.compact_changes(&retention).await?;
                let log = store.log_state().await?;
                out!("change log: dropped {dropped} entries; head {}, horizon {}", log.head, log.horizon);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn validate(args: ValidateArgs) -> Result<ExitCode, CliError> {
    use crate::validate::Outcome;
    let reports = crate::validate::validate_paths(&args.paths)?;
    let mut invalid = 0;
    for r in &reports {
        match &r.outcome {
            Outcome::Valid => out!("valid    {}: {} {}", r.source, r.kind, r.name),
            Outcome::Skipped => out!("skipped  {}: {} {} (not a pedia kind)", r.source, r.kind, r.name),
            Outcome::Invalid(why) => {
                invalid += 1;
                out!("INVALID  {}: {why}", r.source);
            }
        }
    }
    out!("{} objects, {invalid} invalid", reports.len());
    Ok(if invalid == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn crds(args: CrdsArgs) -> Result<ExitCode, CliError> {
    use api_types::crd;
    let Some(dir) = args.out_dir else {
        out_raw!("{}", crd::pedia_crds_yaml()?);
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Write { path: dir.clone(), source })?;
    for c in crd::pedia_crds() {
        let path = dir.join(crd::file_name(&c));
        std::fs::write(&path, crd::to_yaml(&c)?).map_err(|source| CliError::Write { path, source })?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn keeps_sqlite(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("pedia").chain(args.iter().copied()))
            .expect("arguments")
            .keeps_sqlite_store()
    }

    #[test]
    fn long_running_commands_on_sqlite_are_told_apart() {
        assert!(keeps_sqlite(&["run"]), "SQLite is the default store");
        assert!(keeps_sqlite(&["operator", "--storage", "sqlite:///var/lib/pedia/pedia.db"]));
        assert!(keeps_sqlite(&["apiserver", "--storage", "sqlite://pedia.db"]));
        assert!(!keeps_sqlite(&["run", "--storage", "postgres://pedia@db/pedia"]));
        assert!(!keeps_sqlite(&["operator", "--storage", "mysql://root@db/pedia"]));
        assert!(!keeps_sqlite(&["storage", "stats", "--storage", "sqlite://pedia.db"]), "not a long-running command");
        assert!(!keeps_sqlite(&["crds"]));

        let dir = std::env::temp_dir().join(format!("pedia-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("internalstorage-config.yaml");
        std::fs::write(&file, "type: sqlite\ndsn: file:/var/lib/pedia/pedia.db\n").expect("config");
        assert!(keeps_sqlite(&["operator", "--storage-config", file.to_str().expect("path")]));
        std::fs::write(&file, "type: postgres\nhost: db\nport: 5432\nuser: pedia\ndatabase: pedia\n").expect("config");
        assert!(!keeps_sqlite(&["operator", "--storage-config", file.to_str().expect("path")]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
