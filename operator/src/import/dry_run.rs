//! `pedia policy render`: one policy, one source object and its references, rendered the way
//! the controllers would, for CI checks and GitOps dry runs.

use std::path::{Path, PathBuf};

use api_types::manifest::parse_documents;
use api_types::policy::ClusterImportPolicy;
use serde_json::{Map, Value};

use super::render::{ClusterDecoder, PolicyTemplates, RenderError, data};
use crate::template::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("policy {policy}: {source}")]
    Template { policy: String, source: TemplateError },
    #[error("policy {policy}: {source}")]
    Render { policy: String, source: RenderError },
    #[error("--reference {0:?}: expected KEY=FILE")]
    ReferenceArg(String),
    #[error("reference {key} ({target}) is needed: pass --reference {key}=FILE")]
    MissingReference { key: String, target: String },
    #[error("reference {key}: the policy points at {target}, but {path} holds {found}")]
    WrongReference { key: String, target: String, path: PathBuf, found: String },
    #[error("building the PediaCluster schema: {0}")]
    Schema(#[from] api_types::validation::SchemaError),
}

fn read_object(path: &Path) -> Result<Value, DryRunError> {
    let text =
        if path == Path::new("-") { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
            .map_err(|e| DryRunError::Read { path: path.to_owned(), message: e.to_string() })?;
    let docs =
        parse_documents(&text).map_err(|e| DryRunError::Input { path: path.to_owned(), message: e.to_string() })?;
    docs.into_iter()
        .find(|d| d.is_object())
        .ok_or_else(|| DryRunError::Input { path: path.to_owned(), message: "holds no object".into() })
}

fn key_of(o: &Value) -> String {
    let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<no name>");
    match o.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// Renders and returns the report: `selector:`, `name:`, `creationCondition:` lines, then the
/// PediaCluster as YAML. A source the selector rejects stops after `selector: false`.
pub fn render(policy: &Path, source: &Path, references: &[String]) -> Result<String, DryRunError> {
    let policy_value = read_object(policy)?;
    let policy_obj: ClusterImportPolicy = serde_json::from_value(policy_value).map_err(|e| DryRunError::Input {
        path: policy.to_owned(),
        message: format!("not a ClusterImportPolicy: {e}"),
    })?;
    let policy_name = policy_obj.metadata.name.clone().unwrap_or_default();
    let templates = PolicyTemplates::compile(&policy_obj.spec)
        .map_err(|source| DryRunError::Template { policy: policy_name.clone(), source })?;
    let render_err = |source| DryRunError::Render { policy: policy_name.clone(), source };
    let source_obj = read_object(source)?;
    let mut given = Vec::new();
    for r in references {
        let (key, file) = r.split_once('=').ok_or_else(|| DryRunError::ReferenceArg(r.clone()))?;
        given.push((key.to_owned(), PathBuf::from(file)));
    }

    let mut out = String::new();
    if templates.has_selector() {
        let selected = templates.selects(&source_obj).map_err(render_err)?;
        out.push_str(&format!("selector: {selected}\n"));
        if !selected {
            // The controllers stop here too: no lifecycle, no PediaCluster.
            return Ok(out);
        }
    }
    let name = templates.name(&source_obj).map_err(render_err)?;
    out.push_str(&format!("name: {name}\n"));

    let mut resolved = Map::new();
    for r in &templates.lifecycle.references {
        let target = r.target(&data(&source_obj, &resolved)).map_err(render_err)?;
        let target_key = match &target.namespace {
            Some(ns) => format!("{ns}/{}", target.name),
            None => target.name.clone(),
        };
        let Some((_, path)) = given.iter().find(|(k, _)| *k == r.key) else {
            return Err(DryRunError::MissingReference { key: r.key.clone(), target: target_key });
        };
        let obj = read_object(path)?;
        let found = key_of(&obj);
        if found != target_key && found != target.name {
            return Err(DryRunError::WrongReference {
                key: r.key.clone(),
                target: target_key,
                path: path.clone(),
                found,
            });
        }
        resolved.insert(r.key.clone(), obj);
    }
    let d = data(&source_obj, &resolved);
    let create = templates.lifecycle.creation_condition(&d).map_err(render_err)?;
    out.push_str(&format!("creationCondition: {create}\n"));
    let cluster = templates.lifecycle.cluster(&d, &name, &ClusterDecoder::new()?).map_err(render_err)?;
    let yaml = serde_yaml::to_string(&cluster).map_err(|e| DryRunError::Input {
        path: policy.to_owned(),
        message: format!("printing the PediaCluster: {e}"),
    })?;
    out.push_str("---\n");
    out.push_str(&yaml);
    Ok(out)
}
