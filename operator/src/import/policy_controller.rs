//! ClusterImportPolicy controller: validates the templates, negotiates the source and
//! reference resources, watches the source objects, and keeps one PediaClusterLifecycle per
//! selected source object (created, updated, deleted), with `Validated` and `Reconciling`
//! conditions that carry messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::conditions::{self, policy as cond};
use api_types::policy::{
    ClusterImportPolicy, ClusterImportPolicySpec, ClusterImportPolicyStatus, DependentResource, PediaClusterLifecycle,
    PediaClusterLifecycleSpec, ReferenceResourceTemplate,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::deps::gvr_of;
use super::discovery::negotiate;
use super::render::PolicyTemplates;
use super::{Context, Error, Negotiated, finalize, owner_of};

/// How many per-object failures a condition message lists.
const MESSAGE_ITEMS: usize = 5;

pub async fn reconcile(policy: Arc<ClusterImportPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = policy.name_any();
    let api: Api<ClusterImportPolicy> = Api::all(ctx.client.clone());
    if policy.meta().deletion_timestamp.is_some() {
        ctx.deps.remove_policy(&name);
        ctx.forget(&name);
        // Lifecycles and PediaClusters go by garbage collection (owner references).
        finalize::remove(&api, &policy, conditions::policy::FINALIZER)
            .await
            .map_err(Error::kube("removing the finalizer"))?;
        return Ok(Action::await_change());
    }
    if finalize::ensure(&api, &policy, conditions::policy::FINALIZER)
        .await
        .map_err(Error::kube("adding the finalizer"))?
    {
        return Ok(Action::await_change());
    }
    let mut conds: Vec<Condition> = policy.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let action = reconcile_policy(&policy, &ctx, &mut conds).await;
    let changed = policy.status.as_ref().and_then(|s| s.conditions.as_ref()) != Some(&conds);
    if changed {
        let status = ClusterImportPolicyStatus { conditions: Some(conds) };
        super::apply_status(&api, &name, "ClusterImportPolicy", &status).await?;
    }
    action
}

async fn reconcile_policy(
    policy: &ClusterImportPolicy,
    ctx: &Context,
    conds: &mut Vec<Condition>,
) -> Result<Action, Error> {
    let name = policy.name_any();
    let spec = &policy.spec;
    let templates = match PolicyTemplates::compile(spec) {
        Ok(t) => t,
        Err(e) => {
            let reason = match e.field.as_str() {
                "nameTemplate" => cond::REASON_FAILED_PARSE_LIFECYCLE_NAME,
                "source.selectorTemplate" => cond::REASON_FAILED_PARSE_SOURCE_SELECTOR,
                _ => cond::REASON_INVALAID_POLICY,
            };
            tracing::warn!(policy = %name, error = %e, "invalid policy template");
            conditions::set(conds, cond::VALIDATED, false, reason, &e.to_string());
            conditions::remove(conds, cond::RECONCILING);
            ctx.deps.remove_policy(&name);
            return Ok(Action::await_change());
        }
    };
    // Discovery once per policy generation: source events re-run this reconcile often.
    let generation = policy.metadata.generation;
    let cached = ctx.negotiated(&name).filter(|n| generation.is_some() && n.generation == generation);
    let Negotiated { source, references, reference_ars, .. } = match cached {
        Some(n) => n,
        None => match negotiate_policy(ctx, spec, generation, conds).await {
            Some(n) => {
                ctx.remember(&name, n.clone());
                n
            }
            // The resources' CRDs may be installed later.
            None => return Ok(Action::requeue(Duration::from_secs(15))),
        },
    };
    ctx.deps.set_policy(&name, &source, &reference_ars);
    conditions::set(conds, cond::VALIDATED, true, cond::REASON_SUCCESS, "");
    if !ctx.deps.synced(&name) {
        conditions::set(
            conds,
            cond::RECONCILING,
            false,
            cond::REASON_WAIT_RESOURCE_SYNCED,
            "waiting for the source and reference resources to be listed",
        );
        return Ok(Action::requeue(Duration::from_secs(2)));
    }

    let lifecycles: Api<PediaClusterLifecycle> = Api::all(ctx.client.clone());
    // Without a uid, an empty one would match owner references that have none.
    let Some(owner) = policy.controller_owner_ref(&()) else {
        return Err(Error::NoUid { kind: "ClusterImportPolicy", name: name.clone() });
    };
    let owned: BTreeMap<String, PediaClusterLifecycleSpec> = lifecycles
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing lifecycles"))?
        .items
        .into_iter()
        .filter(|l| owner_of(l).is_some_and(|o| o.uid == owner.uid))
        .map(|l| (l.name_any(), l.spec))
        .collect();
    let sources = ctx
        .deps
        .list(&gvr_of(&source))
        .iter()
        .map(|o| SourceObject::of(o.as_ref()))
        .collect::<Result<Vec<_>, Error>>()?;
    let Wanted { lifecycles: wanted, sources, mut failures } = wanted(&templates, spec, &source, &references, sources);
    let plan = changes(&owned, &wanted);
    let failed = |name: &str, why: String| format!("{}: lifecycle {name}: {why}", sources[name]);
    for lifecycle_name in &plan.create {
        let mut l = PediaClusterLifecycle::new(lifecycle_name, wanted[lifecycle_name].clone());
        l.metadata.owner_references = Some(vec![owner.clone()]);
        match lifecycles.create(&PostParams::default(), &l).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                failures.push(failed(lifecycle_name, "exists and is not owned by this policy".into()))
            }
            Err(e) => failures.push(failed(lifecycle_name, e.to_string())),
        }
    }
    for lifecycle_name in &plan.update {
        let patch = Patch::Merge(json!({"spec": wanted[lifecycle_name]}));
        if let Err(e) = lifecycles.patch(lifecycle_name, &PatchParams::default(), &patch).await {
            failures.push(failed(lifecycle_name, e.to_string()));
        }
    }
    for stale in &plan.delete {
        match lifecycles.delete(stale, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(policy = %name, lifecycle = %stale, "source gone or no longer selected: lifecycle deleted")
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => failures.push(format!("deleting lifecycle {stale}: {e}")),
        }
    }
    let (ok, reason, message) = reconciling(&failures);
    conditions::set(conds, cond::RECONCILING, ok, reason, &message);
    if ok {
        Ok(Action::await_change())
    } else {
        tracing::warn!(policy = %name, %message, "policy reconcile had failures");
        Ok(Action::requeue(Duration::from_secs(30)))
    }
}

