//! Clusterpedia-compatible API types for pedia: the CRD structs, the generated CRDs, validation of
//! manifests against those CRDs, and the search query model of `clusterpedia.io/v1beta1`.
//! Nothing here does IO.
#![forbid(unsafe_code)]

pub use gvr::{GroupResource, Gvr};

pub mod api;
pub mod cluster;
pub mod conditions;
pub mod crd;
pub mod fields;
pub mod gvr;
pub mod manifest;
pub mod multicluster;
pub mod policy;
pub mod printers;
pub mod schema;
pub mod search;
pub mod selector;
pub mod status;
pub mod table;
pub mod token;
pub mod validation;
