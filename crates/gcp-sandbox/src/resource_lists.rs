//! The lists of the resources that carry IAM policies — topics, subscriptions, secrets, key rings, crypto keys,
//! repositories, Cloud Run services and functions — and the locations KMS and Artifact Registry list: the resources
//! created or given a policy, as each API pages them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::error::ApiError;

fn not_found(message: String) -> ApiError {
    ApiError::esf(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

/// `GET …/topics`, `…/subscriptions`, `…/secrets`: the resources a policy was set on, by name (a secret under the
/// project's number).
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((project, collection)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if collection == "locations" {
        return Ok(crate::json_response(&locations(&shared, &project)));
    }
    if !matches!(collection.as_str(), "topics" | "subscriptions" | "secrets") {
        return Err(not_found(format!(
            "projects/{project}/{collection} not found"
        )));
    }
    let parent = if collection == "secrets" {
        format!("projects/{}", crate::project_number(&project))
    } else {
        format!("projects/{project}")
    };
    let prefix = format!("{parent}/{collection}/");
    let policies = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned");
    let items: Vec<Value> = policies
        .names()
        .filter(|name| name.starts_with(&prefix) && !name[prefix.len()..].contains('/'))
        .map(|name| {
            policies
                .bodies
                .get(name)
                .cloned()
                .unwrap_or_else(|| json!({"name": name}))
        })
        .collect();
    drop(policies);
    let total = items.len();
    let mut body = crate::paged(
        &shared,
        items,
        &collection,
        &query,
        crate::Paging::RESOURCES,
    )?;
    // Secret Manager counts every secret of the list, across its pages.
    if collection == "secrets" && total > 0 {
        body["totalSize"] = json!(total);
    }
    Ok(crate::json_response(&body))
}

/// The locations KMS and Artifact Registry list (`GET /v1/projects/P/locations`): a fixed set, and any other a
/// resource of the project was created in.
fn locations(shared: &Shared, project: &str) -> Value {
    let mut found: std::collections::BTreeSet<String> = [
        "global",
        "us",
        "europe",
        "asia",
        "us-central1",
        "us-east1",
        "europe-west1",
        "asia-east1",
    ]
    .iter()
    .map(|location| location.to_string())
    .collect();
    let prefix = format!("projects/{project}/locations/");
    let policies = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned");
    found.extend(policies.names().filter_map(|name| {
        name.strip_prefix(&prefix)
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string)
    }));
    let items: Vec<Value> = found
        .into_iter()
        .map(|location| {
            json!({"name": format!("projects/{project}/locations/{location}"), "locationId": location})
        })
        .collect();
    json!({"locations": items})
}

/// A page of the resources of `collection` directly under `parent` (a location of `-` matching every location), as a
/// list answer; nothing at all is `{}`, as Google answers an empty list.
fn listed(
    shared: &Shared,
    parent: &str,
    collection: &str,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let policies = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned");
    let wanted: Vec<&str> = parent.split('/').collect();
    let items: Vec<Value> = policies
        .names()
        .filter(|name| {
            let parts: Vec<&str> = name.split('/').collect();
            parts.len() == wanted.len() + 2
                && parts[wanted.len()] == collection
                && parts
                    .iter()
                    .zip(&wanted)
                    .enumerate()
                    .all(|(index, (part, want))| {
                        part == want
                            || (*want == "-" && index > 0 && wanted[index - 1] == "locations")
                    })
        })
        .map(|name| {
            policies
                .bodies
                .get(name)
                .cloned()
                .unwrap_or_else(|| json!({"name": name}))
        })
        .collect();
    drop(policies);
    crate::paged(shared, items, collection, query, crate::Paging::RESOURCES)
}

/// `GET /v1/projects/P/locations/L/keyRings|repositories|functions` (`-` for every location where Google allows it).
pub(crate) async fn list_located(
    State(shared): State<Arc<Shared>>,
    Path((project, location, collection)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let wildcard_allowed = collection == "functions";
    if !matches!(
        collection.as_str(),
        "keyRings" | "repositories" | "functions"
    ) || (location == "-" && !wildcard_allowed)
    {
        return Err(not_found(format!(
            "projects/{project}/locations/{location}/{collection} not found"
        )));
    }
    let parent = format!("projects/{project}/locations/{location}");
    Ok(crate::json_response(&listed(
        &shared,
        &parent,
        &collection,
        &query,
    )?))
}

/// `GET /v1/projects/P/locations/L/keyRings/R/cryptoKeys`.
pub(crate) async fn list_crypto_keys(
    State(shared): State<Arc<Shared>>,
    Path((project, location, ring)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let parent = format!("projects/{project}/locations/{location}/keyRings/{ring}");
    Ok(crate::json_response(&listed(
        &shared,
        &parent,
        "cryptoKeys",
        &query,
    )?))
}

/// `GET /v2/projects/P/locations/L/services` (Cloud Run; `-` for every location).
pub(crate) async fn list_located_v2(
    State(shared): State<Arc<Shared>>,
    Path((project, location, collection)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if collection != "services" {
        return Err(not_found(format!("{collection} not found")));
    }
    let parent = format!("projects/{project}/locations/{location}");
    Ok(crate::json_response(&listed(
        &shared,
        &parent,
        &collection,
        &query,
    )?))
}
