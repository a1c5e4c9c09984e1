//! Reads what a member serves (legacy discovery: `/api`, `/apis`, each group-version's resource
//! list) and which groups its CRDs define, into [`Served`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;

use crate::negotiate::{Served, ServedGroup, ServedResource};
use api_types::Gvr;

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
/// The member's CRDs as last read whole, by name: `(resourceVersion, version entries)`, so a
/// rediscovery reads only the CRDs that changed.
#[derive(Debug, Default)]
pub struct CrdCache {
    by_name: BTreeMap<String, (String, Vec<(Gvr, serde_json::Value)>)>,
    /// Every CRD was read this time (a failure leaves the stored definitions as they are).
    complete: bool,
}

impl CrdCache {
    fn fresh(&self, name: &str, rv: &str) -> bool {
        !rv.is_empty() && self.by_name.get(name).is_some_and(|(cached, _)| cached == rv)
    }

    fn put(&mut self, name: &str, rv: String, definitions: Vec<(Gvr, serde_json::Value)>) {
        self.by_name.insert(name.to_owned(), (rv, definitions));
    }

    fn retain(&mut self, names: &std::collections::HashSet<String>) {
        self.by_name.retain(|n, _| names.contains(n));
    }

    fn definitions(&self) -> BTreeMap<Gvr, serde_json::Value> {
        self.by_name.values().flat_map(|(_, defs)| defs.iter().cloned()).collect()
    }
}

/// The member's discovery; `cache` keeps the CRDs read whole between calls.
pub async fn served(client: &Client, cache: &mut CrdCache) -> Result<Served, kube::Error> {
    cache.complete = true;
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
        match crds.list_metadata(&ListParams::default()).await {
            Ok(list) => {
                let mut seen = std::collections::HashSet::new();
                for crd in list.items {
                    let Some(name) = crd.metadata.name else { continue };
                    // `<plural>.<group>`: the group is what follows the first dot.
                    if let Some((_, group)) = name.split_once('.') {
                        served.crd_groups.insert(group.to_owned());
                    }
                    let rv = crd.metadata.resource_version.unwrap_or_default();
                    if !cache.fresh(&name, &rv) {
                        // Whole objects only for CRDs that changed: their version entries carry
                        // the printer columns and schemas the search apiserver shows.
                        match crds.get(&name).await.map(|o| serde_json::to_value(&o)) {
                            Ok(Ok(value)) => cache.put(&name, rv, crate::negotiate::crd_definitions(&value)),
                            Ok(Err(e)) => {
                                tracing::warn!(crd = %name, error = %e, "member discovery: a CRD left out");
                                cache.complete = false;
                            }
                            Err(e) => {
                                tracing::warn!(crd = %name, error = %e, "member discovery: reading a CRD failed");
                                cache.complete = false;
                            }
                        }
                    }
                    seen.insert(name);
                }
                cache.retain(&seen);
            }
            Err(e) => {
                tracing::warn!(error = %e, "member discovery: listing CRDs failed; syncAllCustomResources sees none");
                cache.complete = false;
            }
        }
    }
    served.definitions = cache.definitions();
    served.definitions_complete = cache.complete;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_cache_rereads_only_what_changed_and_forgets_what_went() {
        let mut cache = CrdCache::default();
        let def = |v: &str| vec![(Gvr::new("example.com", v, "widgets"), serde_json::json!({"name": v}))];
        assert!(!cache.fresh("widgets.example.com", "1"), "never read");
        cache.put("widgets.example.com", "1".into(), def("v1"));
        assert!(cache.fresh("widgets.example.com", "1"));
        assert!(!cache.fresh("widgets.example.com", "2"), "changed since");
        assert!(!cache.fresh("widgets.example.com", ""), "no resourceVersion: read again");
        cache.put("gadgets.example.com", "5".into(), def("v2"));
        assert_eq!(cache.definitions().len(), 2);
        cache.retain(&["gadgets.example.com".to_owned()].into());
        let left: Vec<String> = cache.definitions().keys().map(ToString::to_string).collect();
        assert_eq!(left, ["example.com/v2/widgets"]);
    }
}
