//! Compute Engine v1 (and beta) firewalls and global operations, with Google's paths, JSON and errors.

mod filter;
mod firewall;
mod firewall_policies;
mod groups;
mod images;
mod instance_body;
mod instance_iam;
mod instances;
mod list;
mod operations;
mod project;
mod scoped;
mod templates;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::audit::{self, ComputeWrite};
use crate::error::ApiError;
use crate::{Seed, Shared};
use operations::{
    Operations, get_operation, get_zone_operation, wait_operation, wait_zone_operation,
};
pub(crate) use operations::{request_id, run_operation};

pub(crate) const API_ROOT: &str = "https://www.googleapis.com/compute/v1";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/compute/{version}/projects/{project}/global/firewalls",
            get(list::list_firewalls).post(insert_firewall),
        )
        .route(
            "/compute/{version}/projects/{project}/global/firewalls/{name}",
            get(get_firewall)
                .patch(patch_firewall)
                .put(update_firewall)
                .delete(delete_firewall),
        )
        .route(
            "/compute/{version}/projects/{project}/global/operations/{operation}",
            get(get_operation),
        )
        .route(
            "/compute/{version}/projects/{project}/global/operations/{operation}/wait",
            post(wait_operation),
        )
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/operations/{operation}",
            get(get_zone_operation),
        )
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/operations/{operation}/wait",
            post(wait_zone_operation),
        )
        .route(
            "/compute/{version}/projects/{project}/regions/{region}/operations/{operation}",
            get(operations::get_region_operation),
        )
        .route(
            "/compute/{version}/projects/{project}/regions/{region}/operations/{operation}/wait",
            post(operations::wait_region_operation),
        )
        .merge(templates::routes())
        .merge(groups::routes())
        .merge(firewall_policies::routes())
        .merge(images::routes())
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/instances",
            get(instances::list_instances).post(instances::insert_instance),
        )
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/instances/{name}",
            get(instances::get_instance).delete(instances::delete_instance),
        )
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/instances/{name}/{action}",
            post(instances::act_on_instance),
        )
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/instances/{name}/getIamPolicy",
            get(instance_iam::get_iam_policy),
        )
        .route(
            "/compute/{version}/projects/{project}/zones/{zone}/instances/{name}/setIamPolicy",
            post(instance_iam::set_iam_policy),
        )
        .route(
            "/compute/{version}/projects/{project}/aggregated/instances",
            get(instances::aggregated_instances),
        )
        .route(
            "/compute/{version}/projects/{project}",
            get(project::get_project),
        )
        .route(
            "/compute/{version}/projects/{project}/setCommonInstanceMetadata",
            post(project::set_common_metadata),
        )
}

/// Firewalls and operations of every project; projects spring into being on first use.
#[derive(Default)]
pub(crate) struct ComputeState {
    firewalls: BTreeMap<(String, String), Value>,
    instances: BTreeMap<instances::Key, Value>,
    /// Instance templates, global and regional.
    templates: BTreeMap<templates::Key, Value>,
    /// Managed instance groups, zonal and regional.
    groups: BTreeMap<templates::Key, Value>,
    /// Network firewall policies, global and regional.
    firewall_policies: BTreeMap<scoped::Key, Value>,
    /// Project → its common instance metadata, once set.
    common: BTreeMap<String, Value>,
    operations: Operations,
    counter: u64,
}

impl ComputeState {
    pub(crate) fn seeded(seed: &Seed, history: usize) -> Result<Self, ApiError> {
        let mut state = ComputeState {
            operations: Operations::new(history),
            ..ComputeState::default()
        };
        for (project, bodies) in &seed.instances {
            for body in bodies {
                let zone = body["zone"].as_str().unwrap_or("us-central1-a");
                let zone = zone.rsplit('/').next().unwrap_or(zone).to_string();
                let id = state.next_id();
                let ordinal = state.instances.len() as u64;
                let instance = instance_body::normalise(project, &zone, body.clone(), id, ordinal)?;
                let name = instance["name"].as_str().unwrap_or_default().to_string();
                state
                    .instances
                    .insert((project.clone(), zone, name), instance);
            }
        }
        for (project, items) in &seed.common_metadata {
            state
                .common
                .insert(project.clone(), project::stored(items)?);
        }
        for (project, firewalls) in &seed.firewalls {
            for body in firewalls {
                let id = state.next_id();
                let firewall = firewall::normalise(project, body.clone(), None, id)?;
                let name = firewall["name"].as_str().unwrap_or_default().to_string();
                state.firewalls.insert((project.clone(), name), firewall);
            }
        }
        Ok(state)
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        // Google's ids are large unsigned numbers; this keeps ours in the same range and unique.
        4_853_772_226_933_023_804u64.wrapping_add(self.counter.wrapping_mul(1_000_003))
    }

