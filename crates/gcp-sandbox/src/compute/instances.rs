//! Compute Engine instances: zonal insert/get/list/delete, `aggregatedList`, `setMetadata` guarded by the metadata
//! fingerprint (412 `conditionNotMet` on a stale one), `stop`/`start`, `deleteAccessConfig`/`addAccessConfig` and
//! `setServiceAccount` (400 unless TERMINATED), each a zonal operation with its audit entries.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

pub(super) use super::instance_body::path;
use super::instance_body::{access_config, normalise, stored_tags, zone_name};
use super::project as metadata;
use super::{API_ROOT, ComputeState, api_version, parse_body, request_id, run_operation};
use crate::Shared;
use crate::audit::{self, ComputeWrite};
use crate::error::ApiError;
use crate::time_fmt::compute_now;

/// (project, zone, name).
pub(super) type Key = (String, String, String);

pub(super) async fn get_instance(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, name)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    state
        .instances
        .get(&(project.clone(), zone.clone(), name.clone()))
        .map(crate::json_response)
        .ok_or_else(|| ApiError::not_found(&path(&project, &zone, &name)))
}

pub(super) async fn list_instances(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    zone_name(&zone)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let items: Vec<&Value> = state
        .instances
        .iter()
        .filter(|((p, z, _), _)| *p == project && *z == zone)
        .map(|(_, instance)| instance)
        .collect();
    let mut list = json!({
        "kind": "compute#instanceList",
        "id": format!("projects/{project}/zones/{zone}/instances"),
        "selfLink": format!("{API_ROOT}/projects/{project}/zones/{zone}/instances"),
    });
    if !items.is_empty() {
        list["items"] = json!(items);
    }
    Ok(crate::json_response(&list))
}

/// `aggregatedList`: every zone with instances under `zones/ZONE`; Google lists empty zones with a warning, which
/// only the zones this project has used stand for here.
pub(super) async fn aggregated_instances(
    State(shared): State<Arc<Shared>>,
    Path((version, project)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let mut zones: Map<String, Value> = Map::new();
    for ((p, zone, _), instance) in &state.instances {
        if *p != project {
            continue;
        }
        let scoped = zones
            .entry(format!("zones/{zone}"))
            .or_insert_with(|| json!({"instances": []}));
        if let Some(list) = scoped["instances"].as_array_mut() {
            list.push(instance.clone());
        }
    }
    Ok(crate::json_response(&json!({
        "kind": "compute#instanceAggregatedList",
        "id": format!("projects/{project}/aggregated/instances"),
        "items": zones,
        "selfLink": format!("{API_ROOT}/projects/{project}/aggregated/instances"),
    })))
}

pub(super) async fn insert_instance(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    let request = parse_body(&body)?;
    let name = request["name"].as_str().unwrap_or_default().to_string();
    let key = (project.clone(), zone.clone(), name);
    operate(
        &shared,
        version,
        "insert",
        &key,
        (&query, &headers),
        Some(request.clone()),
        |state, id| {
            if state.instances.contains_key(&key) {
                return Err(ApiError::already_exists(&path(&key.0, &key.1, &key.2)));
            }
            let ordinal = state.instances.len() as u64;
            let instance = normalise(&key.0, &key.1, request, id, ordinal)?;
            state.instances.insert(key.clone(), instance.clone());
            Ok(instance)
        },
    )
}

pub(super) async fn delete_instance(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, name)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    let key = (project, zone, name);
    operate(
        &shared,
        version,
        "delete",
        &key,
        (&query, &headers),
        None,
        |state, _| {
            state
                .instances
                .remove(&key)
                .ok_or_else(|| ApiError::not_found(&path(&key.0, &key.1, &key.2)))
        },
    )
}

