//! Discovery documents built from a set of served resources: `/api`, `/apis`, `/apis/<g>`,
//! `/api/v1` and `/apis/<g>/<v>` (legacy discovery), and the aggregated discovery
//! (`apidiscovery.k8s.io/v2`) kubectl 1.30+ asks for first. Kubernetes' version priority orders
//! versions.

use serde_json::{Value, json};

use super::resources::ResourceInfo;

/// The media type of aggregated discovery responses; clients look for it in `Content-Type`.
pub const AGGREGATED_MEDIA_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery (v2).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first; others last.
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else { return (0, 0, 0) };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else { return (0, 0, 0) };
    let tail = &rest[digits.len()..];
    let minor = |p: &str| tail.strip_prefix(p).and_then(|n| n.parse::<u64>().ok());
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = minor("beta") {
        (2, major, n)
    } else if let Some(n) = minor("alpha") {
        (1, major, n)
    } else {
        (0, 0, 0)
    }
}

/// Sorts versions by priority, highest first (ties by name, as Kubernetes does).
pub fn sort_versions(versions: &mut [String]) {
    versions.sort_by(|a, b| version_priority(b).cmp(&version_priority(a)).then_with(|| a.cmp(b)));
}

/// Groups in the order their resources come, each with its versions in the order they come
/// (callers list the preferred version of a group first).
pub fn groups(resources: &[&ResourceInfo]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version.clone()),
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    groups
}

/// Adds group-versions served elsewhere (aggregated APIs) after the resources' own.
pub fn with_extra(mut groups: Vec<(String, Vec<String>)>, extra: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    for (g, v) in extra {
        match groups.iter_mut().find(|(name, _)| name == g) {
            Some((_, versions)) if !versions.contains(v) => versions.push(v.clone()),
            Some(_) => {}
            None => groups.push((g.clone(), vec![v.clone()])),
        }
    }
    groups
}

/// `GET /api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

/// `GET /apis` (the core group is left out, as it is served under `/api`).
pub fn group_list(groups: &[(String, Vec<String>)]) -> Value {
    let groups: Vec<Value> = groups.iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_json(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`.
pub fn group(groups: &[(String, Vec<String>)], name: &str) -> Option<Value> {
    let (g, versions) = groups.iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut v = group_json(g, versions);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

/// `GET /api/v1` or `/apis/<group>/<version>` (None when nothing is served there).
pub fn resource_list(resources: &[&ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let mut list = Vec::new();
    for r in resources.iter().filter(|r| r.group == group && r.version == version) {
        let mut entry = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for s in &r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.resource, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if let Some((g, v)) = &s.group_version {
                sub["group"] = json!(g);
                sub["version"] = json!(v);
            }
            list.push(sub);
        }
    }
    if list.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}))
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) of the core group
/// (`core = true`, for `/api`) or of every other group (for `/apis`).
pub fn aggregated(resources: &[&ResourceInfo], core: bool) -> Value {
    let items: Vec<Value> = groups(resources)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.group == g && &r.version == v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            let metadata = if g.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": g, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut entry = json!({
        "resource": r.resource,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        entry["subresources"] = r
            .subresources
            .iter()
            .map(|s| {
                let (g, v) = s.group_version.clone().unwrap_or_else(|| (r.group.clone(), r.version.clone()));
                json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": s.kind}, "verbs": s.verbs})
            })
            .collect();
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::super::resources;
    use super::*;

    #[test]
    fn legacy_documents() {
        let all = resources::builtin();
        let refs: Vec<&ResourceInfo> = all.iter().collect();
        let core = resource_list(&refs, "", "v1").unwrap();
        assert_eq!(core["groupVersion"], "v1");
        let names: Vec<&str> =
            core["resources"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"pods") && names.contains(&"pods/status") && names.contains(&"pods/exec"));
        let gs = groups(&refs);
        let list = group_list(&gs);
        let autoscaling = list["groups"].as_array().unwrap().iter().find(|g| g["name"] == "autoscaling").unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        assert!(list["groups"].as_array().unwrap().iter().all(|g| g["name"] != ""), "core is under /api");
        assert_eq!(group(&gs, "apps").unwrap()["kind"], "APIGroup");
        assert!(group(&gs, "nope").is_none());
        assert!(resource_list(&refs, "apps", "v9").is_none());
        let extra = with_extra(gs, &[("clusterpedia.io".into(), "v1beta1".into())]);
        assert!(group(&extra, "clusterpedia.io").is_some());
    }

    #[test]
    fn aggregated_documents() {
        let all = resources::builtin();
        let refs: Vec<&ResourceInfo> = all.iter().collect();
        let core = aggregated(&refs, true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap()
            .clone();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["responseKind"]["kind"], "Pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let groups = aggregated(&refs, false);
        let apps = groups["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == "apps").unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        let scale = deploy["subresources"].as_array().unwrap().iter().find(|s| s["subresource"] == "scale").unwrap();
        assert_eq!(scale["responseKind"]["group"], "autoscaling");
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }

    #[test]
    fn version_priorities() {
        let mut v: Vec<String> = ["v1alpha1", "v1", "v2beta1", "v1beta2", "v2", "foo"].map(String::from).to_vec();
        sort_versions(&mut v);
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }
}
