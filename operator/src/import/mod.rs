//! Importing fleets: ClusterImportPolicy -> PediaClusterLifecycle -> PediaCluster.

pub mod dry_run;
pub mod render;
