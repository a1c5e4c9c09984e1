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
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
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
        finalize::remove(&api, &lifecycle, cond::FINALIZER).await.map_err(Error::kube("removing the finalizer"))?;
        return Ok(Action::await_change());
    }
    if finalize::ensure(&api, &lifecycle, cond::FINALIZER).await.map_err(Error::kube("adding the finalizer"))? {
        return Ok(Action::await_change());
    }
    let clusters: Api<PediaCluster> = Api::all(ctx.client.clone());
    let existing = clusters.get_opt(&name).await.map_err(Error::kube("reading the PediaCluster"))?;
    let mut references = lifecycle.status.as_ref().and_then(|s| s.references.clone());
    let o = step(&lifecycle, &ctx, existing.as_ref(), &mut references).await?;
    let existing = existing.as_ref().map(|pc| Existing { ours: owns(&lifecycle, pc) });
    let new_status = next_status(lifecycle.status.as_ref(), existing, &o, references);
    if lifecycle.status.as_ref() != Some(&new_status) {
        super::apply_status(&api, &name, "PediaClusterLifecycle", &new_status).await?;
    }
    Ok(o.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// What the status needs to know of an existing PediaCluster.
#[derive(Debug, Clone, Copy)]
struct Existing {
    /// The lifecycle owns it (so it created it).
    ours: bool,
}

fn owns(lifecycle: &PediaClusterLifecycle, pc: &PediaCluster) -> bool {
    let uid = lifecycle.uid();
    uid.is_some() && pc.metadata.owner_references.iter().flatten().any(|o| Some(&o.uid) == uid.as_ref())
}

/// The lifecycle's next status (pure): before the PediaCluster exists the pass's outcome is the
/// `Created` condition; afterwards `Created` is True (`PediaClusterCreated` when the lifecycle
/// owns it: the pass after the create may read a lifecycle whose status the cache has not seen
/// yet; `PediaClusterExisted` otherwise) and the outcome is the `Updating` condition.
fn next_status(
    previous: Option<&PediaClusterLifecycleStatus>,
    existing: Option<Existing>,
    o: &Outcome,
    references: Option<Vec<DependentResource>>,
) -> PediaClusterLifecycleStatus {
    let mut conds: Vec<Condition> = previous.and_then(|s| s.conditions.clone()).unwrap_or_default();
    let kind = match existing {
        None => {
            conditions::remove(&mut conds, cond::UPDATING);
            cond::CREATED
        }
        Some(Existing { ours }) => {
            if conditions::get(&conds, cond::CREATED).is_none_or(|c| c.status != "True") {
                let reason = if ours { cond::REASON_PEDIA_CLUSTER_CREATED } else { cond::REASON_PEDIA_CLUSTER_EXISTED };
                conditions::set(&mut conds, cond::CREATED, true, reason, "");
            }
            cond::UPDATING
        }
    };
    conditions::set(&mut conds, kind, o.status, o.reason, &o.message);
    PediaClusterLifecycleStatus { conditions: Some(conds), references }
}

/// The `Updating` outcome when the credentials already match (pure): the last one stays (a
/// patch that worked stays True), and before any patch it is False with upstream's reason.
fn unchanged(previous: &[Condition]) -> Outcome {
    match conditions::get(previous, cond::UPDATING) {
        Some(c) => Outcome {
            status: c.status == "True",
            reason: cond::REASON_PEDIA_CLUSTER_UPDATED,
            message: c.message.clone(),
            requeue: None,
        },
        None => outcome(false, cond::REASON_PEDIA_CLUSTER_UPDATED, ""),
    }
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
            // A plain owner reference (not a controller), as upstream's.
            let Some(owner) = lifecycle.owner_ref(&()) else {
                return Ok(outcome(false, cond::REASON_FAILED_SET_OWNER, "the lifecycle has no uid"));
            };
            pc.metadata.owner_references = Some(vec![owner]);
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
                let previous = lifecycle.status.as_ref().and_then(|s| s.conditions.as_deref());
                return Ok(unchanged(previous.unwrap_or(&[])));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(conds: &[(&str, bool, &str)]) -> PediaClusterLifecycleStatus {
        let mut c = Vec::new();
        for (t, s, r) in conds {
            conditions::set(&mut c, t, *s, r, "");
        }
        PediaClusterLifecycleStatus { conditions: Some(c), references: None }
    }

    fn cond_of(s: &PediaClusterLifecycleStatus, t: &str) -> Option<(String, String)> {
        conditions::get(s.conditions.as_deref().unwrap_or(&[]), t).map(|c| (c.status.clone(), c.reason.clone()))
    }

    #[test]
    fn before_the_cluster_exists_the_outcome_is_created() {
        let waiting = outcome(false, cond::REASON_WAIT_CREATION_CONDITION, "creationCondition is not true");
        let previous = status_with(&[(cond::UPDATING, true, cond::REASON_PEDIA_CLUSTER_UPDATED)]);
        let s = next_status(Some(&previous), None, &waiting, None);
        assert_eq!(cond_of(&s, cond::CREATED), Some(("False".into(), cond::REASON_WAIT_CREATION_CONDITION.into())));
        assert_eq!(cond_of(&s, cond::UPDATING), None, "Updating goes while there is no PediaCluster");
    }

    #[test]
    fn once_it_exists_created_says_who_made_it_and_the_outcome_is_updating() {
        let updated = outcome(true, cond::REASON_PEDIA_CLUSTER_UPDATED, "");
        let ours = next_status(None, Some(Existing { ours: true }), &updated, None);
        assert_eq!(cond_of(&ours, cond::CREATED), Some(("True".into(), cond::REASON_PEDIA_CLUSTER_CREATED.into())));
        assert_eq!(cond_of(&ours, cond::UPDATING), Some(("True".into(), cond::REASON_PEDIA_CLUSTER_UPDATED.into())));
        let theirs = next_status(None, Some(Existing { ours: false }), &updated, None);
        assert_eq!(cond_of(&theirs, cond::CREATED), Some(("True".into(), cond::REASON_PEDIA_CLUSTER_EXISTED.into())));
        // A Created=True already written is kept as it is.
        let s = next_status(Some(&theirs), Some(Existing { ours: true }), &updated, None);
        assert_eq!(cond_of(&s, cond::CREATED).unwrap().1, cond::REASON_PEDIA_CLUSTER_EXISTED);
    }

    #[test]
    fn unchanged_credentials_keep_the_last_updating_condition() {
        assert!(!unchanged(&[]).status, "nothing patched yet");
        let previous = status_with(&[(cond::UPDATING, true, cond::REASON_PEDIA_CLUSTER_UPDATED)]);
        let o = unchanged(previous.conditions.as_deref().unwrap());
        assert!(o.status);
        assert_eq!(o.reason, cond::REASON_PEDIA_CLUSTER_UPDATED);
    }
}
