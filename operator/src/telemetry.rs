//! Logging setup.

use tracing_subscriber::EnvFilter;

/// Logs go to stderr so that commands printing YAML keep stdout clean. `RUST_LOG` wins over `--log-level`.
pub fn init(level: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) is harmless; ignore it.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
