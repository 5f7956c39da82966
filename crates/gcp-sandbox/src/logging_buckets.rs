//! Cloud Logging's log buckets of a project: `_Required` (400 days, locked) and `_Default` (30 days) in `global` from
//! the start, created ones (`?bucketId=`), `get`, `list`, `patch` under its `updateMask` (retention from 1 to 3,650
//! days; `_Required` unchangeable, a locked bucket's retention never shortened), `delete`, and the audit entries
//! Logging writes (`google.logging.v2.ConfigServiceV2.{Create,Update,Delete}Bucket`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::time_fmt::logging_pair;
use crate::{Paging, Shared, audit};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v2/projects/{project}/locations/{location}/buckets",
            get(list).post(create),
        )
        .route(
            "/v2/projects/{project}/locations/{location}/buckets/{bucket}",
            get(read).patch(update).delete(delete),
        )
}

/// Buckets by (project, location, id); a project's own two appear on first use.
#[derive(Default)]
pub(crate) struct LogBuckets {
    items: BTreeMap<(String, String, String), Value>,
    seeded: std::collections::BTreeSet<String>,
}

/// Every field of a `LogBucket` (Logging v2's discovery document).
const SCHEMA: &[&str] = &[
    "analyticsEnabled",
    "cmekSettings",
    "createTime",
    "description",
    "indexConfigs",
    "lifecycleState",
    "locked",
    "name",
    "restrictedFields",
    "retentionDays",
    "updateTime",
];
/// What an update may name.
const UPDATABLE: &[&str] = &[
    "description",
    "retentionDays",
    "locked",
    "analyticsEnabled",
    "restrictedFields",
    "indexConfigs",
];

/// A field mask's path as the JSON names it: Logging accepts `retention_days` as well as `retentionDays`.
fn camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn precondition(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", message)
}

fn name(project: &str, location: &str, bucket: &str) -> String {
    format!("projects/{project}/locations/{location}/buckets/{bucket}")
}

fn stored(project: &str, location: &str, bucket: &str, retention: u64, locked: bool) -> Value {
    let (now, _) = logging_pair();
    json!({"name": name(project, location, bucket), "retentionDays": retention, "locked": locked,
        "lifecycleState": "ACTIVE", "createTime": now, "updateTime": now})
}

impl LogBuckets {
    fn ensure(&mut self, project: &str) {
        if !self.seeded.insert(project.to_string()) {
            return;
        }
        for (bucket, retention, locked) in [("_Required", 400, true), ("_Default", 30, false)] {
            self.items.insert(
                (project.into(), "global".into(), bucket.into()),
                stored(project, "global", bucket, retention, locked),
            );
        }
    }
}

