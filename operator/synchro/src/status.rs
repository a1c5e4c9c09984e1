//! Sync states and the conditions they become: per resource version (`syncConditions`) and the
//! cluster's `Ready`, with upstream's statuses, reasons and messages. Pure.

use api_types::cluster::ClusterResourceSyncCondition;
use api_types::conditions::{cluster as cond, sync};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Where one resource synchro stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub message: Option<String>,
    pub initial_list_phase: bool,
    pub since: Timestamp,
}

impl SyncState {
    pub fn new(status: &'static str, reason: Option<&'static str>, message: Option<String>) -> Self {
        Self { status, reason, message, initial_list_phase: false, since: api_types::conditions::now().0 }
    }

    /// Moves to a new state; the transition time changes only when status or reason do.
    /// Returns whether anything changed.
    pub fn set(&mut self, status: &'static str, reason: Option<&'static str>, message: Option<String>) -> bool {
        if self.status == status && self.reason == reason && self.message == message {
            return false;
        }
        if self.status != status || self.reason != reason {
            self.since = api_types::conditions::now().0;
        }
        self.status = status;
        self.reason = reason;
        self.message = message;
        true
    }

    /// The condition for status, for version `version`.
    pub fn condition(&self, version: &str) -> ClusterResourceSyncCondition {
        let listing = matches!(self.status, sync::STATUS_PENDING | sync::STATUS_SYNCING);
        ClusterResourceSyncCondition {
            version: version.to_owned(),
            sync_version: None,
            sync_resource: None,
            storage_version: Some(version.to_owned()),
            storage_resource: None,
            status: self.status.to_owned(),
            reason: self.reason.map(str::to_owned),
            message: self.message.clone(),
            initial_list_phase: (listing && self.initial_list_phase).then_some(true),
            last_transition_time: Time(self.since),
        }
    }
}

/// A negotiated version whose synchro does not run yet.
pub fn pending(version: &str) -> ClusterResourceSyncCondition {
    SyncState::new(
        sync::STATUS_PENDING,
        Some(sync::REASON_SYNCHRO_CREATING),
        Some("the resource synchro is being created".into()),
    )
    .condition(version)
}

/// `Ready` from the other three conditions, as upstream computes it: True when Validated,
/// SynchroRunning and ClusterHealthy are all True, else the first that is not, named.
pub fn ready(conditions: &[Condition]) -> (bool, &'static str, String) {
    for t in [cond::VALIDATED, cond::SYNCHRO_RUNNING, cond::CLUSTER_HEALTHY] {
        match api_types::conditions::get(conditions, t) {
            None => return (false, cond::REASON_NOT_READY, format!("{t} condition is not found")),
            Some(c) if c.status != "True" => {
                return (
                    false,
                    cond::REASON_NOT_READY,
                    format!("{t} condition is {}, reason is {}", c.status, c.reason),
                );
            }
            Some(_) => {}
        }
    }
    (true, cond::REASON_READY, "cluster is ready: validated, synchro running, healthy".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ready_names_the_first_condition_that_is_not_true() {
        let mut c = Vec::new();
        assert_eq!(ready(&c).2, "Validated condition is not found");
        api_types::conditions::set(&mut c, cond::VALIDATED, true, cond::REASON_VALIDATED, "ok");
        api_types::conditions::set(&mut c, cond::SYNCHRO_RUNNING, false, cond::REASON_PENDING, "wait");
        assert_eq!(
            ready(&c),
            (false, cond::REASON_NOT_READY, "SynchroRunning condition is False, reason is Pending".into())
        );
        api_types::conditions::set(&mut c, cond::SYNCHRO_RUNNING, true, cond::REASON_RUNNING, "running");
        api_types::conditions::set(&mut c, cond::CLUSTER_HEALTHY, true, cond::REASON_HEALTHY, "ok");
        assert!(ready(&c).0);
    }

    #[test]
    fn times_are_whole_seconds_as_the_apiserver_keeps_them() {
        let s = SyncState::new(sync::STATUS_SYNCING, None, None);
        assert_eq!(s.since.subsec_nanosecond(), 0);
        let text = serde_json::to_value(s.condition("v1")).unwrap();
        let back: ClusterResourceSyncCondition = serde_json::from_value(text).unwrap();
        assert_eq!(back, s.condition("v1"), "a condition read back equals the one written");
    }

    #[test]
    fn transition_time_moves_only_with_status_or_reason() {
        let mut s = SyncState::new(sync::STATUS_SYNCING, None, None);
        let t0 = s.since;
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(s.set(sync::STATUS_SYNCING, None, Some("x".into())));
        assert_eq!(s.since, t0);
        assert!(!s.set(sync::STATUS_SYNCING, None, Some("x".into())));
        assert!(s.set(sync::STATUS_STOP, Some(sync::REASON_PAUSE), None));
        assert_ne!(s.since, t0);
    }

    #[test]
    fn initial_list_phase_shows_only_while_listing() {
        let mut s = SyncState::new(sync::STATUS_SYNCING, None, None);
        s.initial_list_phase = true;
        assert_eq!(s.condition("v1").initial_list_phase, Some(true));
        s.set(sync::STATUS_STOP, Some(sync::REASON_PAUSE), None);
        assert_eq!(s.condition("v1").initial_list_phase, None);
        assert_eq!(pending("v1").reason.as_deref(), Some("SynchroCreating"));
    }
}
