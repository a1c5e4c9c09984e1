//! The HTTP side: one handler for every request (authenticate -> authorize -> route -> answer),
//! Kubernetes `Status` bodies for every error, the TLS accept loop that hands each connection's
//! client certificate to the handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_types::status::StatusError;
use axum::Extension;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pedia_storage::{Storage, StorageError};
use rustls_pki_types::CertificateDer;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{Attributes, Authenticator, Authorizer, Decision, User};
use crate::catalog::Catalog;
use crate::route::{self, Target};

/// How watches behave.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// How often a watch reads the change log when it has caught up.
    pub poll: Duration,
    /// How often an idle watch sends a BOOKMARK (when the client allows them).
    pub bookmark_every: Duration,
    /// A watch without `timeoutSeconds` ends after this long (clients re-watch).
    pub default_timeout: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(200),
            bookmark_every: Duration::from_secs(5),
            default_timeout: Duration::from_secs(1800),
        }
    }
}

/// Everything requests need.
pub struct State {
    pub storage: Arc<Storage>,
    pub catalog: watch::Receiver<Arc<Catalog>>,
    pub authn: Authenticator,
    pub authz: Authorizer,
    /// Secrets are served without `data` / `stringData`.
    pub redact_secrets: bool,
    pub watch: WatchSettings,
    /// The change log's shared reader for watches (see [`crate::feed`]).
    pub feed: Arc<crate::feed::Feed>,
}

/// The client certificate of the connection a request came on.
#[derive(Clone, Default)]
pub struct Peer(pub Option<CertificateDer<'static>>);

/// A request as handlers see it.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub user: User,
}

impl Request {
    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// A Status error as its HTTP response.
pub fn error_response(e: &StatusError) -> Response {
    json_response(StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &e.to_json())
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    bytes_response(code, "application/json", serde_json::to_vec(v).unwrap_or_default())
}

pub fn bytes_response(code: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut resp = (code, body).into_response();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// A storage error as the client sees it; server-side failures are logged with their context.
pub fn storage_error(e: StorageError) -> StatusError {
    match e {
        StorageError::InvalidQuery { param, message } => StatusError::bad_request(format!("{param}: {message}")),
        StorageError::Expired { .. } => StatusError::expired(e.to_string()),
        StorageError::Pool { .. } | StorageError::Connect { .. } => {
            tracing::warn!(error = %e, "the store is unavailable");
            StatusError::unavailable(format!("the store is unavailable: {e}"))
        }
        other => {
            tracing::error!(error = %other, "reading the store");
            StatusError::internal(format!("reading the store: {other}"))
        }
    }
}

/// kube-apiserver's version document for the Kubernetes release pedia's tables follow.
pub fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": concat!("v1.33.0+pedia-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

fn own_discovery(route: api_types::api::path::Route) -> Result<Response, StatusError> {
    let doc = crate::own_api::discovery(&route).ok_or_else(StatusError::no_route)?;
    Ok(json_response(StatusCode::OK, &doc))
}

/// What a request does, for authorization (None: discovery of the server itself, open to every
/// authenticated user as kube-apiserver's `system:discovery`). Discovery under `resources` is a
/// `get` of `resources`.
fn attributes(target: &Target, req: &Request, catalog: &Catalog) -> Option<Attributes> {
    use api_types::api::path::{self, Route};
    match target {
        Target::Kube { cluster, kube_path } => {
            let c = cluster.as_deref();
            let route = path::parse(kube_path, &|g, v, r| catalog.find(c, g, v, r).is_some_and(|i| i.namespaced));
            let (verb, namespace) = match route {
                Route::Object(o) if o.name.is_some() => ("get", o.namespace),
                Route::Object(o) => {
                    let watch = api_types::search::ListOptions::from_query(&req.query).is_ok_and(|q| q.watch);
                    (if watch { "watch" } else { "list" }, o.namespace)
                }
                _ => ("get", None),
            };
            Some(Attributes { verb: verb.into(), resource: "resources".into(), name: cluster.clone(), namespace })
        }
        Target::Collections => Some(Attributes {
            verb: "list".into(),
            resource: "collectionresources".into(),
            name: None,
            namespace: None,
        }),
        Target::Collection(name) => Some(Attributes {
            verb: "get".into(),
            resource: "collectionresources".into(),
            name: Some(name.clone()),
            namespace: None,
        }),
        _ => None,
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    Extension(peer): Extension<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let target = route::parse(uri.path());
    if target == Target::Health {
        return (StatusCode::OK, "ok").into_response();
    }
    let Some(user) = state.authn.authenticate(peer.0.as_ref(), &headers) else {
        return error_response(&StatusError::unauthorized());
    };
    let req = Request {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        user,
    };
    let catalog = state.catalog.borrow().clone();
    if let Some(attrs) = attributes(&target, &req, &catalog) {
        match state.authz.authorize(&req.user, &attrs).await {
            Ok(Decision::Allow) => {}
            Ok(Decision::Deny(reason)) => {
                return error_response(&StatusError::forbidden(crate::auth::forbidden_message(
                    &req.user, &attrs, &reason,
                )));
            }
            Err(e) => {
                tracing::warn!(error = %e, user = %req.user.name, "SubjectAccessReview failed");
                return error_response(&StatusError::internal(format!("authorizing the request: {e}")));
            }
        }
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return error_response(&StatusError::method_not_allowed(format!(
            "the search API is read-only: {} is not allowed",
            req.method
        )));
    }
    tracing::debug!(user = %req.user.name, path = %req.path, query = %req.query, "request");
    let result = match target {
        Target::Health => Ok((StatusCode::OK, "ok").into_response()),
        Target::Version => Ok(json_response(StatusCode::OK, &version_info())),
        Target::CoreVersions => Ok(json_response(StatusCode::OK, &json!({"kind": "APIVersions", "versions": []}))),
        Target::Groups => own_discovery(api_types::api::path::Route::Groups),
        Target::SearchGroup => own_discovery(api_types::api::path::Route::Group(api_types::search::GROUP.into())),
        Target::SearchResources => own_discovery(api_types::api::path::Route::Resources {
            group: api_types::search::GROUP.into(),
            version: api_types::search::VERSION.into(),
        }),
        Target::OpenApi => crate::own_api::openapi(&req.path, req.header(header::ACCEPT)),
        Target::Kube { cluster, kube_path } => crate::kube::answer(&state, cluster.as_deref(), &kube_path, &req).await,
        Target::Collections => crate::collections::list(&req),
        Target::Collection(name) => crate::collections::get(&state, &name, &req).await,
        Target::NotFound => Err(StatusError::no_route()),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Waits until the accept loop ends (it ends only when the listener fails).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves HTTPS.
pub async fn start(
    addr: SocketAddr,
    tls: tokio_rustls::rustls::ServerConfig,
    state: Arc<State>,
) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let router = axum::Router::new().fallback(handle).with_state(state);
    let task = tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Responses end in a short write; with Nagle on, it waits for the client's delayed
            // ACK (40 ms on Linux), which doubled the median page time.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%remote, error = %e, "setting TCP_NODELAY");
            }
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let stream = match acceptor.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let peer = Peer(
                    stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned()),
                );
                let service = TowerToHyperService::new(router.layer(Extension(peer)));
                if let Err(e) =
                    auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await
                {
                    tracing::debug!(%remote, error = %e, "connection ended");
                }
            });
        }
    });
    Ok(Server { addr, task })
}

