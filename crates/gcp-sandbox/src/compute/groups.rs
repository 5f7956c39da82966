//! Compute Engine managed instance groups (zonal and regional): insert, get, list, aggregated list, delete,
//! `patch` and `setInstanceTemplate`, each an operation with its audit entries. A zonal group builds its instances
//! from its template as Google does: they are inserted by the project's Google APIs service agent
//! (`NUMBER@cloudservices.gserviceaccount.com`), not by the caller.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::instance_body::normalise as normalise_instance;
use super::scoped::{Params, path, place, resource_name};
use super::templates::{Key, aggregated, delete, list, not_found, operate, read, template_key};
use super::{API_ROOT, ComputeState, merge_patch, parse_body};
use crate::Shared;
use crate::audit::{self, ComputeWrite};
use crate::error::ApiError;
use crate::project_number;
use crate::time_fmt::compute_now;

pub(super) fn routes() -> Router<Arc<Shared>> {
    let base = "/compute/{version}/projects/{project}";
    let mut router = Router::new().route(
        &format!("{base}/aggregated/instanceGroupManagers"),
        get(aggregated_groups),
    );
    for place in ["zones/{zone}", "regions/{region}"] {
        router = router
            .route(
                &format!("{base}/{place}/instanceGroupManagers"),
                get(list_groups).post(insert_group),
            )
            .route(
                &format!("{base}/{place}/instanceGroupManagers/{{name}}"),
                get(get_group).patch(patch_group).delete(delete_group),
            )
            .route(
                &format!("{base}/{place}/instanceGroupManagers/{{name}}/setInstanceTemplate"),
                post(set_group_template),
            )
            // What gcloud reads beside a group: its instance group, and whether an autoscaler drives it (none do).
            .route(
                &format!("{base}/{place}/instanceGroups"),
                get(instance_groups),
            )
            .route(&format!("{base}/{place}/autoscalers"), get(autoscalers));
    }
    router
}

/// A group as Compute stores it; its template (and every version's) must exist.
fn normalise_group(
    state: &ComputeState,
    project: &str,
    scope: &str,
    mut group: Value,
    id: u64,
) -> Result<Value, ApiError> {
    let name = resource_name(&group)?;
    let versions = group["versions"].as_array().cloned().unwrap_or_default();
    let template = group["instanceTemplate"]
        .as_str()
        .or_else(|| versions.first().and_then(|version| version["instanceTemplate"].as_str()))
        .ok_or_else(|| {
            ApiError::invalid("Invalid value for field 'resource.instanceTemplate': ''. An instance template is required.")
        })?
        .to_string();
    let mut urls = vec![template.clone()];
    urls.extend(
        versions
            .iter()
            .filter_map(|version| version["instanceTemplate"].as_str().map(str::to_string)),
    );
    let mut canonical = Vec::new();
    for url in &urls {
        let key = template_key(project, url)?;
        if !state.templates.contains_key(&key) {
            return Err(ApiError::not_found(&path(
                &key.0,
                &key.1,
                "instanceTemplates",
                &key.2,
            )));
        }
        canonical.push(format!(
            "{API_ROOT}/{}",
            path(&key.0, &key.1, "instanceTemplates", &key.2)
        ));
    }
    let target_size = match &group["targetSize"] {
        Value::Null => 0,
        value => value
            .as_u64()
            .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
            .filter(|size| *size <= 1000)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid value for field 'resource.targetSize': '{value}'."
                ))
            })?,
    };
    let field = scope.split_once('/').map_or("zones", |(field, _)| field);
    let fields = group
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("expected an object"))?;
    fields.insert("kind".into(), json!("compute#instanceGroupManager"));
    fields.insert("id".into(), json!(id.to_string()));
    fields
        .entry("creationTimestamp")
        .or_insert_with(|| json!(compute_now()));
    fields.insert("instanceTemplate".into(), json!(canonical[0]));
    fields.insert("targetSize".into(), json!(target_size));
    fields
        .entry("baseInstanceName")
        .or_insert_with(|| json!(name.clone()));
    if !versions.is_empty() {
        let versions: Vec<Value> = versions
            .into_iter()
            .zip(canonical.iter().skip(1))
            .map(|(mut version, url)| {
                version["instanceTemplate"] = json!(url);
                version
            })
            .collect();
        fields.insert("versions".into(), json!(versions));
    } else {
        fields.insert(
            "versions".into(),
            json!([{"instanceTemplate": canonical[0]}]),
        );
    }
    fields.insert(
        field.trim_end_matches('s').into(),
        json!(format!("{API_ROOT}/projects/{project}/{scope}")),
    );
    fields.insert(
        "selfLink".into(),
        json!(format!(
            "{API_ROOT}/{}",
            path(project, scope, "instanceGroupManagers", &name)
        )),
    );
    fields.insert("status".into(), json!({"isStable": true}));
    Ok(group)
}

async fn list_groups(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    list(&shared, &at.project, &at.scope, true, &query)
}

async fn aggregated_groups(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    Ok(aggregated(&shared, &at.project, true))
}

async fn get_group(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    read(&shared, &place(&params)?.key(), true)
}

async fn delete_group(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    delete(&shared, at.version, at.key(), true, (&query, &headers))
}

async fn insert_group(
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
        true,
        call,
        Some(request),
        |state, id| {
            if state.groups.contains_key(&key) {
                return Err(ApiError::already_exists(&path(
                    &key.0,
                    &key.1,
                    "instanceGroupManagers",
                    &key.2,
                )));
            }
            let group = normalise_group(state, &key.0, &key.1, stored, id)?;
            state.groups.insert(key.clone(), group.clone());
            let built = build(state, &key, &group)?;
            Ok((group, built))
        },
    )
}

