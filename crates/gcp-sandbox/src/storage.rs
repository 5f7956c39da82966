//! Cloud Storage JSON API v1: buckets, bucket ACLs and bucket IAM, with metageneration preconditions, 412 on stale
//! etags, public access prevention, uniform bucket-level access, and the audit entries Google writes.

mod acl;
mod bucket;
mod entry;
mod policy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::iam::{self, StoredPolicy};
use crate::time_fmt::logging_now;
use crate::{Seed, Shared};
use bucket::Bucket;
use entry::{StorageWrite, storage_entry};
use policy::BucketInterleave;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/storage/v1/b", get(list_buckets).post(insert_bucket))
        .route(
            "/storage/v1/b/{bucket}",
            get(get_bucket)
                .patch(modify_bucket)
                .put(modify_bucket)
                .delete(delete_bucket),
        )
        .route(
            "/storage/v1/b/{bucket}/iam",
            get(policy::get_iam).put(policy::set_iam),
        )
        .route(
            "/_sandbox/interleave-bucket-iam",
            axum::routing::post(policy::interleave),
        )
        .route(
            "/storage/v1/b/{bucket}/acl",
            get(acl::list).post(acl::insert),
        )
        .route(
            "/storage/v1/b/{bucket}/acl/{entity}",
            get(acl::get)
                .put(acl::put)
                .patch(acl::put)
                .delete(acl::delete),
        )
}

#[derive(Default)]
pub(crate) struct StorageState {
    buckets: BTreeMap<String, Bucket>,
    pub(super) interleaved: BTreeMap<String, BucketInterleave>,
}

impl StorageState {
    /// The project a bucket belongs to.
    pub(crate) fn project_of(&self, bucket: &str) -> Option<String> {
        self.buckets
            .get(bucket)
            .map(|bucket| bucket.project.clone())
    }

    pub(crate) fn seeded(seed: &Seed) -> Result<Self, ApiError> {
        let mut state = StorageState::default();
        for (project, buckets) in &seed.buckets {
            for body in buckets {
                let bucket = new_bucket(project, body, None)?;
                state.buckets.insert(bucket.name.clone(), bucket);
            }
        }
        Ok(state)
    }
}

pub(crate) const PAP_MESSAGE: &str = "The member bindings allUsers and allAuthenticatedUsers are not allowed since public access prevention is enforced.";
pub(crate) const UBLA_MESSAGE: &str = "Cannot use ACL API to manage bucket access control when uniform bucket-level access is enabled. Read more at https://cloud.google.com/storage/docs/uniform-bucket-level-access";

pub(crate) fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        reason: "notFound",
        message: "The specified bucket does not exist.".into(),
        grpc_status: None,
    }
}

pub(crate) fn precondition(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::PRECONDITION_FAILED,
        reason: "conditionNotMet",
        message: message.into(),
        grpc_status: None,
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

pub(crate) fn is_public(member: &str) -> bool {
    member == "allUsers" || member == "allAuthenticatedUsers"
}

fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

pub(crate) fn parse_acl(value: &Value, field: &str) -> Result<Vec<(String, String)>, ApiError> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("Invalid value for {field}: expected a list.")))?;
    items
        .iter()
        .map(|item| {
            let entity = item["entity"]
                .as_str()
                .filter(|entity| !entity.is_empty())
                .ok_or_else(|| invalid(format!("{field}: entity is required")))?;
            let role = item["role"].as_str().unwrap_or_default();
            if !matches!(role, "OWNER" | "READER" | "WRITER") {
                return Err(invalid(format!(
                    "Invalid value for {field}: role '{role}' is not OWNER, READER or WRITER."
                )));
            }
            Ok((entity.to_string(), role.to_string()))
        })
        .collect()
}

/// A bucket as created from a request body (or a seed).
fn new_bucket(project: &str, body: &Value, predefined: Option<&str>) -> Result<Bucket, ApiError> {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if !valid_bucket_name(&name) {
        return Err(invalid(format!("Invalid bucket name: '{name}'")));
    }
    let number = crate::project_number(project);
    let now = logging_now();
    let mut bucket = Bucket {
        name,
        project: project.to_string(),
        project_number: number,
        metageneration: 1,
        generation: 1_772_196_291_935_270_982 + number,
        location: body["location"]
            .as_str()
            .unwrap_or("US")
            .to_ascii_uppercase(),
        storage_class: body["storageClass"]
            .as_str()
            .unwrap_or("STANDARD")
            .to_string(),
        time_created: now.clone(),
        updated: now,
        labels: BTreeMap::new(),
        uniform_access: false,
        uniform_locked_time: None,
        public_access_prevention: "inherited".into(),
        acl: vec![
            (format!("project-owners-{number}"), "OWNER".into()),
            (format!("project-editors-{number}"), "OWNER".into()),
            (format!("project-viewers-{number}"), "READER".into()),
        ],
        default_object_acl: vec![
            (format!("project-owners-{number}"), "OWNER".into()),
            (format!("project-editors-{number}"), "OWNER".into()),
            (format!("project-viewers-{number}"), "READER".into()),
        ],
        policy: StoredPolicy::new(Vec::new()),
        kept: BTreeMap::new(),
    };
    match predefined.unwrap_or("projectPrivate") {
        "projectPrivate" => {}
        "private" => bucket.acl.truncate(1),
        "publicRead" => bucket.acl.push(("allUsers".into(), "READER".into())),
        "publicReadWrite" => bucket.acl.push(("allUsers".into(), "WRITER".into())),
        "authenticatedRead" => bucket
            .acl
            .push(("allAuthenticatedUsers".into(), "READER".into())),
        other => {
            return Err(invalid(format!(
                "Invalid argument: predefinedAcl '{other}'."
            )));
        }
    }
    apply_patch(&mut bucket, body, true)?;
    Ok(bucket)
}

