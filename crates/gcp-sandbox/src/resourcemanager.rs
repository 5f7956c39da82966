//! Resource Manager v1 and v3: projects and their IAM policies (`:getIamPolicy`, `:setIamPolicy`), with Google's
//! etag conflicts (409 ABORTED), version-3 conditions, update masks and owner constraints.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::audit::{self, IamWrite};
use crate::error::ApiError;
use crate::iam::{self, StoredPolicy};
use crate::{Seed, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/{version}/projects/{target}",
            get(get_project).post(project_method),
        )
        .route("/_sandbox/interleave-iam", axum::routing::post(interleave))
}

/// A change another writer makes just before the next `setIamPolicy` of a project lands: the way to reproduce a
/// read-modify-write race on demand. Body: `{"project", "role", "member", "principal", "before_write_by"}`; with
/// `before_write_by` the change lands only before a write by that principal.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Interleave {
    pub project: String,
    pub role: String,
    pub member: String,
    #[serde(default = "default_racer")]
    pub principal: String,
    #[serde(default)]
    pub before_write_by: Option<String>,
}

fn default_racer() -> String {
    "concurrent-editor@example.com".into()
}

async fn interleave(State(shared): State<Arc<Shared>>, Json(race): Json<Interleave>) -> StatusCode {
    let mut state = shared
        .resource_manager
        .lock()
        .expect("resource manager lock poisoned");
    state.interleaved.insert(race.project.clone(), race);
    StatusCode::NO_CONTENT
}

struct Project {
    number: u64,
    policy: StoredPolicy,
}

/// Who owns a project that appears on first use.
const DEFAULT_OWNER: &str = "user:owner@example.com";

/// Projects appear on first use, owned by `user:owner@example.com`, unless seeded.
#[derive(Default)]
pub(crate) struct ResourceManagerState {
    projects: BTreeMap<String, Project>,
    interleaved: BTreeMap<String, Interleave>,
}

impl ResourceManagerState {
    pub(crate) fn seeded(seed: &Seed) -> Result<Self, ApiError> {
        let mut state = ResourceManagerState::default();
        for (id, policy) in &seed.project_policies {
            let bindings = iam::check_bindings(policy).map_err(invalid)?;
            let project = state.project(id);
            project.policy.bindings = bindings;
            project.policy.audit_configs = policy["auditConfigs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
        Ok(state)
    }

    fn project(&mut self, id: &str) -> &mut Project {
        let number = crate::project_number(id);
        self.projects
            .entry(id.to_string())
            .or_insert_with(|| Project {
                number,
                policy: StoredPolicy::new(vec![
                    json!({"role": "roles/owner", "members": [DEFAULT_OWNER]}),
                ]),
            })
    }

    /// The roles `member` (`user:…`, `serviceAccount:…`) holds in the project, from unconditional bindings only (a
    /// condition is not evaluated here, so it grants nothing).
    pub(crate) fn roles_of(&self, project: &str, member: &str) -> Vec<String> {
        let id = self.resolve(project);
        self.projects
            .get(&id)
            .map(|project| {
                project
                    .policy
                    .bindings
                    .iter()
                    .filter(|binding| binding.get("condition").is_none())
                    .filter(|binding| {
                        binding["members"]
                            .as_array()
                            .is_some_and(|members| members.iter().any(|found| found == member))
                    })
                    .filter_map(|binding| binding["role"].as_str().map(str::to_string))
                    .collect()
            })
            // A project not touched yet has the policy it will be created with.
            .unwrap_or_else(|| match member == DEFAULT_OWNER {
                true => vec!["roles/owner".to_string()],
                false => Vec::new(),
            })
    }

    /// Registers a project created through `projects.create`, so that its number resolves.
    pub(crate) fn register(&mut self, id: &str) {
        self.project(id);
    }

    /// Every project touched so far, by id.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &String> {
        self.projects.keys()
    }

    /// A v3 path may name the project by number.
    fn resolve(&self, target: &str) -> String {
        self.projects
            .iter()
            .find(|(_, project)| project.number.to_string() == target)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| target.to_string())
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn api(version: &str) -> Result<&'static str, ApiError> {
    match version {
        "v1" => Ok("v1"),
        "v3" => Ok("v3"),
        _ => Err(ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("API version {version} not found"),
        )),
    }
}

async fn get_project(
    State(shared): State<Arc<Shared>>,
    Path((version, target)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = api(&version)?;
    // `GET projects/P:getIamPolicy` names a method, not a project: it is no reason to create one.
    if target.contains(':') {
        return Err(ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Method not found.",
        ));
    }
    let mut state = shared
        .resource_manager
        .lock()
        .expect("resource manager lock poisoned");
    let id = state.resolve(&target);
    let number = state.project(&id).number;
    drop(state);
    let parent = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .parent_of(&id);
    Ok(Json(match version {
        "v1" => {
            let (kind, parent_id) = match parent.split_once('/') {
                Some(("folders", parent_id)) => ("folder", parent_id.to_string()),
                Some((_, parent_id)) => ("organization", parent_id.to_string()),
                None => ("organization", parent.clone()),
            };
            json!({"projectNumber": number.to_string(), "projectId": id, "lifecycleState": "ACTIVE",
            "name": id, "createTime": "2024-01-01T00:00:00.000Z", "parent": {"type": kind, "id": parent_id}})
        }
        _ => {
            json!({"name": format!("projects/{number}"), "parent": parent, "projectId": id, "state": "ACTIVE",
            "displayName": id, "createTime": "2024-01-01T00:00:00.000Z", "etag": format!("W/\"{number}\"")})
        }
    }))
}

