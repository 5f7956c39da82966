//! Secret Manager secrets, Cloud KMS key rings and crypto keys, and Artifact Registry repositories as resources:
//! created through their own API (`POST PARENT/COLLECTION?ID_FIELD=ID`), read, and — where Google allows it —
//! deleted, each with the Admin Activity entry Google writes. Their IAM policies live in `resource_iam.rs`, keyed by
//! the same names; a resource exists once it is created.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::audit::{self, AdminWrite};
use crate::error::ApiError;
use crate::time_fmt::logging_pair;

/// One kind of resource made through its API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    collection: &'static str,
    /// The query parameter that names the new resource.
    id_field: &'static str,
    service: &'static str,
    /// The gRPC service its methods belong to.
    rpc: &'static str,
    create: &'static str,
    delete: Option<&'static str>,
    permission: &'static str,
}

pub(crate) const SECRET: Kind = Kind {
    collection: "secrets",
    id_field: "secretId",
    service: "secretmanager.googleapis.com",
    rpc: "google.cloud.secretmanager.v1.SecretManagerService",
    create: "CreateSecret",
    delete: Some("DeleteSecret"),
    permission: "secretmanager.secrets",
};

pub(crate) const KEY_RING: Kind = Kind {
    collection: "keyRings",
    id_field: "keyRingId",
    service: "cloudkms.googleapis.com",
    rpc: "google.cloud.kms.v1.KeyManagementService",
    create: "CreateKeyRing",
    // Google never deletes a key ring or a crypto key.
    delete: None,
    permission: "cloudkms.keyRings",
};

pub(crate) const CRYPTO_KEY: Kind = Kind {
    collection: "cryptoKeys",
    id_field: "cryptoKeyId",
    service: "cloudkms.googleapis.com",
    rpc: "google.cloud.kms.v1.KeyManagementService",
    create: "CreateCryptoKey",
    delete: None,
    permission: "cloudkms.cryptoKeys",
};

pub(crate) const REPOSITORY: Kind = Kind {
    collection: "repositories",
    id_field: "repositoryId",
    service: "artifactregistry.googleapis.com",
    rpc: "google.devtools.artifactregistry.v1.ArtifactRegistry",
    create: "CreateRepository",
    delete: Some("DeleteRepository"),
    permission: "artifactregistry.repositories",
};

/// The kind `collection` names, for the collections created through this module.
pub(crate) fn kind(collection: &str) -> Option<Kind> {
    [SECRET, KEY_RING, CRYPTO_KEY, REPOSITORY]
        .into_iter()
        .find(|kind| kind.collection == collection)
}

fn esf(status: StatusCode, reason: &'static str, message: String) -> ApiError {
    ApiError::esf(status, reason, message)
}

/// Each service's rule for the id of a new resource.
fn valid_id(kind: Kind, id: &str) -> bool {
    let bytes = id.as_bytes();
    match kind.collection {
        "repositories" => {
            (1..=63).contains(&bytes.len())
                && bytes[0].is_ascii_lowercase()
                && bytes
                    .iter()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
                && bytes[bytes.len() - 1] != b'-'
        }
        "secrets" => {
            (1..=255).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_')
        }
        _ => {
            (1..=63).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_')
        }
    }
}

