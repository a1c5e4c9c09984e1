//! Rendering a policy's templates: which source objects it selects, the lifecycle name, the
//! references to resolve, the creation condition, and the PediaCluster. Shared by the
//! controllers and `pedia policy render`.

use api_types::cluster::PediaCluster;
use api_types::crd;
use api_types::policy::{ClusterImportPolicySpec, PediaClusterLifecycleSpec, TemplateEngine};
use api_types::validation::{SchemaValidator, UnknownFields, is_dns_subdomain};
use serde_json::{Map, Value, json};

use crate::template::{Template, TemplateError};

/// Why a policy or lifecycle could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("nameTemplate rendered {0:?}, which is not a valid object name (lowercase letters, digits, '-' and '.')")]
    BadName(String),
    #[error("reference {key}: {target} resource name is empty")]
    EmptyReferenceName { key: String, target: String },
    #[error("template: the rendered PediaCluster {0}")]
    Decode(String),
}

/// Template data: `{source, references}`.
pub fn data(source: &Value, references: &Map<String, Value>) -> Value {
    json!({"source": source, "references": references})
}

/// A reference's templates.
#[derive(Debug)]
pub struct ReferenceTemplates {
    pub key: String,
    pub group: String,
    pub resource: String,
    namespace: Option<Template>,
    name: Template,
    namespace_source: Option<String>,
    name_source: String,
}

/// Where a reference points, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceTarget {
    pub namespace: Option<String>,
    pub name: String,
}

impl ReferenceTemplates {
    fn compile(
        key: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        engine: TemplateEngine,
    ) -> Result<Self, TemplateError> {
        let namespace_template = namespace
            .filter(|n| !n.is_empty())
            .map(|n| Template::parse(&format!("references[{key}].namespaceTemplate"), n, engine))
            .transpose()?;
        Ok(Self {
            key: key.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace_template,
            name: Template::parse(&format!("references[{key}].nameTemplate"), name, engine)?,
            namespace_source: namespace.filter(|n| !n.is_empty()).map(str::to_owned),
            name_source: name.to_owned(),
        })
    }

    /// Renders where the reference points, with the data resolved so far (later references
    /// may use earlier ones).
    pub fn target(&self, data: &Value) -> Result<ReferenceTarget, RenderError> {
        let namespace = match &self.namespace {
            Some(t) => Some(t.render(data)?.trim().to_owned()).filter(|n| !n.is_empty()),
            None => None,
        };
        let name = self.name.render(data)?.trim().to_owned();
        if name.is_empty() {
            let mut target = format!("{}/{}", self.group, self.resource);
            if let Some(ns) = &self.namespace_source {
                target.push_str(&format!("/{ns}"));
            }
            target.push_str(&format!("/{}", self.name_source));
            return Err(RenderError::EmptyReferenceName { key: self.key.clone(), target });
        }
        Ok(ReferenceTarget { namespace, name })
    }
}

/// `(key, group, resource, namespaceTemplate, nameTemplate)` of each reference, compiled in order.
fn compile_references<'a>(
    refs: impl Iterator<Item = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str)>,
    engine: TemplateEngine,
) -> Result<Vec<ReferenceTemplates>, TemplateError> {
    refs.map(|(key, group, resource, ns, name)| ReferenceTemplates::compile(key, group, resource, ns, name, engine))
        .collect()
}

/// What a lifecycle renders: references, creation condition and PediaCluster.
#[derive(Debug)]
pub struct LifecycleTemplates {
    pub references: Vec<ReferenceTemplates>,
    creation: Template,
    template: Template,
}

impl LifecycleTemplates {
    pub fn from_lifecycle(spec: &PediaClusterLifecycleSpec) -> Result<Self, TemplateError> {
        let engine = spec.template_engine.unwrap_or_default();
        let refs = spec.references.iter().flatten();
        let references = compile_references(
            refs.map(|r| (&*r.key, &*r.group, &*r.resource, r.namespace_template.as_deref(), &*r.name_template)),
            engine,
        )?;
        Self::new(references, &spec.template, &spec.creation_condition, engine)
    }

    fn new(
        references: Vec<ReferenceTemplates>,
        template: &str,
        creation: &str,
        engine: TemplateEngine,
    ) -> Result<Self, TemplateError> {
        Ok(Self {
            references,
            creation: Template::parse("creationCondition", creation, engine)?,
            template: Template::parse("template", template, engine)?,
        })
    }

    /// Whether the PediaCluster may be created.
    pub fn creation_condition(&self, data: &Value) -> Result<bool, RenderError> {
        Ok(self.creation.holds(data)?)
    }

    /// The PediaCluster, named `name`, decoded and validated against our CRD (unknown fields
    /// are dropped, as upstream ignores them).
    pub fn cluster(&self, data: &Value, name: &str, decoder: &ClusterDecoder) -> Result<PediaCluster, RenderError> {
        decoder.decode(&self.template.render(data)?, name)
    }
}

/// A whole policy's templates.
#[derive(Debug)]
pub struct PolicyTemplates {
    selector: Option<Template>,
    name: Template,
    pub lifecycle: LifecycleTemplates,
}

