//! One simulated cluster: its state, the HTTP entry point (auth, faults, admin API), serving on
//! a socket, and a library API for tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use api_types::status::StatusError;
use api_types::validation::SchemaValidator;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::{self, Request, error_response, json_response, query_map};
use crate::auth::Auth;
use crate::auth::{ANONYMOUS, AUTHENTICATED, SELF_REVIEWS, UNAUTHENTICATED};
use crate::meta;
use crate::registry::Registry;
use crate::store::{GroupResource, Store};

/// How a simulated cluster behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name used in logs and kubeconfigs.
    pub name: String,
    /// `gitVersion` reported by `/version`.
    pub git_version: String,
    /// Events kept per group-resource for watch resumption; older resumes get 410.
    pub history_limit: usize,
    /// Default length of a watch without `timeoutSeconds`.
    pub watch_timeout: Duration,
    /// How often watches with `allowWatchBookmarks` get a bookmark.
    pub bookmark_interval: Duration,
    pub auth: Auth,
    /// `--log-requests`: a line per API request.
    pub request_log: Option<Arc<crate::request_log::RequestLog>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "kubesim".into(),
            git_version: "v1.33.1".into(),
            history_limit: 10_000,
            watch_timeout: Duration::from_secs(1800),
            bookmark_interval: Duration::from_secs(5),
            auth: Auth::open(),
            request_log: None,
        }
    }
}

/// Injected faults.
#[derive(Debug, Default)]
pub struct Faults {
    fail_next: AtomicU32,
    fail_code: AtomicU16,
    latency_ms: AtomicU64,
    not_ready: AtomicBool,
    unreachable: watch::Sender<bool>,
    no_streaming_lists: AtomicBool,
}

impl Faults {
    /// The next `count` API requests fail with `code` (a Status body, reason `InternalError`
    /// for 5xx, `TooManyRequests` for 429).
    pub fn fail_next(&self, count: u32, code: u16) {
        self.fail_code.store(code, Ordering::SeqCst);
        self.fail_next.store(count, Ordering::SeqCst);
    }

    /// Every request waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// `/readyz` (and `/healthz`) answer 500 while not ready.
    pub fn set_ready(&self, ready: bool) {
        self.not_ready.store(!ready, Ordering::SeqCst);
    }

    /// While unreachable, the listening socket is closed (connections are refused) and open
    /// connections are cut.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.unreachable.send_replace(unreachable);
    }

    /// Without streaming lists, a watch with `sendInitialEvents` is refused as by a kube-apiserver
    /// whose WatchList feature gate is off (or one older than 1.27).
    pub fn set_streaming_lists(&self, served: bool) {
        self.no_streaming_lists.store(!served, Ordering::SeqCst);
    }

    pub fn streaming_lists(&self) -> bool {
        !self.no_streaming_lists.load(Ordering::SeqCst)
    }

    fn take_failure(&self) -> Option<u16> {
        self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).ok()?;
        Some(self.fail_code.load(Ordering::SeqCst))
    }
}

/// Shared state of one simulated cluster.
pub struct State {
    pub store: Store,
    /// Aggregated APIs (None only if generating the front-proxy certificates failed).
    pub aggregator: Option<crate::aggregate::Aggregator>,
    registry: RwLock<Registry>,
    validators: RwLock<HashMap<GroupResource, SchemaValidator>>,
    pub config: Config,
    pub auth: Auth,
    pub faults: Faults,
    /// The CA clients verify this server with (empty until it serves TLS), for `kube-root-ca.crt`.
    cluster_ca: RwLock<String>,
    /// ServiceAccount tokens issued by TokenRequests (`kubectl create token`).
    issued_tokens: RwLock<HashMap<String, crate::auth::User>>,
}

impl State {
    /// Who a bearer token is: a configured token, or one a TokenRequest issued.
    pub fn user_for_token(&self, token: &str) -> Option<crate::auth::User> {
        self.auth
            .user_for_token(token)
            .or_else(|| self.issued_tokens.read().unwrap_or_else(|e| e.into_inner()).get(token).cloned())
    }

