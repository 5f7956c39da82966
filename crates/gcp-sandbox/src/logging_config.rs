//! Cloud Logging's routing configuration of projects, folders and organizations: sinks (with the `_Required` and
//! `_Default` sinks each has, `_Required` unchangeable), their exclusions, standalone exclusions, `updateMask` as
//! Logging reads it, and the audit entries Logging writes for each change (a folder's or organization's in its own log).

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

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    // A project's routing, and a folder's or an organization's own.
    for parent in [
        "projects/{project}",
        "folders/{folder}",
        "organizations/{organization}",
    ] {
        router = router
            .route(
                &format!("/v2/{parent}/{{collection}}"),
                get(list).post(create),
            )
            .route(
                &format!("/v2/{parent}/{{collection}}/{{name}}"),
                get(read).put(update).patch(update).delete(delete),
            );
    }
    router
}

/// The routing's owner as the store keys it: a project id, or `folders/N` / `organizations/N`; the collection; the
/// name when the path has one.
fn owner(params: &HashMap<String, String>) -> (String, String, String) {
    let parent = if let Some(folder) = params.get("folder") {
        format!("folders/{folder}")
    } else if let Some(organization) = params.get("organization") {
        format!("organizations/{organization}")
    } else {
        params.get("project").cloned().unwrap_or_default()
    };
    let field = |key: &str| params.get(key).cloned().unwrap_or_default();
    (parent, field("collection"), field("name"))
}

/// A store key's parent as Logging names it.
fn parent(owner: &str) -> String {
    if owner.contains('/') {
        owner.to_string()
    } else {
        format!("projects/{owner}")
    }
}

