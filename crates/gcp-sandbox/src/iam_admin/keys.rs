//! A service account's keys: listed by type, created (the private key returned once) or uploaded, read, disabled,
//! enabled and deleted — Google's system-managed key beside the user's and out of its reach — with IAM's audit entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{entry, key_body, key_id, not_found, parse};
use crate::Shared;
use crate::error::ApiError;
use crate::time_fmt::logging_pair;

/// `keyTypes=USER_MANAGED&keyTypes=SYSTEM_MANAGED` (repeated); none: every key.
fn key_types(query: Option<&str>) -> Vec<String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("keyTypes="))
        .map(str::to_string)
        .collect()
}

pub(super) async fn list_keys(
    State(shared): State<Arc<Shared>>,
    Path((project, account, collection)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if collection != "keys" {
        return Err(not_found(&format!(
            "projects/{project}/serviceAccounts/{account}/{collection}"
        )));
    }
    let types = key_types(query.as_deref());
    let state = shared.iam_admin.lock().expect("iam lock poisoned");
    let email = state.find(&project, &account)?["email"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let keys: Vec<&Value> = state
        .keys
        .get(&email)
        .into_iter()
        .flat_map(|keys| keys.values())
        .filter(|key| types.is_empty() || types.iter().any(|kind| key["keyType"] == kind.as_str()))
        .collect();
    Ok(crate::json_response(&json!({"keys": keys})))
}

/// `POST …/keys` (create: the private key comes back once) and `POST …/keys:upload` (a public key the caller holds
/// the private half of).
pub(super) async fn create_key(
    State(shared): State<Arc<Shared>>,
    Path((project, account, collection)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse(&body)?;
    let (method, permission, origin) = match collection.as_str() {
        "keys" => (
            "CreateServiceAccountKey",
            "iam.serviceAccountKeys.create",
            "GOOGLE_PROVIDED",
        ),
        "keys:upload" => {
            if request["publicKeyData"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                return Err(ApiError::esf(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Request contains an invalid argument: publicKeyData is required.",
                ));
            }
            (
                "UploadServiceAccountKey",
                "iam.serviceAccountKeys.create",
                "USER_PROVIDED",
            )
        }
        _ => {
            return Err(not_found(&format!(
                "projects/{project}/serviceAccounts/{account}/{collection}"
            )));
        }
    };
    let (owner, key) = {
        let mut state = shared.iam_admin.lock().expect("iam lock poisoned");
        let owner = state.find(&project, &account)?.clone();
        let email = owner["email"].as_str().unwrap_or_default().to_string();
        let home = owner["projectId"].as_str().unwrap_or_default().to_string();
        let counter = state.next();
        let id = key_id(counter, &email);
        let (at, _) = logging_pair();
        let key = key_body(&email, &home, &id, "USER_MANAGED", origin, &at);
        state.keys.entry(email).or_default().insert(id, key.clone());
        (owner, key)
    };
    let mut answer = key.clone();
    if origin == "GOOGLE_PROVIDED" {
        let file = json!({"type": "service_account", "project_id": owner["projectId"], "private_key_id":
            key["name"].as_str().unwrap_or_default().rsplit('/').next(), "private_key": "-----BEGIN PRIVATE KEY-----\nsandbox\n-----END PRIVATE KEY-----\n",
            "client_email": owner["email"], "client_id": owner["uniqueId"]});
        answer["privateKeyType"] = json!("TYPE_GOOGLE_CREDENTIALS_FILE");
        answer["privateKeyData"] = json!(STANDARD.encode(file.to_string()));
    }
    let mut request = request;
    request["name"] = json!(format!("projects/{project}/serviceAccounts/{account}"));
    shared.emit(entry(
        &shared, &headers, &owner, method, permission, request, key,
    ));
    Ok(crate::json_response(&answer))
}

pub(super) async fn get_key(
    State(shared): State<Arc<Shared>>,
    Path((project, account, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.iam_admin.lock().expect("iam lock poisoned");
    let email = state.find(&project, &account)?["email"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    state
        .keys
        .get(&email)
        .and_then(|keys| keys.get(&key))
        .map(crate::json_response)
        .ok_or_else(|| {
            not_found(&format!(
                "Service account key projects/{project}/serviceAccounts/{account}/keys/{key}"
            ))
        })
}

/// `POST …/keys/KEY:disable` and `:enable`.
pub(super) async fn key_action(
    State(shared): State<Arc<Shared>>,
    Path((project, account, target)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (key, verb) = target.split_once(':').unwrap_or((target.as_str(), ""));
    let (disabled, method, permission) = match verb {
        "disable" => (
            true,
            "DisableServiceAccountKey",
            "iam.serviceAccountKeys.disable",
        ),
        "enable" => (
            false,
            "EnableServiceAccountKey",
            "iam.serviceAccountKeys.enable",
        ),
        _ => {
            return Err(not_found(&format!(
                "projects/{project}/serviceAccounts/{account}/keys/{target}"
            )));
        }
    };
    change_key(
        &shared,
        &headers,
        (&project, &account, key),
        method,
        permission,
        |keys| {
            let stored = keys.get_mut(key).ok_or(())?;
            if stored["keyType"] == "SYSTEM_MANAGED" {
                return Err(());
            }
            if disabled {
                stored["disabled"] = json!(true);
            } else if let Some(fields) = stored.as_object_mut() {
                fields.remove("disabled");
            }
            Ok(())
        },
    )
}

pub(super) async fn delete_key(
    State(shared): State<Arc<Shared>>,
    Path((project, account, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    change_key(
        &shared,
        &headers,
        (&project, &account, &key),
        "DeleteServiceAccountKey",
        "iam.serviceAccountKeys.delete",
        |keys| match keys.get(key.as_str()) {
            Some(stored) if stored["keyType"] != "SYSTEM_MANAGED" => {
                keys.remove(key.as_str());
                Ok(())
            }
            _ => Err(()),
        },
    )
}

/// A change to one user-managed key (a system-managed one is not the caller's: 404, as Google answers), logged.
fn change_key(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    (project, account, key): (&str, &str, &str),
    method: &str,
    permission: &str,
    change: impl FnOnce(&mut BTreeMap<String, Value>) -> Result<(), ()>,
) -> Result<Response, ApiError> {
    let name = format!("projects/{project}/serviceAccounts/{account}/keys/{key}");
    let owner = {
        let mut state = shared.iam_admin.lock().expect("iam lock poisoned");
        let owner = state.find(project, account)?.clone();
        let email = owner["email"].as_str().unwrap_or_default().to_string();
        let keys = state.keys.entry(email).or_default();
        change(keys).map_err(|()| not_found(&format!("Service account key {name}")))?;
        owner
    };
    shared.emit(entry(
        shared,
        headers,
        &owner,
        method,
        permission,
        json!({"name": name}),
        json!({}),
    ));
    Ok(crate::json_response(&json!({})))
}