    /// Records a token issued for `user`.
    pub fn issue_token(&self, token: String, user: crate::auth::User) {
        self.issued_tokens.write().unwrap_or_else(|e| e.into_inner()).insert(token, user);
    }

    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn validators(&self) -> RwLockReadGuard<'_, HashMap<GroupResource, SchemaValidator>> {
        self.validators.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves a CRD's resources (after it is stored or updated).
    pub fn register_crd(&self, crd: &Value) {
        self.registry.write().unwrap_or_else(|e| e.into_inner()).register_crd(crd);
        let gr = crd_group_resource(crd);
        let mut validators = self.validators.write().unwrap_or_else(|e| e.into_inner());
        match api::crd_validator(crd) {
            Some(v) => {
                validators.insert(gr, v);
            }
            None => {
                tracing::warn!(crd = ?meta::meta_str(crd, "name"), "CRD schema does not compile; its objects are not validated");
                validators.remove(&gr);
            }
        }
        drop(validators);
        self.sync_local_apiservices();
    }

    /// Creates the local APIServices of what is served and deletes those of what no longer is
    /// (other APIServices are left alone).
    pub fn sync_local_apiservices(&self) {
        use crate::local_apiservices::{AUTOMANAGED, desired};
        let want = {
            let registry = self.registry();
            desired(&registry.served(), &|g, r| registry.is_custom(g, r))
        };
        let gr = GroupResource::new("apiregistration.k8s.io", "apiservices");
        let managed: Vec<String> = self
            .store
            .keys(&gr, None)
            .into_iter()
            .filter(|k| {
                self.store
                    .get(&gr, k)
                    .is_some_and(|o| o.pointer("/metadata/labels").and_then(|l| l.get(AUTOMANAGED)).is_some())
            })
            .map(|k| k.1)
            .collect();
        for mut object in want.iter().cloned() {
            let name = meta::meta_str(&object, "name").unwrap_or_default().to_owned();
            if managed.contains(&name) {
                continue;
            }
            let m = meta::meta_mut(&mut object);
            m.insert("uid".into(), json!(meta::new_uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
            if let Err(e) = self.store.create(&gr, (String::new(), name.clone()), object) {
                tracing::warn!(apiservice = %name, error = %e, "local APIService not created");
            }
        }
        let wanted: Vec<&str> = want.iter().filter_map(|o| meta::meta_str(o, "name")).collect();
        for name in managed.iter().filter(|n| !wanted.contains(&n.as_str())) {
            let _ = self.store.delete(&gr, &(String::new(), name.clone()), crate::store::Propagation::Background, None);
        }
    }

    /// Stores a built-in object as the server's own controllers would (no request, no
    /// authorization); a failure is logged.
    fn create_direct(&self, mut object: Value) {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let Some(info) = self.registry().find_kind(group, version, &kind).cloned() else {
            tracing::warn!(%api_version, %kind, "bootstrap object of an unknown kind left out");
            return;
        };
        let namespace = if info.namespaced {
            meta::meta_str(&object, "namespace").unwrap_or("default").to_owned()
        } else {
            String::new()
        };
        let name = meta::meta_str(&object, "name").unwrap_or_default().to_owned();
        {
            let m = meta::meta_mut(&mut object);
            m.insert("uid".into(), json!(meta::new_uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
        }
        crate::defaults::on_write(&info.group, &info.resource, &mut object);
        if let Err(e) =
            self.store.create(&GroupResource::new(&info.group, &info.resource), (namespace, name.clone()), object)
        {
            tracing::warn!(%kind, %name, error = %e, "bootstrap object not created");
        }
    }

    /// What the namespace controllers add to a new namespace (its `default` ServiceAccount and
    /// `kube-root-ca.crt`).
    pub fn namespace_added(&self, namespace: &str) {
        let ca = self.cluster_ca.read().unwrap_or_else(|e| e.into_inner()).clone();
        for o in crate::bootstrap::namespace_objects(namespace, &ca) {
            self.create_direct(o);
        }
    }

    /// Publishes the cluster CA into every namespace's `kube-root-ca.crt`.
    fn set_cluster_ca(&self, ca: &str) {
        *self.cluster_ca.write().unwrap_or_else(|e| e.into_inner()) = ca.to_owned();
        let gr = GroupResource::new("", "configmaps");
        for (ns, name) in self.store.keys(&gr, None).into_iter().filter(|k| k.1 == "kube-root-ca.crt") {
            let key = (ns, name);
            if let Some(mut cm) = self.store.get(&gr, &key) {
                cm["data"]["ca.crt"] = json!(ca);
                let _ = self.store.replace(&gr, &key, cm, None);
            }
        }
    }

    /// Stops serving a deleted CRD's resources and deletes their objects.
    pub fn unregister_crd(&self, crd: &Value) {
        let Some(name) = meta::meta_str(crd, "name") else { return };
        self.registry.write().unwrap_or_else(|e| e.into_inner()).unregister_crd(name);
        let gr = crd_group_resource(crd);
        self.validators.write().unwrap_or_else(|e| e.into_inner()).remove(&gr);
        for key in self.store.keys(&gr, None) {
            let _ = self.store.delete(&gr, &key, crate::store::Propagation::Background, None);
        }
        self.sync_local_apiservices();
    }

    /// Routes (or stops routing) an APIService's group-version to the URL in its annotation.
    pub fn sync_apiservice(&self, apiservice: &Value, deleted: bool) {
        let Some(agg) = &self.aggregator else { return };
        let group = apiservice.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
        let version = apiservice.pointer("/spec/version").and_then(Value::as_str).unwrap_or_default();
        let url = apiservice
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(crate::aggregate::URL_ANNOTATION))
            .and_then(Value::as_str);
        let has_service = apiservice.pointer("/spec/service").is_some_and(|s| !s.is_null());
        if group.is_empty() || version.is_empty() {
            return;
        }
        agg.set(group, version, if deleted || !has_service { None } else { url });
    }

    pub fn version_info(&self) -> Value {
        let v = self.config.git_version.trim_start_matches('v');
        let mut parts = v.split('.');
        json!({
            "major": parts.next().unwrap_or("1"),
            "minor": parts.next().unwrap_or("33"),
            "gitVersion": self.config.git_version,
            "gitCommit": "kubesim",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24",
            "compiler": "gc",
            "platform": "linux/amd64",
        })
    }
}

/// Who a connection authenticated as at the TLS layer (client certificate CN and O).
#[derive(Debug, Clone)]
pub struct PeerIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

/// A simulated cluster.
#[derive(Clone)]
pub struct KubeSim {
    state: Arc<State>,
}

impl KubeSim {
    /// A cluster with the built-in resources and the initial namespaces.
    pub fn new(config: Config) -> Self {
        let aggregator = crate::aggregate::Aggregator::new()
            .map_err(
                |e| tracing::error!(error = %e, "front-proxy certificates could not be generated; aggregation is off"),
            )
            .ok();
        let state = Arc::new(State {
            store: Store::new(config.history_limit),
            aggregator,
            registry: RwLock::new(Registry::new()),
            validators: RwLock::new(HashMap::new()),
            auth: config.auth.clone(),
            config,
            faults: Faults::default(),
            cluster_ca: RwLock::new(String::new()),
            issued_tokens: RwLock::new(HashMap::new()),
        });
        let sim = Self { state };
        for ns in api::INITIAL_NAMESPACES {
            let mut o = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            o["status"] = json!({"phase": "Active"});
            sim.state.create_direct(o);
            sim.state.namespace_added(ns);
        }
        for o in crate::bootstrap::cluster_objects() {
            sim.state.create_direct(o);
        }
        sim.state.sync_local_apiservices();
        sim.publish_authentication_config(None);
        sim
    }

    /// `kube-system/extension-apiserver-authentication`, as kube-apiserver publishes it for
    /// aggregated API servers: the client CA and the front-proxy (requestheader) settings.
    fn publish_authentication_config(&self, client_ca: Option<&str>) {
        let mut data = json!({
            "requestheader-allowed-names": json!([crate::aggregate::FRONT_PROXY_USER]).to_string(),
            "requestheader-username-headers": "[\"X-Remote-User\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
        });
        if let Some(agg) = &self.state.aggregator {
            data["requestheader-client-ca-file"] = json!(agg.front_proxy_ca_pem());
        }
        if let Some(ca) = client_ca {
            data["client-ca-file"] = json!(ca);
        }
        let gr = GroupResource::new("", "configmaps");
        let key = ("kube-system".to_owned(), "extension-apiserver-authentication".to_owned());
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": key.1, "namespace": key.0, "uid": meta::new_uid(), "creationTimestamp": meta::now()},
            "data": data});
        match self.state.store.get(&gr, &key) {
            Some(current) => {
                cm["metadata"] = current["metadata"].clone();
                let _ = self.state.store.replace(&gr, &key, cm, None);
            }
            None => {
                let _ = self.state.store.create(&gr, key, cm);
            }
        }
    }

    /// Proxies `group/version` to an aggregated API server at `url` (what an APIService with a
    /// reachable Service does); creates the APIService object `<version>.<group>`.
    pub async fn aggregate(&self, group: &str, version: &str, url: &str) -> Result<Value, StatusError> {
        self.create(json!({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": format!("{version}.{group}"), "annotations": {crate::aggregate::URL_ANNOTATION: url}},
            "spec": {"group": group, "version": version, "insecureSkipTLSVerify": true,
                     "groupPriorityMinimum": 1000, "versionPriority": 100,
                     "service": {"namespace": "default", "name": format!("{}-apiserver", group.split('.').next().unwrap_or(group)), "port": 443}}
        }))
        .await
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Closes every open watch.
    pub fn drop_watches(&self) {
        self.state.store.drop_watches();
    }

    /// Forgets event history: resuming any watch from before now answers 410 Gone.
    pub fn compact(&self) {
        self.state.store.compact();
    }

    /// The HTTP API as a tower Service (for `kube::Client::new(router, ns)` in-process).
    pub fn router(&self) -> Router {
        Router::new().fallback(entry).with_state(self.state.clone()).layer(DefaultBodyLimit::max(64 * 1024 * 1024))
    }

    /// A kube client talking to this cluster in-process, as `system:admin`.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Performs an API request as `system:admin`, bypassing auth and faults.
    pub async fn request(&self, method: Method, path_and_query: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        let req = Request {
            method,
            path: path.to_owned(),
            query: query_map(Some(query)),
            raw_query: query.to_owned(),
            headers,
            body: body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default())).unwrap_or_default(),
            user: "system:admin".into(),
            groups: vec!["system:masters".into()],
        };
        let resp = api::handle(self.state.clone(), req).await;
        let code = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// The collection path of an object (`/api/v1/namespaces/ns/pods`), from its apiVersion and kind.
    pub fn collection_path(&self, object: &Value) -> Result<String, StatusError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let registry = self.state.registry();
        let info = registry
            .find_kind(group, version, kind)
            .ok_or_else(|| StatusError::bad_request(format!("no resource serves {kind} in {api_version}")))?;
        let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        Ok(if info.namespaced {
            let ns = meta::meta_str(object, "namespace").unwrap_or("default");
            format!("{prefix}/namespaces/{ns}/{}", info.resource)
        } else {
            format!("{prefix}/{}", info.resource)
        })
    }

