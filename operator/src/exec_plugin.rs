//! Exec credential plugins (KEP-541, `client.authentication.k8s.io/v1`): run the command with
//! `KUBERNETES_EXEC_INFO`, read the `ExecCredential` it prints, keep the credential until shortly
//! before it expires. Used for ClusterProfiles' access providers and for PediaClusters whose
//! kubeconfig user is an exec plugin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// One run of an exec credential plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecPlan {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub api_version: String,
    pub install_hint: Option<String>,
    /// `KUBERNETES_EXEC_INFO`.
    pub exec_info: Value,
}

/// What a member is reached with: a bearer token and/or a client certificate (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub token: Option<String>,
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    /// When the plugin said the credential stops working.
    pub expires: Option<Timestamp>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credential {{ token: {}, client certificate: {}, expires: {:?} }}",
            self.token.is_some(),
            self.cert.is_some(),
            self.expires
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("credential plugin {command:?} not found{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    NotFound { command: String, hint: Option<String> },
    #[error("credential plugin {command:?} could not start: {message}")]
    Spawn { command: String, message: String },
    #[error("credential plugin {command:?} did not finish within {secs} s")]
    Timeout { command: String, secs: u64 },
    #[error("credential plugin {command:?} failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("credential plugin {command:?} printed no usable ExecCredential: {message}")]
    Garbage { command: String, message: String },
}

/// Reads a plugin's output (pure).
pub fn parse_credential(command: &str, api_version: &str, stdout: &[u8]) -> Result<Credential, ExecError> {
    let garbage = |message: String| ExecError::Garbage { command: command.to_owned(), message };
    let v: Value = serde_json::from_slice(stdout).map_err(|e| garbage(format!("not JSON ({e})")))?;
    if v["kind"] != "ExecCredential" {
        return Err(garbage(format!("kind is {}, not ExecCredential", v["kind"])));
    }
    if v["apiVersion"] != api_version {
        return Err(garbage(format!("apiVersion is {}, the plugin was asked for {api_version:?}", v["apiVersion"])));
    }
    let status = &v["status"];
    let text = |k: &str| status[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let token = text("token");
    let (cert, key) = (text("clientCertificateData"), text("clientKeyData"));
    if cert.is_some() != key.is_some() {
        return Err(garbage("clientCertificateData and clientKeyData come together".into()));
    }
    if token.is_none() && cert.is_none() {
        return Err(garbage("status has neither a token nor a client certificate".into()));
    }
    let expires = match text("expirationTimestamp") {
        None => None,
        Some(t) => Some(t.parse::<Timestamp>().map_err(|e| garbage(format!("expirationTimestamp {t:?}: {e}")))?),
    };
    Ok(Credential { token, cert: cert.map(String::into_bytes), key: key.map(String::into_bytes), expires })
}

/// Runs the plugin (never interactive: stdin is closed).
pub async fn run(plan: &ExecPlan, timeout: Duration) -> Result<Credential, ExecError> {
    let command = plan.command.clone();
    let mut cmd = tokio::process::Command::new(&plan.command);
    cmd.args(&plan.args)
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .env("KUBERNETES_EXEC_INFO", plan.exec_info.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ExecError::NotFound { command: command.clone(), hint: plan.install_hint.clone() }
        }
        _ => ExecError::Spawn { command: command.clone(), message: e.to_string() },
    })?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| ExecError::Timeout { command: command.clone(), secs: timeout.as_secs() })?
        .map_err(|e| ExecError::Spawn { command: command.clone(), message: e.to_string() })?;
    if !output.status.success() {
        return Err(ExecError::Failed { command, status: output.status.to_string(), stderr: tail(&output.stderr) });
    }
    parse_credential(&command, &plan.api_version, &output.stdout)
}

/// A member that answers 401 runs the plugin again, but not more often than this.
pub const REEXEC_AFTER_401: Duration = Duration::from_secs(10);

/// A plugin's credential, kept until 80% of its lifetime.
#[derive(Debug, Clone)]
struct Cached {
    /// The plan it was obtained with (another plan runs the plugin again).
    plan: ExecPlan,
    credential: Credential,
    obtained: Instant,
    refresh: Option<Instant>,
}

