//! Compute Engine instance templates (global and regional) and managed instance groups (zonal and regional): insert,
//! get, list, aggregated list, delete, a group's `patch` and `setInstanceTemplate`, each an operation with its audit
//! entries. A zonal group builds its instances from its template as Google does: the instances are inserted by the
//! project's Google APIs service agent (`NUMBER@cloudservices.gserviceaccount.com`), not by the caller.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::instance_body::{normalise as normalise_instance, zone_name};
use super::{
    API_ROOT, ComputeState, api_version, merge_patch, parse_body, request_id, run_operation,
};
use crate::audit::{self, ComputeWrite};
use crate::error::ApiError;
use crate::time_fmt::compute_now;
use crate::{Paging, Shared, project_number};

/// (project, scope, name): scope is `global` or `regions/R` for a template, `zones/Z` or `regions/R` for a group.
pub(super) type Key = (String, String, String);

/// Compute's list pages: `maxResults`, 500 at most.
const COMPUTE_LIST: Paging = Paging {
    size: "maxResults",
    default: 500,
    most: 500,
};

pub(super) fn routes() -> Router<Arc<Shared>> {
    let base = "/compute/{version}/projects/{project}";
    let mut router = Router::new()
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
        .route(
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
            );
    }
    router
}

/// A path's parameters: the API surface, and the key its `{zone}` or `{region}` (or neither: global) and `{name}`
/// name.
struct Place {
    version: &'static str,
    project: String,
    scope: String,
    name: String,
}

fn place(params: &HashMap<String, String>) -> Result<Place, ApiError> {
    let version = api_version(params.get("version").map_or("", String::as_str))?;
    let scope = if let Some(zone) = params.get("zone") {
        zone_name(zone)?;
        format!("zones/{zone}")
    } else if let Some(region) = params.get("region") {
        if !valid_region(region) {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'region': '{region}'. Unknown region."
            )));
        }
        format!("regions/{region}")
    } else {
        "global".to_string()
    };
    Ok(Place {
        version,
        project: params.get("project").cloned().unwrap_or_default(),
        scope,
        name: params.get("name").cloned().unwrap_or_default(),
    })
}

impl Place {
    fn key(&self) -> Key {
        (self.project.clone(), self.scope.clone(), self.name.clone())
    }
}

