//! Cloud Audit Log entries exactly as Google writes them, and the log they are kept in (`/v2/entries:list`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::Shared;
use crate::history::History;
use crate::time_fmt::logging_pair;

/// Which of the two entries of a long-running operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    First,
    Last,
}

/// What a Compute write did, enough to write both of its audit entries.
pub(crate) struct ComputeWrite<'a> {
    pub project: &'a str,
    pub version: &'static str,
    /// The collection and verb, as the method name ends: `firewalls.patch`, `instances.setMetadata`.
    pub method: &'a str,
    pub resource_name: &'a str,
    /// The monitored resource: `{"type": "gce_instance", "labels": {...}}`.
    pub resource: Value,
    /// The first entry's `authorizationInfo`.
    pub authorization: Value,
    /// `global` or the zone.
    pub location: &'a str,
    pub principal: &'a str,
    pub user_agent: &'a str,
    pub request: Option<&'a Value>,
    pub operation: &'a Value,
}

/// One `authorizationInfo` item as Compute logs it.
pub(crate) fn granted(permission: &str, name: &str, kind: &str) -> Value {
    json!({"permission": permission, "granted": true,
        "resourceAttributes": {"service": "compute", "name": name, "type": kind}})
}

/// The entries emitted, in order, the most recent `history` of them (`SandboxConfig::history`); tests and
/// `entries:list` read it.
pub struct AuditLog {
    entries: Mutex<History<Arc<Value>>>,
    changed: Notify,
}

impl AuditLog {
    pub(crate) fn new(history: usize) -> Self {
        AuditLog {
            entries: Mutex::new(History::new(history)),
            changed: Notify::new(),
        }
    }

    pub(crate) fn push(&self, entry: Arc<Value>) {
        self.entries
            .lock()
            .expect("audit log lock poisoned")
            .push(entry);
        self.changed.notify_waiters();
    }

    pub fn entries(&self) -> Vec<Value> {
        let entries = self.shared_entries();
        entries.iter().map(|entry| Value::clone(entry)).collect()
    }

    /// The entries as stored, without copying them.
    fn shared_entries(&self) -> Vec<Arc<Value>> {
        self.entries
            .lock()
            .expect("audit log lock poisoned")
            .to_vec()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("audit log lock poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v2/entries:list", post(list_entries))
        .route("/_sandbox/audit-log", get(all_entries))
}

async fn all_entries(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(shared.audit.entries()))
}

/// Cloud Logging's `entries:list`: `resourceNames` (`projects/P`, required), `filter` (the Logging query language,
/// `logquery`), `orderBy` (`timestamp asc|desc`), `pageSize` and `pageToken`.
async fn list_entries(
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, crate::ApiError> {
    let invalid = |message: String| {
        crate::ApiError::esf(
            axum::http::StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            message,
        )
    };
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?
    };
    let query = crate::logquery::Query::parse(request["filter"].as_str().unwrap_or(""))
        .map_err(|why| invalid(format!("Invalid filter: {why}.")))?;
    let resources: Vec<String> = request["resourceNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().map(|name| format!("{name}/")))
        .collect();
    if resources.is_empty() {
        return Err(invalid(
            "resourceNames is required: name the projects (projects/P) whose entries to list."
                .into(),
        ));
    }
    let mut entries: Vec<Arc<Value>> = shared
        .audit
        .shared_entries()
        .into_iter()
        .filter(|entry| {
            let log_name = entry["logName"].as_str().unwrap_or_default();
            resources
                .iter()
                .any(|prefix| log_name.starts_with(prefix.as_str()))
        })
        .filter(|entry| query.matches(entry))
        .collect();
    match request["orderBy"]
        .as_str()
        .unwrap_or("timestamp asc")
        .trim()
    {
        "timestamp asc" | "timestamp" => {}
        "timestamp desc" => entries.reverse(),
        other => return Err(invalid(format!("Unsupported orderBy: {other}"))),
    }
    let size = match &request["pageSize"] {
        Value::Null => 50,
        size => size
            .as_u64()
            .or_else(|| size.as_str().and_then(|text| text.parse().ok()))
            .filter(|size| (1..=1000).contains(size))
            .ok_or_else(|| invalid(format!("Invalid pageSize: {size}; it must be 1 to 1000.")))?
            as usize,
    };
    let start: usize = match request["pageToken"]
        .as_str()
        .filter(|token| !token.is_empty())
    {
        Some(token) => token
            .parse()
            .map_err(|_| invalid(format!("Invalid page token: {token}")))?,
        None => 0,
    };
    let page: Vec<Value> = entries
        .iter()
        .skip(start)
        .take(size)
        .map(|entry| Value::clone(entry))
        .collect();
    let mut answer = json!({ "entries": page });
    if start + size < entries.len() {
        answer["nextPageToken"] = json!((start + size).to_string());
    }
    Ok(Json(answer))
}

static INSERT_IDS: AtomicU64 = AtomicU64::new(0);

/// A fresh `insertId` in Cloud Logging's style (`-v254mddkrwe`).
pub(crate) fn insert_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    let mut seed = nanos
        ^ INSERT_IDS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut id = String::from("-");
    for _ in 0..11 {
        id.push(ALPHABET[(seed % 36) as usize] as char);
        seed = (seed / 36) ^ seed.rotate_left(17);
    }
    id
}

