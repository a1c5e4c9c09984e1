//! Profiles that went away: their PediaCluster is deleted (the synchro's finalizer removes its
//! rows first) with its kubeconfig Secret. After every (re)list, a sweep catches the profiles
//! deleted while pedia was not watching. Only what the importer created is deleted.

use std::sync::Arc;

use api_types::cluster::PediaCluster;
use api_types::multicluster::ClusterProfile;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;

use super::{Context, Error, build};

/// What the profile watch reports to the cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    /// `<namespace>/<name>` was deleted.
    Profile(String),
    /// A (re)list finished: the store holds every profile there is.
    Sweep,
}

/// The importer's PediaClusters whose profile (in scope) no longer exists (pure).
pub fn orphans<'a>(
    clusters: &'a [PediaCluster],
    scope: Option<&str>,
    exists: &dyn Fn(&str, &str) -> bool,
) -> Vec<&'a PediaCluster> {
    clusters
        .iter()
        .filter(|pc| pc.labels().get(build::MANAGED_BY).map(String::as_str) == Some(build::MANAGER))
        .filter(|pc| {
            let Some((ns, name)) = pc.annotations().get(build::PROFILE).and_then(|p| p.split_once('/')) else {
                return false;
            };
            scope.is_none_or(|s| s == ns) && !exists(ns, name)
        })
        .collect()
}

pub async fn run(
    ctx: Arc<Context>,
    profiles: Store<ClusterProfile>,
    scope: Option<String>,
    mut gone: mpsc::UnboundedReceiver<Gone>,
) {
    while let Some(g) = gone.recv().await {
        let result = match &g {
            Gone::Profile(key) => remove_for(&ctx, key).await,
            Gone::Sweep => sweep(&ctx, &profiles, scope.as_deref()).await,
        };
        if let Err(e) = result {
            tracing::warn!(what = ?g, error = %e, kind = e.metric_label(), "cleaning up after deleted ClusterProfiles failed; the next relist retries");
        }
    }
}

async fn remove_for(ctx: &Context, key: &str) -> Result<(), Error> {
    ctx.forget(key);
    let Some((ns, name)) = key.split_once('/') else { return Ok(()) };
    let cluster = build::cluster_name(&ctx.settings.prefix, ns, name);
    let api: Api<PediaCluster> = Api::all(ctx.client.clone());
    if let Some(pc) = api.get_opt(&cluster).await.map_err(Error::kube("reading the PediaCluster"))?
        && build::owned_by(&pc, key)
    {
        remove(&ctx.client, &ctx.settings.namespace, &pc, key).await?;
    }
    Ok(())
}

async fn sweep(ctx: &Context, profiles: &Store<ClusterProfile>, scope: Option<&str>) -> Result<(), Error> {
    let api: Api<PediaCluster> = Api::all(ctx.client.clone());
    let lp = ListParams::default().labels(&format!("{}={}", build::MANAGED_BY, build::MANAGER));
    let clusters = api.list(&lp).await.map_err(Error::kube("listing the imported PediaClusters"))?.items;
    let exists = |ns: &str, name: &str| profiles.get(&ObjectRef::new(name).within(ns)).is_some();
    for pc in orphans(&clusters, scope, &exists) {
        let key = pc.annotations().get(build::PROFILE).cloned().unwrap_or_default();
        ctx.forget(&key);
        remove(&ctx.client, &ctx.settings.namespace, pc, &key).await?;
    }
    Ok(())
}

async fn remove(client: &Client, namespace: &str, pc: &PediaCluster, key: &str) -> Result<(), Error> {
    let name = pc.name_any();
    tracing::info!(profile = %key, cluster = %name, "the ClusterProfile is gone: removing its PediaCluster and stored resources");
    // Already gone is fine: the watch and a sweep may both remove the same cluster.
    let gone = |r: Result<(), kube::Error>, context| match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        r => r.map_err(Error::kube(context)),
    };
    gone(
        Api::<PediaCluster>::all(client.clone()).delete(&name, &DeleteParams::default()).await.map(|_| ()),
        "deleting the PediaCluster",
    )?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if let Some(s) = secrets.get_opt(&name).await.map_err(Error::kube("reading the kubeconfig Secret"))?
        && s.labels().get(build::MANAGED_BY).map(String::as_str) == Some(build::MANAGER)
    {
        gone(secrets.delete(&name, &DeleteParams::default()).await.map(|_| ()), "deleting the kubeconfig Secret")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn pc(name: &str, labels: serde_json::Value, profile: Option<&str>) -> PediaCluster {
        let mut annotations = json!({});
        if let Some(p) = profile {
            annotations[build::PROFILE] = json!(p);
        }
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels, "annotations": annotations},
                                      "spec": {"syncResources": []}}))
        .unwrap()
    }

    #[test]
    fn only_the_importers_clusters_without_a_profile_are_orphans() {
        let ours = json!({build::MANAGED_BY: build::MANAGER});
        let clusters = vec![
            pc("a", ours.clone(), Some("fleet/a")),
            pc("b", ours.clone(), Some("fleet/b")),
            pc("c", ours.clone(), Some("other/c")),
            pc("d", json!({}), Some("fleet/d")),
            pc("e", ours, None),
        ];
        let exists = |_: &str, name: &str| name == "a";
        let names = |v: Vec<&PediaCluster>| v.iter().map(|p| p.name_any()).collect::<Vec<_>>();
        assert_eq!(names(orphans(&clusters, None, &exists)), ["b", "c"]);
        assert_eq!(names(orphans(&clusters, Some("fleet"), &exists)), ["b"]);
    }
}