/// A source object as the templates see it.
struct SourceObject {
    namespace: Option<String>,
    name: String,
    value: serde_json::Value,
}

impl SourceObject {
    fn of(obj: &kube::api::DynamicObject) -> Result<Self, Error> {
        Ok(Self { namespace: obj.namespace(), name: obj.name_any(), value: super::as_json(obj)? })
    }

    fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The lifecycles a policy wants, by name, and why some source objects have none.
#[derive(Debug, Default)]
struct Wanted {
    lifecycles: BTreeMap<String, PediaClusterLifecycleSpec>,
    /// The source object (`namespace/name`) of each lifecycle, for messages.
    sources: BTreeMap<String, String>,
    failures: Vec<String>,
}

/// Which lifecycles the policy wants (pure): one per selected source object, named by its
/// nameTemplate; objects whose templates fail, or whose name another object took, are failures.
fn wanted(
    templates: &PolicyTemplates,
    spec: &ClusterImportPolicySpec,
    source: &ApiResource,
    references: &[ReferenceResourceTemplate],
    mut sources: Vec<SourceObject>,
) -> Wanted {
    sources.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut out = Wanted::default();
    for obj in sources {
        let key = obj.key();
        match templates.selects(&obj.value) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                out.failures.push(format!("{key}: {e}"));
                continue;
            }
        }
        let lifecycle_name = match templates.name(&obj.value) {
            Ok(n) => n,
            Err(e) => {
                out.failures.push(format!("{key}: {e}"));
                continue;
            }
        };
        if out.lifecycles.contains_key(&lifecycle_name) {
            out.failures
                .push(format!("{key}: lifecycle name {lifecycle_name:?} is rendered for another source object too"));
            continue;
        }
        let lifecycle = PediaClusterLifecycleSpec {
            source: DependentResource {
                group: source.group.clone(),
                version: source.version.clone(),
                resource: source.plural.clone(),
                namespace: obj.namespace,
                name: obj.name,
            },
            references: (!references.is_empty()).then(|| references.to_vec()),
            template: spec.template.clone(),
            creation_condition: spec.creation_condition.clone(),
            template_engine: spec.template_engine,
        };
        out.sources.insert(lifecycle_name.clone(), key);
        out.lifecycles.insert(lifecycle_name, lifecycle);
    }
    out
}

