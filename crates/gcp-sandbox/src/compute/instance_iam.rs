//! A Compute Engine instance's own IAM policy: `getIamPolicy` (GET, `optionsRequestedPolicyVersion`) and
//! `setIamPolicy` (POST, `{"policy": …}`), Compute's spellings of the uniform IAM methods; an instance starts with an
//! empty policy, and a change is logged as `v1.compute.instances.setIamPolicy`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::api_version;
use super::instances::path;
use crate::Shared;
use crate::error::ApiError;

type InstancePath = Path<(String, String, String, String)>;

fn exists(shared: &Shared, project: &str, zone: &str, name: &str) -> Result<(), ApiError> {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let key = (project.to_string(), zone.to_string(), name.to_string());
    match state.instances.contains_key(&key) {
        true => Ok(()),
        false => Err(ApiError::not_found(&path(project, zone, name))),
    }
}

pub(super) async fn get_iam_policy(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, name)): InstancePath,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    exists(&shared, &project, &zone, &name)?;
    let mut uniform = HashMap::new();
    if let Some(version) = query.get("optionsRequestedPolicyVersion") {
        uniform.insert(
            "options.requestedPolicyVersion".to_string(),
            version.clone(),
        );
    }
    let parent = format!("projects/{project}/zones/{zone}");
    let target = format!("{name}:getIamPolicy");
    match crate::resource_iam::method(
        &shared,
        &project,
        &parent,
        "instances",
        &target,
        &uniform,
        &headers,
        b"",
    ) {
        // An instance nobody has given a policy has the empty one.
        Err(error) if error.status == StatusCode::NOT_FOUND => {
            Ok(crate::json_response(&json!({"version": 1, "etag": "ACAB"})))
        }
        answer => answer,
    }
}

pub(super) async fn set_iam_policy(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, name)): InstancePath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    exists(&shared, &project, &zone, &name)?;
    let parent = format!("projects/{project}/zones/{zone}");
    let target = format!("{name}:setIamPolicy");
    crate::resource_iam::method(
        &shared,
        &project,
        &parent,
        "instances",
        &target,
        &HashMap::new(),
        &headers,
        &body,
    )
}
