//! Create-only review resources: TokenReview, SubjectAccessReview and friends, answered from the
//! simulated cluster's authentication and authorization policy.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api::{Reply, Request, json_response};
use crate::sim::State;
use api_types::api::resources::ResourceInfo;

/// Answers a POST to a create-only resource.
pub fn answer(state: &Arc<State>, info: &ResourceInfo, req: &Request) -> Reply {
    let mut body = req.body_object()?;
    let status = match info.resource.as_str() {
        "tokenreviews" => {
            let token = body.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
            match state.auth.user_for_token(token) {
                Some(user) => json!({"authenticated": true, "user": {"username": user.name, "groups": user.groups}}),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" | "selfsubjectaccessreviews" => {
            let spec = &body["spec"];
            // A self review asks about the caller.
            let (user, groups): (String, Vec<String>) = if info.resource == "selfsubjectaccessreviews" {
                (req.user.clone(), req.groups.clone())
            } else {
                let groups = spec["groups"].as_array().into_iter().flatten();
                (
                    spec["user"].as_str().unwrap_or_default().to_owned(),
                    groups.filter_map(|g| g.as_str().map(str::to_owned)).collect(),
                )
            };
            let attrs = spec.get("resourceAttributes").cloned().unwrap_or(json!({}));
            let verb = attrs["verb"]
                .as_str()
                .or_else(|| spec.pointer("/nonResourceAttributes/verb").and_then(Value::as_str))
                .unwrap_or_default();
            let resource = attrs["resource"].as_str().unwrap_or_default();
            let (allowed, reason) = state.auth.authorize(&user, &groups, verb, resource);
            json!({"allowed": allowed, "reason": reason})
        }
        "selfsubjectreviews" => json!({"userInfo": {"username": req.user}}),
        _ => json!({}),
    };
    body["status"] = status;
    if body.get("apiVersion").is_none() {
        body["apiVersion"] = json!(info.api_version());
        body["kind"] = json!(info.kind);
    }
    Ok(json_response(StatusCode::CREATED, &body))
}
