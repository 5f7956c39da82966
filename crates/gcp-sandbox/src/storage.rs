//! Cloud Storage JSON API v1: buckets, bucket ACLs and bucket IAM, with metageneration preconditions, 412 on stale
//! etags, public access prevention, uniform bucket-level access, and the audit entries Google writes.

mod acl;
mod bucket;
mod entry;

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
use bucket::{Bucket, LEGACY};
use entry::{StorageWrite, storage_entry};

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
        .route("/storage/v1/b/{bucket}/iam", get(get_iam).put(set_iam))
        .route(
            "/_sandbox/interleave-bucket-iam",
            axum::routing::post(interleave),
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
    interleaved: BTreeMap<String, BucketInterleave>,
}

/// Another writer's IAM change that lands just before the next `setIamPolicy` on a bucket (by `before_write_by`,
/// if given): the way to reproduce a 412 race on demand. Body: `{"bucket", "role", "member", "principal", "before_write_by"}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BucketInterleave {
    pub bucket: String,
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

async fn interleave(
    State(shared): State<Arc<Shared>>,
    Json(race): Json<BucketInterleave>,
) -> StatusCode {
    let mut state = shared.storage.lock().expect("storage lock poisoned");
    state.interleaved.insert(race.bucket.clone(), race);
    StatusCode::NO_CONTENT
}

impl StorageState {
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

pub(crate) fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string()
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
    let agent = user_agent(headers);
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
        user_agent: &user_agent(&headers),
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
        user_agent: &user_agent(&headers),
        request: None,
        deltas: Vec::new(),
        failure: None,
    }));
    Ok(StatusCode::NO_CONTENT)
}

async fn get_iam(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let requested = query
        .get("optionsRequestedPolicyVersion")
        .and_then(|version| version.parse().ok())
        .unwrap_or(1);
    let state = shared.storage.lock().expect("storage lock poisoned");
    let bucket = state.buckets.get(&name).ok_or_else(not_found)?;
    Ok(Json(bucket.iam_view(requested)))
}

async fn set_iam(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let policy = parse_json(&body)?;
    let bindings = iam::check_bindings(&policy).map_err(invalid)?;
    if policy["version"].as_i64().unwrap_or(1) < 3
        && bindings
            .iter()
            .any(|binding| binding.get("condition").is_some())
    {
        return Err(invalid(
            "Conditional role bindings require policy version 3 or higher.",
        ));
    }
    let etag = policy["etag"].as_str().map(str::to_string);
    let query = HashMap::new();
    let principal = shared.principal(&headers);
    let race = {
        let mut state = shared.storage.lock().expect("storage lock poisoned");
        let armed = state.interleaved.get(&name).is_some_and(|race| {
            race.before_write_by
                .as_ref()
                .is_none_or(|by| by == &principal)
        });
        if armed {
            state.interleaved.remove(&name)
        } else {
            None
        }
    };
    if let Some(race) = race {
        let mut racer = HeaderMap::new();
        if let Ok(value) = format!("Bearer {}", race.principal).parse() {
            racer.insert(axum::http::header::AUTHORIZATION, value);
        }
        write(
            &shared,
            &name,
            &query,
            &racer,
            "storage.setIamPermissions",
            "storage.buckets.setIamPolicy",
            |bucket| {
                match bucket.policy.bindings.iter_mut().find(|binding| {
                    binding["role"] == race.role && binding.get("condition").is_none()
                }) {
                    Some(binding) => binding["members"]
                        .as_array_mut()
                        .expect("members are a list")
                        .push(json!(race.member)),
                    None => bucket
                        .policy
                        .bindings
                        .push(json!({"role": race.role, "members": [race.member]})),
                }
                Ok(())
            },
        )?;
    }
    let bucket = write(
        &shared,
        &name,
        &query,
        &headers,
        "storage.setIamPermissions",
        "storage.buckets.setIamPolicy",
        |bucket| {
            if etag.as_ref().is_some_and(|etag| etag != &bucket.etag()) {
                return Err(precondition(
                    "At least one of the pre-conditions you specified did not hold.",
                ));
            }
            let public = bindings
                .iter()
                .flat_map(|binding| binding["members"].as_array().cloned().unwrap_or_default())
                .any(|member| member.as_str().is_some_and(is_public));
            if public && bucket.public_access_prevention == "enforced" {
                return Err(precondition(PAP_MESSAGE));
            }
            let (legacy, others): (Vec<Value>, Vec<Value>) =
                bindings.iter().cloned().partition(|binding| {
                    LEGACY.iter().any(|(_, role)| binding["role"] == *role)
                        && binding.get("condition").is_none()
                });
            let mut acl = Vec::new();
            for (acl_role, iam_role) in LEGACY {
                for binding in legacy.iter().filter(|binding| binding["role"] == iam_role) {
                    for member in binding["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        acl.push((bucket.entity_of(member), acl_role.to_string()));
                    }
                }
            }
            bucket.acl = acl;
            bucket.policy.bindings = others;
            Ok(())
        },
    )?;
    Ok(Json(bucket.iam_view(3)))
}