/// Credentials by key (a profile, a PediaCluster).
#[derive(Debug, Default)]
pub struct Cache(Mutex<HashMap<String, Cached>>);

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The credential and when to look again: the cached one while it is fresh (when the member
    /// refused it, until [`REEXEC_AFTER_401`] after it was obtained), else a new run.
    pub async fn credential(
        &self,
        key: &str,
        plan: &ExecPlan,
        refused: bool,
        timeout: Duration,
    ) -> Result<(Credential, Option<Duration>), ExecError> {
        let now = Instant::now();
        let cached = self.lock().get(key).filter(|c| &c.plan == plan).cloned();
        if let Some(c) = cached {
            let fresh = c.refresh.is_none_or(|r| now < r);
            if fresh && !(refused && c.obtained.elapsed() >= REEXEC_AFTER_401) {
                let wait = match refused {
                    true => Some(REEXEC_AFTER_401.saturating_sub(c.obtained.elapsed())),
                    false => c.refresh.map(|r| r.saturating_duration_since(now)),
                };
                return Ok((c.credential, wait));
            }
        }
        let c = run(plan, timeout).await?;
        let refresh = c.expires.map(|t| {
            let left = t.duration_since(Timestamp::now()).as_secs_f64().max(0.0);
            Duration::from_secs_f64(left * 0.8).max(Duration::from_secs(1))
        });
        let entry =
            Cached { plan: plan.clone(), credential: c.clone(), obtained: now, refresh: refresh.map(|r| now + r) };
        self.lock().insert(key.to_owned(), entry);
        Ok((c, refresh))
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// The extension of a kubeconfig cluster passed to its exec plugin as `spec.cluster.config`.
pub const EXEC_EXTENSION: &str = "client.authentication.k8s.io/exec";

/// The user name and exec plugin of a kubeconfig's current context, when its user is one (pure).
pub fn plan_of_kubeconfig(k: &Value) -> Result<Option<(String, ExecPlan)>, String> {
    let named = |list: &str, name: &str| k[list].as_array().into_iter().flatten().find(|e| e["name"] == name);
    let Some(context) = k["current-context"].as_str().and_then(|c| named("contexts", c)) else { return Ok(None) };
    let user_name = context["context"]["user"].as_str().unwrap_or_default();
    let Some(exec) = named("users", user_name).map(|u| &u["user"]["exec"]).filter(|e| !e.is_null()) else {
        return Ok(None);
    };
    let command = exec["command"].as_str().filter(|c| !c.is_empty()).ok_or("the exec user has no command")?;
    let api_version = exec["apiVersion"].as_str().unwrap_or("client.authentication.k8s.io/v1").to_owned();
    let args = exec["args"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)).collect();
    let env = exec["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str().unwrap_or_default().to_owned())))
        .collect();
    let mut spec = serde_json::json!({"interactive": false});
    if exec["provideClusterInfo"] == true {
        let cluster_name = context["context"]["cluster"].as_str().unwrap_or_default();
        let mut cluster = named("clusters", cluster_name).map(|c| c["cluster"].clone()).unwrap_or_default();
        let config = cluster["extensions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == EXEC_EXTENSION)
            .map(|e| e["extension"].clone());
        if let Some(c) = cluster.as_object_mut() {
            c.remove("extensions");
            c.remove("certificate-authority");
        }
        cluster["config"] = config.unwrap_or(Value::Null);
        spec["cluster"] = cluster;
    }
    let exec_info = serde_json::json!({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec});
    let install_hint = exec["installHint"].as_str().map(str::to_owned);
    Ok(Some((
        user_name.to_owned(),
        ExecPlan { command: command.to_owned(), args, env, api_version, install_hint, exec_info },
    )))
}

/// The kubeconfig with the named user's exec plugin replaced by the credential it gave (pure).
pub fn with_credential(k: &Value, user: &str, c: &Credential) -> Value {
    let mut k = k.clone();
    for u in k["users"].as_array_mut().into_iter().flatten() {
        if u["name"] == user {
            u["user"] = user_entry(c);
        }
    }
    k
}

/// The end of a plugin's error output, enough to say what went wrong.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    match text.char_indices().rev().nth(299) {
        Some((i, _)) => format!("...{}", &text[i..]),
        None if text.is_empty() => "no error output".into(),
        None => text.to_owned(),
    }
}

/// A credential as the kubeconfig user entry pedia writes.
pub fn user_entry(c: &Credential) -> Value {
    let b64 = |b: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    let mut user = serde_json::Map::new();
    if let Some(t) = &c.token {
        user.insert("token".into(), Value::String(t.clone()));
    }
    if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
        user.insert("client-certificate-data".into(), Value::String(b64(cert)));
        user.insert("client-key-data".into(), Value::String(b64(key)));
    }
    Value::Object(user)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const V1: &str = "client.authentication.k8s.io/v1";

    fn plugin(dir: &std::path::Path, body: &str) -> ExecPlan {
        let path = dir.join(format!("plugin-{:08x}.sh", api_types::token::fnv(body.as_bytes())));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        ExecPlan {
            command: path.to_str().unwrap().to_owned(),
            args: vec!["--flag".into()],
            env: vec![("FROM_FILE".into(), "yes".into())],
            api_version: V1.into(),
            install_hint: Some("install it from example.test".into()),
            exec_info: json!({"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": false, "cluster": {"server": "https://m", "config": {"clusterName": "a"}}}}),
        }
    }

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pedia-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn the_exec_protocol_with_a_test_plugin() {
        let d = dir();
        // The plugin echoes what it was given into its token: args, env and exec info.
        let p = plugin(
            &d,
            r#"name=$(echo "$KUBERNETES_EXEC_INFO" | sed 's/.*"clusterName":"\([^"]*\)".*/\1/')
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s-%s-%s","expirationTimestamp":"2030-01-01T00:00:00Z"}}' "$name" "$1" "$FROM_FILE""#,
        );
        let c = run(&p, Duration::from_secs(10)).await.unwrap();
        assert_eq!(c.token.as_deref(), Some("a---flag-yes"));
        assert_eq!(c.expires, Some("2030-01-01T00:00:00Z".parse().unwrap()));
        assert!(!format!("{c:?}").contains("a---flag"), "Debug shows no secret");

        let cert = plugin(
            &d,
            r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"CERT","clientKeyData":"KEY"}}'"#,
        );
        let c = run(&cert, Duration::from_secs(10)).await.unwrap();
        assert_eq!((c.cert.unwrap(), c.key.unwrap(), c.token), (b"CERT".to_vec(), b"KEY".to_vec(), None));
        assert_eq!(
            user_entry(&Credential { token: Some("t".into()), cert: None, key: None, expires: None }),
            json!({"token": "t"})
        );

        let failing = plugin(&d, "echo 'no such cluster' >&2; exit 3");
        let e = run(&failing, Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(&e, ExecError::Failed { stderr, .. } if stderr == "no such cluster"), "{e}");
        let slow = plugin(&d, "sleep 5");
        assert!(matches!(run(&slow, Duration::from_millis(300)).await, Err(ExecError::Timeout { .. })));
        let garbage = plugin(&d, "echo hello");
        assert!(matches!(run(&garbage, Duration::from_secs(10)).await, Err(ExecError::Garbage { .. })));
        let missing = ExecPlan { command: d.join("nope").to_str().unwrap().into(), ..p };
        let e = run(&missing, Duration::from_secs(10)).await.unwrap_err();
        assert!(e.to_string().contains("not found (install it from example.test)"), "{e}");
    }

    #[test]
    fn kubeconfig_exec_users_become_plans_and_then_credentials() {
        let k = json!({"apiVersion": "v1", "kind": "Config", "current-context": "m",
            "contexts": [{"name": "m", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://m", "certificate-authority-data": "Q0E=",
                "extensions": [{"name": EXEC_EXTENSION, "extension": {"clusterName": "m"}}]}}],
            "users": [{"name": "u", "user": {"exec": {"apiVersion": V1, "command": "get-token", "args": ["-v"],
                "env": [{"name": "A", "value": "1"}], "provideClusterInfo": true}}}, {"name": "other", "user": {"token": "x"}}]});
        let (user, plan) = plan_of_kubeconfig(&k).unwrap().unwrap();
        assert_eq!(
            (user.as_str(), plan.command.as_str(), plan.args.as_slice()),
            ("u", "get-token", &["-v".to_owned()][..])
        );
        assert_eq!(plan.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(plan.exec_info["spec"]["cluster"]["server"], "https://m");
        assert_eq!(plan.exec_info["spec"]["cluster"]["config"], json!({"clusterName": "m"}));
        assert!(plan.exec_info["spec"]["cluster"].get("extensions").is_none());
        let c = Credential { token: Some("t".into()), cert: None, key: None, expires: None };
        let replaced = with_credential(&k, &user, &c);
        assert_eq!(replaced["users"][0]["user"], json!({"token": "t"}));
        assert_eq!(replaced["users"][1]["user"], json!({"token": "x"}));
        assert_eq!(plan_of_kubeconfig(&replaced).unwrap(), None, "no exec user left");
        let mut no_command = k.clone();
        no_command["users"][0]["user"]["exec"]["command"] = json!("");
        assert!(plan_of_kubeconfig(&no_command).is_err());
    }

    #[tokio::test]
    async fn the_cache_keeps_a_credential_until_it_nears_expiry_or_is_refused() {
        let d = dir();
        let count = d.join("cache-count");
        let _ = std::fs::remove_file(&count);
        let p = plugin(
            &d,
            &format!(
                r#"echo x >> {count}
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"t","expirationTimestamp":"%s"}}}}' "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)""#,
                count = count.display()
            ),
        );
        let runs = || std::fs::read_to_string(&count).unwrap().lines().count();
        let cache = Cache::default();
        let (_, refresh) = cache.credential("k", &p, false, Duration::from_secs(10)).await.unwrap();
        let refresh = refresh.unwrap();
        assert!(refresh > Duration::from_secs(2700) && refresh <= Duration::from_secs(2880), "{refresh:?}");
        cache.credential("k", &p, false, Duration::from_secs(10)).await.unwrap();
        assert_eq!(runs(), 1, "a fresh credential is reused");
        // Refused right after it was obtained: wait, do not run again at once.
        let (_, wait) = cache.credential("k", &p, true, Duration::from_secs(10)).await.unwrap();
        assert!(wait.unwrap() <= REEXEC_AFTER_401);
        assert_eq!(runs(), 1);
        // Another plan (say, a changed kubeconfig) runs it again; so does a forgotten key.
        let other = ExecPlan { args: vec!["--other".into()], ..p.clone() };
        cache.credential("k", &other, false, Duration::from_secs(10)).await.unwrap();
        cache.forget("k");
        cache.credential("k", &other, false, Duration::from_secs(10)).await.unwrap();
        assert_eq!(runs(), 3);
    }

    #[test]
    fn malformed_credentials_are_named() {
        let parse = |v: Value| parse_credential("p", V1, v.to_string().as_bytes());
        let e = parse(
            json!({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "t"}}),
        );
        assert!(e.unwrap_err().to_string().contains("was asked for"));
        let e = parse(json!({"apiVersion": V1, "kind": "ExecCredential", "status": {}}));
        assert!(e.unwrap_err().to_string().contains("neither a token"));
        let e = parse(json!({"apiVersion": V1, "kind": "ExecCredential", "status": {"clientCertificateData": "C"}}));
        assert!(e.unwrap_err().to_string().contains("come together"));
        let e = parse(
            json!({"apiVersion": V1, "kind": "ExecCredential", "status": {"token": "t", "expirationTimestamp": "soon"}}),
        );
        assert!(e.unwrap_err().to_string().contains("expirationTimestamp"));
        assert_eq!(tail(&[b'x'; 500]).len(), 303);
    }
}
