//! Compute's operations (global, regional, zonal): how a write starts one (`requestId`, `new_operation`, `track`,
//! `run_operation`), the record of every write, its completion (which emits the write's `last` audit entry),
//! `requestId` replays, and `operations.get` / `operations.wait`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{API_ROOT, ComputeState, api_version};
use crate::Shared;
use crate::error::ApiError;
use crate::time_fmt::compute_now;

/// (project, operation name).
pub(super) type Key = (String, String);

pub(super) struct Operation {
    pub body: Value,
    pub done_at: Instant,
    /// The `last` audit entry, emitted once when the operation completes.
    pub last_entry: Option<Value>,
    /// An injected failure: the operation ends DONE with this error.
    pub error: Option<String>,
    /// The `requestId` that started it: a retry with the same id answers this operation.
    pub request_id: Option<String>,
}

/// The operations of every project. Finished ones beyond `history` are forgotten, oldest first (Compute, too, keeps
/// operations for a while only); one still running is kept, since its completion emits the `last` audit entry.
#[derive(Default)]
pub(super) struct Operations {
    by_key: HashMap<Key, Operation>,
    /// Keys in the order their operations started.
    started: VecDeque<Key>,
    /// (project, requestId) → operation name.
    request_ids: HashMap<(String, String), String>,
    history: usize,
}

impl Operations {
    pub(super) fn new(history: usize) -> Self {
        Operations {
            history: history.max(1),
            ..Operations::default()
        }
    }

    /// The operation a repeated `requestId` started, if it is still remembered.
    pub(super) fn replay(&self, project: &str, request_id: &str) -> Option<&Value> {
        let name = self
            .request_ids
            .get(&(project.to_string(), request_id.to_string()))?;
        self.by_key
            .get(&(project.to_string(), name.clone()))
            .map(|operation| &operation.body)
    }

    pub(super) fn track(&mut self, key: Key, operation: Operation) {
        if let Some(request_id) = &operation.request_id {
            self.request_ids
                .insert((key.0.clone(), request_id.clone()), key.1.clone());
        }
        self.by_key.insert(key.clone(), operation);
        self.started.push_back(key);
        while self.started.len() > self.history {
            let running = self
                .started
                .front()
                .and_then(|oldest| self.by_key.get(oldest))
                .is_some_and(|operation| operation.body["status"] != "DONE");
            if running {
                break;
            }
            let Some(oldest) = self.started.pop_front() else {
                break;
            };
            if let Some(forgotten) = self.by_key.remove(&oldest)
                && let Some(request_id) = forgotten.request_id
            {
                self.request_ids.remove(&(oldest.0, request_id));
            }
        }
    }

    /// Completes the operation if its time has come; returns the `last` entry to emit, once.
    fn poll(&mut self, key: &Key) -> Option<Value> {
        let operation = self.by_key.get_mut(key)?;
        if operation.done_at > Instant::now() || operation.body["status"] == "DONE" {
            return None;
        }
        operation.body["status"] = json!("DONE");
        operation.body["progress"] = json!(100);
        operation.body["endTime"] = json!(compute_now());
        let mut last = operation.last_entry.take();
        // The `last` entry is written when the operation ends, not when it was asked for.
        if let Some(entry) = last.as_mut() {
            let (written, received) = crate::time_fmt::logging_pair();
            entry["timestamp"] = json!(written);
            entry["receiveTimestamp"] = json!(received);
        }
        if let Some(message) = operation.error.take() {
            operation.body["error"] =
                json!({"errors": [{"code": "INJECTED_FAILURE", "message": message}]});
            operation.body["httpErrorStatusCode"] = json!(400);
            operation.body["httpErrorMessage"] = json!("BAD REQUEST");
            // The `last` entry of a failed operation is an ERROR with the call's status.
            if let Some(entry) = last.as_mut() {
                entry["severity"] = json!("ERROR");
                entry["protoPayload"]["status"] = json!({"code": 3, "message": message});
                entry["protoPayload"]["response"]["status"] = json!("DONE");
                entry["protoPayload"]["response"]["error"] = operation.body["error"].clone();
            }
        }
        last
    }

    /// The operation's body and when it is due, or Google's 404. An operation is found under its own scope only:
    /// `global`, `zones/Z` or `regions/R`.
    fn find(&self, key: &Key, scope: &str) -> Result<(&Value, Instant), ApiError> {
        self.by_key
            .get(key)
            .filter(|operation| {
                let own = ["zone", "region"].iter().find_map(|field| {
                    let url = operation.body[*field].as_str()?;
                    Some(format!(
                        "{field}s/{}",
                        url.rsplit('/').next().unwrap_or_default()
                    ))
                });
                own.as_deref().unwrap_or("global") == scope
            })
            .map(|operation| (&operation.body, operation.done_at))
            .ok_or_else(|| {
                ApiError::not_found(&format!("projects/{}/{scope}/operations/{}", key.0, key.1))
            })
    }
}

/// Completes the operation if its time has come, emitting its `last` audit entry.
pub(super) fn complete(shared: &Shared, key: &Key) {
    let last = shared
        .compute
        .lock()
        .expect("compute state lock poisoned")
        .operations
        .poll(key);
    if let Some(last) = last {
        shared.emit(last);
    }
}

