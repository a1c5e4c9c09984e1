//! Which credentials reach a member cluster, in Clusterpedia's priority: an inline kubeconfig,
//! then inline token / client certificate, then Secrets named by `authenticationFrom` (a
//! kubeconfig there wins over token / certificate). Resolving is pure; turning the result into a
//! client configuration is [`Access::client_config`].

use std::collections::BTreeMap;

use api_types::cluster::{PediaClusterSpec, SecretKeyRef};
use base64::Engine as _;
use serde_json::json;

/// The data of a Secret, by key.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// How to reach a member cluster. Compared to decide whether a running synchro must restart;
/// its `Debug` never shows secret material.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// A whole kubeconfig (its current context).
    Kubeconfig(Vec<u8>),
    /// An endpoint with a bearer token and/or a client certificate.
    Direct { server: String, ca: Option<Vec<u8>>, token: Option<Vec<u8>>, cert: Option<Vec<u8>>, key: Option<Vec<u8>> },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Kubeconfig(k) => write!(f, "Kubeconfig({} bytes)", k.len()),
            Access::Direct { server, ca, token, cert, .. } => write!(
                f,
                "Direct {{ server: {server:?}, ca: {}, token: {}, client certificate: {} }}",
                ca.is_some(),
                token.is_some(),
                cert.is_some()
            ),
        }
    }
}

/// Why a PediaCluster's credentials cannot be used. The texts are upstream's, so users and
/// alerts that match on them keep working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("Cluster APIServer Endpoint is required")]
    NoEndpoint,
    #[error("Cluster APIServer's Token or Cert is required")]
    NoCredentials,
    #[error("Cluster Authentication Error: token or cert is required")]
    NoSecretCredentials,
    #[error("Cluster Authentication Error: secret {namespace}/{name} is not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("Cluster Authentication Error: secret {name}'s {key} is empty")]
    EmptySecretKey { name: String, key: String },
    #[error("Cluster Authentication Error: reading secret {name}: {message}")]
    SecretRead { name: String, message: String },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
}

impl CredentialError {
    /// The `Validated` condition message upstream writes for this error.
    pub fn condition_message(&self) -> String {
        format!("invalid cluster config: {self}")
    }
}

fn non_empty(b: &Option<k8s_openapi::ByteString>) -> Option<Vec<u8>> {
    b.as_ref().map(|b| b.0.clone()).filter(|b| !b.is_empty())
}

/// Resolves a spec's credentials. `secret` answers a Secret of the operator's namespace by name
/// (`Ok(None)` when it does not exist).
pub fn resolve(
    spec: &PediaClusterSpec,
    namespace: &str,
    secret: &dyn Fn(&str) -> Result<Option<SecretData>, String>,
) -> Result<Access, CredentialError> {
    let kubeconfig = non_empty(&spec.kubeconfig);
    let token = non_empty(&spec.token_data);
    let (cert, key) = (non_empty(&spec.cert_data), non_empty(&spec.key_data));
    if let Some(from) = &spec.authentication_from
        && kubeconfig.is_none()
        && token.is_none()
        && (cert.is_none() || key.is_none())
    {
        let read = |r: &SecretKeyRef| -> Result<Vec<u8>, CredentialError> {
            let data = secret(&r.name)
                .map_err(|message| CredentialError::SecretRead { name: r.name.clone(), message })?
                .ok_or_else(|| CredentialError::SecretNotFound {
                    namespace: namespace.to_owned(),
                    name: r.name.clone(),
                })?;
            data.get(&r.key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| CredentialError::EmptySecretKey { name: r.name.clone(), key: r.key.clone() })
        };
        if let Some(k) = &from.kubeconfig {
            return Ok(Access::Kubeconfig(read(k)?));
        }
        let server = endpoint(spec)?;
        let token = from.token.as_ref().map(read).transpose()?;
        let (cert, key) = match (&from.cert, &from.key) {
            (Some(c), Some(k)) => (Some(read(c)?), Some(read(k)?)),
            _ => (None, None),
        };
        if token.is_none() && cert.is_none() {
            return Err(CredentialError::NoSecretCredentials);
        }
        let ca = from.ca.as_ref().map(read).transpose()?;
        return Ok(Access::Direct { server, ca, token, cert, key });
    }
    if let Some(k) = kubeconfig {
        return Ok(Access::Kubeconfig(k));
    }
    let server = endpoint(spec)?;
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (Some(c), Some(k)),
        _ => (None, None),
    };
    if token.is_none() && cert.is_none() {
        return Err(CredentialError::NoCredentials);
    }
    Ok(Access::Direct { server, ca: non_empty(&spec.ca_data), token, cert, key })
}

