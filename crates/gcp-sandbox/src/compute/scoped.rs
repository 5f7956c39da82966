//! What Compute's global, regional and zonal collections share beyond firewalls and instances: a path's place
//! (`global`, `regions/R`, `zones/Z`), Compute's name grammar, list pages, and the write every such collection makes —
//! idempotency by `requestId`, the mutation, an operation in the resource's scope, and the `first`/`last` entries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::instance_body::zone_name;
use super::{API_ROOT, ComputeState, api_version, request_id, run_operation};
use crate::audit::{self, ComputeWrite};
use crate::error::ApiError;
use crate::{Paging, Shared};

/// (project, scope, name): scope is `global`, `regions/R` or `zones/Z`.
pub(super) type Key = (String, String, String);

/// A path's parameters, as a map: each collection names its own.
pub(super) type Params = Path<HashMap<String, String>>;

/// Compute's list pages: `maxResults`, 500 at most.
pub(super) const COMPUTE_LIST: Paging = Paging {
    size: "maxResults",
    default: 500,
    most: 500,
};

/// A path's parameters: the API surface, and the key its `{zone}` or `{region}` (or neither: global) and `{name}`
/// name.
pub(super) struct Place {
    pub(super) version: &'static str,
    pub(super) project: String,
    pub(super) scope: String,
    pub(super) name: String,
}

impl Place {
    pub(super) fn key(&self) -> Key {
        (self.project.clone(), self.scope.clone(), self.name.clone())
    }
}

pub(super) fn place(params: &HashMap<String, String>) -> Result<Place, ApiError> {
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

fn valid_region(region: &str) -> bool {
    region.contains('-')
        && region.ends_with(|c: char| c.is_ascii_digit())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A scoped resource's relative name.
pub(super) fn path(project: &str, scope: &str, collection: &str, name: &str) -> String {
    format!("projects/{project}/{scope}/{collection}/{name}")
}

/// Compute's name grammar (RFC 1035 label, 63 at most), of the request's `name`.
pub(super) fn resource_name(request: &Value) -> Result<String, ApiError> {
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

/// One page of a scope's items of `store` (`list`), as Compute answers it.
pub(super) fn list_page(
    shared: &Shared,
    store: &BTreeMap<Key, Value>,
    (project, scope): (&str, &str),
    (kind, collection): (&str, &str),
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let items: Vec<Value> = store
        .iter()
        .filter(|((p, s, _), _)| p == project && s == scope)
        .map(|(_, body)| body.clone())
        .collect();
    let mut page = crate::paged(shared, items, "items", query, COMPUTE_LIST)?;
    page["kind"] = json!(kind);
    page["id"] = json!(format!("projects/{project}/{scope}/{collection}"));
    page["selfLink"] = json!(format!(
        "{API_ROOT}/projects/{project}/{scope}/{collection}"
    ));
    Ok(crate::json_response(&page))
}

/// `aggregatedList`: every scope of the project with items of `store`, keyed `global`, `regions/R` or `zones/Z`,
/// each listing them under `field`.
pub(super) fn aggregated_page(
    store: &BTreeMap<Key, Value>,
    project: &str,
    (kind, field): (&str, &str),
) -> Response {
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

/// How a collection's writes are logged.
pub(super) struct Surface<'a> {
    /// The collection in paths (`instanceTemplates`, `firewallPolicies`).
    pub(super) collection: &'a str,
    /// The collection in method names (`regionInstanceTemplates`, `networkFirewallPolicies`).
    pub(super) method: &'a str,
    /// The collection in permissions (`compute.instanceTemplates.create`, `compute.regionFirewallPolicies.update`).
    pub(super) permission: &'a str,
    /// The monitored resource's type and the labels that name the resource besides `project_id`.
    pub(super) resource_type: &'a str,
    pub(super) labels: Value,
}

/// One write of a scoped resource. `mutate` returns the resource written and any entries that follow its own (a
/// group's instances).
#[allow(clippy::too_many_arguments)]
pub(super) fn operate(
    shared: &Arc<Shared>,
    version: &'static str,
    verb: &'static str,
    key: &Key,
    surface: Surface<'_>,
    (query, headers): (&HashMap<String, String>, &HeaderMap),
    request: Option<Value>,
    mutate: impl FnOnce(&mut ComputeState, u64) -> Result<(Value, Vec<Value>), ApiError>,
) -> Result<Response, ApiError> {
    let request_id = request_id(query)?;
    let principal = shared.principal(headers);
    let user_agent = crate::user_agent(headers);
    let (project, scope, name) = key;
    let resource_name = path(project, scope, surface.collection, name);
    let method = format!("{}.{verb}", surface.method);
    let (operation, first, following, completes) = {
        let mut state = shared.compute.lock().expect("compute state lock poisoned");
        if let Some(body) = request_id
            .as_ref()
            .and_then(|request_id| state.operations.replay(project, request_id))
        {
            return Ok(crate::json_response(body));
        }
        let id = state.next_id();
        let (resource, following) = match mutate(&mut state, id) {
            Ok(done) => done,
            Err(error) => {
                drop(state);
                if error.status == axum::http::StatusCode::BAD_REQUEST {
                    shared.emit(audit::refused_entry(audit::Refused {
                        service_name: "compute.googleapis.com",
                        method_name: &format!("{version}.compute.{method}"),
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
            "insert" => format!("compute.{}.create", surface.permission),
            "delete" => format!("compute.{}.delete", surface.permission),
            _ => format!("compute.{}.update", surface.permission),
        };
        let mut labels = surface.labels;
        labels["project_id"] = json!(project);
        let write = ComputeWrite {
            project,
            version,
            method: &method,
            resource_name: &resource_name,
            resource: json!({"type": surface.resource_type, "labels": labels}),
            authorization: json!([audit::granted(
                &permission,
                &resource_name,
                &format!("compute.{}", surface.permission)
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
        (operation, first, following, completes)
    };
    let answer = run_operation(shared, operation, first, completes);
    // The resource's own entry comes first; what it makes follows, as Google logs it.
    for entry in following {
        shared.emit(entry);
    }
    Ok(answer)
}
