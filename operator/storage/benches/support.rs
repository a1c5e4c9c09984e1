//! What the benchmarks share: command-line arguments, percentiles. Included by
//! `storage.rs` here and by the search apiserver's benchmark (`#[path]`).
#![allow(dead_code)] // not every benchmark uses every helper

use std::time::Duration;

/// `--name value` from the command line, else `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
}

/// The `p` quantile of `samples`, in milliseconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}
