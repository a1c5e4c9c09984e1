//! Object builders shared by the tests, the benchmarks and kubesim's seeded fleets, so there is
//! one place that knows what a pod looks like. Test support only: the pedia binary does not
//! depend on this crate.
#![forbid(unsafe_code)]

mod pod;

pub use pod::{Pod, container, realistic_pod};
