//! Importing fleets: ClusterImportPolicy -> PediaClusterLifecycle -> PediaCluster.

pub mod deps;
pub mod discovery;
pub mod dry_run;
pub mod finalize;
pub mod lifecycle_controller;
pub mod policy_controller;
pub mod render;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::cluster::PediaCluster;
use api_types::policy::{ClusterImportPolicy, PediaClusterLifecycle, ReferenceResourceTemplate};
use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use deps::Dependents;
use render::ClusterDecoder;

/// What the reconcilers share.
pub struct Context {
    pub client: Client,
    pub deps: Dependents,
    pub decoder: ClusterDecoder,
    /// Per policy: the resources discovery resolved, for the generation they were resolved at.
    negotiated: Mutex<HashMap<String, Negotiated>>,
}

/// A policy's source and references, resolved to served versions.
#[derive(Clone)]
pub struct Negotiated {
    pub generation: Option<i64>,
    pub source: ApiResource,
    pub references: Vec<ReferenceResourceTemplate>,
    pub reference_ars: Vec<ApiResource>,
}

impl Context {
    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Negotiated>> {
        self.negotiated.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn negotiated(&self, policy: &str) -> Option<Negotiated> {
        self.cache().get(policy).cloned()
    }

    pub fn remember(&self, policy: &str, n: Negotiated) {
        self.cache().insert(policy.to_owned(), n);
    }

    pub fn forget(&self, policy: &str) {
        self.cache().remove(policy);
    }
}

/// A reconcile that failed in a way worth retrying (API errors); template and data problems
/// are conditions, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API ({context}): {source}")]
    Kube { context: &'static str, source: kube::Error },
    #[error("building the PediaCluster schema: {0}")]
    Schema(#[from] api_types::validation::SchemaError),
    #[error("{kind} {name} has no uid: it cannot own what it creates")]
    NoUid { kind: &'static str, name: String },
    #[error("reading {what} as JSON: {source}")]
    Json { what: String, source: serde_json::Error },
}

impl Error {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Schema(_) => "schema",
            Error::NoUid { .. } => "no_uid",
            Error::Json { .. } => "json",
        }
    }

    pub fn kube(context: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { context, source }
    }
}

/// The field manager of the import controllers' status writes.
const MANAGER: &str = "pedia-import";

/// Writes a policy's or lifecycle's status with server-side apply (the controllers own it).
async fn apply_status<K, S>(api: &Api<K>, name: &str, kind: &str, status: &S) -> Result<(), Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize,
{
    let status =
        serde_json::to_value(status).map_err(|source| Error::Json { what: format!("{kind} {name} status"), source })?;
    let body = serde_json::json!({
        "apiVersion": format!("{}/{}", api_types::policy::GROUP, api_types::policy::VERSION),
        "kind": kind,
        "status": status,
    });
    api.patch_status(name, &kube::api::PatchParams::apply(MANAGER).force(), &kube::api::Patch::Apply(&body))
        .await
        .map_err(Error::kube("writing the status"))?;
    Ok(())
}

/// An object as the templates see it (JSON); an object that does not serialize is an error
/// naming it, never an empty object.
pub(crate) fn as_json<K: serde::Serialize + ResourceExt>(obj: &K) -> Result<serde_json::Value, Error> {
    serde_json::to_value(obj).map_err(|source| Error::Json {
        what: match obj.namespace() {
            Some(ns) => format!("{ns}/{}", obj.name_any()),
            None => obj.name_any(),
        },
        source,
    })
}

/// The ClusterImportPolicy that controls a lifecycle.
pub fn owner_of(lifecycle: &impl Resource) -> Option<&OwnerReference> {
    lifecycle.meta().owner_references.iter().flatten().find(|o| {
        o.controller == Some(true)
            && o.kind == "ClusterImportPolicy"
            && o.api_version.split_once('/').is_some_and(|(group, _)| group == api_types::policy::GROUP)
    })
}

fn error_policy<K: ResourceExt>(obj: Arc<K>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(object = %obj.name_any(), %error, kind = error.metric_label(), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// Runs the policy and lifecycle controllers until the process stops.
pub async fn run(client: Client) -> Result<(), Error> {
    let (policy_tx, policy_rx) = mpsc::unbounded_channel();
    let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(Context {
        client: client.clone(),
        deps: Dependents::new(client.clone(), policy_tx, lifecycle_tx),
        decoder: ClusterDecoder::new()?,
        negotiated: Mutex::default(),
    });
    let policies = Controller::new(Api::<ClusterImportPolicy>::all(client.clone()), watcher::Config::default())
        .watches(Api::<PediaClusterLifecycle>::all(client.clone()), watcher::Config::default(), |l| {
            owner_of(&l).map(|o| ObjectRef::new(&o.name))
        })
        .reconcile_on(receiver_stream(policy_rx))
        .run(policy_controller::reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "policy controller");
            }
        });
    let lifecycles = Controller::new(Api::<PediaClusterLifecycle>::all(client.clone()), watcher::Config::default())
        .watches(Api::<PediaCluster>::all(client), watcher::Config::default(), |pc| {
            Some(ObjectRef::new(&pc.name_any()))
        })
        .reconcile_on(receiver_stream(lifecycle_rx))
        .run(lifecycle_controller::reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "lifecycle controller");
            }
        });
    tokio::join!(policies, lifecycles);
    Ok(())
}