    /// Creates an object; when it carries a `status` and the resource has a status
    /// subresource, the status is written too (as a controller would).
    pub async fn create(&self, object: Value) -> Result<Value, StatusError> {
        let path = self.collection_path(&object)?;
        let (code, created) = self.request(Method::POST, &path, Some(&object)).await;
        if !code.is_success() {
            return Err(status_from(code, &created));
        }
        match object.get("status") {
            Some(status) if created.get("status") != Some(status) => {
                let name = meta::meta_str(&created, "name").unwrap_or_default();
                let mut with_status = created.clone();
                with_status["status"] = status.clone();
                let (code, updated) =
                    self.request(Method::PUT, &format!("{path}/{name}/status"), Some(&with_status)).await;
                if code.is_success() { Ok(updated) } else { Ok(created) }
            }
            _ => Ok(created),
        }
    }

    /// Serves over plain HTTP on `addr` (port 0 picks a free port).
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<crate::serve::Server> {
        crate::serve::start(self.clone(), addr, None).await
    }

    /// Serves over HTTPS with a generated CA (client certificates accepted when signed by it).
    pub async fn serve_tls(&self, addr: SocketAddr, tls: crate::tls::Tls) -> std::io::Result<crate::serve::Server> {
        self.publish_authentication_config(Some(tls.ca_pem()));
        self.state.set_cluster_ca(tls.ca_pem());
        crate::serve::start(self.clone(), addr, Some(tls)).await
    }
}

