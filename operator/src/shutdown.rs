//! When pedia stops: on SIGTERM (what Kubernetes sends a pod it stops) or SIGINT (Ctrl-C). Both let
//! pedia stop in order: a leader gives its leases up, so a replacement starts at once instead of
//! after the lease expires.

/// Resolves when a stop is requested. A signal that cannot be listened for is logged and waited
/// for no longer (the process then stops only when killed).
pub async fn requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = interrupt() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only"),
        }
    }
    interrupt().await;
}

async fn interrupt() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("SIGINT: stopping"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
