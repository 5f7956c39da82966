//! Compute's view of a project: `projects.get` (with its common instance metadata and default service account) and
//! `setCommonInstanceMetadata`, a global operation; and metadata as Compute stores it, with its fingerprint.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use serde_json::{Value, json};

use super::{API_ROOT, api_version, parse_body, request_id, run_operation};
use crate::audit::{self, ComputeWrite};
use crate::error::ApiError;
use crate::{Shared, project_number};

/// The Compute Engine default service account of a project, as Google names it.
pub(crate) fn default_account(number: u64) -> String {
    format!("{number}-compute@developer.gserviceaccount.com")
}

/// A fingerprint of `value`: eight bytes of a hash, base64 as Compute writes them (`-goaeN2SGek=`).
pub(super) fn fingerprint(value: &Value) -> String {
    URL_SAFE.encode(crate::digest(&value.to_string()).to_be_bytes())
}

/// Metadata as Compute stores it: checked items (keys `[a-zA-Z0-9-_]{1,128}`, each once, values up to 256 KiB)
/// and a fingerprint that changes with them.
pub(super) fn stored(items: &Value) -> Result<Value, ApiError> {
    let items = match items {
        Value::Null => Vec::new(),
        Value::Array(items) => items.clone(),
        _ => {
            return Err(ApiError::bad_json(
                "Invalid JSON payload received. Expected a list for 'items'.",
            ));
        }
    };
    let mut seen = std::collections::HashSet::new();
    for item in &items {
        let key = item["key"].as_str().unwrap_or_default();
        let valid = (1..=128).contains(&key.len())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.items[].key': '{key}'. Must be a match of regex '[a-zA-Z0-9-_]{{1,128}}'"
            )));
        }
        if !seen.insert(key.to_string()) {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.items[].key': '{key}'. Duplicate keys are not allowed."
            )));
        }
        if item["value"]
            .as_str()
            .is_some_and(|value| value.len() > 256 * 1024)
        {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.items[{key}].value': the value exceeds 256 KiB."
            )));
        }
    }
    let mut metadata =
        json!({"kind": "compute#metadata", "fingerprint": fingerprint(&json!(items))});
    if !items.is_empty() {
        metadata["items"] = json!(items);
    }
    Ok(metadata)
}

/// A metadata write must carry the fingerprint of the metadata it replaces.
pub(super) fn check_fingerprint(current: &Value, request: &Value) -> Result<(), ApiError> {
    if request["fingerprint"] != current["fingerprint"] {
        return Err(ApiError::condition_not_met(
            "Supplied fingerprint does not match current metadata fingerprint.",
        ));
    }
    Ok(())
}

/// The project as Compute describes it.
fn project_body(project: &str, common: &Value) -> Value {
    let number = project_number(project);
    json!({
        "kind": "compute#project",
        "id": number.to_string(),
        "name": project,
        "creationTimestamp": "2024-01-02T03:04:05.678-08:00",
        "commonInstanceMetadata": common,
        "defaultServiceAccount": default_account(number),
        "defaultNetworkTier": "PREMIUM",
        "xpnProjectStatus": "UNSPECIFIED_XPN_PROJECT_STATUS",
        "selfLink": format!("{API_ROOT}/projects/{project}"),
    })
}

pub(super) async fn get_project(
    State(shared): State<Arc<Shared>>,
    Path((version, project)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    Ok(crate::json_response(&project_body(
        &project,
        &state.common_metadata(&project),
    )))
}

pub(super) async fn set_common_metadata(
    State(shared): State<Arc<Shared>>,
    Path((version, project)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    let request = parse_body(&body)?;
    let request_id = request_id(&query)?;
    let principal = shared.principal(&headers);
    let user_agent = crate::user_agent(&headers);
    let resource_name = format!("projects/{project}");
    let (operation, first, completes) = {
        let mut state = shared.compute.lock().expect("compute state lock poisoned");
        if let Some(body) = request_id
            .as_ref()
            .and_then(|request_id| state.operations.replay(&project, request_id))
        {
            return Ok(crate::json_response(body));
        }
        let current = state.common_metadata(&project);
        let updated =
            check_fingerprint(&current, &request).and_then(|()| stored(&request["items"]));
        let updated = match updated {
            Ok(updated) => updated,
            Err(error) => {
                drop(state);
                shared.emit(audit::refused_entry(audit::Refused {
                    service_name: "compute.googleapis.com",
                    method_name: &format!("{version}.compute.projects.setCommonInstanceMetadata"),
                    resource_name: &resource_name,
                    project: &project,
                    principal: &principal,
                    status: &error,
                }));
                return Err(error);
            }
        };
        let error = shared
            .next_operation_error
            .lock()
            .expect("operation error lock poisoned")
            .take();
        if error.is_none() {
            state.common.insert(project.clone(), updated);
        }
        let number = project_number(&project).to_string();
        let operation = state.new_operation(
            "setMetadata",
            &project,
            "global",
            &resource_name,
            &number,
            &principal,
        );
        let write = ComputeWrite {
            project: &project,
            version,
            method: "projects.setCommonInstanceMetadata",
            resource_name: &resource_name,
            resource: json!({"type": "gce_project", "labels": {"project_id": project}}),
            authorization: json!([audit::granted(
                "compute.projects.setCommonInstanceMetadata",
                &resource_name,
                "compute.projects"
            )]),
            location: "global",
            principal: &principal,
            user_agent: &user_agent,
            request: Some(&request),
            operation: &operation,
        };
        let first = audit::compute_entry(&write, audit::Phase::First);
        let last = audit::compute_entry(&write, audit::Phase::Last);
        let name = operation["name"].as_str().unwrap_or_default().to_string();
        let completes = state.track(
            &shared,
            (project.clone(), name),
            &operation,
            last,
            error,
            request_id,
        );
        (operation, first, completes)
    };
    Ok(run_operation(&shared, operation, first, completes))
}
