//! A PediaCluster's status from what the reconcile found and what its cluster synchro reports,
//! with upstream's condition types, reasons and messages. Pure.

use api_types::cluster::PediaClusterStatus;
use api_types::conditions::{self, cluster as cond};
use pedia_synchro::Snapshot;
use pedia_synchro::cluster::Cond;

/// The outcome of validating a PediaCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Validation {
    pub fn valid(message: impl Into<String>) -> Self {
        Self { ok: true, reason: cond::REASON_VALIDATED, message: message.into() }
    }

    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self { ok: false, reason, message: message.into() }
    }
}

fn set(conds: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>, type_: &str, c: &Cond) {
    let status = if c.unknown {
        "Unknown"
    } else if c.status {
        "True"
    } else {
        "False"
    };
    conditions::set_status(conds, type_, status, c.reason, &c.message);
}

/// What the reconcile knows, turned into the status to write.
pub struct Inputs<'a> {
    pub current: Option<&'a PediaClusterStatus>,
    pub validation: &'a Validation,
    /// The effective endpoint (kubeconfig server or `spec.apiserver`).
    pub apiserver: Option<String>,
    /// The running synchro's state; None when none runs.
    pub synchro: Option<&'a Snapshot>,
    /// Why the synchro could not be created, if it could not.
    pub initial_failure: Option<String>,
    pub sharding_name: Option<String>,
}

/// The status: conditions keep their transition times unless their status changes; `Ready` is
/// recomputed; the deprecated `ClusterSynchroInitialized` is dropped.
pub fn build(i: Inputs<'_>) -> PediaClusterStatus {
    let current = i.current.cloned().unwrap_or_default();
    let mut conds = current.conditions.clone().unwrap_or_default();
    conditions::remove(&mut conds, cond::CLUSTER_SYNCHRO_INITIALIZED);
    conditions::set(&mut conds, cond::VALIDATED, i.validation.ok, i.validation.reason, &i.validation.message);
    match (i.synchro, &i.initial_failure) {
        (Some(s), _) => {
            set(&mut conds, cond::SYNCHRO_RUNNING, &s.running);
            set(&mut conds, cond::CLUSTER_HEALTHY, &s.healthy);
        }
        (None, failure) => {
            let (reason, message) = match failure {
                Some(f) => (cond::REASON_INITIAL_FAILED, f.clone()),
                None if !i.validation.ok => (i.validation.reason, i.validation.message.clone()),
                None => (cond::REASON_WAIT_INIT, "pediacluster is validated".to_owned()),
            };
            conditions::set(&mut conds, cond::SYNCHRO_RUNNING, false, reason, &message);
            conditions::set_status(
                &mut conds,
                cond::CLUSTER_HEALTHY,
                "Unknown",
                cond::REASON_MONITOR_STOP,
                "wait cluster synchro",
            );
        }
    }
    let (ready, reason, message) = pedia_synchro::status::ready(&conds);
    conditions::set(&mut conds, cond::READY, ready, reason, &message);
    PediaClusterStatus {
        apiserver: i.apiserver.or(current.apiserver),
        version: i.synchro.and_then(|s| s.version.clone()).or(current.version),
        conditions: Some(conds),
        sync_resources: i.synchro.and_then(|s| s.sync_resources.clone()).or(current.sync_resources),
        sharding_name: i.sharding_name,
    }
}

/// Whether the member refused the cluster's credentials: the health probe reports the 401 in
/// `ClusterHealthy`. Exec plugins run again when it does.
pub fn credentials_refused(pc: &api_types::cluster::PediaCluster) -> bool {
    let conds = pc.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conditions::get(conds, cond::CLUSTER_HEALTHY).is_some_and(|c| c.status == "False" && c.message.contains("401"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reason(s: &PediaClusterStatus, t: &str) -> (String, String, String) {
        let c = conditions::get(s.conditions.as_deref().unwrap(), t).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn inputs<'a>(v: &'a Validation, synchro: Option<&'a Snapshot>) -> Inputs<'a> {
        Inputs {
            current: None,
            validation: v,
            apiserver: Some("https://m".into()),
            synchro,
            initial_failure: None,
            sharding_name: Some(String::new()),
        }
    }

    fn snapshot(healthy: bool) -> Snapshot {
        Snapshot {
            version: Some("v1.33.1".into()),
            running: Cond {
                status: true,
                unknown: false,
                reason: cond::REASON_RUNNING,
                message: "cluster synchro is running".into(),
            },
            healthy: Cond {
                status: healthy,
                unknown: false,
                reason: if healthy { cond::REASON_HEALTHY } else { cond::REASON_NOT_REACHABLE },
                message: "m".into(),
            },
            sync_resources: Some(Vec::new()),
        }
    }

    #[test]
    fn invalid_config_is_mirrored_in_synchro_running_and_not_ready() {
        let v = Validation::invalid(
            cond::REASON_INVALID_CONFIG,
            "invalid cluster config: Cluster APIServer Endpoint is required",
        );
        let s = build(inputs(&v, None));
        assert_eq!(reason(&s, cond::VALIDATED).1, "InvalidConfig");
        assert_eq!(reason(&s, cond::SYNCHRO_RUNNING).2, v.message);
        assert_eq!(reason(&s, cond::CLUSTER_HEALTHY).0, "Unknown");
        assert_eq!(
            reason(&s, cond::READY),
            ("False".into(), "NotReady".into(), "Validated condition is False, reason is InvalidConfig".into())
        );
    }

    #[test]
    fn a_healthy_running_synchro_is_ready_and_keeps_transition_times() {
        let v = Validation::valid("cluster is validated");
        let snap = snapshot(true);
        let s = build(inputs(&v, Some(&snap)));
        assert_eq!(reason(&s, cond::READY).0, "True");
        assert_eq!(s.version.as_deref(), Some("v1.33.1"));
        let again = build(Inputs { current: Some(&s), ..inputs(&v, Some(&snap)) });
        assert_eq!(again, s, "nothing changed, so nothing to write");
        let down = snapshot(false);
        let s2 = build(Inputs { current: Some(&s), ..inputs(&v, Some(&down)) });
        assert_eq!(reason(&s2, cond::READY).2, "ClusterHealthy condition is False, reason is NotReachable");
    }

    #[test]
    fn a_failed_creation_says_why() {
        let v = Validation::valid("ok");
        let s = build(Inputs { initial_failure: Some("building the client: bad".into()), ..inputs(&v, None) });
        assert_eq!(
            reason(&s, cond::SYNCHRO_RUNNING),
            ("False".into(), "InitialFailed".into(), "building the client: bad".into())
        );
    }
}
