//! Exec credential plugins (KEP-541, `client.authentication.k8s.io/v1`): run the command with
//! `KUBERNETES_EXEC_INFO`, read the `ExecCredential` it prints.

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::providers::ExecPlan;

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
        let path = dir.join(format!("plugin-{}.sh", body.len()));
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
