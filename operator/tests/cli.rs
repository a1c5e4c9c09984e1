//! The `pedia` binary as users run it.
#![allow(clippy::unwrap_used)] // test code may panic

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn pedia() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pedia"))
}

#[test]
fn crds_prints_every_crd_as_yaml() {
    let out = pedia().arg("crds").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, api_types::crd::pedia_crds_yaml().unwrap());
    assert_eq!(text.matches("kind: CustomResourceDefinition").count(), 4);
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `pedia crds | head -1`: the CRDs are larger than a pipe holds, so the write after the
    // reader left fails with EPIPE.
    let mut child = pedia().arg("crds").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn crds_out_dir_writes_one_file_per_crd() {
    let dir = std::env::temp_dir().join(format!("pedia-crds-{}", std::process::id()));
    let status = pedia().args(["crds", "--out-dir"]).arg(&dir).status().unwrap();
    assert!(status.success());
    let mut names: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 4);
    assert!(names.contains(&"cluster.clusterpedia.io_pediaclusters.yaml".to_owned()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_exit_codes_and_messages() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    let out = pedia().arg("validate").arg(&docs).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "docs/examples must stay valid:\n{text}");
    assert!(text.contains(", 0 invalid"), "{text}");

    let mut child = pedia().args(["validate", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: cluster.clusterpedia.io/v1alpha2\nkind: PediaCluster\nmetadata: {name: x}\nspec: {syncResources: pods}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("INVALID") && text.contains("spec.syncResources"), "{text}");
}

#[test]
fn unreadable_input_is_a_clear_error() {
    let out = pedia().args(["validate", "/nonexistent/x.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.yaml"), "{err}");
}

#[test]
fn storage_migrate_and_stats_on_sqlite() {
    let db = std::env::temp_dir().join(format!("pedia-cli-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let out = pedia().args(["storage", "migrate", "--storage", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied"));
    let again = pedia().args(["storage", "migrate", "--storage", &url]).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));
    let stats = pedia().args(["storage", "stats", "--storage", &url]).output().unwrap();
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success() && text.contains("0 objects") && text.contains("database size"), "{text}");
    assert!(text.contains("change log: head 0, horizon 0"), "{text}");
    let compact = pedia().args(["storage", "compact", "--storage", &url, "--retention", "30m"]).output().unwrap();
    let text = String::from_utf8_lossy(&compact.stdout);
    assert!(compact.status.success() && text.contains("dropped 0 entries"), "{text}");
    let bad = pedia().args(["storage", "compact", "--storage", &url, "--retention", "5 weeks"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown unit"), "{}", String::from_utf8_lossy(&bad.stderr));
    pedia_storage::remove_sqlite(&db);
}

#[test]
fn storage_errors_are_clear() {
    let out = pedia().args(["storage", "stats", "--storage", "redis://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme"));
    let out = pedia()
        .args(["storage", "stats", "--storage", "sqlite:///nonexistent-dir/x.db", "--connect-attempts", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonexistent-dir") && err.contains("Unable to open"), "{err}");
}

#[test]
fn run_with_an_unreadable_kubeconfig_is_a_clear_error() {
    let out = pedia().args(["run", "--kubeconfig", "/nonexistent/kubeconfig"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connecting to the Kubernetes API server") && err.contains("/nonexistent/kubeconfig"),
        "{err}"
    );
}