/// The group-resource a CRD defines.
fn crd_group_resource(crd: &Value) -> GroupResource {
    let field = |path: &str| crd.pointer(path).and_then(Value::as_str).unwrap_or_default();
    GroupResource::new(field("/spec/group"), field("/spec/names/plural"))
}

fn status_from(code: StatusCode, body: &Value) -> StatusError {
    StatusError::custom(code.as_u16(), "Failure", body["message"].as_str().unwrap_or("request failed").to_owned())
}

/// Every HTTP request enters here (and is logged with `--log-requests`).
async fn entry(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerIdentity>>,
    body: Bytes,
) -> Response {
    let Some(log) = state.config.request_log.clone() else {
        return answer(state, method, uri, headers, peer, body).await.0;
    };
    let started = std::time::Instant::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (method_name, target) = (method.to_string(), uri.path_and_query().map_or("/", |p| p.as_str()).to_owned());
    let cluster = state.config.name.clone();
    let (resp, user) = answer(state, method, uri, headers, peer, body).await;
    let bytes = resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    log.record(&crate::request_log::Entry {
        cluster: &cluster,
        method: &method_name,
        path_and_query: &target,
        content_type: &content_type,
        status: resp.status().as_u16(),
        bytes: bytes.or_else(|| axum::body::HttpBody::size_hint(resp.body()).exact()),
        duration: started.elapsed(),
        user: &user,
    });
    resp
}