    fn operation_name(&mut self) -> String {
        self.counter += 1;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis())
            .unwrap_or_default();
        format!(
            "operation-{millis}-{:013x}-{:08x}-{:08x}",
            self.counter.wrapping_mul(0x9E37_79B9),
            (self.counter as u32).wrapping_mul(0x85EB_CA6B),
            (self.counter as u32).wrapping_mul(0xC2B2_AE35)
        )
    }

    /// A project's common instance metadata (empty until set).
    fn common_metadata(&self, project: &str) -> Value {
        match self.common.get(project) {
            Some(metadata) => metadata.clone(),
            None => project::stored(&Value::Null).expect("empty metadata is valid"),
        }
    }

    /// Removes a rule without a trace (the fault "deleted between read and write").
    pub(crate) fn remove_firewall(&mut self, project: &str, name: &str) {
        self.firewalls
            .remove(&(project.to_string(), name.to_string()));
    }
}

/// Which API surface a path names: `v1` or `beta` (method names in audit logs carry it).
fn api_version(version: &str) -> Result<&'static str, ApiError> {
    match version {
        "v1" => Ok("v1"),
        "beta" => Ok("beta"),
        _ => Err(ApiError::not_found(&format!("compute/{version}"))),
    }
}

fn firewall_path(project: &str, name: &str) -> String {
    format!("projects/{project}/global/firewalls/{name}")
}

