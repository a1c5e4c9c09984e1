//! pedia's own group, `clusterpedia.io/v1beta1`, at the server's root: its discovery and the
//! OpenAPI documents the aggregator merges into the host's, so `kubectl explain
//! collectionresources` works there. (The searchable kinds are described under
//! `resources[/clusters/<c>]`.)

use api_types::api::path::{self, Route};
use api_types::api::resources::ResourceInfo;
use api_types::api::{discovery, openapi, openapi_v2};
use api_types::search::{GROUP, VERSION};
use api_types::status::StatusError;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::server::{bytes_response, json_response};

fn info(resource: &str, kind: &str, verbs: &[&str]) -> ResourceInfo {
    ResourceInfo {
        group: GROUP.into(),
        version: VERSION.into(),
        resource: resource.into(),
        singular: String::new(),
        kind: kind.into(),
        namespaced: false,
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Vec::new(),
    }
}

/// The group's resources: `resources` (no verbs of its own: the Kubernetes API under it) and
/// `collectionresources`.
fn resources() -> [ResourceInfo; 2] {
    [info("resources", "Resources", &[]), info("collectionresources", "CollectionResource", &["get", "list"])]
}

/// Discovery of the group: `/apis` (`Groups`), `/apis/clusterpedia.io` and
/// `/apis/clusterpedia.io/v1beta1`; None for other routes.
pub fn discovery(route: &Route) -> Option<Value> {
    let all = resources();
    let refs: Vec<&ResourceInfo> = all.iter().collect();
    let groups = discovery::groups(&refs);
    match route {
        Route::Groups => Some(discovery::group_list(&groups)),
        Route::Group(g) => discovery::group(&groups, g),
        Route::Resources { group, version } => discovery::resource_list(&refs, group, version),
        _ => None,
    }
}

/// Upstream's `CollectionResource`: the objects of several resource types at once.
fn collection_resource_schema() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    json!({
        "type": "object",
        "description": "Objects of several resource types searched at once (any, workloads, kuberesources).",
        "properties": {
            "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
            "kind": string("Kind is a string value representing the REST resource this object represents."),
            "metadata": {"type": "object", "description": "Standard object's metadata.",
                         "x-kubernetes-preserve-unknown-fields": true},
            "resourceTypes": {
                "type": "array",
                "description": "The resource types of the items, in the order they first appear.",
                "items": {"type": "object", "properties": {
                    "group": string("API group of the resource type."),
                    "version": string("API version of the resource type."),
                    "kind": string("Kind of the resource type."),
                    "resource": string("Resource name (plural) of the resource type.")}}
            },
            "items": {"type": "array", "description": "The objects found, of any of the resource types.",
                      "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "continue": string("Set when more objects match: pass it as continue for the next page."),
            "remainingItemCount": {"type": "integer", "format": "int64",
                                   "description": "Objects left after this page (with withRemainingCount)."}
        }
    })
}

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/apis/clusterpedia.io/v1beta1`.
pub fn openapi(request_path: &str, accept: &str) -> Result<Response, StatusError> {
    let [_, collections] = resources();
    let schema = collection_resource_schema();
    let served = [openapi::Served { info: &collections, schema: Some(&schema) }];
    let group_version = || openapi::group_version(GROUP, VERSION, &served).ok_or_else(StatusError::no_route);
    match path::parse(request_path, &|_, _, _| false) {
        Route::OpenApiV3Root => Ok(json_response(StatusCode::OK, &openapi::root("", &[&collections]))),
        Route::OpenApiV3 { group, version } if group == GROUP && version == VERSION => {
            Ok(json_response(StatusCode::OK, &group_version()?))
        }
        Route::OpenApiV2 => {
            let doc = openapi_v2::document(&[group_version()?]);
            Ok(if openapi_v2::wants_protobuf(accept) {
                bytes_response(StatusCode::OK, openapi_v2::PROTOBUF_CONTENT_TYPE, openapi_v2::to_protobuf(&doc))
            } else {
                json_response(StatusCode::OK, &doc)
            })
        }
        _ => Err(StatusError::no_route()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(resp: Response) -> Value {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn the_aggregator_finds_the_collection_resource_schema() {
        let root = body(openapi("/openapi/v3", "").unwrap()).await;
        let url = root["paths"]["apis/clusterpedia.io/v1beta1"]["serverRelativeURL"].as_str().unwrap();
        assert_eq!(url, "/openapi/v3/apis/clusterpedia.io/v1beta1");
        let doc = body(openapi(url, "").unwrap()).await;
        let schema = &doc["components"]["schemas"]["io.clusterpedia.v1beta1.CollectionResource"];
        assert_eq!(schema["x-kubernetes-group-version-kind"][0]["kind"], "CollectionResource");
        assert!(schema["properties"]["resourceTypes"]["items"]["properties"]["resource"].is_object());
        assert!(doc["paths"]["/apis/clusterpedia.io/v1beta1/collectionresources/{name}"]["get"].is_object());
        let v2 = body(openapi("/openapi/v2", "application/json").unwrap()).await;
        assert!(v2["definitions"]["io.clusterpedia.v1beta1.CollectionResource"].is_object(), "{v2}");
        assert!(openapi("/openapi/v3/apis/apps/v1", "").is_err());
    }

    #[test]
    fn discovery_lists_both_resources() {
        let resources = Route::Resources { group: GROUP.into(), version: VERSION.into() };
        let d = discovery(&resources).unwrap();
        assert_eq!(d["groupVersion"], "clusterpedia.io/v1beta1");
        let names: Vec<&str> = d["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["resources", "collectionresources"]);
        assert_eq!(d["resources"][1]["verbs"], json!(["get", "list"]));
        let group = discovery(&Route::Group(GROUP.into())).unwrap();
        assert_eq!(
            (&group["kind"], &group["preferredVersion"]["groupVersion"]),
            (&json!("APIGroup"), &json!("clusterpedia.io/v1beta1"))
        );
        assert_eq!(discovery(&Route::Groups).unwrap()["groups"][0]["name"], GROUP);
        assert!(discovery(&Route::Group("apps".into())).is_none());
    }
}
