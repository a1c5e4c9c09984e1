//! PediaClusterLifecycle controller: resolves the references in order, watches the source and
//! referenced objects, evaluates the creation condition, creates the PediaCluster (named after
//! the lifecycle, owned by it) and afterwards patches its six credential fields when they
//! change. Conditions `Created` / `Updating` use upstream's reasons, with messages.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api_types::cluster::{PediaCluster, PediaClusterSpec};
use api_types::conditions::{self, lifecycle as cond};
use api_types::policy::{DependentResource, PediaClusterLifecycle, PediaClusterLifecycleStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};

use super::deps::Dependency;
use super::render::{LifecycleTemplates, data};
use super::{Context, Error, finalize, owner_of};
use api_types::Gvr;

/// The fields a lifecycle keeps in sync after creation (upstream's six).
fn credentials(spec: &PediaClusterSpec) -> Value {
    json!({
        "apiserver": spec.apiserver,
        "kubeconfig": spec.kubeconfig,
        "caData": spec.ca_data,
        "tokenData": spec.token_data,
        "certData": spec.cert_data,
        "keyData": spec.key_data,
    })
}

/// What one pass decided: the condition to write and when to look again.
struct Outcome {
    status: bool,
    reason: &'static str,
    message: String,
    requeue: Option<Duration>,
}

fn outcome(status: bool, reason: &'static str, message: impl Into<String>) -> Outcome {
    Outcome { status, reason, message: message.into(), requeue: None }
}

pub async fn reconcile(lifecycle: Arc<PediaClusterLifecycle>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = lifecycle.name_any();
    let api: Api<PediaClusterLifecycle> = Api::all(ctx.client.clone());
    if lifecycle.meta().deletion_timestamp.is_some() {
        ctx.deps.remove_lifecycle(&name);
        finalize::remove(&api, &lifecycle, cond::FINALIZER).await?;
        return Ok(Action::await_change());
    }
    if finalize::ensure(&api, &lifecycle, cond::FINALIZER).await? {
        return Ok(Action::await_change());
    }
    let clusters: Api<PediaCluster> = Api::all(ctx.client.clone());
    let existing = clusters.get_opt(&name).await?;
    let status = lifecycle.status.clone().unwrap_or_default();
    let mut conds: Vec<Condition> = status.conditions.clone().unwrap_or_default();
    let mut references = status.references.clone();
    let (kind, result) = match &existing {
        None => {
            conditions::remove(&mut conds, cond::UPDATING);
            (cond::CREATED, step(&lifecycle, &ctx, None, &mut references).await)
        }
        Some(pc) => {
            if conditions::get(&conds, cond::CREATED).is_none_or(|c| c.status != "True") {
                // A PediaCluster this lifecycle owns is one it created: the reconcile after the
                // create may read the lifecycle from a cache that has not seen its status yet.
                let uid = lifecycle.uid();
                let ours = pc.metadata.owner_references.iter().flatten().any(|o| Some(&o.uid) == uid.as_ref());
                let reason = if ours { cond::REASON_PEDIA_CLUSTER_CREATED } else { cond::REASON_PEDIA_CLUSTER_EXISTED };
                conditions::set(&mut conds, cond::CREATED, true, reason, "");
            }
            (cond::UPDATING, step(&lifecycle, &ctx, Some(pc), &mut references).await)
        }
    };
    let o = result?;
    conditions::set(&mut conds, kind, o.status, o.reason, &o.message);
    let new_status = PediaClusterLifecycleStatus { conditions: Some(conds), references };
    if lifecycle.status.as_ref() != Some(&new_status) {
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": new_status}))).await?;
    }
    Ok(o.requeue.map_or_else(Action::await_change, Action::requeue))
}

