//! What the operator's end-to-end tests share: the real kubectl, condition lookups.
#![allow(clippy::unwrap_used, dead_code)] // test code may panic; not every test uses every helper

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", self.kubeconfig.parent().unwrap())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl (/usr/bin/kubectl) is required");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(ok, "kubectl {} failed:\n{out}\n{err}", args.join(" "));
        out
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

pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn reason(obj: Option<&Value>, type_: &str) -> Option<String> {
    condition(obj?, type_).and_then(|c| c["reason"].as_str()).map(str::to_owned)
}