async fn get_firewall(
    State(shared): State<Arc<Shared>>,
    Path((version, project, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    state
        .firewalls
        .get(&(project.clone(), name.clone()))
        .map(crate::json_response)
        .ok_or_else(|| ApiError::not_found(&firewall_path(&project, &name)))
}

async fn insert_firewall(
    State(shared): State<Arc<Shared>>,
    Path((version, project)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    let request = parse_body(&body)?;
    let name = request
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("Invalid value for field 'resource.name': ''. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'"))?
        .to_string();
    write(
        &shared,
        version,
        "insert",
        &project,
        &name,
        &query,
        &headers,
        Some(request),
        |state, id| {
            let key = (project.clone(), name.clone());
            if state.firewalls.contains_key(&key) {
                return Err(ApiError::already_exists(&firewall_path(&project, &name)));
            }
            let firewall = firewall::normalise(&project, parse_body(&body)?, None, id)?;
            state.firewalls.insert(key, firewall.clone());
            Ok(firewall)
        },
    )
}

async fn patch_firewall(
    State(shared): State<Arc<Shared>>,
    Path((version, project, name)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = (version, project, name);
    replace(
        &shared,
        target,
        "patch",
        &query,
        &headers,
        &body,
        |existing, request| {
            let mut merged = existing.clone();
            merge_patch(&mut merged, request);
            merged
        },
    )
}

async fn update_firewall(
    State(shared): State<Arc<Shared>>,
    Path((version, project, name)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = (version, project, name);
    replace(
        &shared,
        target,
        "update",
        &query,
        &headers,
        &body,
        |_, request| request.clone(),
    )
}

/// PATCH and PUT: the new rule is computed from the existing one and the request, then validated like an insert.
fn replace(
    shared: &Arc<Shared>,
    (version, project, name): (String, String, String),
    verb: &'static str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    new_rule: impl FnOnce(&Value, &Value) -> Value,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    let request = parse_body(body)?;
    write(
        shared,
        version,
        verb,
        &project,
        &name,
        query,
        headers,
        Some(request.clone()),
        |state, _| {
            let key = (project.clone(), name.clone());
            let existing = state
                .firewalls
                .get(&key)
                .ok_or_else(|| ApiError::not_found(&firewall_path(&project, &name)))?;
            let firewall =
                firewall::normalise(&project, new_rule(existing, &request), Some(existing), 0)?;
            state.firewalls.insert(key, firewall.clone());
            Ok(firewall)
        },
    )
}

async fn delete_firewall(
    State(shared): State<Arc<Shared>>,
    Path((version, project, name)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = api_version(&version)?;
    write(
        &shared,
        version,
        "delete",
        &project,
        &name,
        &query,
        &headers,
        None,
        |state, _| {
            state
                .firewalls
                .remove(&(project.clone(), name.clone()))
                .ok_or_else(|| ApiError::not_found(&firewall_path(&project, &name)))
        },
    )
}

/// The common shape of every firewall write: idempotency by `requestId`, the mutation, an operation, and
/// the `first`/`last` audit entries.
#[allow(clippy::too_many_arguments)]
fn write(
    shared: &Arc<Shared>,
    version: &'static str,
    verb: &'static str,
    project: &str,
    name: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    request: Option<Value>,
    mutate: impl FnOnce(&mut ComputeState, u64) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let request_id = request_id(query)?;
    let principal = shared.principal(headers);
    let user_agent = crate::user_agent(headers);
    let (operation, first, completes_now) = {
        let mut state = shared.compute.lock().expect("compute state lock poisoned");
        if let Some(body) = request_id
            .as_ref()
            .and_then(|request_id| state.operations.replay(project, request_id))
        {
            return Ok(Json(body.clone()).into_response());
        }
        let id = state.next_id();
        let key = (project.to_string(), name.to_string());
        let previous = state.firewalls.get(&key).cloned();
        let firewall = match mutate(&mut state, id) {
            Ok(firewall) => firewall,
            // A write that fails validation is audit-logged with its status; one naming a missing rule is not.
            Err(error) if error.status == axum::http::StatusCode::BAD_REQUEST => {
                drop(state);
                shared.emit(audit::refused_entry(audit::Refused {
                    service_name: "compute.googleapis.com",
                    method_name: &format!("{version}.compute.firewalls.{verb}"),
                    resource_name: &firewall_path(project, name),
                    project,
                    principal: &principal,
                    status: &error,
                }));
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        // An operation that will end in an error did not apply its change (Compute: DONE with `error`).
        let error = shared
            .next_operation_error
            .lock()
            .expect("operation error lock poisoned")
            .take();
        if error.is_some() {
            match previous {
                Some(previous) => state.firewalls.insert(key, previous),
                None => state.firewalls.remove(&key),
            };
        }
        let target_id = firewall["id"].as_str().unwrap_or_default().to_string();
        let network = firewall["network"].as_str().unwrap_or_default().to_string();
        let operation = state.new_operation(
            verb,
            project,
            "global",
            &firewall_path(project, name),
            &target_id,
            &principal,
        );
        let operation_name = operation["name"].as_str().unwrap_or_default().to_string();
        let resource_name = firewall_path(project, name);
        let permission = match verb {
            "insert" => "compute.firewalls.create",
            "delete" => "compute.firewalls.delete",
            _ => "compute.firewalls.update",
        };
        let network = network
            .strip_prefix("https://www.googleapis.com/compute/v1/")
            .unwrap_or(&network);
        let write = ComputeWrite {
            project,
            version,
            method: &format!("firewalls.{verb}"),
            resource_name: &resource_name,
            resource: json!({"type": "gce_firewall_rule",
                "labels": {"project_id": project, "firewall_rule_id": target_id}}),
            authorization: json!([
                audit::granted(permission, &resource_name, "compute.firewalls"),
                audit::granted("compute.networks.updatePolicy", network, "compute.networks"),
            ]),
            location: "global",
            principal: &principal,
            user_agent: &user_agent,
            request: request.as_ref(),
            operation: &operation,
        };
        let first = audit::compute_entry(&write, audit::Phase::First);
        let last = audit::compute_entry(&write, audit::Phase::Last);
        let key = (project.to_string(), operation_name);
        let completes = state.track(shared, key, &operation, last, error, request_id);
        (operation, first, completes)
    };
    Ok(run_operation(shared, operation, first, completes_now))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_json(
            "Invalid JSON payload received. Expected an object for the resource.",
        ));
    }
    Ok(value)
}

/// RFC 7396 JSON merge patch, which Compute's PATCH follows: objects merge, `null` deletes, the rest replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests;
