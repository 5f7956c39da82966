//! Cloud SQL Admin v1 instances (`/v1/projects/P/instances[/I]`): create, get, list, patch (settings merged, the
//! authorised networks replaced as a whole, `settingsVersion` as the optimistic-concurrency check), each write an
//! operation (`/v1/projects/P/operations/OP`), with the audit entries Cloud SQL writes.

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
    Router::new()
        .route("/v1/projects/{project}/instances", get(list).post(create))
        .route(
            "/v1/projects/{project}/instances/{instance}",
            get(read).patch(patch),
        )
        .route(
            "/v1/projects/{project}/operations/{operation}",
            get(operation),
        )
}

#[derive(Default)]
pub(crate) struct Sql {
    instances: BTreeMap<(String, String), Value>,
    operations: BTreeMap<(String, String), Value>,
    counter: u64,
}

fn error(status: StatusCode, reason: &'static str, message: String) -> ApiError {
    ApiError {
        status,
        reason,
        message,
        grpc_status: None,
    }
}

fn not_found(project: &str, instance: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "instanceDoesNotExist",
        format!("The Cloud SQL instance does not exist: {project}:{instance}."),
    )
}

impl Sql {
    /// A finished operation about `instance`, remembered for `operations.get`.
    fn operation(&mut self, project: &str, instance: &str, kind: &str, user: &str) -> Value {
        self.counter += 1;
        let name = format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            self.counter * 7919,
            self.counter,
            self.counter * 104_729
        );
        let (now, _) = logging_pair();
        let operation = json!({
            "kind": "sql#operation",
            "name": name,
            "operationType": kind,
            "status": "DONE",
            "user": user,
            "insertTime": now,
            "startTime": now,
            "endTime": now,
            "targetId": instance,
            "targetProject": project,
            "targetLink": format!("https://sqladmin.googleapis.com/v1/projects/{project}/instances/{instance}"),
            "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{project}/operations/{name}"),
        });
        self.operations
            .insert((project.to_string(), name), operation.clone());
        operation
    }
}

/// Deep merge for `settings` (objects merge, anything else replaces; lists such as `authorizedNetworks` whole).
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        _ => *target = patch.clone(),
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    let name = request["name"].as_str().unwrap_or_default().to_string();
    let valid = (1..=98).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ApiError::invalid(format!(
            "Invalid instance name '{name}'."
        )));
    }
    let principal = shared.principal(&headers);
    let operation = {
        let mut state = shared.sql.lock().expect("sql lock poisoned");
        let key = (project.clone(), name.clone());
        if state.instances.contains_key(&key) {
            return Err(error(
                StatusCode::CONFLICT,
                "instanceAlreadyExists",
                "The Cloud SQL instance already exists.".into(),
            ));
        }
        let mut instance = json!({"kind": "sql#instance", "name": name, "project": project, "state": "RUNNABLE",
            "databaseVersion": "POSTGRES_15", "region": "us-central1", "connectionName": format!("{project}:us-central1:{name}"),
            "settings": {"tier": "db-f1-micro", "ipConfiguration": {"ipv4Enabled": true}}});
        merge(&mut instance, &request);
        instance["settings"]["settingsVersion"] = json!("1");
        state.instances.insert(key, instance);
        state.operation(&project, &name, "CREATE", &principal)
    };
    shared.emit(entry(&shared, &headers, &project, &name, "create", request));
    Ok(crate::json_response(&operation))
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let items: Vec<Value> = {
        let state = shared.sql.lock().expect("sql lock poisoned");
        state
            .instances
            .iter()
            .filter(|((p, _), _)| *p == project)
            .map(|(_, instance)| instance.clone())
            .collect()
    };
    let mut body = crate::paged(
        &shared,
        items,
        "items",
        &query,
        crate::Paging::SQL_INSTANCES,
    )?;
    body["kind"] = json!("sql#instancesList");
    Ok(crate::json_response(&body))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((project, instance)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.sql.lock().expect("sql lock poisoned");
    state
        .instances
        .get(&(project.clone(), instance.clone()))
        .map(crate::json_response)
        .ok_or_else(|| not_found(&project, &instance))
}

/// `PATCH`: `settings` merged; a `settings.settingsVersion` that is not the current one is 412.
async fn patch(
    State(shared): State<Arc<Shared>>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    let principal = shared.principal(&headers);
    let operation = {
        let mut state = shared.sql.lock().expect("sql lock poisoned");
        let key = (project.clone(), name.clone());
        let instance = state
            .instances
            .get_mut(&key)
            .ok_or_else(|| not_found(&project, &name))?;
        let current = instance["settings"]["settingsVersion"]
            .as_str()
            .unwrap_or("1")
            .to_string();
        let asked = &request["settings"]["settingsVersion"];
        let asked = asked
            .as_str()
            .map(str::to_string)
            .or_else(|| asked.as_i64().map(|n| n.to_string()));
        if asked.is_some_and(|asked| asked != current) {
            return Err(error(
                StatusCode::PRECONDITION_FAILED,
                "conditionNotMet",
                "Precondition check failed.".into(),
            ));
        }
        if let Some(settings) = request.get("settings") {
            let mut settings = settings.clone();
            if let Some(fields) = settings.as_object_mut() {
                fields.remove("settingsVersion");
            }
            merge(&mut instance["settings"], &settings);
        }
        let next = current.parse::<u64>().unwrap_or(1) + 1;
        instance["settings"]["settingsVersion"] = json!(next.to_string());
        state.operation(&project, &name, "UPDATE", &principal)
    };
    shared.emit(entry(&shared, &headers, &project, &name, "update", request));
    Ok(crate::json_response(&operation))
}

async fn operation(
    State(shared): State<Arc<Shared>>,
    Path((project, operation)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.sql.lock().expect("sql lock poisoned");
    state
        .operations
        .get(&(project, operation.clone()))
        .map(crate::json_response)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "operationDoesNotExist",
                format!("The operation {operation} does not exist."),
            )
        })
}

/// The audit entry Cloud SQL writes for an instance change.
fn entry(
    shared: &Shared,
    headers: &HeaderMap,
    project: &str,
    instance: &str,
    verb: &str,
    request: Value,
) -> Value {
    audit::admin_entry(audit::AdminWrite {
        service_name: "cloudsql.googleapis.com",
        method_name: &format!("cloudsql.instances.{verb}"),
        // As Cloud SQL writes it: the instance alone, its project in the resource's labels.
        resource_name: &format!("instances/{instance}"),
        resource: json!({"type": "cloudsql_database", "labels": {"project_id": project,
            "database_id": format!("{project}:{instance}"), "region": "us-central1"}}),
        permission: &format!("cloudsql.instances.{verb}"),
        project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request: json!({"@type": "type.googleapis.com/google.cloud.sql.v1.SqlInstancesUpdateRequest", "body": request}),
        response: json!({}),
    })
}
