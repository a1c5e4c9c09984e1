//! pedia: a Clusterpedia-compatible operator, sync engine and search apiserver.
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod cli;
pub mod clusterprofiles;
pub mod clusters;
pub mod compaction;
pub mod exec_plugin;
pub mod import;
pub mod kubeconfig;
pub mod leader;
pub mod malloc_arenas;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
pub mod template;
pub mod validate;
