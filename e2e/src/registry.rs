//! The resources kubesim serves: the built-in set plus whatever CustomResourceDefinitions register,
//! and the discovery documents built from them.

use std::collections::BTreeMap;

use api_types::Gvr;
use api_types::api::discovery;
use api_types::api::resources::{self, ResourceInfo, Subresource};
use api_types::table::{self, Column};
use serde_json::Value;

/// Everything served, in discovery order.
#[derive(Debug, Clone)]
pub struct Registry {
    builtin: Vec<ResourceInfo>,
    /// CRD name -> the versions it serves.
    custom: BTreeMap<String, Vec<ResourceInfo>>,
    /// `(group, version, resource)` -> printer columns of custom resources.
    columns: BTreeMap<Gvr, Vec<Column>>,
    /// CRD name -> the JSON schema of each version, for validation.
    schemas: BTreeMap<Gvr, Value>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self {
            builtin: resources::builtin(),
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
    pub fn printer_columns(&self, group: &str, version: &str, resource: &str) -> Option<&[Column]> {
        self.columns.get(&Gvr::new(group, version, resource)).map(Vec::as_slice)
    }

    /// The OpenAPI schema of a custom resource version.
    pub fn custom_schema(&self, group: &str, version: &str, resource: &str) -> Option<&Value> {
        self.schemas.get(&Gvr::new(group, version, resource))
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
            let key = Gvr::new(&group, &version, &plural);
            let columns = table::printer_columns(v);
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
        infos.sort_by_key(|r| std::cmp::Reverse(discovery::version_priority(&r.version)));
        self.custom.insert(name.to_owned(), infos);
    }

    /// Removes a CRD's resources.
    pub fn unregister_crd(&mut self, name: &str) {
        if let Some(old) = self.custom.remove(name) {
            for r in old {
                let key = Gvr { group: r.group, version: r.version, resource: r.resource };
                self.columns.remove(&key);
                self.schemas.remove(&key);
            }
        }
    }

    /// Every served resource version.
    pub fn served(&self) -> Vec<&ResourceInfo> {
        self.all().collect()
    }

    /// `GET /api`.
    pub fn core_versions(&self) -> Value {
        discovery::core_versions()
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        self.group_list_with(&[])
    }

    /// `GET /apis`, including aggregated group-versions.
    pub fn group_list_with(&self, aggregated: &[(String, String)]) -> Value {
        discovery::group_list(&discovery::with_extra(discovery::groups(&self.served()), aggregated))
    }

    /// `GET /apis/<group>`.
    pub fn group(&self, group: &str) -> Option<Value> {
        self.group_with(group, &[])
    }

    /// `GET /apis/<group>`, including aggregated group-versions.
    pub fn group_with(&self, group: &str, aggregated: &[(String, String)]) -> Option<Value> {
        discovery::group(&discovery::with_extra(discovery::groups(&self.served()), aggregated), group)
    }

    /// `GET /api/v1` or `/apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        discovery::resource_list(&self.served(), group, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