/// The writable fields of a bucket resource; `replace` treats absent labels as cleared (PUT).
fn apply_patch(bucket: &mut Bucket, body: &Value, replace: bool) -> Result<(), ApiError> {
    if let Some(labels) = body.get("labels") {
        if replace {
            bucket.labels.clear();
        }
        let labels = labels
            .as_object()
            .ok_or_else(|| invalid("Invalid value for labels: expected an object."))?;
        for (key, value) in labels {
            match value.as_str() {
                Some(value) => {
                    bucket.labels.insert(key.clone(), value.to_string());
                }
                None => {
                    bucket.labels.remove(key);
                }
            }
        }
    } else if replace {
        bucket.labels.clear();
    }
    for field in bucket::KEPT {
        match body.get(*field) {
            Some(Value::Object(value)) => {
                bucket
                    .kept
                    .insert(field.to_string(), Value::Object(value.clone()));
            }
            Some(Value::Array(value)) => {
                bucket
                    .kept
                    .insert(field.to_string(), Value::Array(value.clone()));
            }
            Some(Value::Null) => {
                bucket.kept.remove(*field);
            }
            Some(_) => {
                return Err(invalid(format!(
                    "Invalid value for {field}: expected an object."
                )));
            }
            None if replace => {
                bucket.kept.remove(*field);
            }
            None => {}
        }
    }
    if let Some(config) = body.get("iamConfiguration") {
        let uniform = config
            .get("uniformBucketLevelAccess")
            .or_else(|| config.get("bucketPolicyOnly"));
        if let Some(enabled) = uniform.and_then(|uniform| uniform["enabled"].as_bool()) {
            if enabled && !bucket.uniform_access {
                let locked = time::OffsetDateTime::now_utc() + time::Duration::days(90);
                bucket.uniform_locked_time = locked
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok();
            }
            bucket.uniform_access = enabled;
        }
        if let Some(prevention) = config.get("publicAccessPrevention").and_then(Value::as_str) {
            let prevention = match prevention {
                "enforced" | "inherited" => prevention,
                "unspecified" => "inherited",
                other => {
                    return Err(invalid(format!(
                        "Invalid value for publicAccessPrevention: '{other}'."
                    )));
                }
            };
            bucket.public_access_prevention = prevention.to_string();
        }
    }
    for (field, target) in [
        ("acl", &mut bucket.acl),
        ("defaultObjectAcl", &mut bucket.default_object_acl),
    ] {
        if let Some(value) = body.get(field) {
            *target = parse_acl(value, field)?;
        }
    }
    if let Some(class) = body.get("storageClass").and_then(Value::as_str) {
        bucket.storage_class = class.to_string();
    }
    let acl_changed = body.get("acl").is_some() || body.get("defaultObjectAcl").is_some();
    if acl_changed && bucket.uniform_access {
        return Err(invalid(UBLA_MESSAGE));
    }
    if bucket.public_access_prevention == "enforced"
        && bucket
            .acl
            .iter()
            .chain(&bucket.default_object_acl)
            .any(|(entity, _)| is_public(entity))
        && acl_changed
    {
        return Err(precondition(PAP_MESSAGE));
    }
    Ok(())
}

/// `ifMetagenerationMatch`: 412 when the bucket has changed since the caller read it.
fn check_metageneration(bucket: &Bucket, query: &HashMap<String, String>) -> Result<(), ApiError> {
    match query.get("ifMetagenerationMatch") {
        Some(expected) if expected != &bucket.metageneration.to_string() => Err(precondition(
            "At least one of the pre-conditions you specified did not hold.",
        )),
        _ => Ok(()),
    }
}

fn full_projection(query: &HashMap<String, String>) -> bool {
    query
        .get("projection")
        .is_some_and(|projection| projection == "full")
}

pub(crate) fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))
}

