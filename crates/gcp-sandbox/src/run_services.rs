//! Cloud Run Admin API v2 services, as far as their security matters: `create` (`?serviceId=`), `get`, `patch`
//! (`invokerIamDisabled` among the fields), each change a finished long-running operation and an audit entry
//! (`google.cloud.run.v2.Services.CreateService` / `UpdateService`). A created service can carry an IAM policy
//! (`resource_iam.rs`).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::audit;
use crate::error::ApiError;

/// Services by name (`projects/P/locations/L/services/S`).
#[derive(Default)]
pub(crate) struct RunServices {
    services: BTreeMap<String, Value>,
}

/// Fields a request may set; the rest of a service is Cloud Run's to fill in.
const WRITABLE: &[&str] = &[
    "description",
    "labels",
    "annotations",
    "ingress",
    "invokerIamDisabled",
    "template",
    "launchStage",
    "traffic",
    "scaling",
    "defaultUriDisabled",
];

fn not_found(name: &str) -> ApiError {
    ApiError::esf(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Resource '{name}' was not found"),
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// A service id: lowercase letters, digits and hyphens, starting with a letter, at most 49 characters.
fn valid_id(id: &str) -> bool {
    (1..=49).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

fn body_of(body: &[u8]) -> Result<Value, ApiError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(
        &request,
        &[
            WRITABLE,
            &[
                "name",
                "uid",
                "generation",
                "etag",
                "uri",
                "createTime",
                "updateTime",
            ],
        ]
        .concat(),
    )?;
    Ok(request)
}

fn operation(name: &str, verb: &str, service: &Value) -> Value {
    let mut response = service.clone();
    response["@type"] = json!("type.googleapis.com/google.cloud.run.v2.Service");
    json!({"name": format!("{}/operations/{verb}-{}", name.split("/services/").next().unwrap_or(name),
            service["generation"].as_str().unwrap_or("1")),
        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "name": name},
        "done": true, "response": response})
}

fn emit(
    shared: &Shared,
    headers: &HeaderMap,
    project: &str,
    name: &str,
    verb: &str,
    request: Value,
    service: &Value,
) {
    let location = name.split('/').nth(3).unwrap_or_default();
    let principal = shared.principal(headers);
    shared.emit(audit::admin_entry(audit::AdminWrite {
        service_name: "run.googleapis.com",
        method_name: &format!("google.cloud.run.v2.Services.{verb}Service"),
        resource_name: name,
        resource: json!({"type": "cloud_run_revision", "labels": {"project_id": project, "location": location,
            "service_name": name.rsplit('/').next().unwrap_or_default()}}),
        permission: if verb == "Create" { "run.services.create" } else { "run.services.update" },
        project,
        principal: &principal,
        user_agent: &crate::user_agent(headers),
        request: json!({"@type": format!("type.googleapis.com/google.cloud.run.v2.{verb}ServiceRequest"), "service": request}),
        response: service.clone(),
    }));
}

/// `POST /v2/projects/P/locations/L/services?serviceId=S`.
pub(crate) fn create(
    shared: &Shared,
    project: &str,
    location: &str,
    service_id: Option<&String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let id = service_id.ok_or_else(|| invalid("serviceId is required."))?;
    if !valid_id(id) {
        return Err(invalid(format!("Invalid service id '{id}'.")));
    }
    let request = body_of(body)?;
    let name = format!("projects/{project}/locations/{location}/services/{id}");
    let mut service = json!({"name": name, "uid": format!("{:032x}", crate::project_number(&name)), "generation": "1",
        "createTime": crate::time_fmt::logging_now(), "ingress": "INGRESS_TRAFFIC_ALL",
        "uri": format!("https://{id}-{}.{location}.run.app", crate::project_number(project) % 1_000_000_000),
        "launchStage": "GA"});
    for field in WRITABLE {
        if let Some(value) = request.get(*field) {
            service[*field] = value.clone();
        }
    }
    {
        let mut services = shared
            .run_services
            .lock()
            .expect("run services lock poisoned");
        if services.services.contains_key(&name) {
            return Err(ApiError::esf(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                format!("Resource '{id}' already exists."),
            ));
        }
        services.services.insert(name.clone(), service.clone());
    }
    shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned")
        .ensure(&name);
    emit(shared, headers, project, &name, "Create", request, &service);
    Ok(crate::json_response(&operation(&name, "create", &service)))
}

/// `GET …/services/S`. A service that only ever had its IAM policy set (the sandbox's shortcut for "a service
/// exists") reads as a plain one, its invoker check on.
pub(crate) fn get(shared: &Shared, name: &str) -> Result<Response, ApiError> {
    if let Some(service) = shared
        .run_services
        .lock()
        .expect("run services lock poisoned")
        .services
        .get(name)
    {
        return Ok(crate::json_response(service));
    }
    let has_policy = shared
        .resource_policies
        .lock()
        .expect("resource policies lock poisoned")
        .contains(name);
    match has_policy {
        true => Ok(crate::json_response(
            &json!({"name": name, "generation": "1", "ingress": "INGRESS_TRAFFIC_ALL", "launchStage": "GA"}),
        )),
        false => Err(not_found(name)),
    }
}

/// `PATCH …/services/S`: the given fields replace the service's.
pub(crate) fn patch(
    shared: &Shared,
    project: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request = body_of(body)?;
    let service = {
        let mut services = shared
            .run_services
            .lock()
            .expect("run services lock poisoned");
        let service = services
            .services
            .get_mut(name)
            .ok_or_else(|| not_found(name))?;
        if let Some(etag) = request["etag"].as_str()
            && service["etag"]
                .as_str()
                .is_some_and(|current| current != etag)
        {
            return Err(ApiError::esf(
                StatusCode::CONFLICT,
                "ABORTED",
                "The service has been modified; read it again.",
            ));
        }
        for field in WRITABLE {
            if let Some(value) = request.get(*field) {
                service[*field] = value.clone();
            }
        }
        let generation = service["generation"]
            .as_str()
            .and_then(|g| g.parse::<u64>().ok())
            .unwrap_or(1)
            + 1;
        service["generation"] = json!(generation.to_string());
        service["etag"] = json!(format!("\"{generation}\""));
        service["updateTime"] = json!(crate::time_fmt::logging_now());
        service.clone()
    };
    emit(shared, headers, project, name, "Update", request, &service);
    Ok(crate::json_response(&operation(name, "update", &service)))
}
