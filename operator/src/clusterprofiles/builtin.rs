//! The built-in providers, so the common case needs no plugin binary: `secretreader` (a token
//! in Secret `<pedia's namespace>/<clusterName>`, key `token`) and `kubeconfig-secretreader` (a
//! kubeconfig in Secret `<namespace>/<name>`, key `<key>`), as cluster-inventory-api's plugins.

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::Value;

use super::providers::Builtin;
use crate::exec_plugin::Credential;

/// The Secret a built-in provider reads (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// kubeconfig-secretreader's `context` (default: the kubeconfig's current one).
    pub context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinError {
    #[error("{provider}: the profile's {extension} extension has no {field:?}")]
    MissingConfig { provider: &'static str, extension: &'static str, field: &'static str },
    #[error("{provider}: secret {namespace}/{name} is not found")]
    SecretNotFound { provider: &'static str, namespace: String, name: String },
    #[error("{provider}: secret {namespace}/{name} has no {key:?} (or it is empty)")]
    EmptyKey { provider: &'static str, namespace: String, name: String, key: String },
    #[error("{provider}: reading secret {namespace}/{name}: {message}")]
    Read { provider: &'static str, namespace: String, name: String, message: String },
    #[error("kubeconfig-secretreader: the kubeconfig in secret {secret}: {message}")]
    Kubeconfig { secret: String, message: String },
}

fn label(b: Builtin) -> &'static str {
    match b {
        Builtin::SecretReader => super::providers::SECRETREADER,
        Builtin::KubeconfigSecretReader => super::providers::KUBECONFIG_SECRETREADER,
    }
}

/// Which Secret a built-in reads for a profile, from its exec extension config.
pub fn source(b: Builtin, config: &Value, namespace: &str) -> Result<SecretSource, BuiltinError> {
    let field = |f: &'static str| {
        config[f].as_str().filter(|s| !s.is_empty()).map(str::to_owned).ok_or(BuiltinError::MissingConfig {
            provider: label(b),
            extension: super::providers::EXEC_EXTENSION,
            field: f,
        })
    };
    Ok(match b {
        Builtin::SecretReader => SecretSource {
            namespace: namespace.to_owned(),
            name: field("clusterName")?,
            key: "token".into(),
            context: None,
        },
        Builtin::KubeconfigSecretReader => SecretSource {
            namespace: config["namespace"].as_str().filter(|s| !s.is_empty()).unwrap_or(namespace).to_owned(),
            name: field("name")?,
            key: field("key")?,
            context: config["context"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        },
    })
}

/// The credential in a kubeconfig's context (pure). As the upstream plugin: only inline tokens
/// and inline client certificates; exec users, file paths and basic auth are refused.
pub fn from_kubeconfig(bytes: &[u8], context: Option<&str>, secret: &str) -> Result<Credential, BuiltinError> {
    let bad = |message: String| BuiltinError::Kubeconfig { secret: secret.to_owned(), message };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let k: Value = serde_yaml::from_str(text).map_err(|e| bad(format!("not YAML: {e}")))?;
    let context_name = match context {
        Some(c) => c.to_owned(),
        None => k["current-context"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("no current-context".into()))?
            .to_owned(),
    };
    let named = |list: &str, name: &str| k[list].as_array().into_iter().flatten().find(|e| e["name"] == name).cloned();
    let ctx = named("contexts", &context_name).ok_or_else(|| bad(format!("no context {context_name:?}")))?;
    let user_name = ctx["context"]["user"].as_str().unwrap_or_default();
    let user = named("users", user_name).ok_or_else(|| bad(format!("no user {user_name:?}")))?;
    let user = &user["user"];
    for refused in ["exec", "auth-provider", "token-file", "client-certificate", "client-key", "username", "password"] {
        if !user[refused].is_null() {
            return Err(bad(format!("user {user_name:?} uses {refused}, which the secret reader does not support")));
        }
    }
    let decode = |k: &str| -> Result<Option<Vec<u8>>, BuiltinError> {
        user[k]
            .as_str()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| bad(format!("{k}: {e}"))))
            .transpose()
    };
    let token = user["token"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
    let (cert, key) = (decode("client-certificate-data")?, decode("client-key-data")?);
    if token.is_none() && (cert.is_none() || key.is_none()) {
        return Err(bad(format!("user {user_name:?} has neither a token nor a client certificate and key")));
    }
    Ok(Credential { token, cert, key, expires: None })
}

/// Reads the credential a built-in provider names.
pub async fn obtain(client: &kube::Client, b: Builtin, src: &SecretSource) -> Result<Credential, BuiltinError> {
    let provider = label(b);
    let secret = Api::<Secret>::namespaced(client.clone(), &src.namespace).get_opt(&src.name).await.map_err(|e| {
        BuiltinError::Read {
            provider,
            namespace: src.namespace.clone(),
            name: src.name.clone(),
            message: e.to_string(),
        }
    })?;
    let secret = secret.ok_or_else(|| BuiltinError::SecretNotFound {
        provider,
        namespace: src.namespace.clone(),
        name: src.name.clone(),
    })?;
    let value = secret.data.as_ref().and_then(|d| d.get(&src.key)).map(|b| b.0.clone()).filter(|v| !v.is_empty());
    let value = value.ok_or_else(|| BuiltinError::EmptyKey {
        provider,
        namespace: src.namespace.clone(),
        name: src.name.clone(),
        key: src.key.clone(),
    })?;
    match b {
        Builtin::SecretReader => Ok(Credential {
            token: Some(String::from_utf8_lossy(&value).trim().to_owned()),
            cert: None,
            key: None,
            expires: None,
        }),
        Builtin::KubeconfigSecretReader => {
            from_kubeconfig(&value, src.context.as_deref(), &format!("{}/{}", src.namespace, src.name))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_come_from_the_extension() {
        let s = source(Builtin::SecretReader, &json!({"clusterName": "spoke-a"}), "pedia-system").unwrap();
        assert_eq!((s.namespace.as_str(), s.name.as_str(), s.key.as_str()), ("pedia-system", "spoke-a", "token"));
        let k = source(
            Builtin::KubeconfigSecretReader,
            &json!({"name": "a-kubeconfig", "key": "value", "namespace": "fleet"}),
            "p",
        )
        .unwrap();
        assert_eq!((k.namespace.as_str(), k.name.as_str(), k.key.as_str()), ("fleet", "a-kubeconfig", "value"));
        let e = source(Builtin::KubeconfigSecretReader, &json!({"name": "x"}), "p").unwrap_err();
        assert!(e.to_string().contains("no \"key\""), "{e}");
        assert!(source(Builtin::SecretReader, &json!({}), "p").is_err());
    }

    #[test]
    fn kubeconfig_credentials() {
        let kubeconfig = |user: Value| {
            json!({"apiVersion": "v1", "kind": "Config", "current-context": "a",
                   "contexts": [{"name": "a", "context": {"cluster": "c", "user": "ua"}}, {"name": "b", "context": {"cluster": "c", "user": "ub"}}],
                   "users": [{"name": "ua", "user": user}, {"name": "ub", "user": {"token": "tb"}}]})
            .to_string()
        };
        let c = from_kubeconfig(kubeconfig(json!({"token": "ta"})).as_bytes(), None, "s").unwrap();
        assert_eq!(c.token.as_deref(), Some("ta"));
        let c = from_kubeconfig(kubeconfig(json!({"token": "ta"})).as_bytes(), Some("b"), "s").unwrap();
        assert_eq!(c.token.as_deref(), Some("tb"));
        let cert = json!({"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"});
        let c = from_kubeconfig(kubeconfig(cert).as_bytes(), None, "s").unwrap();
        assert_eq!((c.cert.unwrap(), c.key.unwrap()), (b"CERT".to_vec(), b"KEY".to_vec()));
        let e = from_kubeconfig(kubeconfig(json!({"exec": {"command": "x"}})).as_bytes(), None, "ns/s").unwrap_err();
        assert!(e.to_string().contains("uses exec"), "{e}");
        let e = from_kubeconfig(kubeconfig(json!({})).as_bytes(), None, "ns/s").unwrap_err();
        assert!(e.to_string().contains("neither a token"), "{e}");
        assert!(from_kubeconfig(b"{", None, "s").is_err());
        assert!(from_kubeconfig(kubeconfig(json!({"token": "t"})).as_bytes(), Some("zz"), "s").is_err());
    }
}
