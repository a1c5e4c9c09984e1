//! Which access provider of a ClusterProfile pedia uses and what running it amounts to, as
//! cluster-inventory-api's `access.Config` decides it (pure): the consumer's provider file lists
//! providers in order of preference, the first one the profile offers wins.

use std::collections::BTreeMap;

use api_types::multicluster::{AccessProvider, ClusterProfileStatus, KubeconfigCluster};
use serde::Deserialize;
use serde_json::{Value, json};

pub use crate::exec_plugin::{EXEC_EXTENSION, ExecPlan};

/// Extra plugin arguments a profile may add (when the provider's policy allows).
pub const ARGS_EXTENSION: &str = "clusterprofiles.multicluster.x-k8s.io/exec/additional-args";
/// Extra plugin environment variables a profile may add (when the provider's policy allows).
pub const ENVS_EXTENSION: &str = "clusterprofiles.multicluster.x-k8s.io/exec/additional-envs";

/// The built-in providers, equivalent to cluster-inventory-api's plugins of the same names.
pub const SECRETREADER: &str = "secretreader";
pub const KUBECONFIG_SECRETREADER: &str = "kubeconfig-secretreader";

/// `--clusterprofile-provider-file` (cluster-inventory-api's format).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProviderFile {
    pub providers: Vec<Provider>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub name: String,
    /// Without one, a provider named `secretreader` or `kubeconfig-secretreader` is built in.
    #[serde(default)]
    pub exec_config: Option<ExecConfig>,
    #[serde(default, rename = "profileSourcedCLIArgsPolicy")]
    pub args_policy: ArgsPolicy,
    #[serde(default)]
    pub profile_sourced_env_vars_policy: EnvPolicy,
}

/// client-go's `ExecConfig`, the fields a non-interactive consumer uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    #[serde(default)]
    pub api_version: Option<String>,
    pub command: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<EnvVar>>,
    #[serde(default)]
    pub install_hint: Option<String>,
    #[serde(default)]
    pub provide_cluster_info: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// What happens to a profile's `additional-args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ArgsPolicy {
    #[default]
    Ignore,
    Append,
}

/// What happens to a profile's `additional-envs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EnvPolicy {
    #[default]
    Ignore,
    /// The provider's own variables win.
    AppendIfNotExists,
    /// The profile's variables win.
    Replace,
}

/// The exec credential API versions pedia speaks.
pub const EXEC_API_VERSIONS: [&str; 2] = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderFileError {
    #[error("the provider file is not valid JSON or YAML: {0}")]
    Parse(String),
    #[error("the provider file lists no providers")]
    Empty,
    #[error("provider {0:?} is listed twice")]
    Duplicate(String),
    #[error("provider {0:?} has no execConfig; only {SECRETREADER:?} and {KUBECONFIG_SECRETREADER:?} are built in")]
    NoExec(String),
    #[error("provider {name:?}: execConfig.apiVersion {version:?} is not one of {EXEC_API_VERSIONS:?}")]
    ApiVersion { name: String, version: String },
    #[error("provider {0:?}: execConfig.command is empty")]
    NoCommand(String),
}

impl ProviderFile {
    /// Parses and checks a provider file (JSON, or YAML for hand-written ones).
    pub fn parse(text: &str) -> Result<Self, ProviderFileError> {
        let file: ProviderFile = serde_yaml::from_str(text).map_err(|e| ProviderFileError::Parse(e.to_string()))?;
        if file.providers.is_empty() {
            return Err(ProviderFileError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for p in &file.providers {
            if !seen.insert(p.name.as_str()) {
                return Err(ProviderFileError::Duplicate(p.name.clone()));
            }
            match &p.exec_config {
                None if builtin(&p.name).is_none() => return Err(ProviderFileError::NoExec(p.name.clone())),
                None => {}
                Some(e) => {
                    if let Some(v) = &e.api_version
                        && !EXEC_API_VERSIONS.contains(&v.as_str())
                    {
                        return Err(ProviderFileError::ApiVersion { name: p.name.clone(), version: v.clone() });
                    }
                    if e.command.trim().is_empty() {
                        return Err(ProviderFileError::NoCommand(p.name.clone()));
                    }
                }
            }
        }
        Ok(file)
    }

    /// Without a provider file: the two built-in secret readers.
    pub fn builtins() -> Self {
        let provider = |name: &str| Provider {
            name: name.to_owned(),
            exec_config: None,
            args_policy: ArgsPolicy::Ignore,
            profile_sourced_env_vars_policy: EnvPolicy::Ignore,
        };
        ProviderFile { providers: vec![provider(SECRETREADER), provider(KUBECONFIG_SECRETREADER)] }
    }
}

/// A built-in provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    SecretReader,
    KubeconfigSecretReader,
}

fn builtin(name: &str) -> Option<Builtin> {
    match name {
        SECRETREADER => Some(Builtin::SecretReader),
        KUBECONFIG_SECRETREADER => Some(Builtin::KubeconfigSecretReader),
        _ => None,
    }
}

/// How the credential is obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Builtin(Builtin),
    Exec(ExecPlan),
}