/// Admin API, faults, authentication, authorization, then the API; also who asked.
async fn answer(
    state: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerIdentity>>,
    body: Bytes,
) -> (Response, String) {
    let path = uri.path().to_owned();
    if let Some(admin) = path.strip_prefix("/kubesim/") {
        return (admin_request(&state, &method, admin, uri.query()), String::new());
    }
    let latency = state.faults.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let health = matches!(path.as_str(), "/readyz" | "/healthz" | "/livez") || path.starts_with("/readyz/");
    if !health && let Some(code) = state.faults.take_failure() {
        let reason = if code == 429 { "TooManyRequests" } else { "InternalError" };
        let e = StatusError::custom(code, reason, format!("fault injected by kubesim ({code})"));
        return (error_response(&e), String::new());
    }
    // As kube-apiserver: credentials are checked first (a wrong token gets 401 even on /readyz),
    // then the health endpoints are open to every authenticated user (system:public-info-viewer).
    let (user, groups) = match authenticate(&state, &headers, peer.map(|p| p.0)) {
        Ok(u) => u,
        Err(e) => return (error_response(&e), String::new()),
    };
    if health {
        let resp = if state.faults.not_ready.load(Ordering::SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, "[-]kubesim failed: not ready (fault injected)\nreadyz check failed")
                .into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        };
        return (resp, user);
    }
    let query = query_map(uri.query());
    if let Some(e) = authorize(&state, &user, &groups, &method, &path, &query) {
        return (error_response(&e), user);
    }
    if let Some(resp) = crate::api::proxy_aggregated(&state, &method, &uri, &headers, &body, &user, &groups).await {
        return (resp, user);
    }
    let raw_query = uri.query().unwrap_or_default().to_owned();
    let who = user.clone();
    (api::handle(state, Request { method, path, query, raw_query, headers, body, user, groups }).await, who)
}

