//! The Kubernetes API surface under `resources[/clusters/<c>]`: discovery built from the
//! catalog, and get / list / watch of synced resources read from the store.

use api_types::Gvr;
use api_types::api::discovery;
use api_types::api::encode::{self, Shape};
use api_types::api::path::{self, ObjectRoute, Route};
use api_types::api::resources::{self, ResourceInfo};
use api_types::api::{openapi, openapi_v2};
use api_types::fields::Segment;
use api_types::search::{ListOptions, QueryError, SearchQuery};
use api_types::status::StatusError;
use api_types::table;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pedia_storage::ListRequest;
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::respond::{self, Row};
use crate::server::{Request, State, bytes_response, json_response, storage_error};

fn bad_query(e: QueryError) -> StatusError {
    StatusError::bad_request(e.to_string())
}

/// Answers a request for `kube_path` in one cluster or across all of them.
pub async fn answer(
    state: &State,
    cluster: Option<&str>,
    kube_path: &str,
    req: &Request,
) -> Result<Response, StatusError> {
    let catalog = state.catalog.borrow().clone();
    let route = path::parse(kube_path, &|g, v, r| catalog.find(cluster, g, v, r).is_some_and(|i| i.namespaced));
    let served = catalog.resources(cluster);
    let accept = req.header(header::ACCEPT).to_owned();
    let discovery_doc =
        |v: Option<Value>| v.map(|v| json_response(StatusCode::OK, &v)).ok_or_else(StatusError::no_route);
    let mut resp = match route {
        Route::Version => Ok(json_response(StatusCode::OK, &crate::server::version_info())),
        Route::Health(_) => Ok((StatusCode::OK, "ok").into_response()),
        Route::OpenApiV3Root => {
            let served = served.ok_or_else(StatusError::no_route)?;
            Ok(json_response(StatusCode::OK, &openapi::root(&crate::route::resources_prefix(cluster), &served)))
        }
        Route::OpenApiV3 { group, version } => {
            let served = served.ok_or_else(StatusError::no_route)?;
            openapi_group_version(state, cluster, &served, &group, &version).await
        }
        Route::OpenApiV2 => {
            let served = served.ok_or_else(StatusError::no_route)?;
            openapi_v2(state, cluster, &served, &accept).await
        }
        Route::CoreVersions | Route::Groups | Route::Group(_) | Route::Resources { .. } => {
            // Discovery of an unknown cluster is a 404 (upstream).
            let served = served.ok_or_else(StatusError::no_route)?;
            let aggregated = discovery::wants_aggregated(&accept);
            match route {
                Route::CoreVersions if aggregated => Ok(aggregated_response(discovery::aggregated(&served, true))),
                Route::Groups if aggregated => Ok(aggregated_response(discovery::aggregated(&served, false))),
                Route::CoreVersions => Ok(json_response(StatusCode::OK, &discovery::core_versions())),
                Route::Groups => Ok(json_response(StatusCode::OK, &discovery::group_list(&discovery::groups(&served)))),
                Route::Group(g) => discovery_doc(discovery::group(&discovery::groups(&served), &g)),
                Route::Resources { group, version } => {
                    discovery_doc(discovery::resource_list(&served, &group, &version))
                }
                _ => Err(StatusError::no_route()),
            }
        }
        Route::Object(o) => object(state, &catalog, cluster, &o, req).await,
        Route::NotFound => Err(StatusError::no_route()),
    }?;
    if let Some(warning) = cluster.and_then(|c| catalog.cluster(c)).and_then(|c| c.warning.as_deref())
        && let Ok(v) = HeaderValue::from_str(&format!("299 - {:?}", warning))
    {
        resp.headers_mut().append(header::WARNING, v);
    }
    Ok(resp)
}

/// A group-version's OpenAPI document; custom resources carry their member CRD's schema.
async fn openapi_group_version(
    state: &State,
    cluster: Option<&str>,
    served: &[&ResourceInfo],
    group: &str,
    version: &str,
) -> Result<Response, StatusError> {
    let in_gv: Vec<&ResourceInfo> =
        served.iter().copied().filter(|r| r.group == group && r.version == version).collect();
    let schemas = custom_schemas(state, cluster, &in_gv).await?;
    let resources: Vec<openapi::Served<'_>> =
        in_gv.iter().zip(&schemas).map(|(info, schema)| openapi::Served { info, schema: schema.as_ref() }).collect();
    let doc = openapi::group_version(group, version, &resources).ok_or_else(StatusError::no_route)?;
    Ok(json_response(StatusCode::OK, &doc))
}

/// The member CRDs' schemas of `resources` (None: a built-in kind, or no schema).
async fn custom_schemas(
    state: &State,
    cluster: Option<&str>,
    resources: &[&ResourceInfo],
) -> Result<Vec<Option<Value>>, StatusError> {
    let mut schemas = Vec::with_capacity(resources.len());
    for info in resources {
        let definition = definition(state, info, cluster).await?;
        schemas.push(definition.and_then(|mut d| d.pointer_mut("/schema/openAPIV3Schema").map(Value::take)));
    }
    Ok(schemas)
}

