//! Request handling: routing, Kubernetes CRUD semantics on top of the store, list/watch encoding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::search::ListOptions;
use api_types::selector::{FieldSelector, LabelSelector};
use api_types::status::{self, StatusError};
use api_types::table;
use api_types::validation::{SchemaValidator, UnknownFields, ValidationError};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::cursor;
use crate::meta;
use crate::patch::{self, PatchType};
use crate::sim::State;
use crate::store::{GroupResource, ObjectKey, Propagation, WatchStart};
use api_types::api::encode::{self, Shape};
use api_types::api::path::{self as route, ObjectRoute, Route};
use api_types::api::protobuf;
use api_types::api::resources::ResourceInfo;
use api_types::api::{openapi, openapi_v2};

/// Namespaces every cluster starts with.
pub const INITIAL_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A handled request's answer or a Kubernetes Status error.
pub type Reply = Result<Response, StatusError>;

/// Turns a Status error into its HTTP response.
pub fn error_response(e: &StatusError) -> Response {
    json_response(StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &e.to_json())
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    raw_response(code, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
}

fn raw_response(code: StatusCode, body: Bytes) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Query parameters; the first value of a repeated one wins.
pub fn query_map(query: Option<&str>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// Everything about one API request that handlers need.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    /// The query string as sent: list options are decoded from it by `api_types`' decoder.
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The authenticated user (for reviews and managedFields).
    pub user: String,
    pub groups: Vec<String>,
}

impl Request {
    fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Kubernetes' list options of the request (400 when one is malformed).
    fn list_options(&self) -> Result<ListOptions, StatusError> {
        ListOptions::kube_from_query(&self.raw_query).map_err(|e| StatusError::bad_request(e.to_string()))
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn shape(&self) -> Shape {
        Shape::from_accept(self.header(header::ACCEPT))
    }

    /// The request body as JSON: JSON, YAML, or Kubernetes' protobuf of a built-in kind.
    pub(crate) fn body_object(&self) -> Result<Value, StatusError> {
        let content_type = self.header(header::CONTENT_TYPE);
        if protobuf::is_protobuf(content_type) {
            return protobuf::decode_object(protobuf::kubernetes(), &self.body).map_err(|e| match e {
                // Custom resources have no protobuf form (kube-apiserver's answer).
                protobuf::Error::NoMessage { .. } => {
                    StatusError::unsupported_media_type_of_custom_resource(content_type)
                }
                e => StatusError::bad_request(format!("the body of the request could not be decoded: {e}")),
            });
        }
        if content_type.contains("protobuf") || content_type.contains("cbor") {
            return Err(StatusError::unsupported_media_type(content_type));
        }
        let parsed: Result<Value, String> = if content_type.contains("yaml") {
            serde_yaml::from_slice(&self.body).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(&self.body).map_err(|e| e.to_string())
        };
        match parsed {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(StatusError::bad_request("the request body must be a JSON object")),
            Err(e) => Err(StatusError::bad_request(format!("the body of the request could not be decoded: {e}"))),
        }
    }
}

/// Answers one API request (after authentication and fault injection).
pub async fn handle(state: Arc<State>, req: Request) -> Response {
    let route = {
        let registry = state.registry();
        route::parse(&req.path, &|g, v, r| registry.find(g, v, r).is_some_and(|i| i.namespaced))
    };
    let result = match route {
        Route::Version => Ok(json_response(StatusCode::OK, &state.version_info())),
        Route::Health(_) => Ok((StatusCode::OK, "ok").into_response()),
        Route::CoreVersions => Ok(json_response(StatusCode::OK, &state.registry().core_versions())),
        Route::Groups => Ok(json_response(StatusCode::OK, &state.registry().group_list_with(&aggregated(&state)))),
        Route::Group(g) => state
            .registry()
            .group_with(&g, &aggregated(&state))
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(StatusError::no_route),
        Route::Resources { group, version } => state
            .registry()
            .resource_list(&group, &version)
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(StatusError::no_route),
        Route::OpenApiV3Root => {
            Ok(json_response(StatusCode::OK, &openapi::root_with("", &state.registry().served(), &aggregated(&state))))
        }
        Route::OpenApiV3 { group, version } => {
            let registry = state.registry();
            let served = served_schemas(&registry);
            openapi::group_version(&group, &version, &served)
                .map(|v| json_response(StatusCode::OK, &v))
                .ok_or_else(StatusError::no_route)
        }
        Route::OpenApiV2 => {
            let registry = state.registry();
            let doc = openapi_v2::document(&openapi::all_group_versions(&served_schemas(&registry)));
            if openapi_v2::wants_protobuf(req.header(header::ACCEPT)) {
                let body = openapi_v2::to_protobuf(&doc);
                Ok((StatusCode::OK, [(header::CONTENT_TYPE, openapi_v2::PROTOBUF_CONTENT_TYPE)], body).into_response())
            } else {
                Ok(json_response(StatusCode::OK, &doc))
            }
        }
        Route::Object(o) => object_request(&state, &o, &req).await,
        Route::NotFound => Err(StatusError::no_route()),
    };
    let response = result.unwrap_or_else(|e| error_response(&e));
    let accept = req.header(header::ACCEPT);
    if !protobuf::protobuf_only(accept) {
        return response;
    }
    // A client that takes nothing but protobuf (watch streams stay JSON-only here).
    if req.list_options().is_ok_and(|o| o.watch) {
        return error_response(&StatusError::not_acceptable(accept));
    }
    to_protobuf(response, accept).await
}

/// A JSON response re-encoded as protobuf; 406 for what has no protobuf form (custom
/// resources, Tables).
async fn to_protobuf(response: Response, accept: &str) -> Response {
    let (parts, body) = response.into_parts();
    let json = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => serde_json::from_slice::<Value>(&b).ok(),
        Err(_) => None,
    };
    let encoded = json.as_ref().map(|v| protobuf::encode_object(protobuf::kubernetes(), v));
    match encoded {
        Some(Ok(bytes)) => (parts.status, [(header::CONTENT_TYPE, protobuf::MEDIA_TYPE)], bytes).into_response(),
        _ => error_response(&StatusError::not_acceptable(accept)),
    }
}

/// What the registry serves, with the CRD schemas of custom resources (for OpenAPI documents).
fn served_schemas(registry: &crate::registry::Registry) -> Vec<openapi::Served<'_>> {
    registry
        .served()
        .into_iter()
        .map(|info| openapi::Served {
            info,
            schema: registry.custom_schema(&info.group, &info.version, &info.resource),
        })
        .collect()
}