pub(super) async fn get_operation(
    State(shared): State<Arc<Shared>>,
    Path((version, project, operation)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    answer(&shared, &version, (project, operation), "global")
}

pub(super) async fn get_zone_operation(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, operation)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    answer(
        &shared,
        &version,
        (project, operation),
        &format!("zones/{zone}"),
    )
}

pub(super) async fn get_region_operation(
    State(shared): State<Arc<Shared>>,
    Path((version, project, region, operation)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    answer(
        &shared,
        &version,
        (project, operation),
        &format!("regions/{region}"),
    )
}

fn answer(shared: &Shared, version: &str, key: Key, scope: &str) -> Result<Response, ApiError> {
    api_version(version)?;
    complete(shared, &key);
    let state = shared.compute.lock().expect("compute state lock poisoned");
    state
        .operations
        .find(&key, scope)
        .map(|(body, _)| crate::json_response(body))
}

pub(super) async fn wait_operation(
    State(shared): State<Arc<Shared>>,
    Path((version, project, operation)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    wait(&shared, &version, (project, operation), "global").await
}

pub(super) async fn wait_zone_operation(
    State(shared): State<Arc<Shared>>,
    Path((version, project, zone, operation)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    wait(
        &shared,
        &version,
        (project, operation),
        &format!("zones/{zone}"),
    )
    .await
}

pub(super) async fn wait_region_operation(
    State(shared): State<Arc<Shared>>,
    Path((version, project, region, operation)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    wait(
        &shared,
        &version,
        (project, operation),
        &format!("regions/{region}"),
    )
    .await
}

/// `wait` returns when the operation is DONE or after about two minutes, as Google documents.
async fn wait(shared: &Shared, version: &str, key: Key, scope: &str) -> Result<Response, ApiError> {
    api_version(version)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        complete(shared, &key);
        let done_at = {
            let state = shared.compute.lock().expect("compute state lock poisoned");
            let (body, done_at) = state.operations.find(&key, scope)?;
            if body["status"] == "DONE" || Instant::now() >= deadline {
                return Ok(crate::json_response(body));
            }
            done_at.min(deadline)
        };
        tokio::time::sleep_until(done_at.into()).await;
    }
}

/// Emits a write's `first` entry and completes its operation now or after the configured delay (which emits the
/// `last` one); answers the operation as it stands.
pub(crate) fn run_operation(
    shared: &Arc<Shared>,
    operation: Value,
    first: Value,
    (delay, key): (std::time::Duration, Key),
) -> Response {
    shared.emit(first);
    if delay.is_zero() {
        complete(shared, &key);
    } else {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            complete(&shared, &key);
        });
    }
    crate::json_response(&operation)
}

/// A write's `requestId`: absent, or a UUID (Compute's rule and message).
pub(crate) fn request_id(query: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match query.get("requestId").filter(|id| !id.is_empty()) {
        Some(id) if is_uuid(id) => Ok(Some(id.clone())),
        Some(id) => Err(ApiError::invalid(format!(
            "Invalid value for field 'requestId': '{id}'. The provided request ID must be a valid UUID with the exception that zero UUID is not supported."
        ))),
        None => Ok(None),
    }
}

impl ComputeState {
    /// A RUNNING `compute#operation` about `target` (a relative name), in `scope`: `global`, `zones/Z` or
    /// `regions/R`.
    pub(crate) fn new_operation(
        &mut self,
        verb: &str,
        project: &str,
        scope: &str,
        target: &str,
        target_id: &str,
        principal: &str,
    ) -> Value {
        let name = self.operation_name();
        let id = self.next_id();
        let now = compute_now();
        let mut operation = json!({
            "kind": "compute#operation",
            "id": id.to_string(),
            "name": name,
            "operationType": verb,
            "targetLink": format!("{API_ROOT}/{target}"),
            "targetId": target_id,
            "status": "RUNNING",
            "user": principal,
            "progress": 0,
            "insertTime": now,
            "startTime": now,
            "selfLink": format!("{API_ROOT}/projects/{project}/{scope}/operations/{name}"),
        });
        if let Some((field, _)) = scope.split_once('/') {
            // `zones/Z` → `"zone"`, `regions/R` → `"region"`.
            operation[field.trim_end_matches('s')] =
                json!(format!("{API_ROOT}/projects/{project}/{scope}"));
        }
        operation
    }

    /// Records a started operation; returns when and which to complete.
    pub(crate) fn track(
        &mut self,
        shared: &Shared,
        key: Key,
        operation: &Value,
        last: Value,
        error: Option<String>,
        request_id: Option<String>,
    ) -> (std::time::Duration, Key) {
        let delay = shared.config.operation_delay;
        self.operations.track(
            key.clone(),
            Operation {
                body: operation.clone(),
                done_at: Instant::now() + delay,
                last_entry: Some(last),
                error,
                request_id,
            },
        );
        (delay, key)
    }
}

pub(super) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(shape)
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
        && text.chars().any(|c| c != '0' && c != '-')
}