/// Logs write int64 fields as strings and repeated fields with proto names (`alloweds`, `denieds`).
fn proto_style(value: &Value) -> Value {
    match value {
        Value::Number(number) => json!(number.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(proto_style).collect()),
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, field) in fields {
                let key = match key.as_str() {
                    "allowed" => "alloweds",
                    "denied" => "denieds",
                    other => other,
                };
                out.insert(key.to_string(), proto_style(field));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

pub(crate) fn compute_entry(write: &ComputeWrite<'_>, phase: Phase) -> Value {
    let request_type = format!("type.googleapis.com/compute.{}", write.method);
    let mut payload = json!({
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": write.principal},
        "requestMetadata": {
            "callerIp": "127.0.0.1",
            "callerSuppliedUserAgent": write.user_agent,
            "requestAttributes": {},
            "destinationAttributes": {},
        },
        "serviceName": "compute.googleapis.com",
        "methodName": format!("{}.compute.{}", write.version, write.method),
        "resourceName": write.resource_name,
        "request": {"@type": request_type},
    });
    if phase == Phase::First {
        payload["authorizationInfo"] = write.authorization.clone();
        payload["resourceLocation"] = json!({"currentLocations": [write.location]});
        match write.request {
            Some(request) => {
                let mut request = proto_style(request);
                request["@type"] = json!(request_type);
                payload["request"] = request;
            }
            // A delete's first entry carries no request at all.
            None => {
                payload
                    .as_object_mut()
                    .map(|fields| fields.remove("request"));
            }
        }
        let mut response = proto_style(write.operation);
        response["@type"] = json!("type.googleapis.com/operation");
        // Compute's captured first entries report the operation RUNNING (tests/fixtures, forseti's sample).
        response["status"] = json!("RUNNING");
        if let Some(fields) = response.as_object_mut() {
            fields.remove("kind");
        }
        payload["response"] = response;
    }
    let (now, received) = logging_pair();
    let mut operation = json!({
        "id": write.operation["name"],
        "producer": "compute.googleapis.com",
    });
    operation[if phase == Phase::First {
        "first"
    } else {
        "last"
    }] = json!(true);
    json!({
        "protoPayload": payload,
        "insertId": insert_id(),
        "resource": write.resource,
        "timestamp": now,
        "severity": "NOTICE",
        "logName": format!("projects/{}/logs/cloudaudit.googleapis.com%2Factivity", write.project),
        "operation": operation,
        "receiveTimestamp": received,
    })
}

/// A write that was refused (invalid, denied, not found): Google logs admin writes that fail too, with their status
/// and severity ERROR, and no operation.
pub(crate) struct Refused<'a> {
    pub service_name: &'a str,
    pub method_name: &'a str,
    pub resource_name: &'a str,
    pub project: &'a str,
    pub principal: &'a str,
    pub status: &'a crate::error::ApiError,
}

/// The gRPC code Google logs for an HTTP error status.
fn grpc_code(status: u16) -> i64 {
    match status {
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        412 => 9,
        429 => 8,
        503 => 14,
        _ => 13,
    }
}

pub(crate) fn refused_entry(refused: Refused<'_>) -> Value {
    let (now, received) = logging_pair();
    json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {"code": grpc_code(refused.status.status.as_u16()), "message": refused.status.message},
            "authenticationInfo": {"principalEmail": refused.principal},
            "requestMetadata": {"callerIp": "127.0.0.1", "requestAttributes": {}, "destinationAttributes": {}},
            "serviceName": refused.service_name,
            "methodName": refused.method_name,
            "resourceName": refused.resource_name,
        },
        "insertId": insert_id(),
        "resource": {"type": "audited_resource", "labels": {"project_id": refused.project,
            "service": refused.service_name, "method": refused.method_name}},
        "timestamp": now,
        "severity": "ERROR",
        "logName": format!("projects/{}/logs/cloudaudit.googleapis.com%2Factivity", refused.project),
        "receiveTimestamp": received,
    })
}