async fn step(
    lifecycle: &PediaClusterLifecycle,
    ctx: &Context,
    existing: Option<&PediaCluster>,
    resolved_refs: &mut Option<Vec<DependentResource>>,
) -> Result<Outcome, Error> {
    let name = lifecycle.name_any();
    let Some(policy) = owner_of(lifecycle) else {
        ctx.deps.remove_lifecycle(&name);
        return Ok(outcome(
            false,
            cond::REASON_ORPHAN_LIFECYCLE,
            "the lifecycle has no ClusterImportPolicy controller owner",
        ));
    };
    if !ctx.deps.synced(&policy.name) {
        return Ok(Outcome {
            requeue: Some(Duration::from_secs(2)),
            ..outcome(
                false,
                cond::REASON_WAIT_DEPENDENT_RESOURCE_SYNCED,
                format!("waiting for policy {} to watch its resources", policy.name),
            )
        });
    }
    let spec = &lifecycle.spec;
    let src = &spec.source;
    let source_gvr = Gvr { group: src.group.clone(), version: src.version.clone(), resource: src.resource.clone() };
    let mut deps = HashSet::from([Dependency {
        gvr: source_gvr.clone(),
        namespace: src.namespace.clone(),
        name: src.name.clone(),
    }]);
    let record = |deps: &HashSet<Dependency>| ctx.deps.set_lifecycle(&name, deps.clone());
    let Some(source) = ctx.deps.get(&source_gvr, src.namespace.as_deref(), &src.name) else {
        record(&deps);
        let key = src.namespace.as_ref().map_or(src.name.clone(), |ns| format!("{ns}/{}", src.name));
        return Ok(outcome(
            false,
            cond::REASON_SOURCE_RESOURCE_NOT_FOUND,
            format!("source {}/{} {key} not found", src.group, src.resource),
        ));
    };
    let templates = match LifecycleTemplates::from_lifecycle(spec) {
        Ok(t) => t,
        Err(e) => {
            record(&deps);
            return Ok(outcome(false, cond::REASON_FAILED_RESOLVE_AND_DECODE_PEDIA_CLUSTER, e.to_string()));
        }
    };
    let source_value = super::as_json(source.as_ref())?;
    let mut refs = Map::new();
    let mut resolved = Vec::new();
    for (r, t) in spec.references.iter().flatten().zip(&templates.references) {
        let target = match t.target(&data(&source_value, &refs)) {
            Ok(target) => target,
            Err(e) => {
                record(&deps);
                return Ok(outcome(false, cond::REASON_FAILED_REFERENCE_RESOURCE_PARSE, e.to_string()));
            }
        };
        let gvr = Gvr { group: r.group.clone(), version: r.version.clone(), resource: r.resource.clone() };
        // Watched before it exists: a Secret created later re-triggers this lifecycle.
        deps.insert(Dependency { gvr: gvr.clone(), namespace: target.namespace.clone(), name: target.name.clone() });
        let Some(obj) = ctx.deps.get(&gvr, target.namespace.as_deref(), &target.name) else {
            record(&deps);
            let key = target.namespace.as_ref().map_or(target.name.clone(), |ns| format!("{ns}/{}", target.name));
            return Ok(outcome(
                false,
                cond::REASON_REFERENCE_RESOURCE_NOT_FOUND,
                format!("reference {}: {}/{} {key} not found", r.key, r.group, r.resource),
            ));
        };
        resolved.push(DependentResource {
            group: r.group.clone(),
            version: r.version.clone(),
            resource: r.resource.clone(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        });
        refs.insert(r.key.clone(), super::as_json(obj.as_ref())?);
    }
    record(&deps);
    *resolved_refs = Some(resolved);
    let d = data(&source_value, &refs);
    let clusters: Api<PediaCluster> = Api::all(ctx.client.clone());
    match existing {
        None => {
            match templates.creation_condition(&d) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(outcome(false, cond::REASON_WAIT_CREATION_CONDITION, "creationCondition is not true"));
                }
                Err(e) => return Ok(outcome(false, cond::REASON_WAIT_CREATION_CONDITION, e.to_string())),
            }
            let mut pc = match templates.cluster(&d, &name, &ctx.decoder) {
                Ok(pc) => pc,
                Err(e) => {
                    return Ok(outcome(false, cond::REASON_FAILED_RESOLVE_AND_DECODE_PEDIA_CLUSTER, e.to_string()));
                }
            };
            let Some(uid) = lifecycle.uid() else {
                return Ok(outcome(false, cond::REASON_FAILED_SET_OWNER, "the lifecycle has no uid"));
            };
            pc.metadata.owner_references = Some(vec![OwnerReference {
                api_version: PediaClusterLifecycle::api_version(&()).into_owned(),
                kind: PediaClusterLifecycle::kind(&()).into_owned(),
                name: name.clone(),
                uid,
                controller: None,
                block_owner_deletion: None,
            }]);
            match clusters.create(&PostParams::default(), &pc).await {
                Ok(_) => {
                    tracing::info!(lifecycle = %name, "PediaCluster created");
                    Ok(outcome(true, cond::REASON_PEDIA_CLUSTER_CREATED, ""))
                }
                Err(e) => Ok(Outcome {
                    requeue: Some(Duration::from_secs(10)),
                    ..outcome(false, cond::REASON_CREATION_FAILURE, e.to_string())
                }),
            }
        }
        Some(current) => {
            let wanted = match templates.cluster(&d, &name, &ctx.decoder) {
                Ok(pc) => pc,
                Err(e) => {
                    return Ok(outcome(false, cond::REASON_FAILED_RESOLVE_AND_DECODE_PEDIA_CLUSTER, e.to_string()));
                }
            };
            let want = credentials(&wanted.spec);
            if want == credentials(&current.spec) {
                let keep = conditions::get(
                    lifecycle.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default(),
                    cond::UPDATING,
                );
                return Ok(match keep {
                    Some(c) => Outcome {
                        status: c.status == "True",
                        reason: cond::REASON_PEDIA_CLUSTER_UPDATED,
                        message: c.message.clone(),
                        requeue: None,
                    },
                    // Nothing patched yet: False, with upstream's reason.
                    None => outcome(false, cond::REASON_PEDIA_CLUSTER_UPDATED, ""),
                });
            }
            // A JSON merge patch of exactly the six fields (null removes one).
            match clusters.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": want}))).await {
                Ok(_) => {
                    tracing::info!(lifecycle = %name, "PediaCluster credentials updated");
                    Ok(outcome(true, cond::REASON_PEDIA_CLUSTER_UPDATED, ""))
                }
                Err(e) => Ok(Outcome {
                    requeue: Some(Duration::from_secs(10)),
                    ..outcome(false, cond::REASON_FAILED_PATCH_PEDIA_CLUSTER, e.to_string())
                }),
            }
        }
    }
}