/// `POST PARENT/COLLECTION?ID_FIELD=ID`: the new resource (Artifact Registry: a finished operation holding it), or
/// 400 for a missing or malformed id, 409 when it exists.
pub(crate) fn create(
    shared: &Shared,
    kind: Kind,
    project: &str,
    parent: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let id = query.get(kind.id_field).map(String::as_str).unwrap_or("");
    if id.is_empty() {
        return Err(esf(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("{} is required.", kind.id_field),
        ));
    }
    if !valid_id(kind, id) {
        return Err(esf(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Invalid {}: {id}", kind.id_field),
        ));
    }
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|err| {
            esf(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("Invalid JSON payload received. {err}"),
            )
        })?
    };
    if !request.is_object() {
        return Err(esf(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received. The body must be an object.".into(),
        ));
    }
    let name = format!("{parent}/{}/{id}", kind.collection);
    let (now, _) = logging_pair();
    let resource = shape(kind, &name, &request, &now)?;
    {
        let mut resources = shared
            .resource_policies
            .lock()
            .expect("resource policies lock poisoned");
        if resources.contains(&name) {
            return Err(esf(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                format!("{name} already exists."),
            ));
        }
        resources.ensure(&name);
        resources.bodies.insert(name.clone(), resource.clone());
    }
    let mut logged = request.clone();
    logged["parent"] = json!(parent);
    logged[kind.id_field] = json!(id);
    emit(
        shared,
        headers,
        kind,
        project,
        &name,
        kind.create,
        "create",
        logged,
        resource.clone(),
    );
    if kind.collection == "repositories" {
        let operation = format!("{parent}/operations/{}", audit::insert_id());
        let mut response = resource;
        response["@type"] =
            json!("type.googleapis.com/google.devtools.artifactregistry.v1.Repository");
        return Ok(crate::json_response(&json!({
            "name": operation,
            "metadata": {"@type": "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"},
            "done": true,
            "response": response,
        })));
    }
    Ok(crate::json_response(&resource))
}

/// The resource as its API returns it, from what the create call asked for.
fn shape(kind: Kind, name: &str, request: &Value, now: &str) -> Result<Value, ApiError> {
    let mut resource = request.clone();
    resource["name"] = json!(name);
    resource["createTime"] = json!(now);
    match kind.collection {
        "secrets" => {
            if request.get("replication").is_none() {
                return Err(esf(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Secret.replication is required.".into(),
                ));
            }
            resource["etag"] = json!(format!("\"{:x}\"", crate::digest(&format!("{name}@{now}"))));
        }
        "cryptoKeys" => {
            let purpose = request["purpose"].as_str().unwrap_or("");
            if purpose.is_empty() {
                return Err(esf(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "The request must specify a purpose.".into(),
                ));
            }
            if resource.get("versionTemplate").is_none() {
                resource["versionTemplate"] = json!({"protectionLevel": "SOFTWARE", "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"});
            }
            resource["destroyScheduledDuration"] = json!("2592000s");
            // A symmetric key is made with its first version, which becomes the primary one.
            if purpose == "ENCRYPT_DECRYPT" {
                resource["primary"] = json!({"name": format!("{name}/cryptoKeyVersions/1"), "state": "ENABLED",
                    "createTime": now, "generateTime": now, "protectionLevel": "SOFTWARE",
                    "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"});
            }
        }
        "repositories" => {
            if request["format"].as_str().unwrap_or("").is_empty() {
                return Err(esf(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Repository format is required.".into(),
                ));
            }
            resource["updateTime"] = json!(now);
            let mode = request["mode"].as_str().unwrap_or("MODE_UNSPECIFIED");
            resource["mode"] = json!(if mode == "MODE_UNSPECIFIED" {
                "STANDARD_REPOSITORY"
            } else {
                mode
            });
        }
        _ => {}
    }
    Ok(resource)
}

/// `GET NAME`: the resource, or Google's 404.
pub(crate) fn read(shared: &Shared, name: &str) -> Result<Response, ApiError> {
    let resources = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned");
    match resources.contains(name) {
        true => Ok(crate::json_response(
            resources.bodies.get(name).unwrap_or(&json!({"name": name})),
        )),
        false => Err(esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{name} not found or permission denied."),
        )),
    }
}

/// `DELETE NAME` where the service allows it: the resource and its policy go.
pub(crate) fn delete(
    shared: &Shared,
    kind: Kind,
    project: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some(method) = kind.delete else {
        return Err(esf(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("{} cannot be deleted.", kind.collection),
        ));
    };
    {
        let mut resources = shared
            .resource_policies
            .lock()
            .expect("resource policies lock poisoned");
        if !resources.contains(name) {
            return Err(esf(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{name} not found or permission denied."),
            ));
        }
        resources.remove(name);
        resources.bodies.remove(name);
    }
    emit(
        shared,
        headers,
        kind,
        project,
        name,
        method,
        "delete",
        json!({"name": name}),
        json!({}),
    );
    Ok(crate::json_response(&json!({})))
}