/// Sinks and exclusions by (project, collection, name).
#[derive(Default)]
pub(crate) struct LoggingConfig {
    items: BTreeMap<(String, &'static str, String), Value>,
    seeded: std::collections::BTreeSet<String>,
}

const REQUIRED_FILTER: &str = r#"LOG_ID("cloudaudit.googleapis.com/activity") OR LOG_ID("externalaudit.googleapis.com/activity") OR LOG_ID("cloudaudit.googleapis.com/system_event") OR LOG_ID("externalaudit.googleapis.com/system_event") OR LOG_ID("cloudaudit.googleapis.com/access_transparency") OR LOG_ID("externalaudit.googleapis.com/access_transparency")"#;
const DEFAULT_FILTER: &str = r#"NOT LOG_ID("cloudaudit.googleapis.com/activity") AND NOT LOG_ID("externalaudit.googleapis.com/activity") AND NOT LOG_ID("cloudaudit.googleapis.com/system_event") AND NOT LOG_ID("externalaudit.googleapis.com/system_event") AND NOT LOG_ID("cloudaudit.googleapis.com/access_transparency") AND NOT LOG_ID("externalaudit.googleapis.com/access_transparency")"#;

/// The fields an update may name, per collection.
const SINK_FIELDS: &[&str] = &[
    "destination",
    "filter",
    "description",
    "disabled",
    "exclusions",
    "includeChildren",
];
const EXCLUSION_FIELDS: &[&str] = &["filter", "description", "disabled"];

/// Every field of a `LogSink` and a `LogExclusion` (Logging v2's discovery document): a request naming another is 400,
/// so a misspelt `filter` is refused rather than creating a sink that exports everything.
const SINK_SCHEMA: &[&str] = &[
    "bigqueryOptions",
    "createTime",
    "description",
    "destination",
    "disabled",
    "exclusions",
    "filter",
    "includeChildren",
    "interceptChildren",
    "name",
    "outputVersionFormat",
    "resourceName",
    "updateTime",
    "writerIdentity",
];
const EXCLUSION_SCHEMA: &[&str] = &[
    "createTime",
    "description",
    "disabled",
    "filter",
    "name",
    "updateTime",
];

fn check_schema(kind: &str, request: &Value) -> Result<(), ApiError> {
    ApiError::unknown_fields(
        request,
        if kind == "sinks" {
            SINK_SCHEMA
        } else {
            EXCLUSION_SCHEMA
        },
    )
}

fn collection(text: &str) -> Result<&'static str, ApiError> {
    match text {
        "sinks" => Ok("sinks"),
        "exclusions" => Ok("exclusions"),
        other => Err(ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Unknown collection '{other}'."),
        )),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

impl LoggingConfig {
    /// Every project has `_Required` and `_Default` from the start.
    fn ensure(&mut self, project: &str) {
        if !self.seeded.insert(project.to_string()) {
            return;
        }
        let (now, _) = logging_pair();
        for (name, filter) in [("_Required", REQUIRED_FILTER), ("_Default", DEFAULT_FILTER)] {
            let sink = json!({"name": name, "filter": filter, "createTime": now, "updateTime": now,
                "destination": format!("logging.googleapis.com/{}/locations/global/buckets/{name}", parent(project))});
            self.items
                .insert((project.to_string(), "sinks", name.to_string()), sink);
        }
    }
}

/// Logging's resource names: 1 to 100 characters of letters, digits, `_-.`, not starting with `_` (reserved).
fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with('_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (project, kind, _) = owner(&params);
    let kind = collection(&kind)?;
    let items: Vec<Value> = {
        let mut state = shared.logging.lock().expect("logging lock poisoned");
        state.ensure(&project);
        state
            .items
            .iter()
            .filter(|((p, k, _), _)| *p == project && *k == kind)
            .map(|(_, item)| item.clone())
            .collect()
    };
    let body = crate::paged(&shared, items, kind, &query, crate::Paging::LOGGING)?;
    Ok(crate::json_response(&body))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (project, kind, name) = owner(&params);
    let kind = collection(&kind)?;
    let mut state = shared.logging.lock().expect("logging lock poisoned");
    state.ensure(&project);
    state
        .items
        .get(&(project.clone(), kind, name.clone()))
        .map(crate::json_response)
        .ok_or_else(|| not_found(&project, kind, &name))
}

fn not_found(project: &str, kind: &str, name: &str) -> ApiError {
    ApiError::esf(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!(
            "{} does not exist: {}/{kind}/{name}",
            if kind == "sinks" { "Sink" } else { "Exclusion" },
            parent(project)
        ),
    )
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (project, kind, _) = owner(&params);
    let kind = collection(&kind)?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    check_schema(kind, &request)?;
    let name = request["name"].as_str().unwrap_or_default().to_string();
    if !valid_name(&name) {
        return Err(invalid(format!("Invalid resource name '{name}'.")));
    }
    if request["filter"].as_str().unwrap_or_default().is_empty() && kind == "exclusions" {
        return Err(invalid("An exclusion needs a filter."));
    }
    if kind == "sinks"
        && request["destination"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    {
        return Err(invalid("A sink needs a destination."));
    }
    let fields = if kind == "sinks" {
        SINK_FIELDS
    } else {
        EXCLUSION_FIELDS
    };
    let stored = {
        let mut state = shared.logging.lock().expect("logging lock poisoned");
        state.ensure(&project);
        let key = (project.clone(), kind, name.clone());
        if state.items.contains_key(&key) {
            return Err(ApiError::esf(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                format!("{}/{kind}/{name} already exists", parent(&project)),
            ));
        }
        let (now, _) = logging_pair();
        let mut stored = json!({"name": name, "createTime": now, "updateTime": now});
        for field in fields {
            if let Some(value) = request.get(*field).filter(|value| !value.is_null()) {
                stored[*field] = value.clone();
            }
        }
        if kind == "sinks" {
            let writer = if query
                .get("uniqueWriterIdentity")
                .is_some_and(|value| value == "true")
            {
                format!(
                    "serviceAccount:service-{}@gcp-sa-logging.iam.gserviceaccount.com",
                    crate::project_number(&project)
                )
            } else {
                "serviceAccount:cloud-logs@system.gserviceaccount.com".to_string()
            };
            stored["writerIdentity"] = json!(writer);
        }
        state.items.insert(key, stored.clone());
        stored
    };
    let method = if kind == "sinks" {
        "CreateSink"
    } else {
        "CreateExclusion"
    };
    shared.emit(entry(
        &shared,
        &headers,
        (&project, kind, &name),
        method,
        request,
        stored.clone(),
    ));
    Ok(crate::json_response(&stored))
}

/// `PUT`/`PATCH` with `updateMask` (comma-separated). A sink update without one changes Logging's defaults
/// (destination, filter, includeChildren); an exclusion update needs one.
async fn update(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (project, kind, name) = owner(&params);
    let kind = collection(&kind)?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    check_schema(kind, &request)?;
    let fields = if kind == "sinks" {
        SINK_FIELDS
    } else {
        EXCLUSION_FIELDS
    };
    let mask: Vec<String> = match query.get("updateMask").filter(|mask| !mask.is_empty()) {
        Some(mask) => mask
            .split(',')
            .map(|field| field.trim().to_string())
            .collect(),
        None if kind == "sinks" => vec![
            "destination".into(),
            "filter".into(),
            "includeChildren".into(),
        ],
        None => return Err(invalid("updateMask is required to update an exclusion.")),
    };
    if let Some(unknown) = mask.iter().find(|field| !fields.contains(&field.as_str())) {
        return Err(invalid(format!("Invalid update mask field: {unknown}")));
    }
    let stored = {
        let mut state = shared.logging.lock().expect("logging lock poisoned");
        state.ensure(&project);
        if kind == "sinks" && name == "_Required" {
            return Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                "The _Required sink cannot be updated.",
            ));
        }
        let stored = state
            .items
            .get_mut(&(project.clone(), kind, name.clone()))
            .ok_or_else(|| not_found(&project, kind, &name))?;
        for field in &mask {
            match request.get(field.as_str()).filter(|value| !value.is_null()) {
                Some(value) => stored[field.as_str()] = value.clone(),
                None => {
                    stored
                        .as_object_mut()
                        .map(|fields| fields.remove(field.as_str()));
                }
            }
        }
        stored["updateTime"] = json!(logging_pair().0);
        stored.clone()
    };
    let verb = if kind == "sinks" {
        "UpdateSink"
    } else {
        "UpdateExclusion"
    };
    let mut logged = request;
    logged["updateMask"] = json!(mask.join(","));
    shared.emit(entry(
        &shared,
        &headers,
        (&project, kind, &name),
        verb,
        logged,
        stored.clone(),
    ));
    Ok(crate::json_response(&stored))
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, kind, name) = owner(&params);
    let kind = collection(&kind)?;
    {
        let mut state = shared.logging.lock().expect("logging lock poisoned");
        state.ensure(&project);
        if kind == "sinks" && name.starts_with('_') {
            return Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                format!("The {name} sink cannot be deleted."),
            ));
        }
        state
            .items
            .remove(&(project.clone(), kind, name.clone()))
            .ok_or_else(|| not_found(&project, kind, &name))?;
    }
    let verb = if kind == "sinks" {
        "DeleteSink"
    } else {
        "DeleteExclusion"
    };
    shared.emit(entry(
        &shared,
        &headers,
        (&project, kind, &name),
        verb,
        json!({}),
        json!({}),
    ));
    Ok(crate::json_response(&json!({})))
}

