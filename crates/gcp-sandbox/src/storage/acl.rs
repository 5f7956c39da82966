//! Bucket ACL endpoints (`/b/{bucket}/acl[/{entity}]`): refused under uniform access, logged as IAM changes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::bucket::Bucket;
use super::{
    PAP_MESSAGE, UBLA_MESSAGE, invalid, is_public, not_found, parse_acl, parse_json, precondition,
    write,
};
use crate::Shared;
use crate::error::ApiError;

fn acl_write(
    shared: &Shared,
    name: &str,
    headers: &HeaderMap,
    change: impl FnOnce(&mut Bucket) -> Result<(), ApiError>,
) -> Result<Bucket, ApiError> {
    // An ACL edit is a change of the legacy IAM roles: it is logged as storage.setIamPermissions with their delta.
    write(
        shared,
        name,
        &HashMap::new(),
        headers,
        "storage.setIamPermissions",
        "storage.buckets.setIamPolicy",
        |bucket| {
            if bucket.uniform_access {
                return Err(invalid(UBLA_MESSAGE));
            }
            change(bucket)?;
            if bucket.public_access_prevention == "enforced"
                && bucket.acl.iter().any(|(entity, _)| is_public(entity))
            {
                return Err(precondition(PAP_MESSAGE));
            }
            Ok(())
        },
    )
}

fn find_acl(bucket: &Bucket, entity: &str) -> Result<Value, ApiError> {
    bucket
        .acl_view()
        .into_iter()
        .find(|control| control["entity"] == entity)
        .ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            reason: "notFound",
            message: format!("No such entity: {entity}"),
            grpc_status: None,
        })
}

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let state = shared.storage.lock().expect("storage lock poisoned");
    let bucket = state.buckets.get(&name).ok_or_else(not_found)?;
    if bucket.uniform_access {
        return Err(invalid(UBLA_MESSAGE));
    }
    Ok(Json(
        json!({"kind": "storage#bucketAccessControls", "items": bucket.acl_view()}),
    ))
}

pub(super) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((name, entity)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let state = shared.storage.lock().expect("storage lock poisoned");
    let bucket = state.buckets.get(&name).ok_or_else(not_found)?;
    if bucket.uniform_access {
        return Err(invalid(UBLA_MESSAGE));
    }
    Ok(Json(find_acl(bucket, &entity)?))
}

pub(super) async fn insert(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request = parse_json(&body)?;
    let (entity, role) = parse_acl(&json!([request]), "acl")?.remove(0);
    let key = entity.clone();
    let bucket = acl_write(&shared, &name, &headers, move |bucket| {
        bucket.acl.retain(|(existing, _)| existing != &entity);
        bucket.acl.push((entity, role));
        Ok(())
    })?;
    Ok(Json(find_acl(&bucket, &key)?))
}

pub(super) async fn put(
    State(shared): State<Arc<Shared>>,
    Path((name, entity)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut request = parse_json(&body)?;
    request["entity"] = json!(entity);
    let (entity, role) = parse_acl(&json!([request]), "acl")?.remove(0);
    let key = entity.clone();
    let bucket = acl_write(&shared, &name, &headers, move |bucket| {
        let existing = bucket
            .acl
            .iter_mut()
            .find(|(existing, _)| existing == &entity)
            .ok_or_else(|| invalid(format!("No such entity: {entity}")))?;
        existing.1 = role;
        Ok(())
    })?;
    Ok(Json(find_acl(&bucket, &key)?))
}

pub(super) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((name, entity)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    acl_write(&shared, &name, &headers, move |bucket| {
        let before = bucket.acl.len();
        bucket.acl.retain(|(existing, _)| existing != &entity);
        if bucket.acl.len() == before {
            return Err(invalid(format!("No such entity: {entity}")));
        }
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}
