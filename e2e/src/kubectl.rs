//! The real kubectl against a cluster, for tests (kubesim's and pedia's): run, require success,
//! apply, get as JSON, wait for a state. Test support: a failure to start kubectl panics.
#![allow(clippy::unwrap_used)] // test support may panic

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The kubectl every test machine has.
pub const SYSTEM_KUBECTL: &str = "/usr/bin/kubectl";

/// A kubectl binary and the kubeconfig it runs with (its directory is kubectl's HOME, so its
/// caches stay with the test).
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

/// What one run printed and how it ended.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// The system kubectl with `kubeconfig`.
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Self {
        Self { bin: SYSTEM_KUBECTL.into(), kubeconfig: kubeconfig.into() }
    }

    pub async fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let home = self.kubeconfig.parent().map(PathBuf::from).unwrap_or_default();
        let mut child = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", home)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl ({}) is required: {e}", self.bin.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Whether it succeeded, stdout, stderr.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let o = self.output(args, stdin).await;
        (o.code == 0, o.stdout, o.stderr)
    }

    /// Runs and requires success; returns stdout.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.output(args, stdin).await;
        assert_eq!(
            o.code,
            0,
            "kubectl {} ({}) failed:\n{}\n{}",
            args.join(" "),
            self.bin.display(),
            o.stdout,
            o.stderr
        );
        o.stdout
    }

    pub async fn apply(&self, yaml: &str) {
        self.ok(&["apply", "-f", "-"], Some(yaml)).await;
    }

    /// The object as JSON, or None when it does not exist.
    pub async fn get(&self, what: &[&str]) -> Option<Value> {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend(["-o", "json"]);
        let (ok, out, err) = self.run(&args, None).await;
        if !ok {
            assert!(err.contains("NotFound") || err.contains("not found"), "kubectl get {what:?}: {err}");
            return None;
        }
        Some(serde_json::from_str(&out).unwrap())
    }

    /// Waits until `pred` holds for the object (None: absent).
    pub async fn wait(&self, what: &[&str], desc: &str, pred: impl Fn(Option<&Value>) -> bool) -> Option<Value> {
        let mut last = None;
        for _ in 0..300 {
            last = self.get(what).await;
            if pred(last.as_ref()) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("timed out waiting for {desc}; last seen: {}", serde_json::to_string_pretty(&last).unwrap());
    }
}