/// An IAM write, enough to write its (single) audit entry.
pub(crate) struct IamWrite<'a> {
    pub service_name: &'a str,
    pub method_name: &'a str,
    pub resource_name: &'a str,
    pub resource: Value,
    /// `projects/P`, `organizations/N` or `folders/N`: where the entry is logged.
    pub log_parent: &'a str,
    pub permission: &'a str,
    pub principal: &'a str,
    pub user_agent: &'a str,
    pub request: Value,
    pub response: Value,
    pub deltas: Vec<Value>,
    /// `auditConfigDeltas`, when the write changed the audit-log configuration.
    pub audit_deltas: Vec<Value>,
}

/// The request and response a Resource Manager `SetIamPolicy` entry logs: the call's own, typed, the request naming
/// `resource`.
pub(crate) fn set_iam_policy_bodies(
    request: &Value,
    response: &Value,
    resource: &str,
) -> (Value, Value) {
    let mut logged_request = request.clone();
    logged_request["@type"] = json!("type.googleapis.com/google.iam.v1.SetIamPolicyRequest");
    logged_request["resource"] = json!(resource);
    let mut logged_response = response.clone();
    logged_response["@type"] = json!("type.googleapis.com/google.iam.v1.Policy");
    (logged_request, logged_response)
}

/// A write that an API logs with one entry and no operation (IAM admin, Logging, BigQuery, Cloud SQL).
pub(crate) struct AdminWrite<'a> {
    pub service_name: &'a str,
    pub method_name: &'a str,
    pub resource_name: &'a str,
    /// The monitored resource: `{"type": …, "labels": {…}}`.
    pub resource: Value,
    pub permission: &'a str,
    pub project: &'a str,
    pub principal: &'a str,
    pub user_agent: &'a str,
    pub request: Value,
    pub response: Value,
}

/// The entry of an `AdminWrite`, in the project's Admin Activity log.
pub(crate) fn admin_entry(write: AdminWrite<'_>) -> Value {
    let (now, received) = logging_pair();
    json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {},
            "authenticationInfo": {"principalEmail": write.principal},
            "requestMetadata": {
                "callerIp": "127.0.0.1",
                "callerSuppliedUserAgent": write.user_agent,
                "requestAttributes": {},
                "destinationAttributes": {},
            },
            "serviceName": write.service_name,
            "methodName": write.method_name,
            "authorizationInfo": [{"resource": write.resource_name, "permission": write.permission, "granted": true,
                "resourceAttributes": {"name": write.resource_name}}],
            "resourceName": write.resource_name,
            "request": write.request,
            "response": write.response,
        },
        "insertId": insert_id(),
        "resource": write.resource,
        "timestamp": now,
        "severity": "NOTICE",
        // A folder's or an organization's own change is logged there (`write.project` naming it).
        "logName": if write.project.starts_with("organizations/") || write.project.starts_with("folders/") {
            format!("{}/logs/cloudaudit.googleapis.com%2Factivity", write.project)
        } else {
            format!("projects/{}/logs/cloudaudit.googleapis.com%2Factivity", write.project)
        },
        "receiveTimestamp": received,
    })
}

/// `policyDelta`: the binding deltas, and the audit-config deltas when there are any.
fn policy_delta(bindings: Vec<Value>, audit: Vec<Value>) -> Value {
    let mut delta = json!({"bindingDeltas": bindings});
    if !audit.is_empty() {
        delta["auditConfigDeltas"] = json!(audit);
    }
    delta
}

/// `SetIamPolicy` / `storage.setIamPermissions`: one entry, no operation, the delta in `serviceData`.
pub(crate) fn iam_entry(write: IamWrite<'_>) -> Value {
    let (now, received) = logging_pair();
    json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {},
            "authenticationInfo": {"principalEmail": write.principal},
            "requestMetadata": {
                "callerIp": "127.0.0.1",
                "callerSuppliedUserAgent": write.user_agent,
                "requestAttributes": {},
                "destinationAttributes": {},
            },
            "serviceName": write.service_name,
            "methodName": write.method_name,
            "authorizationInfo": [{"resource": write.resource_name, "permission": write.permission, "granted": true, "resourceAttributes": {}}],
            "resourceName": write.resource_name,
            "serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": policy_delta(write.deltas, write.audit_deltas),
            },
            "request": write.request,
            "response": write.response,
        },
        "insertId": insert_id(),
        "resource": write.resource,
        "timestamp": now,
        "severity": "NOTICE",
        "logName": format!("{}/logs/cloudaudit.googleapis.com%2Factivity", write.log_parent),
        "receiveTimestamp": received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_style_renames_repeated_fields_and_stringifies_numbers() {
        let request =
            json!({"allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "priority": 1000});
        assert_eq!(
            proto_style(&request),
            json!({"alloweds": [{"IPProtocol": "tcp", "ports": ["22"]}], "priority": "1000"})
        );
    }

    #[test]
    fn insert_ids_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| insert_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
