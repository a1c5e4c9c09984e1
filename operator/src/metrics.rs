//! The process's own HTTP endpoints: `/metrics` (OpenMetrics text), `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The registry and the readiness flag the endpoints serve.
pub struct Endpoints {
    pub registry: Registry,
    /// Set once the controllers run (storage connected, CRDs found).
    pub ready: AtomicBool,
}

/// A registry with `clusterpedia_build_info` (upstream's labels; `go_version` holds the Rust one).
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    let info = Info::new(vec![
        ("git_version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("git_commit".to_owned(), option_env!("PEDIA_GIT_COMMIT").unwrap_or("unknown").to_owned()),
        ("git_tree_state".to_owned(), "unknown".to_owned()),
        ("build_date".to_owned(), "unknown".to_owned()),
        ("go_version".to_owned(), format!("rust {}", env!("CARGO_PKG_RUST_VERSION"))),
        ("compiler".to_owned(), "rustc".to_owned()),
        ("platform".to_owned(), format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)),
    ]);
    registry.register("clusterpedia_build", "Build information of pedia", info);
    registry
}

async fn metrics(State(e): State<Arc<Endpoints>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &e.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        ),
        Err(err) => {
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], format!("encoding: {err}"))
        }
    }
}

async fn readyz(State(e): State<Arc<Endpoints>>) -> (StatusCode, &'static str) {
    if e.ready.load(Ordering::SeqCst) { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
}

/// Binds the endpoints (so a taken port fails the start) and serves them in the background.
pub async fn serve(addr: SocketAddr, endpoints: Arc<Endpoints>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(endpoints);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}
