//! IAM's custom roles: `POST /v1/projects/P/roles` and `POST /v1/organizations/N/roles` (`roles.create`), whose
//! permissions `authz.rs` grants to the principals bound to them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::Shared;
use crate::error::ApiError;

pub(crate) fn routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/v1/projects/{project}/roles", post(create_project_role))
        .route(
            "/v1/organizations/{organization}/roles",
            post(create_organization_role),
        )
}

async fn create_project_role(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Json(request): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    create_role(&shared, &format!("projects/{project}"), request)
}

/// IAM's `organizations.roles.create`: a custom role every project under the organization can be granted.
async fn create_organization_role(
    State(shared): State<Arc<Shared>>,
    Path(organization): Path<String>,
    Json(request): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    create_role(&shared, &format!("organizations/{organization}"), request)
}

/// IAM's `roles.create` under `parent` (`projects/P`, `organizations/N`): `{"roleId", "role": {"title",
/// "includedPermissions", "stage"}}`.
fn create_role(shared: &Shared, parent: &str, request: Value) -> Result<Json<Value>, ApiError> {
    let invalid =
        |message: &str| ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message);
    let id = request["roleId"]
        .as_str()
        .filter(|id| {
            (3..=64).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
        .ok_or_else(|| invalid("roleId must be 3 to 64 letters, digits, underscores or dots."))?;
    let permissions: std::collections::BTreeSet<String> = request["role"]["includedPermissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|permission| permission.as_str().map(str::to_string))
        .collect();
    let name = format!("{parent}/roles/{id}");
    let mut roles = shared
        .custom_roles
        .lock()
        .expect("custom roles lock poisoned");
    if roles.contains_key(&name) {
        return Err(ApiError::esf(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("A role named {id} in {parent} already exists."),
        ));
    }
    roles.insert(name.clone(), permissions.clone());
    Ok(Json(json!({
        "name": name,
        "title": request["role"]["title"],
        "includedPermissions": permissions,
        "stage": request["role"]["stage"].as_str().unwrap_or("GA"),
        "etag": "BwW=",
    })))
}
