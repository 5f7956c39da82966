//! Resource Manager's containers above projects: organization IAM policies (v1 and v3) and folder IAM policies (v2
//! and v3), with the same etag, version and condition rules as a project's and their `SetIamPolicy` audit entries;
//! folders' `create`, `get`, `list` and `move` (v3) over the hierarchy.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::Shared;
use crate::audit::{self, IamWrite};
use crate::error::ApiError;
use crate::iam::{self, StoredPolicy};

/// A v3 `Folder`'s fields, output-only ones included (a client may send back what it read).
const FOLDER_FIELDS: &[&str] = &[
    "name",
    "parent",
    "displayName",
    "state",
    "createTime",
    "updateTime",
    "deleteTime",
    "etag",
    "tags",
];

/// Who administers a container that appears on first use.
const DEFAULT_ADMIN: &str = "user:owner@example.com";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/{version}/organizations/{target}",
            post(organization).get(get_organization),
        )
        .route("/{version}/folders/{target}", post(folder).get(get_folder))
        .route("/v3/folders", post(create_folder).get(list_folders))
}

/// `POST /v3/folders`: a finished operation whose `response` is the new folder.
async fn create_folder(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, FOLDER_FIELDS)?;
    shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .create_folder(&request)
        .map(Json)
}

/// `GET /v3/folders?parent=…`: the parent's direct children, paged with `pageSize` / `pageToken`.
async fn list_folders(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let parent = query
        .get("parent")
        .ok_or_else(|| invalid("Field 'parent' is required."))?;
    let children = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .children(parent)?;
    Ok(Json(crate::paged(
        &shared,
        children,
        "folders",
        &query,
        crate::Paging::RESOURCE_MANAGER,
    )?))
}

/// Organization and folder policies by name (`organizations/N`, `folders/N`); each appears on first use with its
/// administrator role granted to `user:owner@example.com`.
#[derive(Default)]
pub(crate) struct Containers {
    policies: BTreeMap<String, StoredPolicy>,
}

#[derive(Clone, Copy)]
struct Kind {
    /// `organizations` or `folders`.
    collection: &'static str,
    /// The monitored-resource type and its label (`organization` / `organization_id`).
    resource_type: &'static str,
    label: &'static str,
    admin_role: &'static str,
    /// The v3 RPC name's service (`Organizations`, `Folders`).
    rpc: &'static str,
    permission: &'static str,
}

const ORGANIZATION: Kind = Kind {
    collection: "organizations",
    resource_type: "organization",
    label: "organization_id",
    admin_role: "roles/resourcemanager.organizationAdmin",
    rpc: "Organizations",
    permission: "resourcemanager.organizations.setIamPolicy",
};

const FOLDER: Kind = Kind {
    collection: "folders",
    resource_type: "folder",
    label: "folder_id",
    admin_role: "roles/resourcemanager.folderAdmin",
    rpc: "Folders",
    permission: "resourcemanager.folders.setIamPolicy",
};

