//! Where a request path goes (pure): the search group's discovery, the Kubernetes API surface
//! under `resources[/clusters/<c>]`, collection resources, or the server's own endpoints.

use api_types::search::{GROUP, VERSION};

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/healthz`, `/readyz`, `/livez` (and their sub-checks).
    Health,
    /// `/version`.
    Version,
    /// `/api`: this server serves no core group of its own.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/clusterpedia.io`.
    SearchGroup,
    /// `/apis/clusterpedia.io/v1beta1`.
    SearchResources,
    /// `/openapi/v2`, `/openapi/v3[/...]` of the server itself.
    OpenApi,
    /// `.../resources[/clusters/<c>]<kube path>`: `kube_path` starts with `/` (or is empty).
    Kube {
        cluster: Option<String>,
        kube_path: String,
    },
    /// `.../collectionresources`.
    Collections,
    /// `.../collectionresources/<name>`.
    Collection(String),
    NotFound,
}

/// Parses a request path.
pub fn parse(path: &str) -> Target {
    let prefix = format!("/apis/{GROUP}/{VERSION}");
    if let Some(rest) = path.strip_prefix(&prefix) {
        return search(rest);
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["healthz" | "readyz" | "livez", ..] => Target::Health,
        ["version"] => Target::Version,
        ["api"] => Target::CoreVersions,
        ["apis"] => Target::Groups,
        ["apis", g] if *g == GROUP => Target::SearchGroup,
        ["openapi", ..] => Target::OpenApi,
        _ => Target::NotFound,
    }
}

/// Where the Kubernetes API of one cluster (or of all) is served.
pub fn resources_prefix(cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("/apis/{GROUP}/{VERSION}/resources/clusters/{c}"),
        None => format!("/apis/{GROUP}/{VERSION}/resources"),
    }
}

fn search(rest: &str) -> Target {
    if rest.is_empty() || rest == "/" {
        return Target::SearchResources;
    }
    if let Some(kube) = rest.strip_prefix("/resources") {
        if !(kube.is_empty() || kube.starts_with('/')) {
            return Target::NotFound;
        }
        return match kube.strip_prefix("/clusters") {
            // A cluster named in the path; `clusters`, `clusters/<c>` and `clusters/<c>/` alone
            // address nothing, as upstream.
            Some(c) if c.is_empty() || c.starts_with('/') => {
                let c = c.trim_start_matches('/');
                match c.split_once('/') {
                    Some((name, path)) if !name.is_empty() && !path.is_empty() => {
                        Target::Kube { cluster: Some(name.to_owned()), kube_path: format!("/{path}") }
                    }
                    _ => Target::NotFound,
                }
            }
            _ => Target::Kube { cluster: None, kube_path: kube.to_owned() },
        };
    }
    if let Some(c) = rest.strip_prefix("/collectionresources") {
        return match c.trim_end_matches('/') {
            "" => Target::Collections,
            name if name.starts_with('/') && !name[1..].contains('/') => Target::Collection(name[1..].to_owned()),
            _ => Target::NotFound,
        };
    }
    Target::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube(cluster: Option<&str>, path: &str) -> Target {
        Target::Kube { cluster: cluster.map(str::to_owned), kube_path: path.to_owned() }
    }

    #[test]
    fn search_paths() {
        let p = "/apis/clusterpedia.io/v1beta1";
        assert_eq!(parse(&format!("{p}/resources/api/v1/pods")), kube(None, "/api/v1/pods"));
        assert_eq!(parse(&format!("{p}/resources")), kube(None, ""));
        assert_eq!(parse(&format!("{p}/resources/version")), kube(None, "/version"));
        assert_eq!(
            parse(&format!("{p}/resources/clusters/m1/apis/apps/v1/namespaces/x/deployments/web")),
            kube(Some("m1"), "/apis/apps/v1/namespaces/x/deployments/web")
        );
        for nothing in
            ["/resources/clusters", "/resources/clusters/m1", "/resources/clusters/m1/", "/resourcesx", "/nope"]
        {
            assert_eq!(parse(&format!("{p}{nothing}")), Target::NotFound, "{nothing}");
        }
        assert_eq!(parse(p), Target::SearchResources);
        assert_eq!(parse(&format!("{p}/")), Target::SearchResources);
        assert_eq!(parse(&format!("{p}/collectionresources")), Target::Collections);
        assert_eq!(parse(&format!("{p}/collectionresources/any")), Target::Collection("any".into()));
        assert_eq!(parse(&format!("{p}/collectionresources/a/b")), Target::NotFound);
        for cluster in [None, Some("m1")] {
            let prefix = resources_prefix(cluster);
            assert_eq!(parse(&format!("{prefix}/api/v1/pods")), kube(cluster, "/api/v1/pods"), "{prefix}");
        }
    }

    #[test]
    fn server_paths() {
        assert_eq!(parse("/apis/clusterpedia.io"), Target::SearchGroup);
        assert_eq!(parse("/apis"), Target::Groups);
        assert_eq!(parse("/api"), Target::CoreVersions);
        assert_eq!(parse("/readyz/ping"), Target::Health);
        assert_eq!(parse("/openapi/v2"), Target::OpenApi);
        assert_eq!(parse("/apis/apps/v1"), Target::NotFound);
    }
}