fn authenticate(
    state: &State,
    headers: &HeaderMap,
    peer: Option<PeerIdentity>,
) -> Result<(String, Vec<String>), StatusError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    // Authenticated users are in `system:authenticated`, as kube-apiserver puts them.
    let authenticated = |name: String, mut groups: Vec<String>| {
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        (name, groups)
    };
    if let Some(token) = bearer {
        return state
            .user_for_token(token.trim())
            .map(|u| authenticated(u.name, u.groups))
            .ok_or_else(StatusError::unauthorized);
    }
    if let Some(p) = peer {
        return Ok(authenticated(p.user, p.groups));
    }
    if state.auth.anonymous {
        return Ok((ANONYMOUS.into(), vec![UNAUTHENTICATED.into()]));
    }
    Err(StatusError::unauthorized())
}

fn authorize(
    state: &State,
    user: &str,
    groups: &[String],
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
) -> Option<StatusError> {
    state.auth.rules.as_ref()?;
    let verb = match *method {
        Method::GET if query.get("watch").is_some_and(|w| api_types::search::parse_bool(w)) => "watch",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resource = match segments.as_slice() {
        ["api", _, "namespaces", _, r, ..] | ["apis", _, _, "namespaces", _, r, ..] => *r,
        ["api", _, r, ..] | ["apis", _, _, r, ..] => *r,
        _ => return None, // discovery and health are open to authenticated users
    };
    if SELF_REVIEWS.contains(&resource) && groups.iter().any(|g| g == AUTHENTICATED) {
        return None;
    }
    let (allowed, reason) = state.auth.authorize(user, groups, verb, resource);
    (!allowed).then(|| {
        StatusError::forbidden(format!(
            "{resource} is forbidden: User {user:?} cannot {verb} resource {resource:?}: {reason}"
        ))
    })
}

/// `/kubesim/...`: fault injection over HTTP (no auth; kubesim is a test tool).
fn admin_request(state: &Arc<State>, method: &Method, path: &str, query: Option<&str>) -> Response {
    if *method != Method::POST {
        return error_response(&StatusError::method_not_allowed("kubesim admin endpoints take POST"));
    }
    let q = query_map(query);
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
    match path {
        "drop-watches" => state.store.drop_watches(),
        "compact" => state.store.compact(),
        "fail" => state.faults.fail_next(num("count").unwrap_or(1) as u32, num("code").unwrap_or(500) as u16),
        "latency" => state.faults.set_latency(Duration::from_millis(num("ms").unwrap_or(0))),
        "ready" => state.faults.set_ready(q.get("value").is_none_or(|v| v != "false")),
        "unreachable" => {
            let seconds = num("seconds").unwrap_or(5);
            state.faults.set_unreachable(true);
            let state = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                state.faults.set_unreachable(false);
            });
        }
        other => return error_response(&StatusError::bad_request(format!("unknown kubesim admin endpoint {other:?}"))),
    }
    json_response(StatusCode::OK, &json!({"ok": true}))
}

/// Subscribes to reachability changes (used by the socket server).
pub fn reachability(state: &State) -> watch::Receiver<bool> {
    state.faults.unreachable.subscribe()
}