/// Retention as Logging accepts it: 1 to 3,650 days.
fn retention(value: &Value) -> Result<u64, ApiError> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .filter(|days| (1..=3650).contains(days))
        .ok_or_else(|| {
            invalid(format!(
                "retentionDays must be between 1 and 3650, got {value}."
            ))
        })
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path((project, location)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let items: Vec<Value> = {
        let mut state = shared.log_buckets.lock().expect("log bucket lock poisoned");
        state.ensure(&project);
        state
            .items
            .iter()
            .filter(|((p, l, _), _)| *p == project && (location == "-" || *l == location))
            .map(|(_, bucket)| bucket.clone())
            .collect()
    };
    let page = crate::paged(&shared, items, "buckets", &query, Paging::LOGGING)?;
    Ok(crate::json_response(&page))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((project, location, bucket)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let mut state = shared.log_buckets.lock().expect("log bucket lock poisoned");
    state.ensure(&project);
    state
        .items
        .get(&(project.clone(), location.clone(), bucket.clone()))
        .map(crate::json_response)
        .ok_or_else(|| ApiError::not_found(&name(&project, &location, &bucket)))
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path((project, location)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, SCHEMA)?;
    let bucket = query.get("bucketId").cloned().unwrap_or_default();
    let valid = (1..=100).contains(&bucket.len())
        && !bucket.starts_with('_')
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(invalid(format!("Invalid bucket id '{bucket}'.")));
    }
    let days = match request.get("retentionDays") {
        Some(value) => retention(value)?,
        None => 30,
    };
    let created = {
        let mut state = shared.log_buckets.lock().expect("log bucket lock poisoned");
        state.ensure(&project);
        let key = (project.clone(), location.clone(), bucket.clone());
        if state.items.contains_key(&key) {
            return Err(ApiError::already_exists(&name(
                &project, &location, &bucket,
            )));
        }
        let mut created = stored(&project, &location, &bucket, days, false);
        if let Some(description) = request.get("description") {
            created["description"] = description.clone();
        }
        state.items.insert(key, created.clone());
        created
    };
    shared.emit(entry(&shared, &headers, &created, "CreateBucket", request));
    Ok(crate::json_response(&created))
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((project, location, bucket)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, SCHEMA)?;
    let mask: Vec<String> = query
        .get("updateMask")
        .filter(|mask| !mask.is_empty())
        .ok_or_else(|| invalid("updateMask is required to update a bucket."))?
        .split(',')
        .map(|field| camel(field.trim()))
        .collect();
    if let Some(unknown) = mask
        .iter()
        .find(|field| !UPDATABLE.contains(&field.as_str()))
    {
        return Err(invalid(format!("Invalid update mask field: {unknown}")));
    }
    let updated = {
        let mut state = shared.log_buckets.lock().expect("log bucket lock poisoned");
        state.ensure(&project);
        if bucket == "_Required" {
            return Err(precondition("The _Required bucket cannot be updated."));
        }
        let stored = state
            .items
            .get_mut(&(project.clone(), location.clone(), bucket.clone()))
            .ok_or_else(|| ApiError::not_found(&name(&project, &location, &bucket)))?;
        let locked = stored["locked"].as_bool().unwrap_or(false);
        let mut changed = stored.clone();
        for field in &mask {
            match request.get(field.as_str()).filter(|value| !value.is_null()) {
                Some(value) => changed[field.as_str()] = value.clone(),
                None => {
                    changed
                        .as_object_mut()
                        .map(|fields| fields.remove(field.as_str()));
                }
            }
        }
        let days = retention(&changed["retentionDays"])?;
        if locked && days < stored["retentionDays"].as_u64().unwrap_or_default() {
            return Err(precondition(
                "The retention of a locked bucket cannot be reduced.",
            ));
        }
        if locked && changed["locked"] == false {
            return Err(precondition("A locked bucket cannot be unlocked."));
        }
        changed["retentionDays"] = json!(days);
        changed["updateTime"] = json!(logging_pair().0);
        *stored = changed.clone();
        changed
    };
    let mut logged = request;
    logged["updateMask"] = json!(mask.join(","));
    shared.emit(entry(&shared, &headers, &updated, "UpdateBucket", logged));
    Ok(crate::json_response(&updated))
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((project, location, bucket)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let removed = {
        let mut state = shared.log_buckets.lock().expect("log bucket lock poisoned");
        state.ensure(&project);
        if bucket.starts_with('_') {
            return Err(precondition(format!(
                "The {bucket} bucket cannot be deleted."
            )));
        }
        let key = (project.clone(), location.clone(), bucket.clone());
        if state
            .items
            .get(&key)
            .is_some_and(|found| found["locked"] == true)
        {
            return Err(precondition("A locked bucket cannot be deleted."));
        }
        state
            .items
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(&name(&project, &location, &bucket)))?
    };
    shared.emit(entry(
        &shared,
        &headers,
        &removed,
        "DeleteBucket",
        json!({}),
    ));
    Ok(crate::json_response(&json!({})))
}

/// The audit entry Logging writes for a bucket change.
fn entry(
    shared: &Shared,
    headers: &HeaderMap,
    bucket: &Value,
    method: &str,
    mut request: Value,
) -> Value {
    let resource_name = bucket["name"].as_str().unwrap_or_default().to_string();
    let project = resource_name
        .split('/')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    request["@type"] = json!(format!(
        "type.googleapis.com/google.logging.v2.{method}Request"
    ));
    request["name"] = json!(resource_name);
    let mut response = bucket.clone();
    if method != "DeleteBucket" {
        response["@type"] = json!("type.googleapis.com/google.logging.v2.LogBucket");
    }
    let method_name = format!("google.logging.v2.ConfigServiceV2.{method}");
    let verb = match &method[..6] {
        "Create" => "create",
        "Update" => "update",
        _ => "delete",
    };
    audit::admin_entry(audit::AdminWrite {
        service_name: "logging.googleapis.com",
        method_name: &method_name,
        resource_name: &resource_name,
        resource: json!({"type": "audited_resource", "labels": {"project_id": project,
            "service": "logging.googleapis.com", "method": method_name}}),
        permission: &format!("logging.buckets.{verb}"),
        project: &project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request,
        response,
    })
}
