//! `pedia policy render` on every policy in `templates/` and on upstream's policies in
//! `../shared/compat/clusterpedia/clusterimportpolicy/`, driven by the cases in
//! `templates/examples/<source>/*.case.yaml` (realistic source objects, positive and negative).
#![allow(clippy::unwrap_used)] // test code may panic

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compat_policies() -> PathBuf {
    let dir = std::env::var_os("PEDIA_COMPAT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/compat"))
        .join("clusterpedia/clusterimportpolicy");
    assert!(dir.is_dir(), "upstream policies not found at {} (set PEDIA_COMPAT_DIR)", dir.display());
    dir
}

fn yaml_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

struct Rendered {
    header: Vec<(String, String)>,
    cluster: Option<Value>,
}

fn render(policy: &Path, source: &Path, references: &[(String, PathBuf)]) -> Result<Rendered, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pedia"));
    cmd.args(["policy", "render", "--policy"]).arg(policy).arg("--source").arg(source);
    for (k, f) in references {
        cmd.arg("--reference").arg(format!("{k}={}", f.display()));
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "errors exit 1");
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    let (head, body) = stdout.split_once("---\n").map_or((stdout.as_str(), None), |(h, b)| (h, Some(b)));
    let header = head
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or_else(|| panic!("bad header line {l:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let cluster = body.map(|b| serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(b).unwrap()).unwrap());
    Ok(Rendered { header, cluster })
}

#[test]
fn every_template_and_upstream_policy_renders_its_cases() {
    let examples = workspace().join("templates/examples");
    let mut used = BTreeSet::new();
    let mut cases = 0;
    for dir in std::fs::read_dir(&examples).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        for case_file in yaml_files(&dir, ".case.yaml") {
            cases += 1;
            let ctx = case_file.display().to_string();
            let case: Value = serde_json::to_value(
                serde_yaml::from_str::<serde_yaml::Value>(&std::fs::read_to_string(&case_file).unwrap()).unwrap(),
            )
            .unwrap();
            let policy = case["policy"].as_str().unwrap();
            let policy_path = match policy.strip_prefix("compat:") {
                Some(name) => compat_policies().join(name),
                None => dir.join(policy),
            };
            used.insert(policy_path.canonicalize().unwrap_or_else(|e| panic!("{ctx}: {policy}: {e}")));
            let references: Vec<(String, PathBuf)> = case["references"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), dir.join(v.as_str().unwrap()))).collect())
                .unwrap_or_default();
            let out = render(&policy_path, &dir.join(case["source"].as_str().unwrap()), &references)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let expect = &case["expect"];
            let header = |k: &str| out.header.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            if let Some(sel) = expect["selector"].as_bool() {
                assert_eq!(header("selector"), Some(sel.to_string()), "{ctx}: selector");
                if !sel {
                    assert!(header("name").is_none() && out.cluster.is_none(), "{ctx}: nothing after selector: false");
                    continue;
                }
            }
            assert_eq!(header("name").as_deref(), expect["name"].as_str(), "{ctx}: name");
            assert_eq!(
                header("creationCondition"),
                expect["creationCondition"].as_bool().map(|b| b.to_string()),
                "{ctx}"
            );
            let cluster = out.cluster.unwrap_or_else(|| panic!("{ctx}: no PediaCluster"));
            assert_eq!(cluster["kind"], "PediaCluster", "{ctx}");
            assert_eq!(
                cluster["metadata"]["name"].as_str(),
                expect["name"].as_str(),
                "{ctx}: PediaCluster named after the lifecycle"
            );
            for (field, want) in expect["spec"].as_object().into_iter().flatten() {
                assert_eq!(&cluster["spec"][field], want, "{ctx}: spec.{field}");
            }
            for field in expect["absent"].as_array().into_iter().flatten() {
                let field = field.as_str().unwrap();
                assert!(cluster["spec"].get(field).is_none(), "{ctx}: spec.{field} must be absent: {cluster}");
            }
            for (label, want) in expect["labels"].as_object().into_iter().flatten() {
                assert_eq!(&cluster["metadata"]["labels"][label], want, "{ctx}: label {label}");
            }
            assert!(!cluster["spec"]["syncResources"].as_array().unwrap().is_empty(), "{ctx}: syncResources");
        }
    }
    assert!(cases >= 30, "only {cases} cases");
    // The ready-made policies are valid ClusterImportPolicies (strict, as the apiserver checks).
    let validate = Command::new(env!("CARGO_BIN_EXE_pedia"))
        .arg("validate")
        .args(yaml_files(&workspace().join("templates"), ".yaml"))
        .output()
        .unwrap();
    assert!(validate.status.success(), "{}", String::from_utf8_lossy(&validate.stdout));
    // Every ready-made template and every upstream policy has cases.
    let mut all: Vec<PathBuf> = yaml_files(&workspace().join("templates"), ".yaml");
    all.extend(yaml_files(&compat_policies(), ".yaml"));
    for p in all {
        assert!(used.contains(&p.canonicalize().unwrap()), "{} has no case in templates/examples", p.display());
    }
}

#[test]
fn render_errors_exit_1_naming_field_line_and_column() {
    let dir = std::env::temp_dir().join(format!("pedia-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("source.yaml");
    std::fs::write(
        &source,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ndata: {token: YSs/Yj0=}\n",
    )
    .unwrap();
    let policy = |template: &str| {
        let p = dir.join("policy.yaml");
        let text = format!(
            "apiVersion: policy.clusterpedia.io/v1alpha1\nkind: ClusterImportPolicy\nmetadata: {{name: p}}\nspec:\n  source: {{group: '', resource: secrets}}\n  nameTemplate: 'x-{{{{ .source.metadata.name }}}}'\n  creationCondition: 'true'\n  template: |\n{}\n",
            template.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        );
        std::fs::write(&p, text).unwrap();
        p
    };
    let err = render(&policy("spec:\n  apiserver: '{{ if .source }}'"), &source, &[]).err().unwrap();
    assert!(err.contains("policy p: template: line 2, column 15:") && err.contains("no {{end}}"), "{err}");
    let err = render(&policy("spec:\n  tokenData: '{{ .source.data.token | b64dec | b64dec }}'"), &source, &[])
        .err()
        .unwrap();
    assert!(err.contains("template: line 2, column 48: error calling b64dec"), "{err}");
    let err = render(&policy("spec:\n  caData: 'not base64'\n  syncResources: []"), &source, &[]).err().unwrap();
    assert!(err.contains("spec.caData"), "{err}");
    // Secrets with `+`, `/` and `=` pass through unchanged (no HTML escaping).
    let ok =
        render(&policy("spec:\n  tokenData: '{{ .source.data.token }}'\n  syncResources: []"), &source, &[]).unwrap();
    assert_eq!(ok.cluster.unwrap()["spec"]["tokenData"], "YSs/Yj0=");
    let err = render(&dir.join("missing.yaml"), &source, &[]).err().unwrap();
    assert!(err.contains("missing.yaml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn references_must_be_given_and_match() {
    let dir = workspace().join("templates/examples/karmada");
    let policy = workspace().join("templates/karmada.yaml");
    let err = render(&policy, &dir.join("member-east.yaml"), &[]).err().unwrap();
    assert!(err.contains("reference secret (karmada-cluster/member-east) is needed"), "{err}");
    let err = render(&policy, &dir.join("member-east.yaml"), &[("secret".into(), dir.join("member-west-secret.yaml"))])
        .err()
        .unwrap();
    assert!(
        err.contains("points at karmada-cluster/member-east") && err.contains("karmada-cluster/member-west"),
        "{err}"
    );
}
