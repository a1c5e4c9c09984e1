//! ClusterProfile reconciler: select the access provider -> obtain the credential (built-in
//! reader or exec plugin, cached until it nears expiry, re-run when the member answers 401) ->
//! write the kubeconfig Secret -> create or patch the PediaCluster.

use std::sync::Arc;
use std::time::Duration;

use api_types::cluster::PediaCluster;
use api_types::multicluster::ClusterProfile;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::build::{self, Inputs};
use super::providers::{self, Method, Selection};
use super::{Context, Error, builtin, key};
use crate::exec_plugin::Credential;

/// How often a profile is looked at again without a change (built-in readers' Secrets outside
/// pedia's namespace are not watched).
const RESYNC: Duration = Duration::from_secs(300);
/// A built-in provider whose Secret is missing or unusable looks again after this (a change to
/// a Secret in pedia's namespace looks at once).
const BUILTIN_RETRY: Duration = Duration::from_secs(30);

pub async fn reconcile(profile: Arc<ClusterProfile>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key(&profile);
    let s = &ctx.settings;
    let name = build::cluster_name(&s.prefix, &profile.namespace().unwrap_or_default(), &profile.name_any());
    let clusters: Api<PediaCluster> = Api::all(ctx.client.clone());
    let existing = clusters.get_opt(&name).await.map_err(Error::kube("reading the PediaCluster"))?;
    if let Some(pc) = &existing
        && !build::owned_by(pc, &key)
    {
        let note = format!("PediaCluster {name} exists and was not created for this profile; pedia leaves it alone");
        ctx.warn(&profile, "NameTaken", note).await;
        return Ok(Action::requeue(RESYNC));
    }
    let healthy = build::healthy(&profile);
    if s.healthy_only && !healthy && existing.is_none() {
        tracing::info!(profile = %key, "not imported yet: the cluster manager does not report it healthy (ControlPlaneHealthy)");
        return Ok(Action::requeue(RESYNC));
    }
    let status = profile.status.clone().unwrap_or_default();
    let selection = match providers::select(&s.providers, &status) {
        Ok(sel) => sel,
        Err(e) => {
            // Pure: nothing to retry until the profile changes (which runs this again).
            ctx.warn(&profile, "NoAccessProvider", e.to_string()).await;
            return Ok(Action::requeue(RESYNC));
        }
    };
    // Only plugins back off: they are processes; a built-in's Secret read is one GET.
    let version = profile.resource_version().unwrap_or_default();
    let plugin = matches!(selection.method, Method::Exec(_));
    if plugin && let Some(wait) = ctx.backoff.waiting(&key, &version) {
        return Ok(Action::requeue(wait));
    }
    let (credential, refresh) = match credential(&ctx, &key, &selection, existing.as_ref()).await {
        Ok(c) => c,
        Err(message) => {
            let wait = if plugin { ctx.backoff.failed(&key, &version) } else { BUILTIN_RETRY };
            ctx.warn(&profile, "CredentialFailed", format!("{message}; trying again in {} s", wait.as_secs())).await;
            return Ok(Action::requeue(wait));
        }
    };
    ctx.backoff.succeeded(&key);
    let owner = existing.as_ref().and_then(|pc| pc.controller_owner_ref(&()));
    if !write_secret(&ctx, &profile, &name, &selection, &credential, owner).await? {
        return Ok(Action::requeue(RESYNC));
    }
    let desired = build::pedia_cluster(
        &profile,
        healthy,
        &Inputs {
            prefix: &s.prefix,
            provider: &selection.provider,
            server: &selection.cluster.server,
            default_sync_resources: s.default_sync_resources.as_deref(),
            builtin_sync_resources: &ctx.builtin_sync_resources,
        },
    );
    match &existing {
        None => {
            let pc: PediaCluster =
                serde_json::from_value(desired).map_err(|source| Error::Json { what: "the PediaCluster", source })?;
            let created =
                clusters.create(&PostParams::default(), &pc).await.map_err(Error::kube("creating the PediaCluster"))?;
            tracing::info!(profile = %key, cluster = %name, provider = %selection.provider, "imported");
            // Now that the PediaCluster has a uid, it owns its Secret.
            write_secret(&ctx, &profile, &name, &selection, &credential, created.controller_owner_ref(&())).await?;
        }
        Some(pc) => {
            if let Some(patch) = build::patch(pc, &desired) {
                clusters
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(Error::kube("updating the PediaCluster"))?;
                tracing::info!(profile = %key, cluster = %name, "updated from its profile");
            }
        }
    }
    Ok(Action::requeue(refresh.map_or(RESYNC, |r| r.min(RESYNC))))
}