fn not_found(message: String) -> ApiError {
    ApiError::esf(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

async fn organization(
    State(shared): State<Arc<Shared>>,
    Path((version, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !matches!(version.as_str(), "v1" | "v3") {
        return Err(not_found(format!("API version {version} not found")));
    }
    method(&shared, ORGANIZATION, &version, &target, &headers, &body)
}

/// `GET /v1|v3/organizations/N`: the sandbox's organization in that version's shape; any other is hidden as Google
/// hides it (403).
async fn get_organization(
    State(shared): State<Arc<Shared>>,
    Path((version, target)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !matches!(version.as_str(), "v1" | "v3") {
        return Err(not_found(format!("API version {version} not found")));
    }
    let hierarchy = shared.hierarchy.lock().expect("hierarchy lock poisoned");
    let name = format!("organizations/{target}");
    if hierarchy.organization() != name {
        return Err(ApiError::esf(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        ));
    }
    Ok(Json(match version.as_str() {
        "v1" => crate::older_versions::organization_v1(&name),
        _ => crate::older_versions::organization_v3(&name),
    }))
}

/// `GET /v2|v3/folders/N`: the folder and its parent, in that version's shape.
async fn get_folder(
    State(shared): State<Arc<Shared>>,
    Path((version, target)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !matches!(version.as_str(), "v2" | "v3") {
        return Err(not_found(format!("API version {version} not found")));
    }
    let folder = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .folder(&format!("folders/{target}"))?;
    Ok(Json(match version.as_str() {
        "v2" => crate::older_versions::folder_v2(&folder),
        _ => folder,
    }))
}

async fn folder(
    State(shared): State<Arc<Shared>>,
    Path((version, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !matches!(version.as_str(), "v2" | "v3") {
        return Err(not_found(format!("API version {version} not found")));
    }
    method(&shared, FOLDER, &version, &target, &headers, &body)
}

fn method(
    shared: &Shared,
    kind: Kind,
    version: &str,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    let (id, method) = target
        .split_once(':')
        .ok_or_else(|| not_found("Method not found.".into()))?;
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid(format!(
            "{} '{id}' is not a numeric id",
            kind.resource_type
        )));
    }
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?
    };
    let name = format!("{}/{id}", kind.collection);
    match method {
        "getIamPolicy" => {
            let requested = iam::requested_version(&request).map_err(invalid)?;
            let mut containers = shared.containers.lock().expect("containers lock poisoned");
            Ok(Json(containers.policy(kind, &name).view(requested)))
        }
        "setIamPolicy" => set_iam_policy(shared, kind, version, id, &name, headers, request),
        "move" if kind.collection == "folders" && version == "v3" => {
            let destination = request["destinationParent"]
                .as_str()
                .ok_or_else(|| invalid("Field 'destinationParent' is required."))?;
            shared
                .hierarchy
                .lock()
                .expect("hierarchy lock poisoned")
                .move_folder(&name, destination)
                .map(Json)
        }
        _ => Err(not_found(format!("Method {method} not found."))),
    }
}

impl Containers {
    /// From the seed's `container_policies` (`organizations/N` or `folders/N` → a policy's `bindings`).
    pub(crate) fn seeded(policies: &HashMap<String, Value>) -> Result<Containers, ApiError> {
        let mut containers = Containers::default();
        for (name, policy) in policies {
            let kind = match name.split_once('/') {
                Some(("organizations", _)) => ORGANIZATION,
                Some(("folders", _)) => FOLDER,
                _ => {
                    return Err(invalid(format!(
                        "'{name}' is not organizations/N or folders/N"
                    )));
                }
            };
            let bindings = iam::check_bindings(policy).map_err(invalid)?;
            containers.policy(kind, name).bindings = bindings;
        }
        Ok(containers)
    }

    /// The roles `member` holds on a container from unconditional bindings (none on one never written: its
    /// default administrator is the sandbox's owner, who needs no inheritance).
    pub(crate) fn roles_of(&self, name: &str, member: &str) -> Vec<String> {
        self.policies
            .get(name)
            .into_iter()
            .flat_map(|policy| policy.bindings.iter())
            .filter(|binding| binding.get("condition").is_none())
            .filter(|binding| {
                binding["members"]
                    .as_array()
                    .is_some_and(|members| members.iter().any(|found| found == member))
            })
            .filter_map(|binding| binding["role"].as_str().map(str::to_string))
            .collect()
    }

    fn policy(&mut self, kind: Kind, name: &str) -> &mut StoredPolicy {
        self.policies.entry(name.to_string()).or_insert_with(|| {
            StoredPolicy::new(vec![
                json!({"role": kind.admin_role, "members": [DEFAULT_ADMIN]}),
            ])
        })
    }
}

fn set_iam_policy(
    shared: &Shared,
    kind: Kind,
    version: &str,
    id: &str,
    name: &str,
    headers: &HeaderMap,
    request: Value,
) -> Result<Json<Value>, ApiError> {
    let write = iam::PolicyWrite::read(&request, kind.resource_type).map_err(invalid)?;
    let principal = shared.principal(headers);
    let mut containers = shared.containers.lock().expect("containers lock poisoned");
    let stored = containers.policy(kind, name);
    write.check_against(stored)?;
    let before = write.apply(stored);
    let response = stored.view(3);
    let deltas = iam::delta(&before, &stored.bindings);
    drop(containers);
    let method_name = match version {
        "v3" => format!("google.cloud.resourcemanager.v3.{}.SetIamPolicy", kind.rpc),
        _ => "SetIamPolicy".to_string(),
    };
    let (logged_request, logged_response) = audit::set_iam_policy_bodies(&request, &response, name);
    shared.emit(audit::iam_entry(IamWrite {
        service_name: "cloudresourcemanager.googleapis.com",
        method_name: &method_name,
        resource_name: name,
        resource: json!({"type": kind.resource_type, "labels": {kind.label: id}}),
        log_parent: name,
        permission: kind.permission,
        principal: &principal,
        user_agent: &crate::user_agent(headers),
        request: logged_request,
        response: logged_response,
        deltas,
        audit_deltas: Vec::new(),
    }));
    Ok(Json(response))
}