/// `<prefix>/openapi/v2`: every served schema, as JSON or in the protobuf form kubectl asks for.
async fn openapi_v2(
    state: &State,
    cluster: Option<&str>,
    served: &[&ResourceInfo],
    accept: &str,
) -> Result<Response, StatusError> {
    let schemas = custom_schemas(state, cluster, served).await?;
    let resources: Vec<openapi::Served<'_>> =
        served.iter().zip(&schemas).map(|(info, schema)| openapi::Served { info, schema: schema.as_ref() }).collect();
    let doc = openapi_v2::document(&openapi::all_group_versions(&resources));
    Ok(if openapi_v2::wants_protobuf(accept) {
        bytes_response(StatusCode::OK, openapi_v2::PROTOBUF_CONTENT_TYPE, openapi_v2::to_protobuf(&doc))
    } else {
        json_response(StatusCode::OK, &doc)
    })
}

fn aggregated_response(doc: Value) -> Response {
    bytes_response(StatusCode::OK, discovery::AGGREGATED_MEDIA_TYPE, serde_json::to_vec(&doc).unwrap_or_default())
}

async fn object(
    state: &State,
    catalog: &Catalog,
    cluster: Option<&str>,
    o: &ObjectRoute,
    req: &Request,
) -> Result<Response, StatusError> {
    if let Some(c) = cluster
        && catalog.cluster(c).is_none()
    {
        return Err(StatusError::bad_request(format!("the server could not find the requested cluster: {c}")));
    }
    let info = catalog.find(cluster, &o.group, &o.version, &o.resource).cloned().ok_or_else(StatusError::no_route)?;
    if (o.namespace.is_some() && !info.namespaced) || o.subresource.is_some() {
        return Err(StatusError::no_route());
    }
    let opts = ListOptions::from_query(&req.query).map_err(bad_query)?;
    let shape = Shape::from_accept(req.header(header::ACCEPT));
    let gvr = Gvr::new(&info.group, &info.version, &info.resource);
    match &o.name {
        Some(name) => {
            let Some(cluster) = cluster else {
                return Err(StatusError::bad_request(
                    "please specify the cluster name when using the resource name to get a specific resource.",
                ));
            };
            if info.namespaced && o.namespace.is_none() {
                return Err(StatusError::no_route());
            }
            let found = state
                .storage
                .get(cluster, &gvr, o.namespace.as_deref().unwrap_or_default(), name)
                .await
                .map_err(storage_error)?;
            let mut obj = found.ok_or_else(|| StatusError::not_found(&info.group, &info.resource, name))?;
            if state.redact_secrets && is_secrets(&info) {
                redact(&mut obj);
            }
            if opts.inject_events {
                inject_events(&state.storage, std::slice::from_mut(&mut obj), &[cluster]).await?;
            }
            let columns = table_columns(state, &info, Some(cluster), shape).await?;
            let body = respond::object(shape, cluster, &obj, &columns).map_err(encode_error)?;
            Ok(bytes_response(StatusCode::OK, "application/json", body))
        }
        None => {
            let query = SearchQuery::from_options(&opts, cluster, o.namespace.as_deref()).map_err(bad_query)?;
            check_field_paths(state, &info, &query).await?;
            if opts.watch {
                let columns = table_columns(state, &info, cluster, shape).await?;
                return crate::watch::start(state, info, gvr, query, shape, columns, &opts);
            }
            list(state, &info, cluster, gvr, query, shape).await
        }
    }
}

/// `orderby` and field-selector paths must name a field the kind has: a typo would otherwise sort
/// by null or match nothing, without a word. Custom resources are checked against every member's
/// CRD schema (one that has the field is enough).
async fn check_field_paths(state: &State, info: &ResourceInfo, query: &SearchQuery) -> Result<(), StatusError> {
    let mut paths: Vec<(&'static str, &str, Vec<Segment>)> = Vec::new();
    for o in &query.order_by {
        if let Some(path) = o.field_path() {
            paths.push((
                "orderby",
                &o.field,
                path.map_err(|reason| bad_query(QueryError::invalid("orderby", &o.field, reason)))?,
            ));
        }
    }
    for r in &query.fields.requirements {
        paths.push(("fieldSelector", &r.requirement.key, r.path.clone()));
    }
    if paths.is_empty() {
        return Ok(());
    }
    let schemas: Vec<Option<Value>> = if resources::is_builtin(&info.group, &info.resource) {
        vec![None]
    } else {
        let gvr = Gvr::new(&info.group, &info.version, &info.resource);
        let definitions = state.storage.definitions(Some(&gvr)).await.map_err(storage_error)?;
        definitions
            .into_iter()
            .map(|mut d| d.definition.pointer_mut("/schema/openAPIV3Schema").map(Value::take))
            .collect()
    };
    for (param, text, path) in paths {
        let answers: Vec<Option<bool>> = schemas.iter().map(|s| openapi::has_field(info, s.as_ref(), &path)).collect();
        if !answers.is_empty() && answers.iter().all(|a| *a == Some(false)) {
            let reason = format!("{} ({}) have no field {text}", info.resource, info.api_version());
            return Err(bad_query(QueryError::invalid(param, text, reason)));
        }
    }
    Ok(())
}

fn is_secrets(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "secrets"
}

/// Drops a Secret's values (`--redact-secrets`), keeping their keys visible.
fn redact(secret: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(map) = secret.get_mut(field).and_then(Value::as_object_mut) {
            for v in map.values_mut() {
                *v = json!("");
            }
        }
    }
}

