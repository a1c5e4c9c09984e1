//! Reads what a member serves (legacy discovery: `/api`, `/apis`, each group-version's resource
//! list) and which groups its CRDs define, into [`Served`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;

use crate::negotiate::{Served, ServedGroup, ServedResource};

fn resources(list: APIResourceList) -> Vec<ServedResource> {
    list.resources
        .into_iter()
        .map(|r| ServedResource {
            plural: r.name,
            singular: r.singular_name,
            kind: r.kind,
            namespaced: r.namespaced,
            verbs: r.verbs,
        })
        .collect()
}

/// The member's discovery. A group-version whose resource list fails (an aggregated API that is
/// down) is left out with a log line rather than failing the whole discovery.
pub async fn served(client: &Client) -> Result<Served, kube::Error> {
    let mut groups = Vec::new();
    let core = client.list_core_api_versions().await?;
    let mut core_group = ServedGroup { name: String::new(), versions: core.versions.clone(), ..Default::default() };
    for v in &core.versions {
        core_group.resources.insert(v.clone(), resources(client.list_core_api_resources(v).await?));
    }
    groups.push(core_group);
    let mut failed = std::collections::BTreeSet::new();
    for g in client.list_api_groups().await?.groups {
        let preferred = g.preferred_version.as_ref().map(|p| p.version.clone());
        let mut versions: Vec<String> = preferred.iter().cloned().collect();
        versions.extend(g.versions.iter().map(|v| v.version.clone()).filter(|v| Some(v) != preferred.as_ref()));
        let mut by_version = BTreeMap::new();
        for gv in &g.versions {
            match client.list_api_group_resources(&gv.group_version).await {
                Ok(list) => {
                    by_version.insert(gv.version.clone(), resources(list));
                }
                Err(e) => {
                    tracing::warn!(group_version = %gv.group_version, error = %e, "member discovery: group-version left out");
                    failed.insert(g.name.clone());
                }
            }
        }
        versions.retain(|v| by_version.contains_key(v));
        groups.push(ServedGroup { name: g.name, versions, resources: by_version });
    }
    let mut served = Served { groups, failed_groups: failed, ..Default::default() };
    let serves_crds =
        served.groups.iter().any(|g| g.name == "apiextensions.k8s.io" && g.versions.iter().any(|v| v == "v1"));
    if serves_crds {
        let ar = ApiResource {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
        };
        let crds: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        // Whole objects: the version entries carry the printer columns and schemas the search
        // apiserver shows. Paged, so a member with many large CRDs is read in pieces.
        let mut params = ListParams::default().limit(100);
        loop {
            match crds.list(&params).await {
                Ok(list) => {
                    for crd in &list.items {
                        // `<plural>.<group>`: the group is what follows the first dot.
                        if let Some((_, group)) = crd.metadata.name.as_deref().and_then(|n| n.split_once('.')) {
                            served.crd_groups.insert(group.to_owned());
                        }
                        match serde_json::to_value(crd) {
                            Ok(value) => served.definitions.extend(crate::negotiate::crd_definitions(&value)),
                            Err(e) => {
                                tracing::warn!(crd = ?crd.metadata.name, error = %e, "member discovery: a CRD left out")
                            }
                        }
                    }
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(token) => params = params.continue_token(&token),
                        None => break,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "member discovery: listing CRDs failed; syncAllCustomResources sees none");
                    break;
                }
            }
        }
    }
    Ok(served)
}

/// Calls `changed` whenever a CRD or an APIService of the member is added, changed or removed
/// (after the first list), until `stop` changes: the member's APIs may have changed.
pub async fn watch_apis(
    client: Client,
    changed: std::sync::Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use futures_util::StreamExt;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::watcher::{self, Event};
    let resource = |group: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    };
    let streams = [
        resource("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions"),
        resource("apiregistration.k8s.io", "APIService", "apiservices"),
    ]
    .map(|ar| {
        let api: Api<kube::core::PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &ar);
        let mut listed = false;
        watcher::watcher(api, watcher::Config::default()).default_backoff().filter_map(move |e| {
            let change = match e {
                Ok(Event::InitDone) => std::mem::replace(&mut listed, true),
                Ok(Event::Apply(_) | Event::Delete(_)) => true,
                _ => false,
            };
            std::future::ready(change.then_some(()))
        })
    });
    let mut changes = std::pin::pin!(futures_util::stream::select_all(streams.map(Box::pin)));
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            next = changes.next() => match next {
                Some(()) => changed.notify_one(),
                None => return,
            },
        }
    }
}
