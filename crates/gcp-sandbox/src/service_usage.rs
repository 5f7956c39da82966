//! Service Usage (`/v1/projects/P/services…`): which APIs a project has enabled — `enable`, `disable`,
//! `batchEnable`, `get` and `list` (with `filter=state:ENABLED`) — each change a finished operation and the Admin
//! Activity entry Google writes. gcloud enables `cloudapis.googleapis.com` on every project it creates, and
//! `gcloud services enable` is a deployment's first step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Shared;
use crate::audit::{self, AdminWrite};
use crate::error::ApiError;

/// Enabled services by project.
#[derive(Default)]
pub(crate) struct ServiceUsage {
    enabled: BTreeMap<String, BTreeSet<String>>,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/projects/{project}/services", get(list))
        .route(
            "/v1/projects/{project}/services:batchEnable",
            post(batch_enable),
        )
        .route(
            "/v1/projects/{project}/services/{service}",
            get(read).post(change),
        )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// A service name as Google writes one: `NAME.googleapis.com` and the like — lowercase, dotted, no path.
fn valid_service(service: &str) -> bool {
    (4..=100).contains(&service.len())
        && service.contains('.')
        && service.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'.' || byte == b'-'
        })
}

fn view(project: &str, service: &str, enabled: bool) -> Value {
    let number = crate::project_number(project);
    json!({"name": format!("projects/{number}/services/{service}"), "parent": format!("projects/{number}"),
        "config": {"name": service}, "state": if enabled { "ENABLED" } else { "DISABLED" }})
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.get("filter").map(String::as_str).unwrap_or("");
    // Only enabled services are kept, so a list of the disabled ones is empty.
    let disabled = match filter {
        "" | "state:ENABLED" => false,
        "state:DISABLED" => true,
        other => return Err(invalid(format!("Invalid filter: {other}"))),
    };
    let services: Vec<Value> = shared
        .service_usage
        .lock()
        .expect("service usage lock poisoned")
        .enabled
        .get(&project)
        .into_iter()
        .flatten()
        .filter(|_| !disabled)
        .map(|service| view(&project, service, true))
        .collect();
    Ok(Json(crate::paged(
        &shared,
        services,
        "services",
        &query,
        crate::Paging::SERVICES,
    )?))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((project, service)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if !valid_service(&service) {
        return Err(invalid(format!("Invalid service name: {service}")));
    }
    let enabled = shared
        .service_usage
        .lock()
        .expect("service usage lock poisoned")
        .enabled
        .get(&project)
        .is_some_and(|services| services.contains(&service));
    Ok(Json(view(&project, &service, enabled)))
}

/// `POST …/services/S:enable|:disable`.
async fn change(
    State(shared): State<Arc<Shared>>,
    Path((project, target)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (service, verb) = target
        .split_once(':')
        .ok_or_else(|| invalid(format!("POST is not a method of services/{target}")))?;
    let enable = match verb {
        "enable" => true,
        "disable" => false,
        _ => return Err(invalid(format!("Method {verb} not found."))),
    };
    set(&shared, &project, &[service.to_string()], enable, &headers)
}

async fn batch_enable(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, &["serviceIds"])?;
    let services: Vec<String> = request["serviceIds"]
        .as_array()
        .ok_or_else(|| invalid("serviceIds is required."))?
        .iter()
        .map(|service| service.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| invalid("serviceIds must be strings."))?;
    if services.is_empty() || services.len() > 20 {
        return Err(invalid(
            "Between 1 and 20 serviceIds may be enabled at once.",
        ));
    }
    set(&shared, &project, &services, true, &headers)
}

/// Enables or disables `services` in `project`: a finished operation, one audit entry per service.
fn set(
    shared: &Shared,
    project: &str,
    services: &[String],
    enable: bool,
    headers: &HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if let Some(bad) = services.iter().find(|service| !valid_service(service)) {
        return Err(invalid(format!("Invalid service name: {bad}")));
    }
    {
        let mut state = shared
            .service_usage
            .lock()
            .expect("service usage lock poisoned");
        let enabled = state.enabled.entry(project.to_string()).or_default();
        for service in services {
            match enable {
                true => enabled.insert(service.clone()),
                false => enabled.remove(service),
            };
        }
    }
    let method = if enable {
        "EnableService"
    } else {
        "DisableService"
    };
    for service in services {
        let number = crate::project_number(project);
        let name = format!("projects/{number}/services/{service}");
        shared.emit(audit::admin_entry(AdminWrite {
            service_name: "serviceusage.googleapis.com",
            method_name: &format!("google.api.serviceusage.v1.ServiceUsage.{method}"),
            resource_name: &name,
            resource: json!({"type": "audited_resource", "labels": {"project_id": project,
                "service": "serviceusage.googleapis.com",
                "method": format!("google.api.serviceusage.v1.ServiceUsage.{method}")}}),
            permission: if enable {
                "serviceusage.services.enable"
            } else {
                "serviceusage.services.disable"
            },
            project,
            principal: &shared.principal(headers),
            user_agent: &crate::user_agent(headers),
            request: json!({"name": name}),
            response: json!({}),
        }));
    }
    let response = match services {
        [one] => {
            json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
            "service": view(project, one, enable)})
        }
        many => {
            json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
            "services": many.iter().map(|service| view(project, service, enable)).collect::<Vec<_>>()})
        }
    };
    Ok(Json(
        json!({"name": format!("operations/acat.{}", audit::insert_id()), "done": true,
        "response": response}),
    ))
}
