//! The PediaCluster reconciler, as a chain of steps: ownership -> deletion / finalizer ->
//! resolve credentials and references -> validate -> apply to the running synchros -> status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::cluster::{ClusterGroupResources, ClusterSyncResources, PediaCluster};
use api_types::conditions::cluster as cond;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use pedia_synchro::credentials::{self, Access, CredentialError, SecretData};
use pedia_synchro::{ClusterSynchro, Wanted};
use serde_json::json;

use super::status::{self, Validation};
use super::{Context, Error, Running};

const MANAGER: &str = "pedia-cluster-synchro";

/// Whether this instance owns the cluster (upstream's rule): its shard is named in the spec
/// and no other instance holds it, or the status says this one still holds it (to release it).
pub fn owned(spec_shard: Option<&str>, status_shard: Option<&str>, mine: &str) -> bool {
    let spec = spec_shard.unwrap_or_default();
    (spec == mine && status_shard.is_none_or(|s| s == mine)) || (spec != mine && status_shard == Some(mine))
}

/// The resources to sync: the spec's plus those of the referenced ClusterSyncResources.
/// Returns a warning when the reference does not exist.
pub fn effective_resources(
    own: &[ClusterGroupResources],
    referenced: Option<&[ClusterGroupResources]>,
    ref_name: Option<&str>,
) -> (Vec<ClusterGroupResources>, Option<String>) {
    let mut all = own.to_vec();
    match (ref_name, referenced) {
        (Some(_), Some(more)) => all.extend_from_slice(more),
        (Some(name), None) => {
            return (all, Some(format!("Warning: sync resource ref is not found (ClusterSyncResources {name:?})")));
        }
        (None, _) => {}
    }
    (all, None)
}