/// `POST …/instances/NAME/ACTION`: the custom verbs.
pub(super) async fn act_on_instance(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, name, action)): Path<(String, String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    let key = (project, zone, name);
    let request = if body.is_empty() {
        None
    } else {
        Some(parse_body(&body)?)
    };
    let verb: &'static str = match action.as_str() {
        "setMetadata" => "setMetadata",
        "stop" => "stop",
        "start" => "start",
        "deleteAccessConfig" => "deleteAccessConfig",
        "addAccessConfig" => "addAccessConfig",
        "setServiceAccount" => "setServiceAccount",
        "setTags" => "setTags",
        "setLabels" => "setLabels",
        _ => {
            return Err(ApiError::not_found(&format!(
                "{}/{action}",
                path(&key.0, &key.1, &key.2)
            )));
        }
    };
    let input = request.clone().unwrap_or(Value::Null);
    let query_for_change = query.clone();
    let stored_key = key.clone();
    operate(
        &shared,
        version,
        verb,
        &key,
        (&query, &headers),
        request,
        move |state, _| {
            let key = stored_key;
            let instance = state
                .instances
                .get_mut(&key)
                .ok_or_else(|| ApiError::not_found(&path(&key.0, &key.1, &key.2)))?;
            change(instance, verb, &input, &query_for_change)?;
            Ok(instance.clone())
        },
    )
}

