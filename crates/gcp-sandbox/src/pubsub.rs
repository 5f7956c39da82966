//! Pub/Sub topics and subscriptions as resources: `PUT` creates one (Google's create for both), `GET` reads it,
//! `DELETE` removes it, each with the Admin Activity entry Google writes. Their IAM policies live in
//! `resource_iam.rs`, keyed by the same names.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::audit::{self, AdminWrite};
use crate::error::ApiError;

/// `PUT|GET|DELETE /v1/projects/P/topics/T` and `…/subscriptions/S`.
pub(crate) fn resource(
    shared: &Shared,
    method: &Method,
    project: &str,
    collection: &str,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let name = format!("projects/{project}/{collection}/{id}");
    let (noun, service, create, delete, permission) = match collection {
        "topics" => (
            "topic",
            "google.pubsub.v1.Publisher",
            "CreateTopic",
            "DeleteTopic",
            "pubsub.topics",
        ),
        _ => (
            "subscription",
            "google.pubsub.v1.Subscriber",
            "CreateSubscription",
            "DeleteSubscription",
            "pubsub.subscriptions",
        ),
    };
    let exists = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned")
        .contains(&name);
    match *method {
        Method::GET if exists => Ok(crate::json_response(&json!({"name": name}))),
        Method::GET => Err(not_found(id)),
        Method::PUT => {
            valid_id(noun, id)?;
            let mut request: Value = if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                serde_json::from_slice(body).map_err(|err| {
                    ApiError::esf(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ARGUMENT",
                        format!("Invalid JSON payload received. {err}"),
                    )
                })?
            };
            if exists {
                return Err(ApiError::esf(
                    StatusCode::CONFLICT,
                    "ALREADY_EXISTS",
                    format!("Resource already exists in the project (resource={id})."),
                ));
            }
            shared
                .resource_policies
                .lock()
                .expect("resource policies lock poisoned")
                .ensure(&name);
            request["name"] = json!(name);
            let response = json!({"name": name});
            emit(
                shared,
                headers,
                project,
                noun,
                id,
                &name,
                service,
                create,
                &format!("{permission}.create"),
                request,
                response.clone(),
            );
            Ok(crate::json_response(&response))
        }
        Method::DELETE if exists => {
            shared
                .resource_policies
                .lock()
                .expect("resource policies lock poisoned")
                .remove(&name);
            emit(
                shared,
                headers,
                project,
                noun,
                id,
                &name,
                service,
                delete,
                &format!("{permission}.delete"),
                json!({noun: name}),
                json!({}),
            );
            Ok(crate::json_response(&json!({})))
        }
        Method::DELETE => Err(not_found(id)),
        _ => Err(ApiError::esf(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("{method} is not a method of {name}"),
        )),
    }
}

/// Google's rule for topic and subscription ids: 3 to 255 characters, a letter first, then letters, digits and
/// `-_.~+%`, never starting with `goog`.
fn valid_id(noun: &str, id: &str) -> Result<(), ApiError> {
    let valid = (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
        && !id.to_ascii_lowercase().starts_with("goog");
    match valid {
        true => Ok(()),
        false => Err(ApiError::esf(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Invalid [{noun}s] name: (name={id})"),
        )),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::esf(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Resource not found (resource={id})."),
    )
}

#[allow(clippy::too_many_arguments)]
fn emit(
    shared: &Shared,
    headers: &HeaderMap,
    project: &str,
    noun: &str,
    id: &str,
    name: &str,
    service: &str,
    method: &str,
    permission: &str,
    request: Value,
    response: Value,
) {
    let principal = shared.principal(headers);
    shared.emit(audit::admin_entry(AdminWrite {
        service_name: "pubsub.googleapis.com",
        method_name: &format!("{service}.{method}"),
        resource_name: name,
        resource: json!({"type": format!("pubsub_{noun}"), "labels": {"project_id": project, format!("{noun}_id"): id}}),
        permission,
        project,
        principal: &principal,
        user_agent: &crate::user_agent(headers),
        request,
        response,
    }));
}