/// The provider chosen for a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub provider: String,
    /// Where the cluster is (the profile's kubeconfig-style cluster entry).
    pub cluster: KubeconfigCluster,
    /// The `client.authentication.k8s.io/exec` extension (`{}` without one).
    pub config: Value,
    pub method: Method,
}

/// Why a profile cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error(
        "the profile offers no access provider pedia knows (it offers {offered:?}; pedia's provider file lists {known:?})"
    )]
    NoMatchingProvider { offered: Vec<String>, known: Vec<String> },
    #[error("access provider {0:?} has no cluster")]
    NoCluster(String),
    #[error("access provider {0:?} has no cluster.server")]
    NoServer(String),
    #[error("access provider {provider:?}: extension {extension:?} {message}")]
    Extension { provider: String, extension: String, message: String },
}

/// The profile's providers: the deprecated `credentialProviders`, overridden by name by
/// `accessProviders`.
pub fn offered(status: &ClusterProfileStatus) -> BTreeMap<String, AccessProvider> {
    let mut all = BTreeMap::new();
    for p in status.credential_providers.iter().flatten().chain(status.access_providers.iter().flatten()) {
        all.insert(p.name.clone(), p.clone());
    }
    all
}

/// Chooses the provider in the consumer's order and builds what obtaining the credential takes.
pub fn select(file: &ProviderFile, status: &ClusterProfileStatus) -> Result<Selection, AccessError> {
    let offered = offered(status);
    let Some((provider, access)) = file.providers.iter().find_map(|p| offered.get(&p.name).map(|access| (p, access)))
    else {
        return Err(AccessError::NoMatchingProvider {
            offered: offered.into_keys().collect(),
            known: file.providers.iter().map(|p| p.name.clone()).collect(),
        });
    };
    let name = provider.name.clone();
    let cluster = access.cluster.clone().ok_or_else(|| AccessError::NoCluster(name.clone()))?;
    if cluster.server.trim().is_empty() {
        return Err(AccessError::NoServer(name));
    }
    let extension =
        |key: &str| cluster.extensions.iter().flatten().find(|e| e.name == key).map(|e| e.extension.clone());
    let config = extension(EXEC_EXTENSION).unwrap_or_else(|| json!({}));
    let method = match (&provider.exec_config, builtin(&name)) {
        (Some(exec), _) => {
            let bad = |extension: &str, message: String| AccessError::Extension {
                provider: name.clone(),
                extension: extension.to_owned(),
                message,
            };
            let mut args = exec.args.clone().unwrap_or_default();
            if provider.args_policy == ArgsPolicy::Append
                && let Some(extra) = extension(ARGS_EXTENSION)
            {
                args.extend(string_list(&extra).map_err(|m| bad(ARGS_EXTENSION, m))?);
            }
            let mut env: Vec<(String, String)> =
                exec.env.iter().flatten().map(|e| (e.name.clone(), e.value.clone())).collect();
            if provider.profile_sourced_env_vars_policy != EnvPolicy::Ignore
                && let Some(extra) = extension(ENVS_EXTENSION)
            {
                let extra = string_map(&extra).map_err(|m| bad(ENVS_EXTENSION, m))?;
                merge_env(&mut env, extra, provider.profile_sourced_env_vars_policy);
            }
            let api_version = exec.api_version.clone().unwrap_or_else(|| EXEC_API_VERSIONS[0].to_owned());
            let mut spec = json!({"interactive": false});
            if exec.provide_cluster_info {
                spec["cluster"] = exec_cluster(&cluster, &config);
            }
            Method::Exec(ExecPlan {
                command: exec.command.clone(),
                args,
                env,
                exec_info: json!({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}),
                api_version,
                install_hint: exec.install_hint.clone(),
            })
        }
        (None, Some(b)) => Method::Builtin(b),
        // ProviderFile::parse refuses this; a hand-built file is told the same.
        (None, None) => {
            return Err(AccessError::NoMatchingProvider { offered: vec![name.clone()], known: vec![] });
        }
    };
    Ok(Selection { provider: name, cluster, config, method })
}

