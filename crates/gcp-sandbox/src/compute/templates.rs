//! Compute Engine instance templates (global and regional): insert, get, list, aggregated list and delete, each an
//! operation with its audit entries; and what templates and managed instance groups (`groups.rs`) share: reads,
//! lists and how their writes are logged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::scoped::{
    Params, Surface, aggregated_page, list_page, operate as write, path, place, resource_name,
};
use super::{API_ROOT, ComputeState, parse_body};
use crate::Shared;
use crate::error::ApiError;
use crate::time_fmt::compute_now;

pub(super) use super::scoped::Key;

pub(super) fn routes() -> Router<Arc<Shared>> {
    let base = "/compute/{version}/projects/{project}";
    Router::new()
        .route(
            &format!("{base}/global/instanceTemplates"),
            get(list_templates).post(insert_template),
        )
        .route(
            &format!("{base}/global/instanceTemplates/{{name}}"),
            get(get_template).delete(delete_template),
        )
        .route(
            &format!("{base}/regions/{{region}}/instanceTemplates"),
            get(list_templates).post(insert_template),
        )
        .route(
            &format!("{base}/regions/{{region}}/instanceTemplates/{{name}}"),
            get(get_template).delete(delete_template),
        )
        .route(
            &format!("{base}/aggregated/instanceTemplates"),
            get(aggregated_templates),
        )
}

/// A template as Compute stores it: the caller's `properties` (which need a machine type), with Compute's fields.
fn normalise_template(
    project: &str,
    scope: &str,
    request: Value,
    id: u64,
) -> Result<Value, ApiError> {
    let name = resource_name(&request)?;
    let Some(properties) = request.get("properties").filter(|value| value.is_object()) else {
        return Err(ApiError::invalid(
            "Invalid value for field 'resource.properties': ''. Properties must be specified.",
        ));
    };
    if properties["machineType"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "Invalid value for field 'resource.properties.machineType': ''. Machine type must be specified.",
        ));
    }
    let mut template = json!({
        "kind": "compute#instanceTemplate",
        "id": id.to_string(),
        "creationTimestamp": compute_now(),
        "name": name,
        "description": request["description"].as_str().unwrap_or_default(),
        "properties": properties,
        "selfLink": format!("{API_ROOT}/{}", path(project, scope, "instanceTemplates", &name)),
    });
    if let Some(region) = scope.strip_prefix("regions/") {
        template["region"] = json!(format!("{API_ROOT}/projects/{project}/regions/{region}"));
    }
    Ok(template)
}

/// The template key a group's template URL names, in the group's project.
pub(super) fn template_key(project: &str, url: &str) -> Result<Key, ApiError> {
    let relative = url
        .split_once("/compute/")
        .map(|(_, rest)| rest.split_once('/').map_or(rest, |(_, rest)| rest))
        .unwrap_or(url);
    let parts: Vec<&str> = relative.split('/').collect();
    let unknown = || {
        ApiError::invalid(format!(
            "Invalid value for field 'resource.instanceTemplate': '{url}'. The URL is malformed."
        ))
    };
    match parts.as_slice() {
        ["projects", owner, "global", "instanceTemplates", name] if *owner == project => {
            Ok((project.to_string(), "global".to_string(), name.to_string()))
        }
        [
            "projects",
            owner,
            "regions",
            region,
            "instanceTemplates",
            name,
        ] if *owner == project => Ok((
            project.to_string(),
            format!("regions/{region}"),
            name.to_string(),
        )),
        ["global", "instanceTemplates", name] => {
            Ok((project.to_string(), "global".to_string(), name.to_string()))
        }
        _ => Err(unknown()),
    }
}

pub(super) fn not_found(key: &Key, collection: &str) -> ApiError {
    ApiError::not_found(&path(&key.0, &key.1, collection, &key.2))
}

pub(super) fn read(shared: &Shared, key: &Key, groups: bool) -> Result<Response, ApiError> {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let (found, collection) = match groups {
        true => (state.groups.get(key), "instanceGroupManagers"),
        false => (state.templates.get(key), "instanceTemplates"),
    };
    found
        .map(crate::json_response)
        .ok_or_else(|| not_found(key, collection))
}

pub(super) fn list(
    shared: &Shared,
    project: &str,
    scope: &str,
    groups: bool,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let (store, names) = match groups {
        true => (
            &state.groups,
            ("compute#instanceGroupManagerList", "instanceGroupManagers"),
        ),
        false => (
            &state.templates,
            ("compute#instanceTemplateList", "instanceTemplates"),
        ),
    };
    list_page(shared, store, (project, scope), names, query)
}

