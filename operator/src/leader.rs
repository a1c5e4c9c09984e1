//! Leader election on a coordination.k8s.io Lease (upstream's timings: 15 s lease, renewed every
//! 2 s, given up after 10 s without a renewal), so two replicas never run the same controllers,
//! and a killed leader's work is taken over once its lease expires. A leader that stops (SIGTERM,
//! as on a rolling update) gives its lease up, so the next one starts at once (client-go's
//! `ReleaseOnCancel`).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};

pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// What to do with the lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No lease yet: create it holding it.
    Create,
    /// Free, expired, or ours: write it with us as holder.
    Hold { transition: bool },
    /// Someone else holds a live lease.
    Wait { holder: String },
}

/// Decides from the lease's spec (pure).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else { return Decision::Create };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Decision::Hold { transition: false };
    }
    let duration = spec.lease_duration_seconds.map_or(LEASE_DURATION.as_secs() as i64, i64::from);
    let renewed = spec.renew_time.as_ref().map(|t| t.0).or(spec.acquire_time.as_ref().map(|t| t.0));
    let expired = renewed.is_none_or(|t| t + SignedDuration::from_secs(duration) < now);
    if holder.is_empty() || expired { Decision::Hold { transition: true } } else { Decision::Wait { holder } }
}

/// The lease as `me` gives it up (pure): no holder, expiring a second after now, as client-go
/// releases one; None when `me` does not hold it (it was taken over: nothing to give up).
pub fn released(spec: &LeaseSpec, me: &str, now: Timestamp) -> Option<LeaseSpec> {
    (spec.holder_identity.as_deref() == Some(me)).then(|| LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..spec.clone()
    })
}

/// Why leadership could not be had or was lost.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election lost: the lease {name} was not renewed for {}s (last error: {last})", RENEW_DEADLINE.as_secs())]
    Lost { name: String, last: String },
}

/// A held lease.
pub struct Leadership {
    api: Api<Lease>,
    name: String,
    me: String,
}

/// This process's identity in leases: the pod (host) name and a random suffix.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pedia".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{host}_{:08x}", nanos ^ std::process::id())
}

fn lease(name: &str, spec: LeaseSpec) -> Lease {
    Lease { metadata: ObjectMeta { name: Some(name.to_owned()), ..Default::default() }, spec: Some(spec) }
}

impl Leadership {
    /// Waits until this process holds the lease `name` in `namespace`.
    pub async fn acquire(client: Client, namespace: &str, name: &str, me: String) -> Leadership {
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let mut waiting_for = String::new();
        loop {
            match Self::try_hold(&api, name, &me).await {
                Ok(None) => {
                    tracing::info!(lease = %name, namespace, identity = %me, "leader: this instance holds the lease");
                    return Leadership { api, name: name.to_owned(), me };
                }
                Ok(Some(holder)) => {
                    if holder != waiting_for {
                        tracing::info!(lease = %name, namespace, holder = %holder, "waiting for leadership: another instance holds the lease");
                        waiting_for = holder;
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %name, namespace, error = %e, "leader election: the lease cannot be read or written; retrying")
                }
            }
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// One attempt: Ok(None) when held now, Ok(Some(holder)) when someone else holds it.
    async fn try_hold(api: &Api<Lease>, name: &str, me: &str) -> Result<Option<String>, kube::Error> {
        let now = Timestamp::now();
        let current = api.get_opt(name).await?;
        let decision = decide(current.as_ref().and_then(|l| l.spec.as_ref()), me, now);
        let mine = |old: Option<&LeaseSpec>, transition: bool| {
            let old = old.cloned().unwrap_or_default();
            LeaseSpec {
                holder_identity: Some(me.to_owned()),
                lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
                acquire_time: if transition { Some(MicroTime(now)) } else { old.acquire_time.or(Some(MicroTime(now))) },
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(old.lease_transitions.unwrap_or(0) + i32::from(transition)),
                ..old
            }
        };
        match (decision, current) {
            (Decision::Wait { holder }, _) => Ok(Some(holder)),
            (Decision::Create, _) => {
                api.create(&PostParams::default(), &lease(name, mine(None, true))).await?;
                Ok(None)
            }
            (Decision::Hold { transition }, Some(mut l)) => {
                l.spec = Some(mine(l.spec.as_ref(), transition));
                // The resourceVersion read above makes a concurrent taker fail with 409.
                api.replace(name, &PostParams::default(), &l).await?;
                Ok(None)
            }
            (Decision::Hold { .. }, None) => Ok(Some(String::new())),
        }
    }

    /// Renews the lease until it cannot be renewed for [`RENEW_DEADLINE`] (or someone else took it).
    pub async fn keep(&self) -> LeaderError {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            match Self::try_hold(&self.api, &self.name, &self.me).await {
                Ok(None) => last_renewed = tokio::time::Instant::now(),
                Ok(Some(holder)) => {
                    return LeaderError::Lost { name: self.name.clone(), last: format!("now held by {holder:?}") };
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "renewing the lease failed");
                    if last_renewed.elapsed() > RENEW_DEADLINE {
                        return LeaderError::Lost { name: self.name.clone(), last: e.to_string() };
                    }
                }
            }
        }
    }

    /// Gives the lease up if this process still holds it, waiting at most [`RETRY_PERIOD`] for
    /// the host (a stop must not hang on it). A failure is logged: the lease then expires by
    /// itself within [`LEASE_DURATION`].
    pub async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(false) };
            let Some(spec) = lease.spec.as_ref().and_then(|s| released(s, &self.me, Timestamp::now())) else {
                return Ok(false);
            };
            lease.spec = Some(spec);
            // The resourceVersion read above: a replica that took the lease meanwhile keeps it (409).
            self.api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| true)
        };
        match tokio::time::timeout(RETRY_PERIOD, result).await {
            Ok(Ok(true)) => tracing::info!(lease = %self.name, "leader: lease released"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.name, error = %e, "leader: the lease could not be released; it expires by itself")
            }
            Err(_) => {
                tracing::warn!(lease = %self.name, "leader: the host did not answer in time; the lease expires by itself")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_secs_ago: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::now() - SignedDuration::from_secs(renewed_secs_ago))),
            ..Default::default()
        }
    }

    #[test]
    fn a_live_lease_of_another_instance_is_waited_for() {
        let now = Timestamp::now();
        assert_eq!(decide(None, "me", now), Decision::Create);
        assert_eq!(decide(Some(&spec("other", 3)), "me", now), Decision::Wait { holder: "other".into() });
        assert_eq!(decide(Some(&spec("other", 20)), "me", now), Decision::Hold { transition: true });
        assert_eq!(decide(Some(&spec("me", 3)), "me", now), Decision::Hold { transition: false });
        assert_eq!(decide(Some(&spec("", 3)), "me", now), Decision::Hold { transition: true });
        assert_eq!(decide(Some(&LeaseSpec::default()), "me", now), Decision::Hold { transition: true });
    }

    #[test]
    fn a_released_lease_is_free_at_once_and_only_its_holder_releases_it() {
        let now = Timestamp::now();
        let mut held = spec("me", 1);
        held.lease_transitions = Some(3);
        let free = released(&held, "me", now).expect("held by me");
        assert_eq!(free.holder_identity, None);
        assert_eq!(free.lease_transitions, Some(3));
        assert_eq!(decide(Some(&free), "next", now), Decision::Hold { transition: true });
        assert_eq!(released(&spec("other", 1), "me", now), None);
    }

    #[test]
    fn identities_differ_between_processes_on_one_host() {
        assert!(identity().contains('_'));
    }
}
