//! IAM's service accounts and their keys (`/v1/projects/P/serviceAccounts[/ACCOUNT[/keys[/KEY]]]`): accounts by email
//! or unique id (and `-` for the project), user-managed keys created (the private key returned once) or uploaded,
//! `:disable`, `:enable`, delete, list by `keyTypes`, each system-managed key Google keeps beside them, and the audit
//! entries IAM writes (one per call, no operation).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::Shared;
use crate::audit;
use crate::error::ApiError;
use crate::time_fmt::logging_pair;

mod keys;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v1/projects/{project}/serviceAccounts",
            get(list_accounts).post(create_account),
        )
        .route(
            "/v1/projects/{project}/serviceAccounts/{account}",
            get(get_account).post(account_method).delete(delete_account),
        )
        .route(
            "/v1/projects/{project}/serviceAccounts/{account}/{collection}",
            get(keys::list_keys).post(keys::create_key),
        )
        .route(
            "/v1/projects/{project}/serviceAccounts/{account}/keys/{key}",
            get(keys::get_key)
                .post(keys::key_action)
                .delete(keys::delete_key),
        )
}

/// Accounts by email, with their keys by id.
#[derive(Default)]
pub(crate) struct IamAdmin {
    accounts: BTreeMap<String, Value>,
    keys: BTreeMap<String, BTreeMap<String, Value>>,
    counter: u64,
}

fn not_found(what: &str) -> ApiError {
    ApiError::esf(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("{what} does not exist."),
    )
}

impl IamAdmin {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// The project of the account an email or unique id names.
    pub(crate) fn project_of(&self, account: &str) -> Option<String> {
        self.find("-", account)
            .ok()
            .and_then(|found| found["projectId"].as_str().map(str::to_string))
    }

    /// The account `project`/`account` names (email or unique id; `-` for any project), or Google's 404.
    fn find(&self, project: &str, account: &str) -> Result<&Value, ApiError> {
        self.accounts
            .values()
            .find(|candidate| {
                (candidate["email"] == account || candidate["uniqueId"] == account)
                    && (project == "-" || candidate["projectId"] == project)
            })
            .ok_or_else(|| {
                not_found(&format!(
                    "Service account projects/{project}/serviceAccounts/{account}"
                ))
            })
    }
}

/// IAM's account ids: 6 to 30 characters, a lowercase letter first, then letters, digits and dashes, no dash last.
fn valid_account_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (6..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

fn parse(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|err| {
        ApiError::esf(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Invalid JSON payload received. {err}"),
        )
    })
}

/// A key as IAM returns it (without the private key, which only the create call returns).
fn key_body(email: &str, project: &str, id: &str, kind: &str, origin: &str, at: &str) -> Value {
    let mut key = json!({
        "name": format!("projects/{project}/serviceAccounts/{email}/keys/{id}"),
        "validAfterTime": at,
        "validBeforeTime": if kind == "USER_MANAGED" { "9999-12-31T23:59:59Z".to_string() } else { at.to_string() },
        "keyAlgorithm": "KEY_ALG_RSA_2048",
        "keyOrigin": origin,
        "keyType": kind,
    });
    if kind == "SYSTEM_MANAGED" {
        key["validBeforeTime"] = json!("2099-01-01T00:00:00Z");
    }
    key
}

