//! pedia's sync engine: for each member cluster, resolve its credentials, probe its health,
//! negotiate what to sync, and keep one resource synchro per group-version-resource writing
//! into `pedia-storage`. The PediaCluster controller (in the `pedia` binary) drives it.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod credentials;
pub mod discovery;
pub mod events;
pub mod metrics;
pub mod negotiate;
pub mod object;
pub mod queue;
pub mod resource;
pub mod status;
pub mod versions;

pub use cluster::{ClusterSynchro, Options, Snapshot, Wanted};

/// Locks a mutex; a poisoned one still holds valid state (its holder panicked between writes).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub use credentials::{Access, CredentialError};