async fn project_method(
    State(shared): State<Arc<Shared>>,
    Path((version, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let version = api(&version)?;
    let (target, method) = target
        .split_once(':')
        .ok_or_else(|| ApiError::esf(StatusCode::NOT_FOUND, "NOT_FOUND", "Method not found."))?;
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?
    };
    match method {
        "getIamPolicy" => {
            let requested = iam::requested_version(&request).map_err(invalid)?;
            let mut state = shared
                .resource_manager
                .lock()
                .expect("resource manager lock poisoned");
            let id = state.resolve(target);
            Ok(Json(state.project(&id).policy.view(requested)))
        }
        "setIamPolicy" => set_iam_policy(&shared, version, target, &headers, request),
        "getAncestry" if version == "v1" => {
            let id = shared
                .resource_manager
                .lock()
                .expect("resource manager lock poisoned")
                .resolve(target);
            Ok(Json(
                shared
                    .hierarchy
                    .lock()
                    .expect("hierarchy lock poisoned")
                    .ancestry(&id),
            ))
        }
        "move" if version == "v3" => {
            let id = shared
                .resource_manager
                .lock()
                .expect("resource manager lock poisoned")
                .resolve(target);
            let destination = request["destinationParent"].as_str().unwrap_or_default();
            shared
                .hierarchy
                .lock()
                .expect("hierarchy lock poisoned")
                .move_project(&id, destination)
                .map(Json)
        }
        _ => Err(ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Method {method} not found."),
        )),
    }
}

fn set_iam_policy(
    shared: &Shared,
    version: &'static str,
    target: &str,
    headers: &HeaderMap,
    request: Value,
) -> Result<Json<Value>, ApiError> {
    let write = iam::PolicyWrite::read(&request, "project").map_err(invalid)?;
    let principal = shared.principal(headers);
    let mut state = shared
        .resource_manager
        .lock()
        .expect("resource manager lock poisoned");
    let id = state.resolve(target);
    let armed = state.interleaved.get(&id).is_some_and(|race| {
        race.before_write_by
            .as_ref()
            .is_none_or(|by| by == &principal)
    });
    let race = if armed {
        state.interleaved.remove(&id)
    } else {
        None
    };
    let project = state.project(&id);
    if let Some(race) = race {
        let before = project.policy.bindings.clone();
        project.policy.grant(&race.role, &race.member);
        project.policy.revision += 1;
        let deltas = iam::delta(&before, &project.policy.bindings);
        let response = project.policy.view(3);
        shared.emit(audit::iam_entry(IamWrite {
            service_name: "cloudresourcemanager.googleapis.com",
            method_name: "SetIamPolicy",
            resource_name: &format!("projects/{id}"),
            resource: json!({"type": "project", "labels": {"project_id": id}}),
            log_parent: &format!("projects/{id}"),
            permission: "resourcemanager.projects.setIamPolicy",
            principal: &race.principal,
            user_agent: "sandbox-interleave",
            request: json!({"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": id, "policy": response}),
            response,
            deltas,
            audit_deltas: Vec::new(),
        }));
    }
    write.check_against(&project.policy)?;
    let owners = |bindings: &[Value]| -> Vec<String> {
        bindings
            .iter()
            .filter(|binding| {
                binding["role"] == "roles/owner" && binding.get("condition").is_none()
            })
            .flat_map(|binding| binding["members"].as_array().cloned().unwrap_or_default())
            .filter_map(|member| member.as_str().map(str::to_string))
            .collect()
    };
    let new_owners = owners(&write.bindings);
    if new_owners.is_empty() {
        return Err(ApiError::esf(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            "The policy must have at least one owner; removing the last owner is not allowed.",
        ));
    }
    let old_owners = owners(&project.policy.bindings);
    if let Some(invited) = new_owners
        .iter()
        .find(|member| member.starts_with("user:") && !old_owners.contains(member))
    {
        return Err(invalid(format!(
            "Request contains an invalid argument: {invited} cannot be made an owner with setIamPolicy; owners must be invited and accept through the Cloud Console."
        )));
    }
    let audit_before = project.policy.audit_configs.clone();
    let before = write.apply(&mut project.policy);
    let response = project.policy.view(3);
    let deltas = iam::delta(&before, &project.policy.bindings);
    let audit_deltas = iam::audit_delta(&audit_before, &project.policy.audit_configs);
    drop(state);
    let method_name = match version {
        "v1" => "SetIamPolicy",
        _ => "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
    };
    let (logged_request, logged_response) = audit::set_iam_policy_bodies(&request, &response, &id);
    shared.emit(audit::iam_entry(IamWrite {
        service_name: "cloudresourcemanager.googleapis.com",
        method_name,
        resource_name: &format!("projects/{id}"),
        resource: json!({"type": "project", "labels": {"project_id": id}}),
        log_parent: &format!("projects/{id}"),
        permission: "resourcemanager.projects.setIamPolicy",
        principal: &principal,
        user_agent: &crate::user_agent(headers),
        request: logged_request,
        response: logged_response,
        deltas,
        audit_deltas,
    }));
    Ok(Json(response))
}