/// The audit entry Logging writes for a configuration change.
fn entry(
    shared: &Shared,
    headers: &HeaderMap,
    (project, kind, name): (&str, &str, &str),
    method: &str,
    mut request: Value,
    mut response: Value,
) -> Value {
    let resource_name = format!("{}/{kind}/{name}", parent(project));
    request["@type"] = json!(format!(
        "type.googleapis.com/google.logging.v2.{method}Request"
    ));
    request[if kind == "sinks" { "sinkName" } else { "name" }] = json!(resource_name);
    if response != json!({}) {
        response["@type"] = json!(if kind == "sinks" {
            "type.googleapis.com/google.logging.v2.LogSink"
        } else {
            "type.googleapis.com/google.logging.v2.LogExclusion"
        });
    }
    let method_name = format!("google.logging.v2.ConfigServiceV2.{method}");
    let mut resource = if kind == "sinks" {
        json!({"type": "logging_sink", "labels": {"name": name,
            "destination": response["destination"].as_str().unwrap_or_default()}})
    } else {
        json!({"type": "audited_resource", "labels": {"service": "logging.googleapis.com",
            "method": method_name}})
    };
    // The owner's label: a project's id, or the folder's or organization's number.
    let (label, id) = match project.split_once('/') {
        Some(("folders", id)) => ("folder_id", id),
        Some((_, id)) => ("organization_id", id),
        None => ("project_id", project),
    };
    resource["labels"][label] = json!(id);
    let verb = match &method[..6] {
        "Create" => "create",
        "Update" => "update",
        _ => "delete",
    };
    audit::admin_entry(audit::AdminWrite {
        service_name: "logging.googleapis.com",
        method_name: &method_name,
        resource_name: &resource_name,
        resource,
        permission: &format!("logging.{kind}.{verb}"),
        project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request,
        response,
    })
}
