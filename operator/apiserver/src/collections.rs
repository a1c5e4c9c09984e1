//! Collection resources (`any`, `workloads`, `kuberesources`): several resource types searched
//! at once, answered as `CollectionResource` objects or Tables.

use api_types::api::encode::Shape;
use api_types::search::{self, ListOptions, ResourceType, SearchQuery};
use api_types::status::StatusError;
use api_types::table::{self, CellSource, Column};
use axum::http::{StatusCode, header};
use axum::response::Response;
use k8s_openapi::jiff::Timestamp;
use pedia_storage::ListRequest;
use serde_json::{Value, json};

use crate::server::{Request, State, json_response, storage_error};

const NAMES: [&str; 3] = ["any", "workloads", "kuberesources"];

/// `group.resource` items as upstream's Resources column shows them (`*` for every resource).
fn types_text(name: &str, types: &[ResourceType]) -> String {
    if name == "any" {
        return "*".into();
    }
    types
        .iter()
        .map(|t| {
            let g = t.group.as_deref().unwrap_or("*");
            let r = t.resource.as_deref().unwrap_or("*");
            if g.is_empty() { r.to_owned() } else { format!("{g}.{r}") }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn type_json(t: &ResourceType) -> Value {
    json!({"group": t.group.clone().unwrap_or_default(), "version": t.version.clone().unwrap_or_default(),
           "resource": t.resource.clone().unwrap_or_default()})
}

fn collection_object(name: &str, types: &[ResourceType]) -> Value {
    json!({"apiVersion": format!("{}/{}", search::GROUP, search::VERSION), "kind": "CollectionResource",
           "metadata": {"name": name}, "resourceTypes": types.iter().map(type_json).collect::<Vec<_>>()})
}

/// `GET .../collectionresources`.
pub fn list(req: &Request) -> Result<Response, StatusError> {
    let all: Vec<(&str, Vec<ResourceType>)> =
        NAMES.iter().map(|n| (*n, search::builtin_collection(n).unwrap_or_default())).collect();
    if Shape::from_accept(req.header(header::ACCEPT)) == Shape::Table {
        let cols = vec![
            Column::new("Name", "string", CellSource::Name),
            Column::new("Resources", "string", CellSource::Given),
        ];
        let objects: Vec<Value> = all.iter().map(|(n, t)| collection_object(n, t)).collect();
        let given: Vec<Vec<Value>> = all.iter().map(|(n, t)| vec![json!(types_text(n, t))]).collect();
        return Ok(json_response(StatusCode::OK, &table::build(&cols, objects, &given, json!({}), Timestamp::now())));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"apiVersion": format!("{}/{}", search::GROUP, search::VERSION), "kind": "CollectionResourceList",
                "metadata": {}, "items": all.iter().map(|(n, t)| collection_object(n, t)).collect::<Vec<_>>()}),
    ))
}

/// `GET .../collectionresources/<name>`: the objects of every type of the collection.
pub async fn get(state: &State, name: &str, req: &Request) -> Result<Response, StatusError> {
    let opts = ListOptions::from_query(&req.query).map_err(|e| StatusError::bad_request(e.to_string()))?;
    let types = match search::builtin_collection(name) {
        Some(_) if name == "any" => search::parse_resource_types(&opts.groups, &opts.resources)
            .map_err(|e| StatusError::bad_request(e.to_string()))?,
        Some(t) => t,
        None => {
            return Err(StatusError::not_found(search::GROUP, "collectionresources", name));
        }
    };
    let shape = Shape::from_accept(req.header(header::ACCEPT));
    let mut query =
        SearchQuery::from_options(&opts, None, None).map_err(|e| StatusError::bad_request(e.to_string()))?;
    // Owner filters need one resource type: collections ignore them, as upstream.
    query.owner = None;
    if shape == Shape::Table {
        query.only_metadata = true;
    }
    let page =
        state.storage.list(&ListRequest { gvr: None, resource_types: types, query }).await.map_err(storage_error)?;
    let items: Vec<(String, Value)> = page
        .items
        .iter()
        .map(|i| i.value().map(|v| (i.cluster.clone(), v)))
        .collect::<Result<_, _>>()
        .map_err(|e| StatusError::internal(format!("decoding a stored object: {e}")))?;
    let catalog = state.catalog.borrow().clone();
    let mut kinds: Vec<Value> = Vec::new();
    for (_, o) in &items {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = o["kind"].as_str().unwrap_or_default();
        let resource = catalog
            .resources(None)
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .map(|r| r.resource.clone())
            .unwrap_or_default();
        let t = json!({"group": group, "version": version, "resource": resource, "kind": kind});
        if !kinds.contains(&t) {
            kinds.push(t);
        }
    }
    let mut meta = json!({});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    if shape == Shape::Table {
        let cols = vec![
            Column::new("Cluster", "string", CellSource::Given),
            Column::new("Group", "string", CellSource::Given),
            Column::new("Version", "string", CellSource::Given),
            Column::new("Kind", "string", CellSource::JsonPath(".kind".into())),
            Column::new("Namespace", "string", CellSource::JsonPath(".metadata.namespace".into())),
            Column::new("Name", "string", CellSource::Name),
            Column::new("Age", "date", CellSource::Age),
        ];
        let given: Vec<Vec<Value>> = items
            .iter()
            .map(|(c, o)| {
                let av = o["apiVersion"].as_str().unwrap_or_default();
                let (g, v) = av.rsplit_once('/').unwrap_or(("", av));
                vec![json!(c), json!(g), json!(v)]
            })
            .collect();
        let objects: Vec<Value> = items.into_iter().map(|(_, o)| o).collect();
        return Ok(json_response(StatusCode::OK, &table::build(&cols, objects, &given, meta, Timestamp::now())));
    }
    let mut body = json!({"apiVersion": format!("{}/{}", search::GROUP, search::VERSION), "kind": "CollectionResource",
        "metadata": {"name": name}, "resourceTypes": kinds,
        "items": items.into_iter().map(|(_, o)| o).collect::<Vec<_>>()});
    if let Some(c) = meta.get("continue") {
        body["continue"] = c.clone();
    }
    if let Some(r) = meta.get("remainingItemCount") {
        body["remainingItemCount"] = r.clone();
    }
    Ok(json_response(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_column_like_upstream() {
        assert_eq!(types_text("any", &[]), "*");
        let w = search::builtin_collection("workloads").unwrap();
        assert_eq!(types_text("workloads", &w), "apps.deployments,apps.daemonsets,apps.statefulsets");
        let k = search::builtin_collection("kuberesources").unwrap();
        assert!(types_text("kuberesources", &k).starts_with("*,admissionregistration.k8s.io.*"));
    }
}
