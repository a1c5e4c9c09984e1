//! Test helpers: where the upstream fixtures live, and small JSON utilities.
#![allow(clippy::unwrap_used, dead_code)] // test helpers may panic; not every test file uses all

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `../shared/compat` beside the repository (override with `PEDIA_COMPAT_DIR`). A missing
/// directory fails the test: these fixtures are what users already have.
pub fn compat_dir() -> PathBuf {
    let dir = std::env::var_os("PEDIA_COMPAT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat"));
    assert!(
        dir.join("clusterpedia").is_dir(),
        "upstream fixtures not found at {} (set PEDIA_COMPAT_DIR)",
        dir.display()
    );
    dir
}

/// The YAML files of a fixture directory, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

/// Every object of a YAML file.
pub fn objects(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    api_types::manifest::parse_documents(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The object with every `null` removed: `null` and absent mean the same to the apiserver.
pub fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Paths where two JSON values differ, for readable assertion messages.
pub fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: lost (was {v})")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: added ({})", y[k]));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}
