//! Resource Manager's older versions, as gcloud speaks them, over the one v3 hierarchy (`hierarchy.rs`): v1
//! organizations (`organizations:search`, `get`), v2 folders (`create`, `list`, `get`), v1 `projects.create`, and the
//! v1 `operations.get` their answers point to — each a view of the same folders and projects, in that version's shape
//! (`lifecycleState` where v3 says `state`, a v1 project's `parent` as `{type, id}`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Shared;
use crate::error::ApiError;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/organizations:search", post(search_organizations))
        .route("/v3/organizations:search", get(search_organizations))
        .route("/v2/folders", get(list_folders).post(create_folder))
        .route("/v1/operations/{operation}", get(operation))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn not_found(message: String) -> ApiError {
    ApiError::esf(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

/// The organization in v1's shape (`owner.directoryCustomerId`, `lifecycleState`, `creationTime`).
pub(crate) fn organization_v1(name: &str) -> Value {
    json!({"name": name, "displayName": "example.com", "owner": {"directoryCustomerId": "C0sandbox"},
        "lifecycleState": "ACTIVE", "creationTime": "2024-01-01T00:00:00.000Z"})
}

/// The organization in v3's shape.
pub(crate) fn organization_v3(name: &str) -> Value {
    json!({"name": name, "displayName": "example.com", "directoryCustomerId": "C0sandbox", "state": "ACTIVE",
        "createTime": "2024-01-01T00:00:00.000Z",
        "etag": format!("BwO{}", name.trim_start_matches("organizations/"))})
}

/// A v3 folder in v2's shape: `lifecycleState` for `state`, no `etag` or `updateTime`.
pub(crate) fn folder_v2(folder: &Value) -> Value {
    json!({"name": folder["name"], "parent": folder["parent"], "displayName": folder["displayName"],
        "lifecycleState": folder["state"], "createTime": folder["createTime"]})
}

/// A v3 project in v1's shape: the number apart, `parent` as `{type, id}`, the display name as `name`.
pub(crate) fn project_v1(project: &Value) -> Value {
    let parent = project["parent"].as_str().unwrap_or_default();
    let (kind, id) = match parent.split_once('/') {
        Some(("folders", id)) => ("folder", id),
        Some((_, id)) => ("organization", id),
        None => ("organization", parent),
    };
    let number = project["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("projects/");
    let mut v1 = json!({"projectNumber": number, "projectId": project["projectId"],
        "lifecycleState": "ACTIVE", "name": project["displayName"], "parent": {"type": kind, "id": id},
        "createTime": project.get("createTime").cloned().unwrap_or(json!("2024-01-01T00:00:00.000Z"))});
    if project["labels"]
        .as_object()
        .is_some_and(|labels| !labels.is_empty())
    {
        v1["labels"] = project["labels"].clone();
    }
    v1
}

/// `organizations:search` (v1 POST, v3 GET): the one organization the caller can see.
async fn search_organizations(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
) -> Json<Value> {
    let name = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .organization()
        .to_string();
    let organization = match uri.path().starts_with("/v1/") {
        true => organization_v1(&name),
        false => organization_v3(&name),
    };
    Json(json!({"organizations": [organization]}))
}

/// `GET /v2/folders?parent=…`: v3's list in v2's shape.
async fn list_folders(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let parent = query
        .get("parent")
        .ok_or_else(|| invalid("Field 'parent' is required."))?;
    let children: Vec<Value> = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .children(parent)?
        .iter()
        .map(folder_v2)
        .collect();
    Ok(Json(crate::paged(
        &shared,
        children,
        "folders",
        &query,
        crate::Paging::RESOURCE_MANAGER,
    )?))
}

/// `POST /v2/folders?parent=…` with `{displayName}`: v3's create, answered as a finished v1 operation.
async fn create_folder(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, &["displayName", "parent"])?;
    if let Some(parent) = query.get("parent") {
        request["parent"] = json!(parent);
    }
    let created = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .create_folder(&request)?;
    Ok(Json(as_v1_operation(&created)))
}

/// A finished v3 operation as v1 answers it: the response in the older version's shape.
fn as_v1_operation(operation: &Value) -> Value {
    let response = &operation["response"];
    let (kind, body) = match response["name"].as_str() {
        Some(name) if name.starts_with("folders/") => ("v2.Folder", folder_v2(response)),
        _ => ("v1.Project", project_v1(response)),
    };
    let mut body = body;
    body["@type"] = json!(format!(
        "type.googleapis.com/google.cloudresourcemanager.{kind}"
    ));
    json!({"name": operation["name"], "done": true, "response": body})
}

/// `GET /v1/operations/cf.N|cp.NUMBER`: the finished operation that created a folder or a project.
async fn operation(
    State(shared): State<Arc<Shared>>,
    Path(operation): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let missing = || not_found(format!("Operation operations/{operation} not found."));
    let hierarchy = shared.hierarchy.lock().expect("hierarchy lock poisoned");
    if let Some(id) = operation.strip_prefix("cf.") {
        let folder = hierarchy
            .folder(&format!("folders/{id}"))
            .map_err(|_| missing())?;
        return Ok(Json(as_v1_operation(
            &json!({"name": format!("operations/{operation}"), "response": folder}),
        )));
    }
    if let Some(number) = operation.strip_prefix("cp.") {
        let (id, created) = hierarchy
            .created()
            .find(|(id, _)| crate::project_number(id).to_string() == number)
            .ok_or_else(missing)?;
        let project = json!({"name": format!("projects/{number}"), "projectId": id,
            "parent": hierarchy.parent_of(id), "displayName": created["displayName"], "labels": created["labels"]});
        return Ok(Json(as_v1_operation(
            &json!({"name": format!("operations/{operation}"), "response": project}),
        )));
    }
    Err(missing())
}

/// `POST /v1/projects` with `{projectId, name, parent: {type, id}, labels}`: v3's create, as a v1 operation.
pub(crate) fn create_project_v1(
    shared: &Shared,
    request: &Value,
    known: bool,
) -> Result<Value, ApiError> {
    ApiError::unknown_fields(request, &["projectId", "name", "parent", "labels"])?;
    let mut v3 = json!({"projectId": request["projectId"]});
    if let Some(name) = request["name"].as_str() {
        v3["displayName"] = json!(name);
    }
    if request["labels"].is_object() {
        v3["labels"] = request["labels"].clone();
    }
    match (
        request["parent"]["type"].as_str(),
        request["parent"]["id"].as_str(),
    ) {
        (Some("organization"), Some(id)) => v3["parent"] = json!(format!("organizations/{id}")),
        (Some("folder"), Some(id)) => v3["parent"] = json!(format!("folders/{id}")),
        (None, None) => {}
        _ => {
            return Err(invalid(
                "Invalid parent: type must be organization or folder, with an id.",
            ));
        }
    }
    let created = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .create_project(&v3, known)?;
    Ok(as_v1_operation(&created))
}