/// An empty streaming body sender/receiver pair for watch responses.
pub fn streaming(rx: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<bytes::Bytes, std::convert::Infallible>(bytes::Bytes::from(b)), rx))
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Request {
        Request {
            method: Method::GET,
            path: String::new(),
            query: query.into(),
            headers: HeaderMap::new(),
            user: User { name: "u".into(), ..User::default() },
        }
    }

    fn catalog() -> Catalog {
        let pc: api_types::cluster::PediaCluster = serde_json::from_value(json!({
            "apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "m1"},
            "spec": {"syncResources": []},
            "status": {"syncResources": [
                {"group": "", "resources": [
                    {"name": "pods", "kind": "Pod", "namespaced": true, "syncConditions": [{"version": "v1", "status": "Syncing", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
                    {"name": "namespaces", "kind": "Namespace", "namespaced": false, "syncConditions": [{"version": "v1", "status": "Syncing", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]},
                {"group": "apps", "resources": [
                    {"name": "deployments", "kind": "Deployment", "namespaced": true, "syncConditions": [{"version": "v1", "status": "Syncing", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}]}
        }))
        .unwrap();
        Catalog::build([&pc])
    }

    fn attrs(path: &str, cluster: Option<&str>, query: &str) -> Attributes {
        let t = Target::Kube { cluster: cluster.map(str::to_owned), kube_path: path.into() };
        attributes(&t, &req(query), &catalog()).unwrap()
    }

    #[test]
    fn requests_map_to_resources_of_the_search_group() {
        let a = attrs("/api/v1/pods", None, "");
        assert_eq!((a.verb.as_str(), a.resource.as_str(), a.name, a.namespace), ("list", "resources", None, None));
        let a = attrs("/api/v1/namespaces/prod/pods/web", Some("m1"), "");
        assert_eq!((a.verb.as_str(), a.name.as_deref(), a.namespace.as_deref()), ("get", Some("m1"), Some("prod")));
        let a = attrs("/apis/apps/v1/namespaces/prod/deployments", None, "watch=true");
        assert_eq!((a.verb.as_str(), a.namespace.as_deref()), ("watch", Some("prod")));
        let a = attrs("/api/v1/namespaces/prod", None, "");
        assert_eq!((a.verb.as_str(), a.namespace), ("get", None), "a namespace object is cluster-scoped");
        let a = attrs("/apis/apps/v1", None, "");
        assert_eq!(a.verb, "get", "discovery");
        assert!(attributes(&Target::SearchGroup, &req(""), &catalog()).is_none());
        let c = attributes(&Target::Collection("any".into()), &req(""), &catalog()).unwrap();
        assert_eq!((c.verb.as_str(), c.resource.as_str()), ("get", "collectionresources"));
    }

    #[test]
    fn storage_errors_become_statuses() {
        let bad = storage_error(StorageError::InvalidQuery { param: "orderby", message: "unknown column x".into() });
        assert_eq!((bad.code, bad.message.as_str()), (400, "orderby: unknown column x"));
        assert_eq!(storage_error(StorageError::Expired { requested: 1, horizon: 5 }).code, 410);
        assert_eq!(storage_error(StorageError::Pool { operation: "list", message: "timeout".into() }).code, 503);
        assert_eq!(storage_error(StorageError::Schema("x".into())).code, 500);
    }
}