impl PolicyTemplates {
    /// Parses every template of the policy; the first error names its field.
    pub fn compile(spec: &ClusterImportPolicySpec) -> Result<Self, TemplateError> {
        let engine = spec.template_engine.unwrap_or_default();
        let selector = spec
            .source
            .selector_template
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Template::parse("source.selectorTemplate", s, engine))
            .transpose()?;
        let name = Template::parse("nameTemplate", &spec.name_template, engine)?;
        let refs = spec.references.iter().flatten();
        let references = compile_references(
            refs.map(|r| (&*r.key, &*r.group, &*r.resource, r.namespace_template.as_deref(), &*r.name_template)),
            engine,
        )?;
        let lifecycle = LifecycleTemplates::new(references, &spec.template, &spec.creation_condition, engine)?;
        Ok(Self { selector, name, lifecycle })
    }

    pub fn has_selector(&self) -> bool {
        self.selector.is_some()
    }

    /// Whether the policy imports this source object (always, without a selector).
    pub fn selects(&self, source: &Value) -> Result<bool, RenderError> {
        match &self.selector {
            Some(t) => Ok(t.holds(&data(source, &Map::new()))?),
            None => Ok(true),
        }
    }

    /// The lifecycle (and PediaCluster) name for a source object.
    pub fn name(&self, source: &Value) -> Result<String, RenderError> {
        let name = self.name.render(&data(source, &Map::new()))?.trim().to_owned();
        if !is_dns_subdomain(&name) {
            return Err(RenderError::BadName(name));
        }
        Ok(name)
    }
}

/// Decodes rendered PediaCluster manifests (YAML or JSON; apiVersion and kind may be left out).
pub struct ClusterDecoder {
    validator: SchemaValidator,
}

impl ClusterDecoder {
    pub fn new() -> Result<Self, api_types::validation::SchemaError> {
        let crds: Vec<_> = crd::pedia_crds();
        Ok(Self { validator: SchemaValidator::new(&crds)? })
    }

    pub fn decode(&self, rendered: &str, name: &str) -> Result<PediaCluster, RenderError> {
        let bad = |m: String| RenderError::Decode(m);
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(rendered).map_err(|e| bad(format!("is not valid YAML: {e}")))?;
        let mut object: Value = serde_json::to_value(yaml).map_err(|e| bad(format!("is not valid YAML: {e}")))?;
        let Some(map) = object.as_object_mut() else {
            return Err(bad(format!("must be a mapping with a spec, got {:?}", rendered.trim())));
        };
        for (field, want) in [("apiVersion", "cluster.clusterpedia.io/v1alpha2"), ("kind", "PediaCluster")] {
            match map.get(field).and_then(Value::as_str) {
                None => {
                    map.insert(field.into(), Value::String(want.into()));
                }
                Some(got) if got == want => {}
                Some(got) => return Err(bad(format!("has {field} {got:?}; it must be {want:?} or left out"))),
            }
        }
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        match metadata.as_object_mut() {
            Some(m) => {
                m.insert("name".into(), Value::String(name.into()));
            }
            None => return Err(bad("has a metadata that is not a mapping".into())),
        }
        let valid = self
            .validator
            .validate_with(&object, UnknownFields::Prune)
            .map_err(|e| bad(format!("is not valid: {e}")))?;
        serde_json::from_value(valid).map_err(|e| bad(format!("is not valid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> ClusterDecoder {
        ClusterDecoder::new().unwrap()
    }

    #[test]
    fn decoding_defaults_type_meta_and_forces_the_name() {
        let c = decoder()
            .decode("metadata: {name: other, labels: {a: b}}\nspec:\n  apiserver: https://x\n  tokenData: YSs/Yj0=\n  unknown: 1\n  syncResources: []", "karmada-m1")
            .unwrap();
        assert_eq!(c.metadata.name.as_deref(), Some("karmada-m1"));
        assert_eq!(c.spec.token_data.unwrap().0, b"a+?b=");
        assert_eq!(c.metadata.labels.unwrap()["a"], "b");
    }

    #[test]
    fn bad_pediaclusters_are_clear_errors() {
        let e = decoder().decode("spec: [1", "x").unwrap_err().to_string();
        assert!(e.contains("not valid YAML"), "{e}");
        let e = decoder().decode("kind: Pod\nspec: {}", "x").unwrap_err().to_string();
        assert!(e.contains("kind \"Pod\""), "{e}");
        let e = decoder().decode("spec:\n  caData: 'not base64!'\n  syncResources: []", "x").unwrap_err().to_string();
        assert!(e.contains("spec.caData"), "{e}");
        let e = decoder().decode("", "x").unwrap_err().to_string();
        assert!(e.contains("must be a mapping"), "{e}");
    }

    #[test]
    fn empty_reference_names_say_where() {
        let r = ReferenceTemplates::compile(
            "secret",
            "",
            "secrets",
            Some("{{ .source.ns }}"),
            "{{ .source.nope }}",
            TemplateEngine::Go,
        )
        .unwrap();
        let e = r.target(&data(&json!({"ns": "a"}), &Map::new())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reference secret: /secrets/{{ .source.ns }}/{{ .source.nope }} resource name is empty"
        );
    }
}