/// The Admin Activity entry for a create or delete: KMS names its resources by type (`cloudkms_keyring`,
/// `cloudkms_cryptokey`, with their ids and location), Secret Manager and Artifact Registry write `audited_resource`
/// with the service and method as labels.
#[allow(clippy::too_many_arguments)]
fn emit(
    shared: &Shared,
    headers: &HeaderMap,
    kind: Kind,
    project: &str,
    name: &str,
    method: &str,
    verb: &str,
    request: Value,
    response: Value,
) {
    let method_name = format!("{}.{method}", kind.rpc);
    let parts: Vec<&str> = name.split('/').collect();
    let after = |key: &str| {
        parts
            .iter()
            .position(|part| *part == key)
            .and_then(|at| parts.get(at + 1))
            .copied()
            .unwrap_or("")
    };
    let resource = match kind.collection {
        "keyRings" => json!({"type": "cloudkms_keyring", "labels": {"project_id": project,
            "location": after("locations"), "key_ring_id": after("keyRings")}}),
        "cryptoKeys" => json!({"type": "cloudkms_cryptokey", "labels": {"project_id": project,
            "location": after("locations"), "key_ring_id": after("keyRings"), "crypto_key_id": after("cryptoKeys")}}),
        _ => {
            json!({"type": "audited_resource", "labels": {"project_id": project, "service": kind.service,
            "method": method_name}})
        }
    };
    shared.emit(audit::admin_entry(AdminWrite {
        service_name: kind.service,
        method_name: &method_name,
        resource_name: name,
        resource,
        permission: &format!("{}.{verb}", kind.permission),
        project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request,
        response,
    }));
}

fn missing(message: String) -> ApiError {
    esf(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

/// A created resource itself (not one of its `:methods`): `GET` reads it, `DELETE` deletes it where Google allows.
pub(crate) fn itself(
    shared: &Shared,
    method_of: &axum::http::Method,
    kind: Kind,
    project: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    match *method_of {
        axum::http::Method::GET => read(shared, name),
        axum::http::Method::DELETE => delete(shared, kind, project, name, headers),
        _ => Err(ApiError::esf(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("{method_of} is not a method of {name}"),
        )),
    }
}

/// `GET /v1/projects/P/secrets/S/versions`: a secret's versions — none are kept, so an existing secret lists none.
pub(crate) async fn secret_versions(
    State(shared): State<Arc<Shared>>,
    Path((project, secret)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let number = if project.bytes().all(|byte| byte.is_ascii_digit()) {
        project
    } else {
        crate::project_number(&project).to_string()
    };
    read(&shared, &format!("projects/{number}/secrets/{secret}"))?;
    Ok(crate::json_response(&json!({})))
}

/// `POST /v1/projects/P/secrets?secretId=ID`.
pub(crate) async fn create_flat(
    State(shared): State<Arc<Shared>>,
    Path((project, collection)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if collection != "secrets" {
        return Err(missing(format!(
            "projects/{project}/{collection} not found"
        )));
    }
    let parent = format!("projects/{}", crate::project_number(&project));
    create(&shared, SECRET, &project, &parent, &query, &headers, &body)
}

/// `POST /v1/projects/P/locations/L/keyRings?keyRingId=ID` and `…/repositories?repositoryId=ID`.
pub(crate) async fn create_located(
    State(shared): State<Arc<Shared>>,
    Path((project, location, collection)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = kind(&collection)
        .filter(|_| matches!(collection.as_str(), "keyRings" | "repositories") && location != "-")
        .ok_or_else(|| {
            missing(format!(
                "projects/{project}/locations/{location}/{collection} not found"
            ))
        })?;
    let parent = format!("projects/{project}/locations/{location}");
    create(&shared, kind, &project, &parent, &query, &headers, &body)
}

/// `POST /v1/projects/P/locations/L/keyRings/R/cryptoKeys?cryptoKeyId=ID`: in a key ring that exists.
pub(crate) async fn create_crypto_key(
    State(shared): State<Arc<Shared>>,
    Path((project, location, ring)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parent = format!("projects/{project}/locations/{location}/keyRings/{ring}");
    let exists = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned")
        .contains(&parent);
    if !exists {
        return Err(missing(format!("KeyRing {parent} not found.")));
    }
    create(
        &shared, CRYPTO_KEY, &project, &parent, &query, &headers, &body,
    )
}