/// Applies one custom verb to a stored instance, with Compute's checks.
fn change(
    instance: &mut Value,
    verb: &str,
    request: &Value,
    query: &HashMap<String, String>,
) -> Result<(), ApiError> {
    match verb {
        "setMetadata" => {
            metadata::check_fingerprint(&instance["metadata"], request)?;
            instance["metadata"] = metadata::stored(&request["items"])?;
        }
        "setTags" => {
            if request["fingerprint"] != instance["tags"]["fingerprint"] {
                return Err(ApiError::condition_not_met(
                    "Supplied fingerprint does not match current tags fingerprint.",
                ));
            }
            instance["tags"] = stored_tags(&request["items"])?;
        }
        "setLabels" => {
            if request["labelFingerprint"] != instance["labelFingerprint"] {
                return Err(ApiError::condition_not_met(
                    "Labels fingerprint either invalid or resource labels have changed",
                ));
            }
            let labels = match &request["labels"] {
                Value::Null => json!({}),
                Value::Object(labels) if labels.values().all(Value::is_string) => {
                    json!(labels)
                }
                _ => {
                    return Err(ApiError::bad_json(
                        "Invalid JSON payload received. Expected a map of strings for 'labels'.",
                    ));
                }
            };
            instance["labelFingerprint"] = json!(metadata::fingerprint(&labels));
            match labels == json!({}) {
                true => {
                    instance
                        .as_object_mut()
                        .map(|fields| fields.remove("labels"));
                }
                false => instance["labels"] = labels,
            }
        }
        "stop" => {
            instance["status"] = json!("TERMINATED");
            instance["lastStopTimestamp"] = json!(compute_now());
        }
        "start" => {
            instance["status"] = json!("RUNNING");
            instance["lastStartTimestamp"] = json!(compute_now());
        }
        "setServiceAccount" => {
            if instance["status"] != "TERMINATED" {
                return Err(ApiError::bad_request(format!(
                    "The instance '{}' must be stopped (TERMINATED) to change its service account or scopes.",
                    instance["name"].as_str().unwrap_or_default()
                )));
            }
            let email = request["email"].as_str().unwrap_or_default();
            instance["serviceAccounts"] = if email.is_empty() {
                json!([])
            } else {
                json!([{"email": email, "scopes": request["scopes"].as_array().cloned().unwrap_or_default()}])
            };
        }
        "deleteAccessConfig" | "addAccessConfig" => {
            let interface_name = query.get("networkInterface").cloned().unwrap_or_default();
            if interface_name.is_empty() {
                return Err(ApiError::invalid(
                    "Invalid value for field 'networkInterface': ''. Required.",
                ));
            }
            let interfaces = instance["networkInterfaces"]
                .as_array_mut()
                .ok_or_else(|| ApiError::invalid("The instance has no network interfaces."))?;
            let interface = interfaces
                .iter_mut()
                .find(|interface| interface["name"] == interface_name.as_str())
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Invalid value for field 'networkInterface': '{interface_name}'. No such interface."
                    ))
                })?;
            if verb == "deleteAccessConfig" {
                let config = query.get("accessConfig").cloned().unwrap_or_default();
                let configs = interface
                    .get_mut("accessConfigs")
                    .and_then(Value::as_array_mut);
                let before = configs.as_ref().map_or(0, |configs| configs.len());
                if let Some(configs) = configs {
                    configs.retain(|existing| existing["name"] != config.as_str());
                    if configs.len() == before {
                        return Err(ApiError::invalid(format!(
                            "Invalid value for field 'accessConfig': '{config}'. No such access config."
                        )));
                    }
                } else {
                    return Err(ApiError::invalid(format!(
                        "Invalid value for field 'accessConfig': '{config}'. No such access config."
                    )));
                }
                if interface["accessConfigs"] == json!([]) {
                    interface
                        .as_object_mut()
                        .map(|fields| fields.remove("accessConfigs"));
                }
            } else {
                if interface["accessConfigs"]
                    .as_array()
                    .is_some_and(|configs| !configs.is_empty())
                {
                    return Err(ApiError::bad_request(
                        "At most one access config currently supported.",
                    ));
                }
                interface["accessConfigs"] = json!([access_config(request.clone(), 7)]);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every instance write: idempotency by `requestId`, the change, a zonal operation, the `first`/`last` entries.
fn operate(
    shared: &Arc<Shared>,
    version: &'static str,
    verb: &'static str,
    key: &Key,
    (query, headers): (&HashMap<String, String>, &HeaderMap),
    request: Option<Value>,
    mutate: impl FnOnce(&mut ComputeState, u64) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let request_id = request_id(query)?;
    let principal = shared.principal(headers);
    let user_agent = crate::user_agent(headers);
    let (project, zone, name) = key;
    let resource_name = path(project, zone, name);
    let (operation, first, completes) = {
        let mut state = shared.compute.lock().expect("compute state lock poisoned");
        if let Some(body) = request_id
            .as_ref()
            .and_then(|request_id| state.operations.replay(project, request_id))
        {
            return Ok(crate::json_response(body));
        }
        let id = state.next_id();
        let previous = state.instances.get(key).cloned();
        let instance = match mutate(&mut state, id) {
            Ok(instance) => instance,
            Err(error) => {
                drop(state);
                if error.status != axum::http::StatusCode::NOT_FOUND {
                    shared.emit(audit::refused_entry(audit::Refused {
                        service_name: "compute.googleapis.com",
                        method_name: &format!("{version}.compute.instances.{verb}"),
                        resource_name: &resource_name,
                        project,
                        principal: &principal,
                        status: &error,
                    }));
                }
                return Err(error);
            }
        };
        let error = shared
            .next_operation_error
            .lock()
            .expect("operation error lock poisoned")
            .take();
        if error.is_some() {
            match previous {
                Some(previous) => state.instances.insert(key.clone(), previous),
                None => state.instances.remove(key),
            };
        }
        let target_id = instance["id"].as_str().unwrap_or_default().to_string();
        let operation = state.new_operation(
            verb,
            project,
            &format!("zones/{zone}"),
            &resource_name,
            &target_id,
            &principal,
        );
        let permission = match verb {
            "insert" => "compute.instances.create".to_string(),
            other => format!("compute.instances.{other}"),
        };
        let write = ComputeWrite {
            project,
            version,
            method: &format!("instances.{verb}"),
            resource_name: &resource_name,
            resource: json!({"type": "gce_instance",
                "labels": {"instance_id": target_id, "project_id": project, "zone": zone}}),
            authorization: json!([audit::granted(
                &permission,
                &resource_name,
                "compute.instances"
            )]),
            location: zone,
            principal: &principal,
            user_agent: &user_agent,
            request: request.as_ref(),
            operation: &operation,
        };
        let first = audit::compute_entry(&write, audit::Phase::First);
        let last = audit::compute_entry(&write, audit::Phase::Last);
        let name = operation["name"].as_str().unwrap_or_default().to_string();
        let completes = state.track(
            shared,
            (project.clone(), name),
            &operation,
            last,
            error,
            request_id,
        );
        (operation, first, completes)
    };
    Ok(run_operation(shared, operation, first, completes))
}