fn aggregated(state: &State) -> Vec<(String, String)> {
    state.aggregator.as_ref().map(|a| a.group_versions()).unwrap_or_default()
}

/// Requests under an aggregated group-version go to its backend (None: not aggregated).
pub async fn proxy_aggregated(
    state: &Arc<State>,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
    user: &str,
    groups: &[String],
) -> Option<Response> {
    let agg = state.aggregator.as_ref()?;
    // An aggregated group-version's OpenAPI document comes from its backend too (kube-aggregator
    // fetches it at the same path).
    let (path, openapi) = match uri.path().strip_prefix("/openapi/v3") {
        Some(rest) => (rest, true),
        None => (uri.path(), false),
    };
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let (Some("apis"), Some(group), Some(version)) = (segs.next(), segs.next(), segs.next()) else { return None };
    if openapi && segs.next().is_some() {
        return None;
    }
    let target = agg.target(group, version)?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let mut groups = groups.to_vec();
    if !groups.iter().any(|g| g == "system:authenticated") && user != "system:anonymous" {
        groups.push("system:authenticated".into());
    }
    let identity = crate::sim::PeerIdentity { user: user.to_owned(), groups };
    Some(match agg.proxy(&target, method.clone(), path_and_query, headers, body.clone(), &identity).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    })
}