fn key_id(counter: u64, email: &str) -> String {
    let hash = crate::digest(email);
    format!(
        "{:016x}{:024x}",
        hash,
        u128::from(counter).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

async fn create_account(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse(&body)?;
    let id = request["accountId"].as_str().unwrap_or_default();
    if !valid_account_id(id) {
        return Err(ApiError::esf(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!(
                "Invalid account ID '{id}'. It must be 6-30 characters: lowercase letters, digits and hyphens, starting with a letter."
            ),
        ));
    }
    let email = format!("{id}@{project}.iam.gserviceaccount.com");
    let account = {
        let mut state = shared.iam_admin.lock().expect("iam lock poisoned");
        if state.accounts.contains_key(&email) {
            return Err(ApiError::esf(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                format!("Service account {id} already exists within project projects/{project}."),
            ));
        }
        let counter = state.next();
        let unique = format!("1{:020}", crate::project_number(&email) * 1000 + counter);
        let mut account = json!({
            "name": format!("projects/{project}/serviceAccounts/{email}"),
            "projectId": project,
            "uniqueId": unique,
            "email": email,
            "etag": "MDEwMjE5MjA=",
            "oauth2ClientId": unique,
        });
        for field in ["displayName", "description"] {
            if let Some(text) = request["serviceAccount"][field].as_str() {
                account[field] = json!(text);
            }
        }
        state.accounts.insert(email.clone(), account.clone());
        // Google keeps a system-managed key for every account; it is never the user's to manage.
        let (at, _) = logging_pair();
        let system = key_id(counter + 1_000_000, &email);
        let key = key_body(
            &email,
            &project,
            &system,
            "SYSTEM_MANAGED",
            "GOOGLE_PROVIDED",
            &at,
        );
        state
            .keys
            .entry(email.clone())
            .or_default()
            .insert(system, key);
        account
    };
    // An account is a resource with an IAM policy of its own, empty at first.
    shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned")
        .ensure(&format!(
            "projects/{project}/serviceAccounts/{}",
            account["email"].as_str().unwrap_or_default()
        ));
    shared.emit(entry(
        &shared,
        &headers,
        &account,
        "CreateServiceAccount",
        "iam.serviceAccounts.create",
        request,
        account.clone(),
    ));
    Ok(crate::json_response(&account))
}

async fn list_accounts(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let accounts: Vec<Value> = {
        let state = shared.iam_admin.lock().expect("iam lock poisoned");
        state
            .accounts
            .values()
            .filter(|account| account["projectId"] == project.as_str())
            .cloned()
            .collect()
    };
    let body = crate::paged(
        &shared,
        accounts,
        "accounts",
        &query,
        crate::Paging::SERVICE_ACCOUNTS,
    )?;
    Ok(crate::json_response(&body))
}

/// `POST …/serviceAccounts/ACCOUNT:disable|:enable` (the account's `disabled` flag, IAM's audit entry) and
/// `:getIamPolicy|:setIamPolicy` (the account as a resource: an empty policy from its creation on).
async fn account_method(
    State(shared): State<Arc<Shared>>,
    Path((project, target)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if target.ends_with(":generateAccessToken") {
        return crate::oauth::generate_access_token(
            State(shared),
            Path((project, target)),
            headers,
        )
        .await
        .map(axum::response::IntoResponse::into_response);
    }
    let (account, verb) = target.split_once(':').ok_or_else(|| {
        ApiError::esf(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("POST is not a method of projects/{project}/serviceAccounts/{target}"),
        )
    })?;
    let found = {
        let state = shared.iam_admin.lock().expect("iam lock poisoned");
        state.find(&project, account)?.clone()
    };
    let email = found["email"].as_str().unwrap_or_default().to_string();
    let owner = found["projectId"].as_str().unwrap_or_default().to_string();
    match verb {
        "getIamPolicy" | "setIamPolicy" => crate::resource_iam::method(
            &shared,
            &owner,
            &format!("projects/{owner}"),
            "serviceAccounts",
            &format!("{email}:{verb}"),
            &query,
            &headers,
            &body,
        ),
        "disable" | "enable" => {
            let request = parse(&body)?;
            let disabled = verb == "disable";
            let account = {
                let mut state = shared.iam_admin.lock().expect("iam lock poisoned");
                let account = state
                    .accounts
                    .get_mut(&email)
                    .ok_or_else(|| not_found(&format!("Service account {email}")))?;
                match disabled {
                    true => account["disabled"] = json!(true),
                    false => {
                        account
                            .as_object_mut()
                            .map(|fields| fields.remove("disabled"));
                    }
                }
                account.clone()
            };
            let (method, permission) = match disabled {
                true => ("DisableServiceAccount", "iam.serviceAccounts.disable"),
                false => ("EnableServiceAccount", "iam.serviceAccounts.enable"),
            };
            shared.emit(entry(
                &shared,
                &headers,
                &account,
                method,
                permission,
                request,
                json!({}),
            ));
            Ok(crate::json_response(&json!({})))
        }
        _ => Err(not_found(&format!("Method {verb}"))),
    }
}

/// `DELETE …/serviceAccounts/ACCOUNT`: the account, its keys and its policy go.
async fn delete_account(
    State(shared): State<Arc<Shared>>,
    Path((project, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let removed = {
        let mut state = shared.iam_admin.lock().expect("iam lock poisoned");
        let found = state.find(&project, &account)?.clone();
        let email = found["email"].as_str().unwrap_or_default().to_string();
        state.accounts.remove(&email);
        state.keys.remove(&email);
        found
    };
    let name = format!(
        "projects/{}/serviceAccounts/{}",
        removed["projectId"].as_str().unwrap_or_default(),
        removed["email"].as_str().unwrap_or_default()
    );
    shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned")
        .remove(&name);
    shared.emit(entry(
        &shared,
        &headers,
        &removed,
        "DeleteServiceAccount",
        "iam.serviceAccounts.delete",
        json!({"name": name}),
        json!({}),
    ));
    Ok(crate::json_response(&json!({})))
}

async fn get_account(
    State(shared): State<Arc<Shared>>,
    Path((project, account)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.iam_admin.lock().expect("iam lock poisoned");
    state.find(&project, &account).map(crate::json_response)
}

/// The audit entry IAM writes for a call about `account`: resource `service_account`, the account named by its
/// unique id under the `-` project.
fn entry(
    shared: &Shared,
    headers: &HeaderMap,
    account: &Value,
    method: &str,
    permission: &str,
    mut request: Value,
    mut response: Value,
) -> Value {
    let unique = account["uniqueId"].as_str().unwrap_or_default();
    let project = account["projectId"].as_str().unwrap_or_default();
    request["@type"] = json!(format!(
        "type.googleapis.com/google.iam.admin.v1.{method}Request"
    ));
    if response != json!({}) {
        let kind = if method == "CreateServiceAccount" {
            "ServiceAccount"
        } else {
            "ServiceAccountKey"
        };
        response["@type"] = json!(format!("type.googleapis.com/google.iam.admin.v1.{kind}"));
    }
    audit::admin_entry(audit::AdminWrite {
        service_name: "iam.googleapis.com",
        method_name: &format!("google.iam.admin.v1.{method}"),
        resource_name: &format!("projects/-/serviceAccounts/{unique}"),
        resource: json!({"type": "service_account", "labels": {"email_id": account["email"], "project_id": project, "unique_id": unique}}),
        permission,
        project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request,
        response,
    })
}
