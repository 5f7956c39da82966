//! Bucket IAM: `GET`/`PUT /b/{bucket}/iam` (etag-checked, version 3, legacy roles mirrored into the ACL, public members
//! refused under prevention), and the race hook that lands another writer's change just before a given principal's write.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::bucket::LEGACY;
use super::{PAP_MESSAGE, invalid, is_public, not_found, parse_json, precondition, write};
use crate::Shared;
use crate::error::ApiError;
use crate::iam;

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

pub(super) async fn interleave(
    State(shared): State<Arc<Shared>>,
    Json(race): Json<BucketInterleave>,
) -> StatusCode {
    let mut state = shared.storage.lock().expect("storage lock poisoned");
    state.interleaved.insert(race.bucket.clone(), race);
    StatusCode::NO_CONTENT
}

pub(super) async fn get_iam(
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

pub(super) async fn set_iam(
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
                bucket.policy.grant(&race.role, &race.member);
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
            // Conditions need uniform bucket-level access (python-storage's system test
            // `test_bucket_get_set_iam_policy`: 412 without it).
            if bindings
                .iter()
                .any(|binding| binding.get("condition").is_some())
                && !bucket.uniform_access
            {
                return Err(precondition(
                    "IAM conditions can only be set on a bucket with uniform bucket-level access enabled.",
                ));
            }
            if let Some(message) = iam::version_below_existing(&policy, &bucket.policy) {
                return Err(invalid(message));
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