/// `ExecCredential.spec.cluster`: the kubeconfig cluster fields and the exec extension.
fn exec_cluster(cluster: &KubeconfigCluster, config: &Value) -> Value {
    let mut c =
        serde_json::to_value(KubeconfigCluster { extensions: None, certificate_authority: None, ..cluster.clone() })
            .unwrap_or_else(|_| json!({"server": cluster.server}));
    c["config"] = config.clone();
    c
}

/// A JSON list of strings, or a string holding a YAML list.
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    let v = yaml_in_string(v)?;
    serde_json::from_value(v).map_err(|e| format!("is not a list of strings: {e}"))
}

/// A JSON object of strings, or a string holding a YAML map.
fn string_map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let v = yaml_in_string(v)?;
    serde_json::from_value(v).map_err(|e| format!("is not a map of strings: {e}"))
}

fn yaml_in_string(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => serde_yaml::from_str(s).map_err(|e| format!("is not YAML: {e}")),
        other => Ok(other.clone()),
    }
}

fn merge_env(env: &mut Vec<(String, String)>, extra: BTreeMap<String, String>, policy: EnvPolicy) {
    for (name, value) in extra {
        match env.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) if policy == EnvPolicy::Replace => existing.1 = value,
            Some(_) => {}
            None => env.push((name, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn status(v: Value) -> ClusterProfileStatus {
        serde_json::from_value(v).unwrap()
    }

    fn access(name: &str, server: &str, extensions: Value) -> Value {
        json!({"name": name, "cluster": {"server": server, "certificate-authority-data": "Q0E=", "extensions": extensions}})
    }

    fn file(text: &str) -> ProviderFile {
        ProviderFile::parse(text).unwrap()
    }

    #[test]
    fn the_upstream_example_files_parse() {
        let dir = crate::clusterprofiles::tests::compat_dir().join("examples");
        for f in ["secretreader-provider-config.json", "kubeconfig-secretreader-provider-config.json"] {
            let parsed = file(&std::fs::read_to_string(dir.join(f)).unwrap());
            assert_eq!(parsed.providers.len(), 1);
            assert!(parsed.providers[0].exec_config.as_ref().unwrap().provide_cluster_info);
        }
    }

    #[test]
    fn bad_files_are_named() {
        assert_eq!(ProviderFile::parse(r#"{"providers": []}"#), Err(ProviderFileError::Empty));
        assert_eq!(
            ProviderFile::parse(r#"{"providers": [{"name": "google"}]}"#),
            Err(ProviderFileError::NoExec("google".into()))
        );
        assert_eq!(
            ProviderFile::parse(
                r#"{"providers": [{"name": "a", "execConfig": {"command": "x", "apiVersion": "v9"}}]}"#
            ),
            Err(ProviderFileError::ApiVersion { name: "a".into(), version: "v9".into() })
        );
        assert_eq!(
            ProviderFile::parse(r#"{"providers": [{"name": "secretreader"}, {"name": "secretreader"}]}"#),
            Err(ProviderFileError::Duplicate("secretreader".into()))
        );
        assert!(matches!(ProviderFile::parse("{"), Err(ProviderFileError::Parse(_))));
    }

    #[test]
    fn the_consumer_order_wins_and_access_providers_override_credential_providers() {
        let f = file(
            r#"{"providers": [{"name": "plugin", "execConfig": {"command": "/p", "provideClusterInfo": true}}, {"name": "secretreader"}]}"#,
        );
        // The profile lists secretreader first; the consumer prefers its plugin.
        let s = status(json!({"accessProviders": [
            access("secretreader", "https://a", json!([])),
            access("plugin", "https://new", json!([{"name": EXEC_EXTENSION, "extension": {"clusterName": "a"}}])),
        ], "credentialProviders": [access("plugin", "https://old", json!([]))]}));
        let sel = select(&f, &s).unwrap();
        assert_eq!(sel.provider, "plugin");
        assert_eq!(sel.cluster.server, "https://new");
        let Method::Exec(plan) = sel.method else { panic!("not exec") };
        assert_eq!(plan.exec_info["spec"]["cluster"]["server"], "https://new");
        assert_eq!(plan.exec_info["spec"]["cluster"]["certificate-authority-data"], "Q0E=");
        assert_eq!(plan.exec_info["spec"]["cluster"]["config"], json!({"clusterName": "a"}));
        assert_eq!(plan.exec_info["spec"]["interactive"], false);
        assert_eq!(plan.api_version, "client.authentication.k8s.io/v1");

        // Only the deprecated field: still found.
        let legacy = status(json!({"credentialProviders": [access("secretreader", "https://l", json!([]))]}));
        let sel = select(&f, &legacy).unwrap();
        assert_eq!((sel.provider.as_str(), sel.method), ("secretreader", Method::Builtin(Builtin::SecretReader)));

        // Nothing in common: both lists are named.
        let other = status(json!({"accessProviders": [access("google", "https://g", json!([]))]}));
        assert_eq!(
            select(&f, &other),
            Err(AccessError::NoMatchingProvider {
                offered: vec!["google".into()],
                known: vec!["plugin".into(), "secretreader".into()]
            })
        );
        let no_server = status(json!({"accessProviders": [{"name": "plugin", "cluster": {"server": ""}}]}));
        assert_eq!(select(&f, &no_server), Err(AccessError::NoServer("plugin".into())));
    }

    #[test]
    fn profile_args_and_envs_follow_the_policies() {
        let extensions = json!([
            {"name": ARGS_EXTENSION, "extension": ["--extra"]},
            {"name": ENVS_EXTENSION, "extension": "A: from-profile\nB: new\n"},
        ]);
        let s = status(json!({"accessProviders": [access("p", "https://a", extensions)]}));
        let plan = |policies: &str| {
            let f = file(&format!(
                r#"{{"providers": [{{"name": "p", {policies} "execConfig": {{"command": "/p", "args": ["--own"], "env": [{{"name": "A", "value": "own"}}]}}}}]}}"#
            ));
            match select(&f, &s).unwrap().method {
                Method::Exec(p) => p,
                Method::Builtin(_) => panic!("builtin"),
            }
        };
        let ignored = plan("");
        assert_eq!(ignored.args, ["--own"]);
        assert_eq!(ignored.env, [("A".to_owned(), "own".to_owned())]);
        assert!(ignored.exec_info["spec"].get("cluster").is_none(), "provideClusterInfo is off");
        let appended =
            plan(r#""profileSourcedCLIArgsPolicy": "Append", "profileSourcedEnvVarsPolicy": "AppendIfNotExists","#);
        assert_eq!(appended.args, ["--own", "--extra"]);
        assert_eq!(appended.env, [("A".into(), "own".into()), ("B".into(), "new".into())]);
        let replaced = plan(r#""profileSourcedEnvVarsPolicy": "Replace","#);
        assert_eq!(replaced.env, [("A".into(), "from-profile".into()), ("B".into(), "new".into())]);

        let bad = status(
            json!({"accessProviders": [access("p", "https://a", json!([{"name": ARGS_EXTENSION, "extension": {"x": 1}}]))]}),
        );
        let f = file(
            r#"{"providers": [{"name": "p", "profileSourcedCLIArgsPolicy": "Append", "execConfig": {"command": "/p"}}]}"#,
        );
        assert!(matches!(select(&f, &bad), Err(AccessError::Extension { .. })));
    }
}
