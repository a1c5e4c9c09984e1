//! PediaClusters -> cluster synchros: the controller that keeps one running synchro per
//! PediaCluster this instance owns, and writes what it reports into the PediaCluster's status.

pub mod cluster_controller;
pub mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::cluster::{ClusterSyncResources, PediaCluster};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use pedia_storage::Storage;
use pedia_synchro::ClusterSynchro;
use tokio::sync::{Mutex, mpsc};

/// Settings of the cluster controller (from the command line).
#[derive(Clone)]
pub struct Settings {
    /// Where credential Secrets live.
    pub namespace: String,
    /// This instance's shard (`""`: the default one).
    pub sharding_name: String,
    pub page_size: u32,
    pub streaming_lists: bool,
    pub allow_sync_all_resources: bool,
    pub metrics: pedia_synchro::metrics::Metrics,
}

/// What the reconciler shares.
pub struct Context {
    pub client: Client,
    pub storage: Arc<Storage>,
    pub settings: Settings,
    pub synchros: Mutex<HashMap<String, Running>>,
    /// Re-runs a cluster's reconcile (its synchro reported a change).
    pub wake: mpsc::UnboundedSender<ObjectRef<PediaCluster>>,
    pub recorder: kube::runtime::events::Recorder,
    /// Batches written at once across every cluster.
    pub writes: Arc<tokio::sync::Semaphore>,
    /// Credentials of kubeconfigs whose user is an exec plugin, by cluster.
    pub exec: crate::exec_plugin::Cache,
}

/// A cluster's synchro and the Secrets its credentials came from.
pub struct Running {
    pub synchro: ClusterSynchro,
    pub secrets: Vec<String>,
}

/// Why a reconcile failed (it is retried); configuration problems are conditions, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API ({context}): {source}")]
    Kube { context: &'static str, source: kube::Error },
    #[error("storage ({context}): {source}")]
    Storage { context: &'static str, source: pedia_storage::StorageError },
    #[error("serializing the status: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Storage { .. } => "storage",
            Error::Serialize(_) => "serialize",
        }
    }

    pub fn kube(context: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { context, source }
    }
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the PediaCluster CRD is not installed on the host cluster ({0}); install pedia's CRDs with `pedia crds | kubectl apply --server-side -f -`"
    )]
    MissingCrds(String),
    #[error("listing PediaClusters on the host cluster: {0}")]
    Kube(kube::Error),
}

/// Checks that the host serves the CRDs this controller needs.
pub async fn check_crds(client: &Client) -> Result<(), StartError> {
    let lp = ListParams::default().limit(1);
    for result in [
        Api::<PediaCluster>::all(client.clone()).list_metadata(&lp).await.map(|_| ()),
        Api::<ClusterSyncResources>::all(client.clone()).list_metadata(&lp).await.map(|_| ()),
    ] {
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(StartError::MissingCrds(s.message)),
            Err(e) => return Err(StartError::Kube(e)),
        }
    }
    Ok(())
}

fn error_policy(obj: Arc<PediaCluster>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(cluster = %obj.name_any(), error = %error, kind = error.metric_label(), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the PediaCluster controller until the process stops; on the way out every cluster
/// synchro is shut down (between batches).
pub async fn run(client: Client, storage: Arc<Storage>, settings: Settings) -> Result<(), StartError> {
    check_crds(&client).await?;
    let (wake, woken) = mpsc::unbounded_channel();
    let reporter = kube::runtime::events::Reporter {
        controller: "pedia-cluster-synchro".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    // Enough writes at once to keep the store busy, few enough to bound memory while the lists of
    // many clusters arrive together (see `WriteShape`).
    let writes = Arc::new(tokio::sync::Semaphore::new(storage.write_shape().concurrent));
    let ctx = Arc::new(Context {
        client: client.clone(),
        storage,
        recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
        settings: settings.clone(),
        synchros: Mutex::default(),
        wake,
        writes,
        exec: Default::default(),
    });
    let controller = Controller::new(Api::<PediaCluster>::all(client.clone()), watcher::Config::default());
    let store = controller.store();
    let by_ref = store.clone();
    let controller = controller
        .watches(Api::<ClusterSyncResources>::all(client.clone()), watcher::Config::default(), move |csr| {
            let name = csr.name_any();
            by_ref
                .state()
                .iter()
                .filter(|pc| pc.spec.sync_resources_ref_name.as_deref() == Some(name.as_str()))
                .map(|pc| ObjectRef::from_obj(pc.as_ref()))
                .collect::<Vec<_>>()
        })
        .watches(Api::<Secret>::namespaced(client, &settings.namespace), watcher::Config::default(), move |secret| {
            let name = secret.name_any();
            store
                .state()
                .iter()
                .filter(|pc| pedia_synchro::credentials::secret_names(&pc.spec).contains(&name))
                .map(|pc| ObjectRef::from_obj(pc.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(crate::import::receiver_stream(woken));
    tracing::info!(namespace = %settings.namespace, sharding = %settings.sharding_name, "starting the PediaCluster controller");
    controller
        .run(cluster_controller::reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "cluster controller");
            }
        })
        .await;
    shutdown(&ctx).await;
    Ok(())
}

/// Stops every cluster synchro.
pub async fn shutdown(ctx: &Context) {
    let running: Vec<Running> = ctx.synchros.lock().await.drain().map(|(_, r)| r).collect();
    for r in running {
        r.synchro.shutdown().await;
    }
}