/// The credential, and when to look for a new one. Errors are messages for the profile's event.
async fn credential(
    ctx: &Context,
    key: &str,
    sel: &Selection,
    existing: Option<&PediaCluster>,
) -> Result<(Credential, Option<Duration>), String> {
    match &sel.method {
        Method::Builtin(b) => {
            let src = builtin::source(*b, &sel.config, &ctx.settings.namespace).map_err(|e| e.to_string())?;
            let c = builtin::obtain(&ctx.client, *b, &src).await.map_err(|e| e.to_string())?;
            Ok((c, None))
        }
        Method::Exec(plan) => {
            let refused = existing.is_some_and(crate::clusters::status::credentials_refused);
            ctx.exec.credential(key, plan, refused, ctx.settings.exec_timeout).await.map_err(|e| e.to_string())
        }
    }
}

/// Writes the kubeconfig Secret when it differs; `false` (with an event) when a Secret of that
/// name exists that pedia did not create.
async fn write_secret(
    ctx: &Context,
    profile: &ClusterProfile,
    name: &str,
    sel: &Selection,
    credential: &Credential,
    owner: Option<OwnerReference>,
) -> Result<bool, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let kubeconfig = serde_json::to_vec(&build::kubeconfig(&sel.cluster, credential))
        .map_err(|source| Error::Json { what: "the kubeconfig", source })?;
    let data = json!({build::KUBECONFIG_KEY: ByteString(kubeconfig.clone())});
    let owners = json!(owner.into_iter().collect::<Vec<_>>());
    match api.get_opt(name).await.map_err(Error::kube("reading the kubeconfig Secret"))? {
        None => {
            let secret = json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": ctx.settings.namespace,
                             "labels": {build::MANAGED_BY: build::MANAGER},
                             "annotations": {build::PROFILE: key(profile)},
                             "ownerReferences": owners},
                "type": "Opaque", "data": data,
            });
            let secret: Secret =
                serde_json::from_value(secret).map_err(|source| Error::Json { what: "the Secret", source })?;
            api.create(&PostParams::default(), &secret).await.map_err(Error::kube("creating the kubeconfig Secret"))?;
        }
        Some(s) if s.labels().get(build::MANAGED_BY).map(String::as_str) != Some(build::MANAGER) => {
            let note = format!(
                "Secret {}/{name} exists and was not created by pedia; pedia will not overwrite it",
                ctx.settings.namespace
            );
            ctx.warn(profile, "SecretTaken", note).await;
            return Ok(false);
        }
        Some(s) => {
            let same = s.data.as_ref().and_then(|d| d.get(build::KUBECONFIG_KEY)).is_some_and(|v| v.0 == kubeconfig);
            let owned = owners.as_array().is_none_or(|o| o.is_empty()) || s.owner_references().len() == 1;
            if !(same && owned) {
                let mut patch = json!({"data": data});
                if !owners.as_array().is_none_or(|o| o.is_empty()) {
                    patch["metadata"] = json!({"ownerReferences": owners});
                }
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(Error::kube("updating the kubeconfig Secret"))?;
                if !same {
                    tracing::info!(profile = %key(profile), cluster = %name, "credential renewed");
                }
            }
        }
    }
    Ok(true)
}