async fn object_request(state: &Arc<State>, r: &ObjectRoute, req: &Request) -> Reply {
    let info = state.registry().find(&r.group, &r.version, &r.resource).cloned().ok_or_else(StatusError::no_route)?;
    if r.namespace.is_some() && !info.namespaced {
        return Err(StatusError::no_route());
    }
    if let Some(sub) = &r.subresource
        && !info.subresources.iter().any(|s| &s.name == sub)
    {
        return Err(StatusError::no_route());
    }
    if let (&Method::POST, Some("token"), Some(ns), Some(name)) =
        (&req.method, r.subresource.as_deref(), r.namespace.as_deref(), r.name.as_deref())
        && info.group.is_empty()
        && info.resource == "serviceaccounts"
    {
        return crate::review::token_request(state, ns, name, req);
    }
    if info.create_only() {
        return match (req.method.clone(), &r.name) {
            (Method::POST, None) => crate::review::answer(state, &info, req),
            _ => Err(StatusError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                info.resource
            ))),
        };
    }
    let watch = req.method == Method::GET && r.name.is_none() && req.list_options()?.watch;
    let verb = match (&req.method, &r.name) {
        (&Method::GET, None) if watch => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, None) => "create",
        (&Method::PUT, Some(_)) => "update",
        (&Method::PATCH, Some(_)) => "patch",
        (&Method::DELETE, Some(_)) => "delete",
        (&Method::DELETE, None) => "deletecollection",
        _ => "",
    };
    let allowed = match &r.subresource {
        Some(sub) => info.subresources.iter().any(|s| &s.name == sub && s.verbs.iter().any(|v| v == verb)),
        None => info.allows(verb),
    };
    if !allowed {
        return Err(StatusError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} {})",
            info.resource
        )));
    }
    if info.namespaced && r.name.is_some() && r.namespace.is_none() {
        return Err(StatusError::no_route());
    }
    match &r.subresource {
        Some(s) if s != "status" => {
            return Err(StatusError::method_not_allowed(format!("kubesim does not serve the {s} subresource")));
        }
        _ => {}
    }
    let ctx = Ctx { state, info: &info, route: r, req };
    match verb {
        "watch" => ctx.watch(),
        "list" => ctx.list(),
        "get" => ctx.get(),
        "create" => ctx.create(),
        "update" => ctx.update(),
        "patch" => ctx.patch(),
        "delete" => ctx.delete(),
        _ => ctx.delete_collection(),
    }
}

struct Ctx<'a> {
    state: &'a Arc<State>,
    info: &'a ResourceInfo,
    route: &'a ObjectRoute,
    req: &'a Request,
}

