//! The resources kubesim serves: the built-in set plus whatever CustomResourceDefinitions register,
//! and the discovery documents built from them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::builtin::{self, ResourceInfo, Subresource};

/// Printer columns of a custom resource version (`additionalPrinterColumns`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub priority: i64,
    pub description: String,
    pub format: String,
}

/// Everything served, in discovery order.
#[derive(Debug, Clone)]
pub struct Registry {
    builtin: Vec<ResourceInfo>,
    /// CRD name -> the versions it serves.
    custom: BTreeMap<String, Vec<ResourceInfo>>,
    /// `(group, version, resource)` -> printer columns of custom resources.
    columns: BTreeMap<(String, String, String), Vec<PrinterColumn>>,
    /// CRD name -> the JSON schema of each version, for validation.
    schemas: BTreeMap<(String, String, String), Value>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self {
            builtin: builtin::resources(),
            custom: BTreeMap::new(),
            columns: BTreeMap::new(),
            schemas: BTreeMap::new(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.builtin.iter().chain(self.custom.values().flatten())
    }

    /// The resource served at `group/version/resource`.
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceInfo> {
        self.all().find(|r| r.group == group && r.version == version && r.resource == resource)
    }

    /// The resource of a kind in a group-version.
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.all().find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Any version of a group-resource (objects are stored once per group-resource).
    pub fn find_any_version(&self, group: &str, resource: &str) -> Option<&ResourceInfo> {
        self.all().find(|r| r.group == group && r.resource == resource)
    }

    /// Printer columns of a custom resource version, if it is one.
    pub fn printer_columns(&self, group: &str, version: &str, resource: &str) -> Option<&[PrinterColumn]> {
        self.columns.get(&(group.to_owned(), version.to_owned(), resource.to_owned())).map(Vec::as_slice)
    }

    /// The OpenAPI schema of a custom resource version.
    pub fn custom_schema(&self, group: &str, version: &str, resource: &str) -> Option<&Value> {
        self.schemas.get(&(group.to_owned(), version.to_owned(), resource.to_owned()))
    }

    pub fn is_custom(&self, group: &str, resource: &str) -> bool {
        self.custom.values().flatten().any(|r| r.group == group && r.resource == resource)
    }

    /// Registers (or re-registers) the served versions of a CRD object.
    pub fn register_crd(&mut self, crd: &Value) {
        let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str) else { return };
        self.unregister_crd(name);
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_owned();
        let names = &spec["names"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
        };
        let plural = names["plural"].as_str().unwrap_or_default().to_owned();
        let kind = names["kind"].as_str().unwrap_or_default().to_owned();
        let singular = names["singular"].as_str().map(str::to_owned).unwrap_or_else(|| kind.to_lowercase());
        let namespaced = spec["scope"].as_str() == Some("Namespaced");
        let mut infos = Vec::new();
        for v in spec["versions"].as_array().into_iter().flatten() {
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let version = v["name"].as_str().unwrap_or_default().to_owned();
            let mut subresources = Vec::new();
            let three = || vec!["get".to_owned(), "patch".to_owned(), "update".to_owned()];
            if v.pointer("/subresources/status").is_some() {
                subresources.push(Subresource {
                    name: "status".into(),
                    kind: kind.clone(),
                    group_version: None,
                    verbs: three(),
                });
            }
            if v.pointer("/subresources/scale").is_some() {
                subresources.push(Subresource {
                    name: "scale".into(),
                    kind: "Scale".into(),
                    group_version: Some(("autoscaling".into(), "v1".into())),
                    verbs: three(),
                });
            }
            let key = (group.clone(), version.clone(), plural.clone());
            let columns = v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| PrinterColumn {
                    name: c["name"].as_str().unwrap_or_default().to_owned(),
                    type_: c["type"].as_str().unwrap_or("string").to_owned(),
                    json_path: c["jsonPath"].as_str().unwrap_or_default().to_owned(),
                    priority: c["priority"].as_i64().unwrap_or(0),
                    description: c["description"].as_str().unwrap_or_default().to_owned(),
                    format: c["format"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            self.columns.insert(key.clone(), columns);
            if let Some(schema) = v.pointer("/schema/openAPIV3Schema") {
                self.schemas.insert(key, schema.clone());
            }
            infos.push(ResourceInfo {
                group: group.clone(),
                version,
                resource: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                namespaced,
                verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
                    .map(str::to_owned)
                    .to_vec(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                subresources,
            });
        }
        // Kubernetes orders a CRD's versions by version priority (v2 > v1 > v1beta1 ...).
        infos.sort_by_key(|r| std::cmp::Reverse(version_priority(&r.version)));
        self.custom.insert(name.to_owned(), infos);
    }

    /// Removes a CRD's resources.
    pub fn unregister_crd(&mut self, name: &str) {
        if let Some(old) = self.custom.remove(name) {
            for r in old {
                let key = (r.group, r.version, r.resource);
                self.columns.remove(&key);
                self.schemas.remove(&key);
            }
        }
    }

    /// Groups in discovery order with their versions, preferred first.
    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version.clone()),
                Some(_) => {}
                None => groups.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        groups
    }

    /// `GET /api`.
    pub fn core_versions(&self) -> Value {
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

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        self.group_list_with(&[])
    }

    fn groups_with(&self, aggregated: &[(String, String)]) -> Vec<(String, Vec<String>)> {
        let mut groups = self.groups();
        for (g, v) in aggregated {
            match groups.iter_mut().find(|(name, _)| name == g) {
                Some((_, versions)) if !versions.contains(v) => versions.push(v.clone()),
                Some(_) => {}
                None => groups.push((g.clone(), vec![v.clone()])),
            }
        }
        groups
    }

    /// `GET /apis`, including aggregated group-versions.
    pub fn group_list_with(&self, aggregated: &[(String, String)]) -> Value {
        let groups: Vec<Value> = self
            .groups_with(aggregated)
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, v)| Self::group_json(g, v))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`.
    pub fn group(&self, group: &str) -> Option<Value> {
        self.group_with(group, &[])
    }

    /// `GET /apis/<group>`, including aggregated group-versions.
    pub fn group_with(&self, group: &str, aggregated: &[(String, String)]) -> Option<Value> {
        let (g, versions) = self.groups_with(aggregated).into_iter().find(|(g, _)| g == group && !g.is_empty())?;
        let mut v = Self::group_json(&g, &versions);
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        Some(v)
    }

    /// `GET /api/v1` or `/apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let resources: Vec<&ResourceInfo> = self.all().filter(|r| r.group == group && r.version == version).collect();
        if resources.is_empty() {
            return None;
        }
        let mut list = Vec::new();
        for r in resources {
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
        let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}))
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first; others last.
fn version_priority(v: &str) -> (u8, u64, u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                    {"name": "v1alpha1", "served": false}
                ]}
        })
    }

    #[test]
    fn crds_register_and_unregister() {
        let mut r = Registry::new();
        r.register_crd(&crd());
        let w = r.find("example.com", "v1", "widgets").unwrap();
        assert!(w.namespaced && w.has_status() && w.short_names == ["wd"]);
        assert!(r.find("example.com", "v1alpha1", "widgets").is_none(), "unserved versions are not served");
        assert_eq!(r.printer_columns("example.com", "v1", "widgets").unwrap()[0].name, "Size");
        let g = r.group("example.com").unwrap();
        assert_eq!(g["preferredVersion"]["version"], "v1");
        assert_eq!(g["versions"][1]["version"], "v1beta1");
        r.unregister_crd("widgets.example.com");
        assert!(r.find("example.com", "v1", "widgets").is_none());
        assert!(r.group("example.com").is_none());
    }

    #[test]
    fn discovery_documents() {
        let r = Registry::new();
        let core = r.resource_list("", "v1").unwrap();
        assert_eq!(core["groupVersion"], "v1");
        let names: Vec<&str> =
            core["resources"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"pods") && names.contains(&"pods/status") && names.contains(&"pods/exec"));
        let groups = r.group_list();
        let autoscaling = groups["groups"].as_array().unwrap().iter().find(|g| g["name"] == "autoscaling").unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        assert!(r.resource_list("apps", "v9").is_none());
    }

    #[test]
    fn version_priorities() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2", "foo"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }
}
