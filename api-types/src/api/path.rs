//! Parsing Kubernetes API paths into what they address.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Health(String),
    CoreVersions,
    Groups,
    Group(String),
    Resources { group: String, version: String },
    OpenApiV3Root,
    OpenApiV3 { group: String, version: String },
    OpenApiV2,
    Object(ObjectRoute),
    NotFound,
}

/// A resource path: a collection (no name) or one object, maybe a subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRoute {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses a path. `is_namespaced_resource(group, version, resource)` resolves the ambiguity of
/// `/api/v1/namespaces/<x>/<y>`: a namespaced resource `y` in namespace `x`, or subresource `y`
/// of namespace `x`.
pub fn parse(path: &str, is_namespaced_resource: &dyn Fn(&str, &str, &str) -> bool) -> Route {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        [h @ ("healthz" | "readyz" | "livez"), ..] => Route::Health((*h).to_owned()),
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group((*g).to_owned()),
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", "api", v] => Route::OpenApiV3 { group: String::new(), version: (*v).to_owned() },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3 { group: (*g).to_owned(), version: (*v).to_owned() },
        ["openapi", "v2"] => Route::OpenApiV2,
        ["api", v, rest @ ..] => resource_route("", v, rest, is_namespaced_resource),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest, is_namespaced_resource),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str], namespaced: &dyn Fn(&str, &str, &str) -> bool) -> Route {
    let obj = |namespace: Option<&str>, resource: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Object(ObjectRoute {
            group: group.to_owned(),
            version: version.to_owned(),
            namespace: namespace.map(str::to_owned),
            resource: resource.to_owned(),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        })
    };
    match rest {
        [] => Route::Resources { group: group.to_owned(), version: version.to_owned() },
        ["namespaces", ns, res, tail @ ..] if namespaced(group, version, res) => match tail {
            [] => obj(Some(ns), res, None, None),
            [name] => obj(Some(ns), res, Some(name), None),
            [name, sub] => obj(Some(ns), res, Some(name), Some(sub)),
            _ => Route::NotFound,
        },
        [res] => obj(None, res, None, None),
        [res, name] => obj(None, res, Some(name), None),
        [res, name, sub] => obj(None, res, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(_: &str, _: &str, r: &str) -> bool {
        matches!(r, "pods" | "configmaps" | "deployments" | "widgets")
    }

    fn object(p: &str) -> ObjectRoute {
        match parse(p, &ns) {
            Route::Object(o) => o,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let o = object("/api/v1/namespaces/default/pods/web-1/status");
        assert_eq!(
            (o.namespace.as_deref(), o.resource.as_str(), o.name.as_deref(), o.subresource.as_deref()),
            (Some("default"), "pods", Some("web-1"), Some("status"))
        );
        let o = object("/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (o.namespace, o.resource.as_str(), o.name.as_deref(), o.subresource.as_deref()),
            (None, "namespaces", Some("kube-system"), Some("status"))
        );
        let o = object("/apis/apps/v1/deployments");
        assert_eq!((o.group.as_str(), o.namespace, o.name), ("apps", None, None));
        let o = object("/api/v1/namespaces");
        assert_eq!((o.resource.as_str(), o.name), ("namespaces", None));
        let o = object("/api/v1/namespaces/default");
        assert_eq!((o.resource.as_str(), o.name.as_deref()), ("namespaces", Some("default")));
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/api", &ns), Route::CoreVersions);
        assert_eq!(parse("/apis/", &ns), Route::Groups);
        assert_eq!(parse("/apis/apps", &ns), Route::Group("apps".into()));
        assert_eq!(parse("/apis/apps/v1", &ns), Route::Resources { group: "apps".into(), version: "v1".into() });
        assert_eq!(parse("/readyz/ping", &ns), Route::Health("readyz".into()));
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1", &ns),
            Route::OpenApiV3 { group: "apps".into(), version: "v1".into() }
        );
        assert_eq!(parse("/nope", &ns), Route::NotFound);
    }
}
