//! ClusterImportPolicy controller: validates the templates, negotiates the source and
//! reference resources, watches the source objects, and keeps one PediaClusterLifecycle per
//! selected source object (created, updated, deleted), with `Validated` and `Reconciling`
//! conditions that carry messages.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api_types::conditions::{self, policy as cond};
use api_types::policy::{
    ClusterImportPolicy, ClusterImportPolicyStatus, DependentResource, PediaClusterLifecycle,
    PediaClusterLifecycleSpec, ReferenceResourceTemplate,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
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
        finalize::remove(&api, &policy, conditions::policy::FINALIZER).await?;
        return Ok(Action::await_change());
    }
    if finalize::ensure(&api, &policy, conditions::policy::FINALIZER).await? {
        return Ok(Action::await_change());
    }
    let mut conds: Vec<Condition> = policy.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let action = reconcile_policy(&policy, &ctx, &mut conds).await;
    let changed = policy.status.as_ref().and_then(|s| s.conditions.as_ref()) != Some(&conds);
    if changed {
        let status = ClusterImportPolicyStatus { conditions: Some(conds) };
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
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
    let uid = owner.uid.clone();
    let owned: BTreeMap<String, PediaClusterLifecycle> = lifecycles
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|l| owner_of(l).is_some_and(|o| o.uid == uid))
        .map(|l| (l.name_any(), l))
        .collect();

    let mut failures = Vec::new();
    let mut produced = HashSet::new();
    let source_gvr = gvr_of(&source);
    let mut sources = ctx.deps.list(&source_gvr);
    sources.sort_by_key(|o| (o.namespace(), o.name_any()));
    for obj in sources {
        let key = match obj.namespace() {
            Some(ns) => format!("{ns}/{}", obj.name_any()),
            None => obj.name_any(),
        };
        let value = super::as_json(obj.as_ref())?;
        match templates.selects(&value) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                failures.push(format!("{key}: {e}"));
                continue;
            }
        }
        let lifecycle_name = match templates.name(&value) {
            Ok(n) => n,
            Err(e) => {
                failures.push(format!("{key}: {e}"));
                continue;
            }
        };
        if !produced.insert(lifecycle_name.clone()) {
            failures
                .push(format!("{key}: lifecycle name {lifecycle_name:?} is rendered for another source object too"));
            continue;
        }
        let wanted = PediaClusterLifecycleSpec {
            source: DependentResource {
                group: source.group.clone(),
                version: source.version.clone(),
                resource: source.plural.clone(),
                namespace: obj.namespace(),
                name: obj.name_any(),
            },
            references: (!references.is_empty()).then(|| references.clone()),
            template: spec.template.clone(),
            creation_condition: spec.creation_condition.clone(),
            template_engine: spec.template_engine,
        };
        let result: Result<(), String> = match owned.get(&lifecycle_name) {
            Some(existing) if existing.spec == wanted => Ok(()),
            Some(_) => lifecycles
                .patch(&lifecycle_name, &PatchParams::default(), &Patch::Merge(json!({"spec": wanted})))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => {
                let mut l = PediaClusterLifecycle::new(&lifecycle_name, wanted);
                l.metadata.owner_references = Some(vec![owner.clone()]);
                match lifecycles.create(&PostParams::default(), &l).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => Err("exists and is not owned by this policy".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        if let Err(e) = result {
            failures.push(format!("{key}: lifecycle {lifecycle_name}: {e}"));
        }
    }
    for stale in owned.keys().filter(|n| !produced.contains(*n)) {
        match lifecycles.delete(stale, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(policy = %name, lifecycle = %stale, "source gone or no longer selected: lifecycle deleted")
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => failures.push(format!("deleting lifecycle {stale}: {e}")),
        }
    }
    if failures.is_empty() {
        conditions::set(conds, cond::RECONCILING, true, cond::REASON_RECONCILE_SOURCE_RESOURCE_AND_LIFECYCLE, "");
        Ok(Action::await_change())
    } else {
        let mut message = failures.iter().take(MESSAGE_ITEMS).cloned().collect::<Vec<_>>().join("; ");
        if failures.len() > MESSAGE_ITEMS {
            message.push_str(&format!(" (and {} more)", failures.len() - MESSAGE_ITEMS));
        }
        tracing::warn!(policy = %name, %message, "policy reconcile had failures");
        conditions::set(conds, cond::RECONCILING, false, cond::REASON_FAILED_RECONCILE, &message);
        Ok(Action::requeue(Duration::from_secs(30)))
    }
}

/// Resolves the source and reference resources; on failure sets `Validated=False` with the
/// reason and message and returns None.
async fn negotiate_policy(
    ctx: &Context,
    spec: &api_types::policy::ClusterImportPolicySpec,
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
