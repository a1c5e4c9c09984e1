//! `pedia kubeconfig`: kubectl entries for the search API, like upstream's gen-clusterconfigs
//! script: a cluster and context `pedia` (every cluster at once) and one per PediaCluster, on the
//! aggregated path through the host (`<host>/apis/clusterpedia.io/v1beta1/resources`) or on
//! pedia's own address.

use serde_json::{Value, json};

/// How kubectl reaches the search API.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `https://HOST:PORT` of the host (aggregated path) or of pedia itself (direct).
    pub server: String,
    /// The cluster fields besides `server`: `certificate-authority-data`, or
    /// `insecure-skip-tls-verify`.
    pub tls: serde_json::Map<String, Value>,
    /// The user entry's name and fields (token, client certificate, exec ...).
    pub user: (String, Value),
}

/// The kubeconfig (pure): clusters and contexts `pedia` and `<name>` per cluster, the current
/// context `pedia`.
pub fn build(target: &Target, clusters: &[String]) -> Value {
    let base = format!("{}/apis/clusterpedia.io/v1beta1/resources", target.server.trim_end_matches('/'));
    let entry = |name: &str, server: String| {
        let mut cluster = target.tls.clone();
        cluster.insert("server".into(), json!(server));
        json!({"name": name, "cluster": cluster})
    };
    let context = |name: &str| json!({"name": name, "context": {"cluster": name, "user": target.user.0}});
    let mut cluster_entries = vec![entry("pedia", base.clone())];
    let mut contexts = vec![context("pedia")];
    for c in clusters {
        cluster_entries.push(entry(c, format!("{base}/clusters/{c}")));
        contexts.push(context(c));
    }
    json!({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": cluster_entries, "contexts": contexts,
        "users": [{"name": target.user.0, "user": target.user.1}],
        "current-context": "pedia",
    })
}

/// The target of a host kubeconfig's current (or named) context: its server, TLS settings and
/// user, as the aggregated path reuses them.
pub fn from_host(kubeconfig: &Value, context: Option<&str>) -> Result<Target, String> {
    let ctx_name = context
        .map(str::to_owned)
        .or_else(|| kubeconfig["current-context"].as_str().map(str::to_owned))
        .ok_or("the kubeconfig has no current context (give --context)")?;
    let find = |list: &str, name: &str| -> Option<Value> {
        kubeconfig[list].as_array()?.iter().find(|e| e["name"] == name).cloned()
    };
    let ctx = find("contexts", &ctx_name).ok_or_else(|| format!("context {ctx_name:?} is not in the kubeconfig"))?;
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or_default();
    let user_name = ctx["context"]["user"].as_str().unwrap_or_default();
    let cluster =
        find("clusters", cluster_name).ok_or_else(|| format!("cluster {cluster_name:?} is not in the kubeconfig"))?;
    let mut tls = cluster["cluster"].as_object().cloned().unwrap_or_default();
    let server = tls.remove("server").and_then(|s| s.as_str().map(str::to_owned)).ok_or("the cluster has no server")?;
    tls.retain(|k, _| {
        matches!(
            k.as_str(),
            "certificate-authority-data" | "certificate-authority" | "insecure-skip-tls-verify" | "tls-server-name"
        )
    });
    let user = find("users", user_name).map(|u| u["user"].clone()).unwrap_or(json!({}));
    Ok(Target { server, tls, user: (user_name.to_owned(), user) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Value {
        json!({"apiVersion": "v1", "kind": "Config", "current-context": "host",
               "clusters": [{"name": "host", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E=", "proxy-url": "x"}}],
               "contexts": [{"name": "host", "context": {"cluster": "host", "user": "admin"}}],
               "users": [{"name": "admin", "user": {"token": "t"}}]})
    }

    #[test]
    fn entries_for_every_cluster_on_the_host_path() {
        let target = from_host(&host(), None).unwrap();
        assert_eq!(target.server, "https://127.0.0.1:6443");
        assert!(!target.tls.contains_key("proxy-url"), "only TLS settings are kept");
        let kc = build(&target, &["m1".into(), "m2".into()]);
        assert_eq!(
            kc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443/apis/clusterpedia.io/v1beta1/resources"
        );
        assert_eq!(
            kc["clusters"][2]["cluster"]["server"],
            "https://127.0.0.1:6443/apis/clusterpedia.io/v1beta1/resources/clusters/m2"
        );
        assert_eq!(kc["clusters"][1]["cluster"]["certificate-authority-data"], "Q0E=");
        assert_eq!(kc["contexts"][1], json!({"name": "m1", "context": {"cluster": "m1", "user": "admin"}}));
        assert_eq!(kc["users"][0]["user"]["token"], "t");
        assert_eq!(kc["current-context"], "pedia");
    }

    #[test]
    fn missing_contexts_are_named() {
        assert!(from_host(&host(), Some("nope")).unwrap_err().contains("nope"));
        let mut no_current = host();
        no_current.as_object_mut().unwrap().remove("current-context");
        assert!(from_host(&no_current, None).unwrap_err().contains("--context"));
    }
}
