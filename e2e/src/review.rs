//! Create-only review resources: TokenReview, SubjectAccessReview and friends, answered from the
//! simulated cluster's authentication and authorization policy.

use std::sync::Arc;

use api_types::GroupResource;
use api_types::status::StatusError;
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
            match state.user_for_token(token) {
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

/// `POST .../serviceaccounts/<name>/token` (`kubectl create token`): a bearer token for the
/// ServiceAccount, valid for this kubesim's lifetime (expirationTimestamp says what was asked).
pub fn token_request(state: &Arc<State>, namespace: &str, name: &str, req: &Request) -> Reply {
    let gr = GroupResource::new("", "serviceaccounts");
    if state.store.get(&gr, &(namespace.to_owned(), name.to_owned())).is_none() {
        return Err(StatusError::not_found("", "serviceaccounts", name));
    }
    let mut body = if req.body.is_empty() {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    } else {
        req.body_object()?
    };
    let seconds = body.pointer("/spec/expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    if seconds < 600 {
        return Err(StatusError::bad_request(format!(
            "spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"
        )));
    }
    let token = format!("kubesim-sa.{:016x}{:016x}", crate::meta::random_u64(), crate::meta::random_u64());
    let user = crate::auth::User {
        name: format!("system:serviceaccount:{namespace}:{name}"),
        groups: vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{namespace}")],
    };
    state.issue_token(token.clone(), user);
    let expires = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    body["spec"]["expirationSeconds"] = json!(seconds);
    if !body["spec"]["audiences"].is_array() {
        body["spec"]["audiences"] = json!(["https://kubernetes.default.svc.cluster.local"]);
    }
    body["metadata"] = json!({"name": name, "namespace": namespace, "creationTimestamp": crate::meta::now()});
    body["status"] = json!({"token": token, "expirationTimestamp": expires});
    body["apiVersion"] = json!("authentication.k8s.io/v1");
    body["kind"] = json!("TokenRequest");
    Ok(json_response(StatusCode::CREATED, &body))
}
