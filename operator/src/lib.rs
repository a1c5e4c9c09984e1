//! pedia: a Clusterpedia-compatible operator, sync engine and search apiserver.
#![forbid(unsafe_code)]

pub mod cli;
pub mod telemetry;
pub mod validate;