impl Ctx<'_> {
    fn gr(&self) -> GroupResource {
        GroupResource::new(&self.info.group, &self.info.resource)
    }

    fn key(&self) -> ObjectKey {
        (self.route.namespace.clone().unwrap_or_default(), self.route.name.clone().unwrap_or_default())
    }

    /// The apiVersion objects of this group-resource are stored with.
    fn storage_api_version(&self) -> String {
        self.state
            .registry()
            .find_any_version(&self.info.group, &self.info.resource)
            .map(ResourceInfo::api_version)
            .unwrap_or_else(|| self.info.api_version())
    }

    fn is_apiservice(&self) -> bool {
        self.info.group == "apiregistration.k8s.io" && self.info.resource == "apiservices"
    }

    fn is_status(&self) -> bool {
        self.route.subresource.as_deref() == Some("status")
    }

    /// Encodes one stored object for the response (version, shape).
    fn render_one(&self, object: &Value, code: StatusCode) -> Response {
        let mut object = object.clone();
        object["apiVersion"] = json!(self.info.api_version());
        match self.req.shape() {
            Shape::Table => {
                let t = table::build(&self.columns(), vec![object], &[], json!({}), Timestamp::now());
                json_response(code, &t)
            }
            Shape::Metadata => json_response(code, &encode::metadata_only(&object)),
            Shape::Full => json_response(code, &object),
        }
    }

    fn columns(&self) -> Vec<table::Column> {
        match self.state.registry().printer_columns(&self.info.group, &self.info.version, &self.info.resource) {
            Some(cols) => table::custom_resource_columns(cols),
            None => table::columns_for_kind(&self.info.kind),
        }
    }

    fn selectors(opts: &ListOptions) -> Result<(LabelSelector, FieldSelector), StatusError> {
        let labels = LabelSelector::parse(opts.label_selector.as_deref().unwrap_or_default())
            .map_err(|e| StatusError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(opts.field_selector.as_deref().unwrap_or_default())
            .map_err(|e| StatusError::bad_request(e.to_string()))?;
        Ok((labels, fields))
    }

    fn get(&self) -> Reply {
        let object = self
            .state
            .store
            .get(&self.gr(), &self.key())
            .ok_or_else(|| StatusError::not_found(&self.info.group, &self.info.resource, &self.key().1))?;
        Ok(self.render_one(&object, StatusCode::OK))
    }

    fn list(&self) -> Reply {
        let opts = self.req.list_options()?;
        let (labels, fields) = Self::selectors(&opts)?;
        let limit = opts.limit.filter(|l| *l > 0).map(|l| l as usize);
        let after = opts.continue_token.as_deref().map(cursor::parse_continue).transpose()?;
        let field_filter = |bytes: &Bytes| {
            fields.requirements.is_empty() || {
                let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                fields.matches(|f| meta::field_value(&v, f))
            }
        };
        let page = self.state.store.list(
            &self.gr(),
            self.route.namespace.as_deref(),
            after.as_ref().map(|(_, k)| k),
            limit,
            &|l, bytes| labels.matches(l) && field_filter(bytes),
        );
        let rv = after.as_ref().map_or(page.rv, |(rv, _)| *rv);
        let cont = page.next.as_ref().map(|k| cursor::continue_token(rv, k));
        let api_version = self.info.api_version();
        let relabel = api_version != self.storage_api_version();
        let meta = encode::list_meta(&rv.to_string(), cont.as_deref(), page.remaining.map(|r| r as i64));
        match self.req.shape() {
            Shape::Full => {
                // Objects served in another version than stored get that version's apiVersion.
                let kind = format!("{}List", self.info.kind);
                let body = if relabel {
                    let items: Vec<Vec<u8>> = page.items.iter().map(|i| encode::relabel(i, &api_version)).collect();
                    encode::list(&kind, &api_version, &meta, &items)
                } else {
                    encode::list(&kind, &api_version, &meta, &page.items)
                };
                Ok(raw_response(StatusCode::OK, body.into()))
            }
            shape => {
                let objects: Vec<Value> = page.items.iter().filter_map(|b| serde_json::from_slice(b).ok()).collect();
                let body = if shape == Shape::Table {
                    table::build(&self.columns(), objects, &[], meta, Timestamp::now())
                } else {
                    encode::metadata_list(meta, &objects)
                };
                Ok(json_response(StatusCode::OK, &body))
            }
        }
    }

    fn watch(&self) -> Reply {
        let opts = self.req.list_options()?;
        let (labels, fields) = Self::selectors(&opts)?;
        let causes = opts.watch_errors(self.state.faults.streaming_lists());
        if !causes.is_empty() {
            return Err(StatusError::invalid("meta.k8s.io", "ListOptions.meta.k8s.io", "", &causes));
        }
        let rv = opts.resource_version.as_deref().unwrap_or("0");
        let send_initial = opts.send_initial_events;
        let start = match (rv, send_initial) {
            (_, Some(true)) => WatchStart::Current,
            ("0", Some(false)) => WatchStart::After(self.state.store.current_rv()),
            ("0", _) => WatchStart::Current,
            (n, _) => WatchStart::After(
                n.parse().map_err(|_| StatusError::bad_request(format!("invalid resourceVersion {n:?}")))?,
            ),
        };
        let namespace = self.route.namespace.clone();
        let name_filter = if fields.requirements.is_empty() { None } else { Some(fields) };
        let (initial, rx) = match self.state.store.watch(&self.gr(), start) {
            Ok(w) => w,
            // A too-old version is reported inside a 200 watch stream, as kube-apiserver does.
            Err(e) if e.code == 410 => return Ok(crate::watch::expired_stream(e)),
            Err(e) => return Err(e),
        };
        let timeout = opts
            .timeout_seconds
            .filter(|t| *t > 0)
            .map_or(self.state.config.watch_timeout, |t| Duration::from_secs(t as u64));
        let spec = crate::watch::WatchSpec {
            namespace,
            labels,
            fields: name_filter,
            bookmarks: opts.allow_watch_bookmarks,
            initial_events_end: send_initial == Some(true),
            timeout,
            bookmark_interval: self.state.config.bookmark_interval,
            api_version: self.info.api_version(),
            kind: self.info.kind.clone(),
            relabel: self.info.api_version() != self.storage_api_version(),
            table_columns: (self.req.shape() == Shape::Table).then(|| self.columns()),
            store_rv: Arc::clone(self.state),
        };
        Ok(crate::watch::stream(spec, initial, rx))
    }

    fn create(&self) -> Reply {
        let mut object = self.req.body_object()?;
        let namespace = self.route.namespace.clone().unwrap_or_default();
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != self.info.kind
        {
            return Err(StatusError::bad_request(format!(
                "the kind of the object ({kind}) does not match the resource ({})",
                self.info.resource
            )));
        }
        if let Some(ns) = meta::meta_str(&object, "namespace")
            && self.info.namespaced
            && ns != namespace
            && !ns.is_empty()
        {
            return Err(StatusError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = match (meta::meta_str(&object, "name"), meta::meta_str(&object, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_owned(),
            (_, Some(g)) if !g.is_empty() => format!("{g}{}", meta::name_suffix()),
            _ => {
                return Err(StatusError::invalid(
                    &self.info.group,
                    &self.info.kind,
                    "",
                    &[("metadata.name".into(), "Required value: name or generateName is required".into())],
                ));
            }
        };
        if self.info.namespaced {
            self.require_namespace(&namespace)?;
        }
        object["apiVersion"] = json!(self.storage_api_version());
        object["kind"] = json!(self.info.kind);
        {
            let m = meta::meta_mut(&mut object);
            m.insert("name".into(), json!(name));
            if self.info.namespaced {
                m.insert("namespace".into(), json!(namespace));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(meta::new_uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
            for f in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"] {
                m.remove(f);
            }
            if self.tracks_generation() {
                m.insert("generation".into(), json!(1));
            }
        }
        if self.info.has_status() {
            object.as_object_mut().map(|o| o.remove("status"));
        }
        self.defaults_on_create(&mut object);
        crate::defaults::on_write(&self.info.group, &self.info.resource, &mut object);
        let object = self.validate(object)?;
        let object = self.with_managed_fields(object, "Update");
        if self.dry_run() {
            return Ok(self.render_one(&object, StatusCode::CREATED));
        }
        let created = self.state.store.create(&self.gr(), (namespace, name.clone()), object)?;
        if self.info.group.is_empty() && self.info.resource == "namespaces" {
            self.state.namespace_added(&name);
        }
        if self.info.group == "apiextensions.k8s.io" && self.info.resource == "customresourcedefinitions" {
            self.state.register_crd(&created);
        }
        if self.is_apiservice() {
            self.state.sync_apiservice(&created, false);
        }
        Ok(self.render_one(&created, StatusCode::CREATED))
    }

    fn require_namespace(&self, namespace: &str) -> Result<(), StatusError> {
        let ns_gr = GroupResource::new("", "namespaces");
        match self.state.store.get(&ns_gr, &(String::new(), namespace.to_owned())) {
            Some(ns) if meta::meta_str(&ns, "deletionTimestamp").is_some() => Err(StatusError::forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ))),
            Some(_) => Ok(()),
            None => Err(StatusError::not_found("", "namespaces", namespace)),
        }
    }

    fn tracks_generation(&self) -> bool {
        self.info.has_status() || self.state.registry().is_custom(&self.info.group, &self.info.resource)
    }

    /// Status that controllers would fill in right away.
    fn defaults_on_create(&self, object: &mut Value) {
        match (self.info.group.as_str(), self.info.resource.as_str()) {
            ("", "namespaces") => object["status"] = json!({"phase": "Active"}),
            ("", "pods") => object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
            ("apiregistration.k8s.io", "apiservices") => {
                object["status"] = crate::aggregate::apiservice_status(object);
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let storage: Vec<Value> = object["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"].as_bool() == Some(true))
                    .map(|v| v["name"].clone())
                    .collect();
                let now = meta::now();
                object["status"] = json!({
                    "acceptedNames": object["spec"]["names"].clone(),
                    "storedVersions": storage,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
                    ]
                });
            }
            _ => {}
        }
    }

    /// Custom resources are validated against their CRD's schema; with `fieldValidation=Strict`
    /// unknown fields are errors, otherwise they are pruned.
    fn validate(&self, object: Value) -> Result<Value, StatusError> {
        let strict = self.req.param("fieldValidation") == Some("Strict");
        let mode = if strict { UnknownFields::Reject } else { UnknownFields::Prune };
        let validators = self.state.validators();
        let Some(v) = validators.get(&GroupResource::new(&self.info.group, &self.info.resource)) else {
            return Ok(object);
        };
        let mut versioned = object.clone();
        versioned["apiVersion"] = json!(self.info.api_version());
        match v.validate_with(&versioned, mode) {
            Ok(mut pruned) => {
                pruned["apiVersion"] = object["apiVersion"].clone();
                Ok(pruned)
            }
            Err(ValidationError::Invalid { errors, .. }) => {
                let name = meta::meta_str(&object, "name").unwrap_or_default();
                let unknown: Vec<_> = errors.iter().filter(|e| e.message.contains("unknown field")).collect();
                if strict && unknown.len() == errors.len() {
                    let text: Vec<String> = unknown.iter().map(|e| format!("unknown field {:?}", e.path)).collect();
                    return Err(StatusError::bad_request(format!("strict decoding error: {}", text.join(", "))));
                }
                let causes: Vec<(String, String)> = errors.into_iter().map(|e| (e.path, e.message)).collect();
                Err(StatusError::invalid(&self.info.group, &self.info.kind, name, &causes))
            }
            Err(other) => Err(StatusError::bad_request(other.to_string())),
        }
    }

    fn dry_run(&self) -> bool {
        self.req.param("dryRun") == Some("All")
    }

    /// One managedFields entry per manager, refreshed on every write (no field ownership).
    fn with_managed_fields(&self, mut object: Value, operation: &str) -> Value {
        let manager = self.req.param("fieldManager").map(str::to_owned).unwrap_or_else(|| {
            let agent = self.req.header(header::USER_AGENT);
            agent.split('/').next().filter(|a| !a.is_empty()).unwrap_or("kubesim").to_owned()
        });
        let entry = json!({
            "manager": manager, "operation": operation, "apiVersion": self.info.api_version(), "time": meta::now(),
            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}},
        });
        let m = meta::meta_mut(&mut object);
        let mut entries: Vec<Value> = m
            .get("managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["manager"] != json!(manager) || e["operation"] != json!(operation))
            .collect();
        entries.push(entry);
        m.insert("managedFields".into(), Value::Array(entries));
        object
    }

    /// The stored object after an update with `body`, keeping what the verb may not change.
    fn merge_update(&self, current: &Value, mut body: Value) -> Result<Value, StatusError> {
        let name = self.key().1;
        if let Some(n) = meta::meta_str(&body, "name")
            && n != name
        {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let mut next = if self.is_status() {
            let mut next = current.clone();
            next["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            if next["status"].is_null() {
                next.as_object_mut().map(|o| o.remove("status"));
            }
            next
        } else {
            if self.info.has_status() {
                match current.get("status") {
                    Some(s) => body["status"] = s.clone(),
                    None => {
                        body.as_object_mut().map(|o| o.remove("status"));
                    }
                }
            }
            body
        };
        next["apiVersion"] = json!(self.storage_api_version());
        next["kind"] = json!(self.info.kind);
        {
            let cur_meta = current.get("metadata").cloned().unwrap_or(json!({}));
            let m = meta::meta_mut(&mut next);
            for f in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match cur_meta.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
        }
        if self.tracks_generation() && !self.is_status() && spec_changed(current, &next) {
            let g = current.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            meta::meta_mut(&mut next).insert("generation".into(), json!(g));
        }
        Ok(next)
    }

    fn update(&self) -> Reply {
        let body = self.req.body_object()?;
        let expected = meta::meta_str(&body, "resourceVersion").map(str::to_owned);
        let current = self
            .state
            .store
            .get(&self.gr(), &self.key())
            .ok_or_else(|| StatusError::not_found(&self.info.group, &self.info.resource, &self.key().1))?;
        let next = self.merge_update(&current, body)?;
        self.store_update(next, expected.as_deref())
    }

    fn store_update(&self, mut next: Value, expected: Option<&str>) -> Reply {
        crate::defaults::on_write(&self.info.group, &self.info.resource, &mut next);
        let next = self.validate(next)?;
        let next = self.with_managed_fields(next, "Update");
        if self.dry_run() {
            return Ok(self.render_one(&next, StatusCode::OK));
        }
        let stored = self.state.store.replace(&self.gr(), &self.key(), next, expected)?;
        if self.info.resource == "customresourcedefinitions" && self.info.group == "apiextensions.k8s.io" {
            self.state.register_crd(&stored);
        }
        if self.is_apiservice() {
            self.state.sync_apiservice(&stored, false);
        }
        Ok(self.render_one(&stored, StatusCode::OK))
    }

    fn patch(&self) -> Reply {
        let kind = PatchType::from_content_type(self.req.header(header::CONTENT_TYPE))?;
        let current = self.state.store.get(&self.gr(), &self.key());
        let Some(current) = current else {
            if kind == PatchType::Apply && !self.is_status() {
                return self.apply_create();
            }
            return Err(StatusError::not_found(&self.info.group, &self.info.resource, &self.key().1));
        };
        if kind == PatchType::Apply && self.req.param("fieldManager").is_none() {
            return Err(StatusError::bad_request("PATCH with apply requires a fieldManager query parameter"));
        }
        let patched = patch::apply(kind, &current, &self.req.body)?;
        let current_rv = meta::meta_str(&current, "resourceVersion").map(str::to_owned);
        let patched_rv = meta::meta_str(&patched, "resourceVersion").map(str::to_owned);
        if patched_rv != current_rv && patched_rv.is_some() {
            return Err(StatusError::conflict(&self.info.group, &self.info.resource, &self.key().1));
        }
        let next = self.merge_update(&current, patched)?;
        let next = if kind == PatchType::Apply { self.with_managed_fields(next, "Apply") } else { next };
        self.store_update(next, current_rv.as_deref())
    }

    /// Server-side apply of an object that does not exist yet creates it.
    fn apply_create(&self) -> Reply {
        let applied: Value = serde_yaml::from_slice(&self.req.body)
            .map_err(|e| StatusError::bad_request(format!("the patch is not valid: {e}")))?;
        let mut body = applied;
        meta::meta_mut(&mut body).insert("name".into(), json!(self.key().1));
        let req = Request {
            method: Method::POST,
            path: self.req.path.clone(),
            query: self.req.query.clone(),
            raw_query: self.req.raw_query.clone(),
            headers: {
                let mut h = self.req.headers.clone();
                h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
                h
            },
            body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            user: self.req.user.clone(),
            groups: self.req.groups.clone(),
        };
        let route = ObjectRoute { name: None, subresource: None, ..self.route.clone() };
        Ctx { state: self.state, info: self.info, route: &route, req: &req }.create()
    }

    fn delete_options(&self) -> (Propagation, Option<String>) {
        // DeleteOptions are optional: a body that is none (or not one) leaves the defaults.
        let body = if self.req.body.is_empty() { Value::Null } else { self.req.body_object().unwrap_or(Value::Null) };
        let policy = self
            .req
            .param("propagationPolicy")
            .map(str::to_owned)
            .or_else(|| body["propagationPolicy"].as_str().map(str::to_owned));
        let propagation = match policy.as_deref() {
            Some("Orphan") => Propagation::Orphan,
            Some("Foreground") => Propagation::Foreground,
            _ if body["orphanDependents"].as_bool() == Some(true) => Propagation::Orphan,
            _ => Propagation::Background,
        };
        (propagation, body.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned))
    }

    fn delete(&self) -> Reply {
        let (propagation, uid) = self.delete_options();
        if self.dry_run() {
            return self.get();
        }
        let key = self.key();
        if self.info.group.is_empty() && self.info.resource == "namespaces" {
            // The namespace controller removes everything in a deleted namespace.
            for (gr, k) in self.state.store.keys_in_namespace(&key.1) {
                let _ = self.state.store.delete(&gr, &k, Propagation::Background, None);
            }
        }
        let deleted = self.state.store.delete(&self.gr(), &key, propagation, uid.as_deref())?;
        if self.info.resource == "customresourcedefinitions"
            && self.info.group == "apiextensions.k8s.io"
            && meta::meta_str(&deleted, "deletionTimestamp").is_none()
        {
            self.state.unregister_crd(&deleted);
        }
        if self.is_apiservice() && meta::meta_str(&deleted, "deletionTimestamp").is_none() {
            self.state.sync_apiservice(&deleted, true);
        }
        Ok(self.render_one(&deleted, StatusCode::OK))
    }

    fn delete_collection(&self) -> Reply {
        let (labels, fields) = Self::selectors(&self.req.list_options()?)?;
        let (propagation, _) = self.delete_options();
        let mut deleted = Vec::new();
        for key in self.state.store.keys(&self.gr(), self.route.namespace.as_deref()) {
            let Some(obj) = self.state.store.get(&self.gr(), &key) else { continue };
            if labels.matches(&meta::labels(&obj))
                && fields.matches(|f| meta::field_value(&obj, f))
                && let Ok(d) = self.state.store.delete(&self.gr(), &key, propagation, None)
            {
                deleted.push(d);
            }
        }
        if deleted.is_empty() {
            return Ok(json_response(StatusCode::OK, &status::success()));
        }
        let items: Vec<Bytes> = deleted.iter().filter_map(|d| serde_json::to_vec(d).ok().map(Bytes::from)).collect();
        Ok(raw_response(
            StatusCode::OK,
            encode::list(
                &format!("{}List", self.info.kind),
                &self.info.api_version(),
                &encode::list_meta(&self.state.store.current_rv().to_string(), None, None),
                &items,
            )
            .into(),
        ))
    }
}

/// Whether anything but metadata and status differs (what bumps `metadata.generation`).
fn spec_changed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
            o.remove("apiVersion");
            o.remove("kind");
        }
        v
    };
    strip(a) != strip(b)
}

/// Compiles the validator for a CRD object (None when its schema does not compile).
pub fn crd_validator(crd: &Value) -> Option<SchemaValidator> {
    let typed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(crd.clone()).ok()?;
    SchemaValidator::new(std::slice::from_ref(&typed)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tracks_spec_only() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"s": 1}});
        let b = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"x": 1}, "status": {"s": 2}});
        assert!(!spec_changed(&a, &b));
        let c = json!({"metadata": {}, "spec": {"x": 2}});
        assert!(spec_changed(&a, &c));
    }

    #[test]
    fn query_first_value_wins() {
        let q = query_map(Some("a=1&a=2&labelSelector=app%3Dweb"));
        assert_eq!(q["a"], "1");
        assert_eq!(q["labelSelector"], "app=web");
    }
}