fn encode_error(e: serde_json::Error) -> StatusError {
    StatusError::internal(format!("encoding the response: {e}"))
}

async fn list(
    state: &State,
    info: &ResourceInfo,
    cluster: Option<&str>,
    gvr: Gvr,
    mut query: SearchQuery,
    shape: Shape,
) -> Result<Response, StatusError> {
    let inject = query.inject_events;
    if shape == Shape::Metadata {
        query.only_metadata = true;
    }
    let page = state
        .storage
        .list(&ListRequest { gvr: Some(gvr), resource_types: Vec::new(), query })
        .await
        .map_err(storage_error)?;
    let meta = encode::list_meta(&page.resource_version.to_string(), page.continue_token.as_deref(), page.remaining);
    let redact_them = state.redact_secrets && is_secrets(info);
    // Objects are passed on as stored unless something must change in them.
    let rewritten: Vec<String>;
    let rows: Vec<Row<'_>> = if redact_them || inject {
        let mut objects = page.items.iter().map(|i| i.value().map_err(encode_error)).collect::<Result<Vec<_>, _>>()?;
        if redact_them {
            objects.iter_mut().for_each(redact);
        }
        if inject {
            let clusters: Vec<&str> = page.items.iter().map(|i| i.cluster.as_str()).collect();
            inject_events(&state.storage, &mut objects, &clusters).await?;
        }
        rewritten = objects.iter().map(Value::to_string).collect();
        page.items.iter().zip(&rewritten).map(|(i, json)| Row { cluster: &i.cluster, json }).collect()
    } else {
        page.items.iter().map(|i| Row { cluster: &i.cluster, json: i.object.get() }).collect()
    };
    let columns = table_columns(state, info, cluster, shape).await?;
    let body = respond::list(info, shape, meta, &rows, &columns).map_err(encode_error)?;
    Ok(bytes_response(StatusCode::OK, "application/json", body))
}

/// A Table's columns (none for other shapes).
async fn table_columns(
    state: &State,
    info: &ResourceInfo,
    cluster: Option<&str>,
    shape: Shape,
) -> Result<Vec<table::Column>, StatusError> {
    if shape != Shape::Table {
        return Ok(Vec::new());
    }
    Ok(respond::columns(info, definition(state, info, cluster).await?.as_ref()))
}

/// How the members define a custom resource (`None` for built-ins, or when none told): the
/// asked cluster's definition, else the first cluster's that has one.
async fn definition(state: &State, info: &ResourceInfo, cluster: Option<&str>) -> Result<Option<Value>, StatusError> {
    if resources::is_builtin(&info.group, &info.resource) {
        return Ok(None);
    }
    let gvr = Gvr::new(&info.group, &info.version, &info.resource);
    let mut definitions = state.storage.definitions(Some(&gvr)).await.map_err(storage_error)?;
    let at = definitions.iter().position(|d| Some(d.cluster.as_str()) == cluster).unwrap_or(0);
    Ok((at < definitions.len()).then(|| definitions.swap_remove(at).definition))
}

/// Attaches to each object (of the cluster at the same index) its stored events.
pub(crate) async fn inject_events(
    storage: &pedia_storage::Storage,
    objects: &mut [Value],
    clusters: &[&str],
) -> Result<(), StatusError> {
    let uid = |o: &Value| o.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
    let keys: Vec<(String, String)> = objects.iter().zip(clusters).map(|(o, c)| ((*c).to_owned(), uid(o))).collect();
    let events = storage.events_of(&keys).await.map_err(storage_error)?;
    for (object, key) in objects.iter_mut().zip(&keys) {
        respond::with_events(object, events.get(key).map(Vec::as_slice).unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_keys() {
        let mut s = json!({"data": {"password": "c2VjcmV0"}, "stringData": {"a": "b"}, "type": "Opaque"});
        redact(&mut s);
        assert_eq!(s, json!({"data": {"password": ""}, "stringData": {"a": ""}, "type": "Opaque"}));
    }
}