pub async fn reconcile(pc: Arc<PediaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = pc.name_any();
    let mine = ctx.settings.sharding_name.as_str();
    let status_shard = pc.status.as_ref().and_then(|s| s.sharding_name.as_deref());
    if !owned(pc.spec.sharding_name.as_deref(), status_shard, mine) {
        return Ok(Action::await_change());
    }
    let api: Api<PediaCluster> = Api::all(ctx.client.clone());
    if pc.meta().deletion_timestamp.is_some() {
        return delete(&pc, &api, &ctx).await;
    }
    if !pc.finalizers().iter().any(|f| f == cond::FINALIZER) {
        let mut finalizers = pc.finalizers().to_vec();
        finalizers.push(cond::FINALIZER.to_owned());
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": pc.resource_version()}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube("adding the finalizer"))?;
    }
    if pc.spec.sharding_name.as_deref().unwrap_or_default() != mine {
        // Another shard is named now: stop and release it.
        if let Some(r) = ctx.synchros.lock().await.remove(&name) {
            r.synchro.shutdown().await;
        }
        let patch = json!({"status": {"shardingName": null}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube("releasing the cluster"))?;
        tracing::info!(cluster = %name, "released to shard {:?}", pc.spec.sharding_name);
        return Ok(Action::await_change());
    }

    let resolved = resolve(&pc, &ctx).await?;
    let refresh = resolved.refresh;
    let checked = validate(&pc, resolved, ctx.settings.allow_sync_all_resources).await;
    let applied = apply(&pc, &ctx, checked.run).await;
    write_status(
        &pc,
        &api,
        status::Inputs {
            current: pc.status.as_ref(),
            validation: &checked.validation,
            apiserver: checked.apiserver,
            synchro: applied.snapshot.as_ref(),
            initial_failure: applied.initial_failure.clone(),
            sharding_name: Some(mine.to_owned()),
        },
    )
    .await?;
    Ok(match (applied.initial_failure, refresh) {
        (Some(_), r) => Action::requeue(r.unwrap_or(Duration::from_secs(30)).min(Duration::from_secs(30))),
        (None, Some(r)) => Action::requeue(r),
        (None, None) => Action::await_change(),
    })
}

/// What a PediaCluster refers to, read: its credentials (resolved) and its sync list.
struct Resolved {
    access: Result<Access, CredentialError>,
    secret_names: Vec<String>,
    resources: Vec<ClusterGroupResources>,
    ref_warning: Option<String>,
    /// When an exec plugin's credential needs renewing.
    refresh: Option<Duration>,
}

/// Step 1: read the Secrets and the ClusterSyncResources the spec names, resolve credentials.
async fn resolve(pc: &PediaCluster, ctx: &Context) -> Result<Resolved, Error> {
    let secret_names = credentials::secret_names(&pc.spec);
    let secrets = read_secrets(ctx, &secret_names).await?;
    let lookup = |n: &str| -> Result<Option<SecretData>, String> {
        match secrets.get(n) {
            Some(Ok(d)) => Ok(d.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(None),
        }
    };
    let (access, refresh) = match credentials::resolve(&pc.spec, &ctx.settings.namespace, &lookup) {
        Ok(Access::Kubeconfig(bytes)) => exec_user(ctx, pc, bytes).await,
        other => (other, None),
    };
    let referenced = match pc.spec.sync_resources_ref_name.as_deref() {
        Some(r) => Api::<ClusterSyncResources>::all(ctx.client.clone())
            .get_opt(r)
            .await
            .map_err(Error::kube("reading the ClusterSyncResources"))?
            .map(|c| c.spec.sync_resources),
        None => None,
    };
    let (resources, ref_warning) =
        effective_resources(&pc.spec.sync_resources, referenced.as_deref(), pc.spec.sync_resources_ref_name.as_deref());
    Ok(Resolved { access, secret_names, resources, ref_warning, refresh })
}

/// How long a kubeconfig's exec plugin may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// A failing exec plugin is tried again after this.
const EXEC_RETRY: Duration = Duration::from_secs(30);

/// A kubeconfig whose user is an exec plugin: run it (cached until it nears expiry, again when
/// the member answered 401) and hand the synchro the credential it gave. Returns when to look
/// again.
async fn exec_user(
    ctx: &Context,
    pc: &PediaCluster,
    bytes: Vec<u8>,
) -> (Result<Access, CredentialError>, Option<Duration>) {
    // A kubeconfig that does not parse is reported by the next step, with kube's message.
    let Some(k) = std::str::from_utf8(&bytes).ok().and_then(|t| serde_yaml::from_str::<serde_json::Value>(t).ok())
    else {
        return (Ok(Access::Kubeconfig(bytes)), None);
    };
    let bad = |m: String| CredentialError::Kubeconfig(m);
    let (user, plan) = match crate::exec_plugin::plan_of_kubeconfig(&k) {
        Ok(Some(found)) => found,
        Ok(None) => return (Ok(Access::Kubeconfig(bytes)), None),
        Err(m) => return (Err(bad(m)), None),
    };
    let refused = status::credentials_refused(pc);
    match ctx.exec.credential(&pc.name_any(), &plan, refused, EXEC_TIMEOUT).await {
        Ok((c, refresh)) => {
            let k = crate::exec_plugin::with_credential(&k, &user, &c);
            (serde_json::to_vec(&k).map(Access::Kubeconfig).map_err(|e| bad(e.to_string())), refresh)
        }
        Err(e) => {
            tracing::warn!(cluster = %pc.name_any(), error = %e, "the kubeconfig's exec credential plugin failed");
            (Err(bad(e.to_string())), Some(EXEC_RETRY))
        }
    }
}

/// What a valid PediaCluster runs with.
struct Run {
    access: Access,
    config: kube::Config,
    wanted: Wanted,
    secret_names: Vec<String>,
}

/// The outcome of validation: the condition, the endpoint for status, and what to run if valid.
struct Checked {
    validation: Validation,
    apiserver: Option<String>,
    run: Option<Run>,
}

/// The `Validated` condition from the credentials' outcome and the sync list (pure).
pub fn validation_of(
    credentials: Result<(), &CredentialError>,
    resources: &[ClusterGroupResources],
    allow_sync_all_resources: bool,
    ref_warning: Option<&str>,
) -> Validation {
    match credentials {
        Err(e) => Validation::invalid(cond::REASON_INVALID_CONFIG, e.condition_message()),
        Ok(()) if resources.iter().any(|g| g.group == "*") && !allow_sync_all_resources => Validation::invalid(
            cond::REASON_INVALID_SYNC_RESOURCES,
            "syncing all resources (group \"*\") is not allowed: start pedia with --allow-sync-all-resources",
        ),
        Ok(()) => Validation::valid(ref_warning.unwrap_or("cluster is validated")),
    }
}

/// Step 2: build the client configuration and decide validity.
async fn validate(pc: &PediaCluster, r: Resolved, allow_sync_all_resources: bool) -> Checked {
    let config = match &r.access {
        Ok(a) => a.client_config().await,
        Err(e) => Err(e.clone()),
    };
    let validation =
        validation_of(config.as_ref().map(|_| ()), &r.resources, allow_sync_all_resources, r.ref_warning.as_deref());
    let apiserver = match &config {
        Ok(c) => Some(c.cluster_url.to_string().trim_end_matches('/').to_owned()),
        Err(_) => pc.spec.apiserver.clone(),
    };
    let run = match (validation.ok, config, r.access) {
        (true, Ok(config), Ok(access)) => Some(Run {
            access,
            config,
            wanted: Wanted {
                resources: r.resources,
                sync_all_custom_resources: pc.spec.sync_all_custom_resources.unwrap_or(false),
            },
            secret_names: r.secret_names,
        }),
        _ => None,
    };
    Checked { validation, apiserver, run }
}

/// What applying left: the synchro's state, or why it could not start.
struct Applied {
    snapshot: Option<pedia_synchro::Snapshot>,
    initial_failure: Option<String>,
}

/// Step 3: start, restart (credentials changed) or update the cluster's synchro. Without a valid
/// configuration a running synchro keeps running (upstream).
async fn apply(pc: &Arc<PediaCluster>, ctx: &Context, run: Option<Run>) -> Applied {
    let name = pc.name_any();
    // The map is not held across the awaits below (a synchro's start reads the store): reconciles
    // of one PediaCluster never overlap, so its entry can be taken out and put back.
    let mut running = ctx.synchros.lock().await.remove(&name);
    let mut initial_failure = None;
    if let Some(run) = run {
        if let Some(old) = running.take_if(|r| r.synchro.access != run.access) {
            tracing::info!(cluster = %name, "credentials changed; restarting its synchro");
            old.synchro.shutdown().await;
        }
        match &mut running {
            Some(r) => {
                r.synchro.set_wanted(run.wanted);
                r.secrets = run.secret_names;
            }
            None => {
                if run.access.insecure() {
                    warn_insecure(ctx, pc).await;
                }
                let wake = ctx.wake.clone();
                let me = ObjectRef::from_obj(pc.as_ref());
                let changed = Arc::new(move || {
                    let _ = wake.send(me.clone());
                });
                let options = pedia_synchro::Options {
                    page_size: ctx.settings.page_size,
                    streaming_lists: ctx.settings.streaming_lists,
                    metrics: ctx.settings.metrics.clone(),
                    writes: ctx.writes.clone(),
                };
                let started = ClusterSynchro::start(
                    &name,
                    run.access,
                    run.config,
                    ctx.storage.clone(),
                    options,
                    run.wanted,
                    changed,
                )
                .await;
                match started {
                    Ok(synchro) => {
                        tracing::info!(cluster = %name, "cluster synchro started");
                        running = Some(Running { synchro, secrets: run.secret_names });
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %name, error = %e, "cluster synchro could not be created");
                        initial_failure = Some(e.to_string());
                    }
                }
            }
        }
    }
    let snapshot = running.as_ref().map(|r| r.synchro.snapshot());
    if let Some(r) = running {
        ctx.synchros.lock().await.insert(name, r);
    }
    Applied { snapshot, initial_failure }
}

/// Step 4: write the status by server-side apply, only when it changed.
async fn write_status(pc: &PediaCluster, api: &Api<PediaCluster>, inputs: status::Inputs<'_>) -> Result<(), Error> {
    let new_status = status::build(inputs);
    if pc.status.as_ref() == Some(&new_status) {
        return Ok(());
    }
    let body = json!({
        "apiVersion": format!("{}/{}", api_types::cluster::GROUP, api_types::cluster::VERSION),
        "kind": "PediaCluster",
        "status": serde_json::to_value(&new_status)?,
    });
    api.patch_status(&pc.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(Error::kube("writing the status"))?;
    Ok(())
}

/// The Secrets of the operator's namespace that the credentials name, read now.
async fn read_secrets(
    ctx: &Context,
    names: &[String],
) -> Result<BTreeMap<String, Result<Option<SecretData>, String>>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let mut out = BTreeMap::new();
    for n in names {
        let read = match api.get_opt(n).await {
            Ok(s) => Ok(s.map(|s| s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())),
            Err(kube::Error::Api(s)) if s.code == 403 => Err(format!("forbidden: {}", s.message)),
            Err(e) => return Err(Error::Kube { context: "reading a credential Secret", source: e }),
        };
        out.insert(n.clone(), read);
    }
    Ok(out)
}

/// Deletion: stop the synchro, delete the cluster's rows, then remove the finalizer.
async fn delete(pc: &PediaCluster, api: &Api<PediaCluster>, ctx: &Context) -> Result<Action, Error> {
    let name = pc.name_any();
    if !pc.finalizers().iter().any(|f| f == cond::FINALIZER) {
        return Ok(Action::await_change());
    }
    if let Some(r) = ctx.synchros.lock().await.remove(&name) {
        r.synchro.shutdown().await;
    }
    ctx.exec.forget(&name);
    let rows = ctx
        .storage
        .clean_cluster(&name)
        .await
        .map_err(|source| Error::Storage { context: "deleting the cluster's rows", source })?;
    tracing::info!(cluster = %name, rows, "PediaCluster deleted; its rows are removed");
    let finalizers: Vec<&String> = pc.finalizers().iter().filter(|f| *f != cond::FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": pc.resource_version()}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::kube("removing the finalizer"))?;
    Ok(Action::await_change())
}

async fn warn_insecure(ctx: &Context, pc: &PediaCluster) {
    let event = Event {
        type_: EventType::Warning,
        reason: "InsecureConnection".into(),
        note: Some("no CA is given (caData or authenticationFrom.ca): the member's certificate is not verified".into()),
        action: "Connect".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &pc.object_ref(&())).await {
        tracing::warn!(cluster = %pc.name_any(), error = %e, "could not record the insecure-connection event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_follows_upstream() {
        assert!(owned(None, None, ""));
        assert!(owned(Some(""), Some(""), ""));
        assert!(!owned(Some("a"), None, ""), "another shard is named");
        assert!(owned(Some("a"), Some(""), ""), "still held here: release it");
        assert!(!owned(None, Some("b"), ""), "held by another instance");
        assert!(owned(Some("b"), None, "b"));
    }

    #[test]
    fn validation_names_the_problem() {
        let all = vec![ClusterGroupResources { group: "*".into(), resources: vec!["*".into()], ..Default::default() }];
        let v = validation_of(Err(&CredentialError::NoEndpoint), &all, false, None);
        assert_eq!((v.ok, v.reason), (false, cond::REASON_INVALID_CONFIG));
        assert_eq!(v.message, "invalid cluster config: Cluster APIServer Endpoint is required");
        let v = validation_of(Ok(()), &all, false, None);
        assert_eq!(v.reason, cond::REASON_INVALID_SYNC_RESOURCES);
        assert!(v.message.contains("--allow-sync-all-resources"));
        assert!(validation_of(Ok(()), &all, true, None).ok);
        let v = validation_of(Ok(()), &[], false, Some("Warning: sync resource ref is not found"));
        assert_eq!((v.ok, v.message.as_str()), (true, "Warning: sync resource ref is not found"));
    }

    #[test]
    fn a_missing_reference_warns_and_keeps_the_own_list() {
        let own =
            vec![ClusterGroupResources { group: "".into(), resources: vec!["pods".into()], ..Default::default() }];
        let more = vec![ClusterGroupResources {
            group: "apps".into(),
            resources: vec!["deployments".into()],
            ..Default::default()
        }];
        let (all, warn) = effective_resources(&own, Some(&more), Some("ref"));
        assert_eq!(all.len(), 2);
        assert!(warn.is_none());
        let (all, warn) = effective_resources(&own, None, Some("gone"));
        assert_eq!(all, own);
        assert!(warn.unwrap().starts_with("Warning: sync resource ref is not found"));
    }
}