fn valid_region(region: &str) -> bool {
    region.contains('-')
        && region.ends_with(|c: char| c.is_ascii_digit())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A template's or group's relative name.
fn path(project: &str, scope: &str, collection: &str, name: &str) -> String {
    format!("projects/{project}/{scope}/{collection}/{name}")
}

/// Compute's name grammar (RFC 1035 label, 63 at most).
fn resource_name(request: &Value) -> Result<String, ApiError> {
    let name = request["name"].as_str().unwrap_or_default();
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.name': '{name}'. Must be a match of regex \
             '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
        )));
    }
    Ok(name.to_string())
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
fn template_key(project: &str, url: &str) -> Result<Key, ApiError> {
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

fn not_found(key: &Key, collection: &str) -> ApiError {
    ApiError::not_found(&path(&key.0, &key.1, collection, &key.2))
}

fn read(shared: &Shared, key: &Key, groups: bool) -> Result<Response, ApiError> {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let (found, collection) = match groups {
        true => (state.groups.get(key), "instanceGroupManagers"),
        false => (state.templates.get(key), "instanceTemplates"),
    };
    found
        .map(crate::json_response)
        .ok_or_else(|| not_found(key, collection))
}

fn list(
    shared: &Shared,
    project: &str,
    scope: &str,
    groups: bool,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let store = if groups {
        &state.groups
    } else {
        &state.templates
    };
    let items: Vec<Value> = store
        .iter()
        .filter(|((p, s, _), _)| p == project && s == scope)
        .map(|(_, body)| body.clone())
        .collect();
    drop(state);
    let (kind, collection) = match groups {
        true => ("compute#instanceGroupManagerList", "instanceGroupManagers"),
        false => ("compute#instanceTemplateList", "instanceTemplates"),
    };
    let mut page = crate::paged(shared, items, "items", query, COMPUTE_LIST)?;
    page["kind"] = json!(kind);
    page["id"] = json!(format!("projects/{project}/{scope}/{collection}"));
    page["selfLink"] = json!(format!(
        "{API_ROOT}/projects/{project}/{scope}/{collection}"
    ));
    Ok(crate::json_response(&page))
}

/// `aggregatedList`: every scope with items, keyed `global`, `regions/R` or `zones/Z`.
fn aggregated(shared: &Shared, project: &str, groups: bool) -> Response {
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let (store, field, kind) = match groups {
        true => (
            &state.groups,
            "instanceGroupManagers",
            "compute#instanceGroupManagerAggregatedList",
        ),
        false => (
            &state.templates,
            "instanceTemplates",
            "compute#instanceTemplateAggregatedList",
        ),
    };
    let mut scopes: Map<String, Value> = Map::new();
    for ((p, scope, _), body) in store {
        if p != project {
            continue;
        }
        let scoped = scopes
            .entry(scope.clone())
            .or_insert_with(|| json!({field: []}));
        if let Some(list) = scoped[field].as_array_mut() {
            list.push(body.clone());
        }
    }
    crate::json_response(&json!({
        "kind": kind,
        "id": format!("projects/{project}/aggregated/{field}"),
        "items": scopes,
        "selfLink": format!("{API_ROOT}/projects/{project}/aggregated/{field}"),
    }))
}

type Params = Path<HashMap<String, String>>;

async fn list_templates(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    list(&shared, &at.project, &at.scope, false, &query)
}

async fn list_groups(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    list(&shared, &at.project, &at.scope, true, &query)
}

async fn aggregated_templates(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    Ok(aggregated(&shared, &at.project, false))
}

async fn aggregated_groups(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    Ok(aggregated(&shared, &at.project, true))
}

async fn get_template(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    read(&shared, &place(&params)?.key(), false)
}

async fn get_group(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    read(&shared, &place(&params)?.key(), true)
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

async fn delete_group(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    delete(&shared, at.version, at.key(), true, (&query, &headers))
}

fn delete(
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

/// Every template and group write: idempotency by `requestId`, the mutation (which may build instances, whose
/// entries follow), an operation in the resource's scope, and the `first`/`last` audit entries.
#[allow(clippy::too_many_arguments)]
fn operate(
    shared: &Arc<Shared>,
    version: &'static str,
    verb: &'static str,
    key: &Key,
    groups: bool,
    (query, headers): (&HashMap<String, String>, &HeaderMap),
    request: Option<Value>,
    mutate: impl FnOnce(&mut ComputeState, u64) -> Result<(Value, Vec<Value>), ApiError>,
) -> Result<Response, ApiError> {
    let request_id = request_id(query)?;
    let principal = shared.principal(headers);
    let user_agent = crate::user_agent(headers);
    let (project, scope, name) = key;
    let regional = scope.starts_with("regions/");
    let (collection, method_collection, resource_type, id_label, name_label) =
        match (groups, regional) {
            (false, false) => (
                "instanceTemplates",
                "instanceTemplates",
                "gce_instance_template",
                "instance_template_id",
                "instance_template_name",
            ),
            (false, true) => (
                "instanceTemplates",
                "regionInstanceTemplates",
                "gce_instance_template",
                "instance_template_id",
                "instance_template_name",
            ),
            (true, false) => (
                "instanceGroupManagers",
                "instanceGroupManagers",
                "gce_instance_group_manager",
                "instance_group_manager_id",
                "instance_group_manager_name",
            ),
            (true, true) => (
                "instanceGroupManagers",
                "regionInstanceGroupManagers",
                "gce_instance_group_manager",
                "instance_group_manager_id",
                "instance_group_manager_name",
            ),
        };
    let resource_name = path(project, scope, collection, name);
    let (operation, first, built, completes) = {
        let mut state = shared.compute.lock().expect("compute state lock poisoned");
        if let Some(body) = request_id
            .as_ref()
            .and_then(|request_id| state.operations.replay(project, request_id))
        {
            return Ok(crate::json_response(body));
        }
        let id = state.next_id();
        let (resource, built) = match mutate(&mut state, id) {
            Ok(done) => done,
            Err(error) => {
                drop(state);
                if error.status == axum::http::StatusCode::BAD_REQUEST {
                    shared.emit(audit::refused_entry(audit::Refused {
                        service_name: "compute.googleapis.com",
                        method_name: &format!("{version}.compute.{method_collection}.{verb}"),
                        resource_name: &resource_name,
                        project,
                        principal: &principal,
                        status: &error,
                    }));
                }
                return Err(error);
            }
        };
        let target_id = resource["id"].as_str().unwrap_or_default().to_string();
        let operation =
            state.new_operation(verb, project, scope, &resource_name, &target_id, &principal);
        let permission = match verb {
            "insert" => format!("compute.{collection}.create"),
            "delete" => format!("compute.{collection}.delete"),
            _ => format!("compute.{collection}.update"),
        };
        let mut labels = json!({"project_id": project, id_label: target_id, name_label: name});
        if groups {
            labels["location"] = json!(scope.rsplit('/').next().unwrap_or_default());
        }
        let write = ComputeWrite {
            project,
            version,
            method: &format!("{method_collection}.{verb}"),
            resource_name: &resource_name,
            resource: json!({"type": resource_type, "labels": labels}),
            authorization: json!([audit::granted(
                &permission,
                &resource_name,
                &format!("compute.{collection}")
            )]),
            location: scope.rsplit('/').next().unwrap_or("global"),
            principal: &principal,
            user_agent: &user_agent,
            request: request.as_ref(),
            operation: &operation,
        };
        let first = audit::compute_entry(&write, audit::Phase::First);
        let last = audit::compute_entry(&write, audit::Phase::Last);
        let operation_name = operation["name"].as_str().unwrap_or_default().to_string();
        let completes = state.track(
            shared,
            (project.clone(), operation_name),
            &operation,
            last,
            None,
            request_id,
        );
        (operation, first, built, completes)
    };
    let answer = run_operation(shared, operation, first, completes);
    // The group's own entry comes first; the instances it makes follow, as Google logs them.
    for entry in built {
        shared.emit(entry);
    }
    Ok(answer)
}
