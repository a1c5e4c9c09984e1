//! Collection resources: the resource types a collection query covers.

use super::*;

/// One resource type a collection query covers: a group, optionally a version and a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// `None` = every group (`*`).
    pub group: Option<String>,
    pub version: Option<String>,
    pub resource: Option<String>,
}

/// The built-in collection resources, as Clusterpedia serves them.
pub fn builtin_collection(name: &str) -> Option<Vec<ResourceType>> {
    let rt = |g: &str, r: &str| ResourceType { group: Some(g.to_owned()), version: None, resource: Some(r.to_owned()) };
    match name {
        "any" => Some(Vec::new()),
        "workloads" => Some(vec![rt("apps", "deployments"), rt("apps", "daemonsets"), rt("apps", "statefulsets")]),
        "kuberesources" => Some(
            [
                "",
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "apiregistration.k8s.io",
                "apps",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "autoscaling",
                "batch",
                "certificates.k8s.io",
                "coordination.k8s.io",
                "discovery.k8s.io",
                "events.k8s.io",
                "flowcontrol.apiserver.k8s.io",
                "networking.k8s.io",
                "node.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "scheduling.k8s.io",
                "storage.k8s.io",
            ]
            .iter()
            .map(|g| ResourceType { group: Some((*g).to_owned()), version: None, resource: None })
            .collect(),
        ),
        _ => None,
    }
}

/// The `groups` and `resources` parameters of the `any` collection: `group` or `group/version`
/// (`""` or `/` is core, `*` everything), and `group/resource` or `group/version/resource`
/// (`/pods` and `//pods` are core). One of them is required.
pub fn parse_resource_types(groups: &[String], resources: &[String]) -> Result<Vec<ResourceType>, QueryError> {
    if groups.is_empty() && resources.is_empty() {
        return Err(QueryError::Invalid {
            param: "groups",
            value: String::new(),
            reason: "url query - `groups` or `resources` is required".into(),
        });
    }
    let mut out = Vec::new();
    for g in groups {
        let item = g.trim();
        let t = match item.split('/').collect::<Vec<_>>().as_slice() {
            ["*"] => ResourceType { group: None, version: None, resource: None },
            [group] => ResourceType { group: Some((*group).to_owned()), version: None, resource: None },
            [group, version] => ResourceType {
                group: Some((*group).to_owned()),
                version: (!version.is_empty()).then(|| (*version).to_owned()),
                resource: None,
            },
            _ => {
                return Err(QueryError::Invalid {
                    param: "groups",
                    value: item.to_owned(),
                    reason: "expected group or group/version".into(),
                });
            }
        };
        out.push(t);
    }
    for r in resources {
        let item = r.trim();
        let parts: Vec<&str> = item.split('/').collect();
        let (group, version, resource) = match parts.as_slice() {
            [g, r] => (*g, None, *r),
            [g, v, r] => (*g, (!v.is_empty()).then_some(*v), *r),
            _ => {
                return Err(QueryError::Invalid {
                    param: "resources",
                    value: item.to_owned(),
                    reason: "expected group/resource or group/version/resource".into(),
                });
            }
        };
        if resource.is_empty() {
            return Err(QueryError::Invalid {
                param: "resources",
                value: item.to_owned(),
                reason: "the resource is empty".into(),
            });
        }
        out.push(ResourceType {
            group: Some(group.to_owned()),
            version: version.map(str::to_owned),
            resource: Some(resource.to_owned()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod collection_tests {
    use super::*;

    #[test]
    fn resource_types() {
        let t = parse_resource_types(
            &["apps".into(), "batch/v1".into(), "/".into()],
            &["/pods".into(), "apps/v1/deployments".into()],
        )
        .unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(t[1], ResourceType { group: Some("batch".into()), version: Some("v1".into()), resource: None });
        assert_eq!(t[2], ResourceType { group: Some(String::new()), version: None, resource: None });
        assert_eq!(t[3], ResourceType { group: Some(String::new()), version: None, resource: Some("pods".into()) });
        assert!(parse_resource_types(&[], &[]).unwrap_err().to_string().contains("required"));
        assert!(parse_resource_types(&[], &["apps/".into()]).unwrap_err().to_string().contains("empty"));
        assert!(parse_resource_types(&["a/b/c".into()], &[]).is_err());
        assert_eq!(parse_resource_types(&["*".into()], &[]).unwrap()[0].group, None);
        assert_eq!(builtin_collection("workloads").unwrap().len(), 3);
        assert!(builtin_collection("nope").is_none());
    }
}