/// `aggregatedList` of templates or groups.
pub(super) fn aggregated(shared: &Shared, project: &str, groups: bool) -> Response {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    match groups {
        true => aggregated_page(
            &state.groups,
            project,
            (
                "compute#instanceGroupManagerAggregatedList",
                "instanceGroupManagers",
            ),
        ),
        false => aggregated_page(
            &state.templates,
            project,
            (
                "compute#instanceTemplateAggregatedList",
                "instanceTemplates",
            ),
        ),
    }
}

async fn list_templates(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    list(&shared, &at.project, &at.scope, false, &query)
}

async fn aggregated_templates(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    Ok(aggregated(&shared, &at.project, false))
}

async fn get_template(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    read(&shared, &place(&params)?.key(), false)
}

async fn insert_template(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let request = parse_body(&body)?;
    let key = (at.project, at.scope, resource_name(&request)?);
    let stored = request.clone();
    let call = (&query, &headers);
    operate(
        &shared,
        at.version,
        "insert",
        &key,
        false,
        call,
        Some(request),
        |state, id| {
            if state.templates.contains_key(&key) {
                return Err(ApiError::already_exists(&path(
                    &key.0,
                    &key.1,
                    "instanceTemplates",
                    &key.2,
                )));
            }
            let template = normalise_template(&key.0, &key.1, stored, id)?;
            state.templates.insert(key.clone(), template.clone());
            Ok((template, Vec::new()))
        },
    )
}

async fn delete_template(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    delete(&shared, at.version, at.key(), false, (&query, &headers))
}

pub(super) fn delete(
    shared: &Arc<Shared>,
    version: &'static str,
    key: Key,
    groups: bool,
    call: (&HashMap<String, String>, &HeaderMap),
) -> Result<Response, ApiError> {
    operate(
        shared,
        version,
        "delete",
        &key,
        groups,
        call,
        None,
        |state, _| {
            let template = path(&key.0, &key.1, "instanceTemplates", &key.2);
            let removed = match groups {
                true => state.groups.remove(&key),
                // Google refuses to delete a template a group still uses.
                false
                    if state.groups.values().any(|group| {
                        group["instanceTemplate"] == format!("{API_ROOT}/{template}").as_str()
                    }) =>
                {
                    return Err(ApiError::invalid(format!(
                        "The instance_template resource '{template}' is already being used by an instance group manager"
                    )));
                }
                false => state.templates.remove(&key),
            };
            let collection = if groups {
                "instanceGroupManagers"
            } else {
                "instanceTemplates"
            };
            removed
                .map(|body| (body, Vec::new()))
                .ok_or_else(|| not_found(&key, collection))
        },
    )
}

/// How a template's or group's writes are logged.
fn surface(key: &Key, groups: bool) -> Surface<'static> {
    let (_, scope, name) = key;
    let regional = scope.starts_with("regions/");
    match groups {
        false => Surface {
            collection: "instanceTemplates",
            method: if regional {
                "regionInstanceTemplates"
            } else {
                "instanceTemplates"
            },
            permission: "instanceTemplates",
            resource_type: "gce_instance_template",
            labels: json!({"instance_template_name": name}),
        },
        true => Surface {
            collection: "instanceGroupManagers",
            method: if regional {
                "regionInstanceGroupManagers"
            } else {
                "instanceGroupManagers"
            },
            permission: "instanceGroupManagers",
            resource_type: "gce_instance_group_manager",
            labels: json!({"instance_group_manager_name": name,
                "location": scope.rsplit('/').next().unwrap_or_default()}),
        },
    }
}

/// A template or group write, logged as its collection's.
#[allow(clippy::too_many_arguments)]
pub(super) fn operate(
    shared: &Arc<Shared>,
    version: &'static str,
    verb: &'static str,
    key: &Key,
    groups: bool,
    call: (&HashMap<String, String>, &HeaderMap),
    request: Option<Value>,
    mutate: impl FnOnce(&mut ComputeState, u64) -> Result<(Value, Vec<Value>), ApiError>,
) -> Result<Response, ApiError> {
    write(
        shared,
        version,
        verb,
        key,
        surface(key, groups),
        call,
        request,
        mutate,
    )
}
