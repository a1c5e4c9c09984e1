//! `pedia validate`: checks manifests against pedia's CRDs before they reach a cluster, the
//! way the apiserver would (strict fields, types, required values) plus decoding into pedia's types.

use std::io::Read;
use std::path::{Path, PathBuf};

use api_types::validation::SchemaValidator;
use api_types::{crd, manifest};
use serde_json::Value;

/// What happened to one object.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A pedia kind that passed.
    Valid,
    /// A kind pedia has no CRD for; not checked.
    Skipped,
    /// Why it fails.
    Invalid(String),
}

/// One object's result.
#[derive(Debug)]
pub struct Report {
    pub source: String,
    pub kind: String,
    pub name: String,
    pub outcome: Outcome,
}

/// Reading the inputs failed.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: manifest::ManifestError },
    #[error("compiling pedia's CRD schemas: {0}")]
    Schema(#[from] api_types::validation::SchemaError),
}

/// Validates every object in the given files and directories (`-` reads standard input).
pub fn validate_paths(paths: &[PathBuf]) -> Result<Vec<Report>, ValidateError> {
    let crds: Vec<_> = crd::pedia_crds().into_iter().chain(crd::consumed_crds()).collect();
    let validator = SchemaValidator::new(&crds)?;
    let mut reports = Vec::new();
    for file in expand(paths)? {
        let text = read(&file)?;
        let objects =
            manifest::parse_documents(&text).map_err(|source| ValidateError::Parse { path: file.clone(), source })?;
        for object in objects {
            reports.push(check(&validator, &file.display().to_string(), &object));
        }
    }
    Ok(reports)
}

fn check(validator: &SchemaValidator, source: &str, object: &Value) -> Report {
    let field = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (api_version, kind, name) = (field("/apiVersion"), field("/kind"), field("/metadata/name"));
    let outcome = if !api_version.is_empty() && !validator.serves(&api_version, &kind) {
        Outcome::Skipped
    } else {
        match validator.validate(object) {
            Err(e) => Outcome::Invalid(e.to_string()),
            Ok(stored) => match manifest::roundtrip(&stored) {
                Err(e) => Outcome::Invalid(e.to_string()),
                Ok(_) => Outcome::Valid,
            },
        }
    };
    Report { source: source.to_owned(), kind, name, outcome }
}

/// Files as given, directories as their `*.yaml`, `*.yml` and `*.json` files (sorted).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ValidateError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|source| ValidateError::Read { path: path.clone(), source })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn read(path: &Path) -> Result<String, ValidateError> {
    let err = |source| ValidateError::Read { path: path.to_owned(), source };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(err)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reports_each_object_of_a_directory() {
        let dir = std::env::temp_dir().join(format!("pedia-validate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "a.yaml",
            "apiVersion: cluster.clusterpedia.io/v1alpha2\nkind: PediaCluster\nmetadata: {name: good}\n\
             spec: {syncResources: [{group: apps, resources: [deployments]}]}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
        );
        write(
            &dir,
            "b.yml",
            "apiVersion: cluster.clusterpedia.io/v1alpha2\nkind: PediaCluster\nmetadata: {name: bad}\nspec: {syncResources: pods}\n",
        );
        write(&dir, "notes.txt", "not a manifest");
        let reports = validate_paths(std::slice::from_ref(&dir)).unwrap();
        let outcomes: Vec<_> = reports.iter().map(|r| (r.name.as_str(), &r.outcome)).collect();
        assert_eq!(outcomes.len(), 3, "{reports:?}");
        assert_eq!(outcomes[0], ("good", &Outcome::Valid));
        assert_eq!(outcomes[1], ("other", &Outcome::Skipped));
        match outcomes[2] {
            ("bad", Outcome::Invalid(msg)) => assert!(msg.contains("spec.syncResources"), "{msg}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_and_unparsable_inputs_are_errors() {
        let missing = PathBuf::from("/nonexistent/pedia.yaml");
        assert!(matches!(validate_paths(&[missing]), Err(ValidateError::Read { .. })));
        let dir = std::env::temp_dir().join(format!("pedia-validate-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = write(&dir, "bad.yaml", "a: [unclosed");
        let err = validate_paths(&[bad]).unwrap_err().to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