/// The shape of every bucket write: preconditions, the change, metageneration, the audit entry.
pub(crate) fn write(
    shared: &Shared,
    name: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    method_name: &str,
    permission: &str,
    change: impl FnOnce(&mut Bucket) -> Result<(), ApiError>,
) -> Result<Bucket, ApiError> {
    let principal = shared.principal(headers);
    let agent = crate::user_agent(headers);
    let mut state = shared.storage.lock().expect("storage lock poisoned");
    let bucket = state.buckets.get_mut(name).ok_or_else(not_found)?;
    check_metageneration(bucket, query)?;
    let before = bucket.all_bindings();
    let mut changed = bucket.clone();
    if let Err(err) = change(&mut changed) {
        if err.status == StatusCode::PRECONDITION_FAILED {
            let entry = storage_entry(StorageWrite {
                method_name,
                permission,
                bucket,
                principal: &principal,
                user_agent: &agent,
                request: None,
                deltas: Vec::new(),
                failure: Some((9, err.message.clone())),
            });
            drop(state);
            shared.emit(entry);
        }
        return Err(err);
    }
    changed.metageneration += 1;
    changed.updated = logging_now();
    let deltas = iam::delta(&before, &changed.all_bindings());
    let entry = storage_entry(StorageWrite {
        method_name,
        permission,
        bucket: &changed,
        principal: &principal,
        user_agent: &agent,
        request: None,
        deltas,
        failure: None,
    });
    *bucket = changed.clone();
    drop(state);
    shared.emit(entry);
    Ok(changed)
}

async fn list_buckets(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project = query
        .get("project")
        .ok_or_else(|| invalid("Required parameter: project"))?;
    let max = query
        .get("maxResults")
        .and_then(|max| max.parse::<usize>().ok())
        .filter(|max| *max > 0)
        .unwrap_or(1000);
    let after = query.get("pageToken").cloned().unwrap_or_default();
    let full = full_projection(&query);
    let state = shared.storage.lock().expect("storage lock poisoned");
    let mut items = Vec::new();
    let mut next = None;
    for (name, bucket) in state.buckets.range::<String, _>((
        std::ops::Bound::Excluded(&after),
        std::ops::Bound::Unbounded,
    )) {
        if &bucket.project != project {
            continue;
        }
        if items.len() == max {
            next = items
                .last()
                .and_then(|last: &Value| last["name"].as_str())
                .map(str::to_string);
            break;
        }
        let _ = name;
        items.push(bucket.view(full));
    }
    let mut list = json!({"kind": "storage#buckets"});
    if !items.is_empty() {
        list["items"] = Value::Array(items);
    }
    if let Some(next) = next {
        list["nextPageToken"] = json!(next);
    }
    Ok(Json(list))
}

async fn insert_bucket(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = query
        .get("project")
        .ok_or_else(|| invalid("Required parameter: project"))?
        .clone();
    let request = parse_json(&body)?;
    let bucket = new_bucket(
        &project,
        &request,
        query.get("predefinedAcl").map(String::as_str),
    )?;
    let mut state = shared.storage.lock().expect("storage lock poisoned");
    if state.buckets.contains_key(&bucket.name) {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            reason: "conflict",
            message:
                "Your previous request to create the named bucket succeeded and you already own it."
                    .into(),
            grpc_status: None,
        });
    }
    state.buckets.insert(bucket.name.clone(), bucket.clone());
    drop(state);
    let principal = shared.principal(&headers);
    let default_object_acl = json!({"@type": "type.googleapis.com/google.iam.v1.Policy", "bindings": [
        {"role": "roles/storage.legacyObjectOwner", "members": [format!("projectOwner:{project}"), format!("projectEditor:{project}")]},
        {"role": "roles/storage.legacyObjectReader", "members": [format!("projectViewer:{project}")]},
    ]});
    shared.emit(storage_entry(StorageWrite {
        method_name: "storage.buckets.create",
        permission: "storage.buckets.create",
        bucket: &bucket,
        principal: &principal,
        user_agent: &crate::user_agent(&headers),
        request: Some(json!({"defaultObjectAcl": default_object_acl})),
        deltas: iam::delta(&[], &bucket.all_bindings()),
        failure: None,
    }));
    Ok(Json(bucket.view(full_projection(&query))))
}

async fn get_bucket(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let state = shared.storage.lock().expect("storage lock poisoned");
    let bucket = state.buckets.get(&name).ok_or_else(not_found)?;
    check_metageneration(bucket, &query)?;
    Ok(Json(bucket.view(full_projection(&query))))
}

/// PATCH merges, PUT replaces; Google logs both as storage.buckets.update, without the request body.
async fn modify_bucket(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request = parse_json(&body)?;
    let replace = method == axum::http::Method::PUT;
    let update = "storage.buckets.update";
    let bucket = write(&shared, &name, &query, &headers, update, update, |bucket| {
        apply_patch(bucket, &request, replace)
    })?;
    Ok(Json(bucket.view(full_projection(&query))))
}

async fn delete_bucket(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let bucket = shared
        .storage
        .lock()
        .expect("storage lock poisoned")
        .buckets
        .remove(&name)
        .ok_or_else(not_found)?;
    let principal = shared.principal(&headers);
    shared.emit(storage_entry(StorageWrite {
        method_name: "storage.buckets.delete",
        permission: "storage.buckets.delete",
        bucket: &bucket,
        principal: &principal,
        user_agent: &crate::user_agent(&headers),
        request: None,
        deltas: Vec::new(),
        failure: None,
    }));
    Ok(StatusCode::NO_CONTENT)
}