/// The writes that make the owned lifecycles the wanted ones.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    create: Vec<String>,
    update: Vec<String>,
    delete: Vec<String>,
}

fn changes(
    owned: &BTreeMap<String, PediaClusterLifecycleSpec>,
    wanted: &BTreeMap<String, PediaClusterLifecycleSpec>,
) -> Changes {
    let mut c = Changes::default();
    for (name, spec) in wanted {
        match owned.get(name) {
            None => c.create.push(name.clone()),
            Some(have) if have != spec => c.update.push(name.clone()),
            Some(_) => {}
        }
    }
    c.delete = owned.keys().filter(|n| !wanted.contains_key(*n)).cloned().collect();
    c
}

/// The `Reconciling` condition after a pass with these failures: status, reason, message (the
/// first few failures, and how many more).
fn reconciling(failures: &[String]) -> (bool, &'static str, String) {
    if failures.is_empty() {
        return (true, cond::REASON_RECONCILE_SOURCE_RESOURCE_AND_LIFECYCLE, String::new());
    }
    let mut message = failures.iter().take(MESSAGE_ITEMS).cloned().collect::<Vec<_>>().join("; ");
    if failures.len() > MESSAGE_ITEMS {
        message.push_str(&format!(" (and {} more)", failures.len() - MESSAGE_ITEMS));
    }
    (false, cond::REASON_FAILED_RECONCILE, message)
}