fn endpoint(spec: &PediaClusterSpec) -> Result<String, CredentialError> {
    spec.apiserver.clone().filter(|s| !s.trim().is_empty()).ok_or(CredentialError::NoEndpoint)
}

/// The Secrets a spec's `authenticationFrom` names (a change to one re-resolves the cluster).
pub fn secret_names(spec: &PediaClusterSpec) -> Vec<String> {
    let Some(from) = &spec.authentication_from else { return Vec::new() };
    let mut names: Vec<String> = [&from.kubeconfig, &from.ca, &from.cert, &from.key, &from.token]
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Access {
    /// Whether the server's certificate goes unverified (no CA given with a direct endpoint, as
    /// upstream); the controller warns about it with an Event.
    pub fn insecure(&self) -> bool {
        matches!(self, Access::Direct { ca: None, server, .. } if server.starts_with("https"))
    }

    /// The kubeconfig this access amounts to (direct credentials are written as one, so kube's
    /// own handling of PEM data, tokens and client certificates applies to both).
    pub fn kubeconfig(&self) -> Result<kube::config::Kubeconfig, CredentialError> {
        let bad = |e: &dyn std::fmt::Display| CredentialError::Kubeconfig(e.to_string());
        match self {
            Access::Kubeconfig(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|e| bad(&format!("not UTF-8: {e}")))?;
                kube::config::Kubeconfig::from_yaml(text).map_err(|e| bad(&e))
            }
            Access::Direct { server, ca, token, cert, key } => {
                let b64 = |b: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
                let mut cluster = json!({"server": server});
                match ca {
                    Some(ca) => cluster["certificate-authority-data"] = json!(b64(ca)),
                    None => cluster["insecure-skip-tls-verify"] = json!(true),
                }
                let mut user = json!({});
                if let Some(t) = token {
                    let t = std::str::from_utf8(t).map_err(|e| bad(&format!("the token is not UTF-8: {e}")))?;
                    user["token"] = json!(t.trim());
                }
                if let (Some(c), Some(k)) = (cert, key) {
                    user["client-certificate-data"] = json!(b64(c));
                    user["client-key-data"] = json!(b64(k));
                }
                serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Config", "current-context": "member",
                    "clusters": [{"name": "member", "cluster": cluster}],
                    "users": [{"name": "member", "user": user}],
                    "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
                }))
                .map_err(|e| bad(&e))
            }
        }
    }

    /// A client configuration for the member (tokens, token files, client certificates and exec
    /// plugins handled by kube).
    pub async fn client_config(&self) -> Result<kube::Config, CredentialError> {
        let kubeconfig = self.kubeconfig()?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| CredentialError::Kubeconfig(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use api_types::cluster::ClusterAuthentication;
    use k8s_openapi::ByteString;

    fn spec() -> PediaClusterSpec {
        PediaClusterSpec { apiserver: Some("https://member:6443".into()), ..Default::default() }
    }
    fn bytes(s: &str) -> Option<ByteString> {
        Some(ByteString(s.as_bytes().to_vec()))
    }
    fn key(name: &str, key: &str) -> Option<SecretKeyRef> {
        Some(SecretKeyRef { name: name.into(), key: key.into() })
    }
    fn no_secrets(_: &str) -> Result<Option<SecretData>, String> {
        Ok(None)
    }
    fn secrets(name: &str) -> Result<Option<SecretData>, String> {
        Ok((name == "member").then(|| {
            [("token", "secret-token"), ("ca", "CA"), ("kubeconfig", "apiVersion: v1"), ("empty", "")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
                .collect()
        }))
    }

    #[test]
    fn inline_kubeconfig_wins_over_everything() {
        let s = PediaClusterSpec {
            kubeconfig: bytes("apiVersion: v1"),
            token_data: bytes("t"),
            authentication_from: Some(ClusterAuthentication { token: key("member", "token"), ..Default::default() }),
            ..spec()
        };
        assert_eq!(resolve(&s, "ns", &secrets).unwrap(), Access::Kubeconfig(b"apiVersion: v1".to_vec()));
    }

    #[test]
    fn inline_token_wins_over_secrets() {
        let s = PediaClusterSpec {
            token_data: bytes("inline"),
            ca_data: bytes("CA"),
            authentication_from: Some(ClusterAuthentication { token: key("member", "token"), ..Default::default() }),
            ..spec()
        };
        let Access::Direct { token, ca, .. } = resolve(&s, "ns", &secrets).unwrap() else { panic!() };
        assert_eq!(token.unwrap(), b"inline");
        assert_eq!(ca.unwrap(), b"CA");
    }

    #[test]
    fn a_lone_certificate_is_not_enough_and_secrets_are_used() {
        let s = PediaClusterSpec {
            cert_data: bytes("CERT"),
            authentication_from: Some(ClusterAuthentication {
                token: key("member", "token"),
                ca: key("member", "ca"),
                ..Default::default()
            }),
            ..spec()
        };
        let Access::Direct { token, ca, cert, .. } = resolve(&s, "ns", &secrets).unwrap() else { panic!() };
        assert_eq!(token.unwrap(), b"secret-token");
        assert_eq!(ca.unwrap(), b"CA");
        assert!(cert.is_none());
    }

    #[test]
    fn secret_kubeconfig_wins_over_secret_token() {
        let s = PediaClusterSpec {
            authentication_from: Some(ClusterAuthentication {
                kubeconfig: key("member", "kubeconfig"),
                token: key("member", "token"),
                ..Default::default()
            }),
            apiserver: None,
            ..spec()
        };
        assert_eq!(resolve(&s, "ns", &secrets).unwrap(), Access::Kubeconfig(b"apiVersion: v1".to_vec()));
    }

    #[test]
    fn upstream_messages_name_what_is_missing() {
        let no_endpoint = PediaClusterSpec { apiserver: None, token_data: bytes("t"), ..Default::default() };
        assert_eq!(
            resolve(&no_endpoint, "ns", &no_secrets).unwrap_err().to_string(),
            "Cluster APIServer Endpoint is required"
        );
        assert_eq!(
            resolve(&spec(), "ns", &no_secrets).unwrap_err().condition_message(),
            "invalid cluster config: Cluster APIServer's Token or Cert is required"
        );
        let from = |a: ClusterAuthentication| PediaClusterSpec { authentication_from: Some(a), ..spec() };
        let missing = from(ClusterAuthentication { token: key("gone", "token"), ..Default::default() });
        assert_eq!(
            resolve(&missing, "clusterpedia-system", &secrets).unwrap_err().to_string(),
            "Cluster Authentication Error: secret clusterpedia-system/gone is not found"
        );
        let empty = from(ClusterAuthentication { token: key("member", "empty"), ..Default::default() });
        assert_eq!(
            resolve(&empty, "ns", &secrets).unwrap_err().to_string(),
            "Cluster Authentication Error: secret member's empty is empty"
        );
        let nothing = from(ClusterAuthentication { ca: key("member", "ca"), ..Default::default() });
        assert_eq!(resolve(&nothing, "ns", &secrets).unwrap_err(), CredentialError::NoSecretCredentials);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let a = Access::Direct {
            server: "https://x".into(),
            ca: None,
            token: Some(b"very-secret".to_vec()),
            cert: None,
            key: None,
        };
        let shown = format!("{a:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(a.insecure());
    }

    #[test]
    fn direct_access_becomes_a_kubeconfig() {
        let a = Access::Direct {
            server: "https://x:6443".into(),
            ca: Some(b"PEM".to_vec()),
            token: Some(b"tok\n".to_vec()),
            cert: None,
            key: None,
        };
        let k = a.kubeconfig().unwrap();
        let cluster = k.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://x:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("UEVN"));
        assert_eq!(secret_names(&PediaClusterSpec::default()), Vec::<String>::new());
    }
}