/// `patch` (a merge patch) and `setInstanceTemplate`: the group with `change` applied, validated like an insert.
fn change_group(
    shared: &Arc<Shared>,
    params: &HashMap<String, String>,
    verb: &'static str,
    call: (&HashMap<String, String>, &HeaderMap),
    request: Value,
    change: impl FnOnce(&Value, &Value) -> Value,
) -> Result<Response, ApiError> {
    let at = place(params)?;
    let key = at.key();
    let asked = request.clone();
    operate(
        shared,
        at.version,
        verb,
        &key,
        true,
        call,
        Some(request),
        |state, _| {
            let existing = state
                .groups
                .get(&key)
                .ok_or_else(|| not_found(&key, "instanceGroupManagers"))?
                .clone();
            let mut changed = change(&existing, &asked);
            changed["name"] = existing["name"].clone();
            let id = existing["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .unwrap_or_default();
            let group = normalise_group(state, &key.0, &key.1, changed, id)?;
            state.groups.insert(key.clone(), group.clone());
            Ok((group, Vec::new()))
        },
    )
}

async fn patch_group(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse_body(&body)?;
    let call = (&query, &headers);
    change_group(
        &shared,
        &params,
        "patch",
        call,
        request,
        |existing, patch| {
            let mut merged = existing.clone();
            // A new template in the patch replaces the versions that named the old one.
            if patch.get("instanceTemplate").is_some() && patch.get("versions").is_none() {
                merged["versions"] = Value::Null;
            }
            merge_patch(&mut merged, patch);
            merged
        },
    )
}

async fn set_group_template(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse_body(&body)?;
    let call = (&query, &headers);
    change_group(
        &shared,
        &params,
        "setInstanceTemplate",
        call,
        request,
        |existing, asked| {
            let mut group = existing.clone();
            group["instanceTemplate"] = asked["instanceTemplate"].clone();
            group["versions"] = Value::Null;
            group
        },
    )
}

/// The instances a new zonal group makes from its template: inserted into the zone by the Google APIs service
/// agent, each with its audit entry. (A regional group spreads over zones Google picks; it makes none here.)
fn build(state: &mut ComputeState, key: &Key, group: &Value) -> Result<Vec<Value>, ApiError> {
    let (project, scope, name) = key;
    let Some(zone) = scope.strip_prefix("zones/") else {
        return Ok(Vec::new());
    };
    let template = template_key(
        project,
        group["instanceTemplate"].as_str().unwrap_or_default(),
    )?;
    let properties = state.templates[&template]["properties"].clone();
    let agent = format!(
        "{}@cloudservices.gserviceaccount.com",
        project_number(project)
    );
    let base = group["baseInstanceName"]
        .as_str()
        .unwrap_or(name)
        .to_string();
    let mut entries = Vec::new();
    for _ in 0..group["targetSize"].as_u64().unwrap_or(0) {
        let id = state.next_id();
        let instance_name = format!("{base}-{:04x}", id % 0x10000);
        let mut body = properties.clone();
        body["name"] = json!(instance_name);
        body["machineType"] = json!(format!(
            "zones/{zone}/machineTypes/{}",
            properties["machineType"]
                .as_str()
                .unwrap_or("e2-medium")
                .rsplit('/')
                .next()
                .unwrap_or("e2-medium")
        ));
        let ordinal = state.instances.len() as u64;
        let instance = normalise_instance(project, zone, body.clone(), id, ordinal)?;
        let resource_name = super::instances::path(project, zone, &instance_name);
        let operation = state.new_operation(
            "insert",
            project,
            scope,
            &resource_name,
            &id.to_string(),
            &agent,
        );
        let write = ComputeWrite {
            project,
            version: "v1",
            method: "instances.insert",
            resource_name: &resource_name,
            resource: json!({"type": "gce_instance",
                "labels": {"instance_id": id.to_string(), "project_id": project, "zone": zone}}),
            authorization: json!([audit::granted(
                "compute.instances.create",
                &resource_name,
                "compute.instances"
            )]),
            location: zone,
            principal: &agent,
            user_agent: "GCE Managed Instance Group",
            request: Some(&body),
            operation: &operation,
        };
        entries.push(audit::compute_entry(&write, audit::Phase::First));
        entries.push(audit::compute_entry(&write, audit::Phase::Last));
        state
            .instances
            .insert((project.clone(), zone.to_string(), instance_name), instance);
    }
    Ok(entries)
}

/// `instanceGroups.list`: each group's instance group, of the same name and size.
async fn instance_groups(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let items: Vec<Value> = {
        let state = shared.compute.lock().expect("compute state lock poisoned");
        state
            .groups
            .iter()
            .filter(|((project, scope, _), _)| *project == at.project && *scope == at.scope)
            .map(|((project, scope, name), group)| {
                let link = format!("{API_ROOT}/{}", path(project, scope, "instanceGroups", name));
                let mut item = json!({"kind": "compute#instanceGroup", "id": group["id"], "name": name,
                    "size": group["targetSize"], "selfLink": link,
                    "creationTimestamp": group["creationTimestamp"]});
                for field in ["zone", "region"] {
                    if !group[field].is_null() {
                        item[field] = group[field].clone();
                    }
                }
                item
            })
            .collect()
    };
    let mut page = crate::paged(&shared, items, "items", &query, super::scoped::COMPUTE_LIST)?;
    page["kind"] = json!("compute#instanceGroupList");
    Ok(crate::json_response(&page))
}

/// `autoscalers.list`: the sandbox has none.
async fn autoscalers(Path(params): Params) -> Result<Response, ApiError> {
    let at = place(&params)?;
    Ok(crate::json_response(&json!({
        "kind": "compute#autoscalerList",
        "id": format!("projects/{}/{}/autoscalers", at.project, at.scope),
    })))
}