/// Resolves the source and reference resources; on failure sets `Validated=False` with the
/// reason and message and returns None.
async fn negotiate_policy(
    ctx: &Context,
    spec: &ClusterImportPolicySpec,
    generation: Option<i64>,
    conds: &mut Vec<Condition>,
) -> Option<Negotiated> {
    let source = match negotiate(
        &ctx.client,
        &spec.source.group,
        &spec.source.resource,
        spec.source.versions.as_deref().unwrap_or_default(),
    )
    .await
    {
        Ok(ar) => ar,
        Err(message) => {
            conditions::set(conds, cond::VALIDATED, false, cond::REASON_FAILED_NEGOTIATE_SOURCE_RESOURCE, &message);
            return None;
        }
    };
    let mut references = Vec::new();
    let mut reference_ars = Vec::new();
    for r in spec.references.iter().flatten() {
        match negotiate(&ctx.client, &r.group, &r.resource, r.versions.as_deref().unwrap_or_default()).await {
            Ok(ar) => {
                references.push(ReferenceResourceTemplate {
                    key: r.key.clone(),
                    group: r.group.clone(),
                    resource: r.resource.clone(),
                    namespace_template: r.namespace_template.clone(),
                    name_template: r.name_template.clone(),
                    version: ar.version.clone(),
                });
                reference_ars.push(ar);
            }
            Err(message) => {
                let message = format!("reference {}: {message}", r.key);
                conditions::set(
                    conds,
                    cond::VALIDATED,
                    false,
                    cond::REASON_FAILED_NEGOTIATE_REFERENCE_RESOURCE,
                    &message,
                );
                return None;
            }
        }
    }
    Some(Negotiated { generation, source, references, reference_ars })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::policy::SourceType;
    use serde_json::Value;

    fn policy(selector: Option<&str>, name: &str) -> ClusterImportPolicySpec {
        ClusterImportPolicySpec {
            source: SourceType {
                group: "cluster.karmada.io".into(),
                resource: "clusters".into(),
                selector_template: selector.map(str::to_owned),
                ..SourceType::default()
            },
            name_template: name.into(),
            template: "spec: {}".into(),
            creation_condition: "true".into(),
            ..ClusterImportPolicySpec::default()
        }
    }

    fn source() -> ApiResource {
        ApiResource {
            group: "cluster.karmada.io".into(),
            version: "v1alpha1".into(),
            api_version: "cluster.karmada.io/v1alpha1".into(),
            kind: "Cluster".into(),
            plural: "clusters".into(),
        }
    }

    fn object(name: &str, labels: Value) -> SourceObject {
        SourceObject {
            namespace: None,
            name: name.into(),
            value: json!({"metadata": {"name": name, "labels": labels}}),
        }
    }

    fn plan(spec: &ClusterImportPolicySpec, objects: Vec<SourceObject>) -> Wanted {
        wanted(&PolicyTemplates::compile(spec).unwrap(), spec, &source(), &[], objects)
    }

    #[test]
    fn one_lifecycle_per_selected_source_object() {
        let spec = policy(Some("{{ .source.metadata.labels.sync }}"), "karmada-{{ .source.metadata.name }}");
        let w = plan(
            &spec,
            vec![object("m2", json!({"sync": "true"})), object("m1", json!({"sync": "true"})), object("m3", json!({}))],
        );
        assert!(w.failures.is_empty(), "{:?}", w.failures);
        assert_eq!(w.lifecycles.keys().collect::<Vec<_>>(), ["karmada-m1", "karmada-m2"], "m3 is not selected");
        let m1 = &w.lifecycles["karmada-m1"];
        assert_eq!(
            (m1.source.version.as_str(), m1.source.resource.as_str(), m1.source.name.as_str()),
            ("v1alpha1", "clusters", "m1")
        );
        assert_eq!((m1.template.as_str(), m1.creation_condition.as_str()), ("spec: {}", "true"));
        assert_eq!(m1.references, None);
        assert_eq!(w.sources["karmada-m2"], "m2");
    }

    #[test]
    fn failing_templates_and_taken_names_are_failures_naming_the_object() {
        let spec = policy(None, "{{ .source.metadata.labels.region }}");
        let w = plan(
            &spec,
            vec![object("a", json!({"region": "eu"})), object("b", json!({"region": "eu"})), object("c", json!({}))],
        );
        assert_eq!(w.lifecycles.keys().collect::<Vec<_>>(), ["eu"]);
        assert_eq!(w.failures.len(), 2, "{:?}", w.failures);
        assert!(w.failures[0].starts_with("b: lifecycle name \"eu\" is rendered for another"), "{:?}", w.failures);
        assert!(w.failures[1].starts_with("c: "), "an empty name is refused: {:?}", w.failures);
    }

    #[test]
    fn changes_create_update_and_delete() {
        let spec = policy(None, "{{ .source.metadata.name }}");
        let w = plan(&spec, vec![object("same", json!({})), object("new", json!({})), object("changed", json!({}))]);
        let mut owned = w.lifecycles.clone();
        owned.remove("new");
        owned.get_mut("changed").unwrap().template = "spec: {old: true}".into();
        owned.insert("gone".into(), w.lifecycles["same"].clone());
        let c = changes(&owned, &w.lifecycles);
        assert_eq!(
            c,
            Changes { create: vec!["new".into()], update: vec!["changed".into()], delete: vec!["gone".into()] }
        );
        assert_eq!(changes(&w.lifecycles, &w.lifecycles), Changes::default(), "nothing to write when in step");
    }

    #[test]
    fn reconciling_lists_the_first_failures() {
        assert_eq!(reconciling(&[]), (true, cond::REASON_RECONCILE_SOURCE_RESOURCE_AND_LIFECYCLE, String::new()));
        let failures: Vec<String> = (1..=7).map(|i| format!("f{i}")).collect();
        let (ok, reason, message) = reconciling(&failures);
        assert_eq!((ok, reason), (false, cond::REASON_FAILED_RECONCILE));
        assert_eq!(message, "f1; f2; f3; f4; f5 (and 2 more)");
    }
}
