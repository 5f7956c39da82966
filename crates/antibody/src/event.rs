//! AuditEvent: the one normalised shape every source (Eventarc, Pub/Sub push, raw LogEntry, replay) produces.

use serde::Serialize;
use serde_json::Value;

/// How an event reached us; each transport has its own delivery identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    EventarcBinary,
    EventarcStructured,
    PubSubPush,
    LogEntry,
    Replay,
    Scan,
    /// A decision taken again when a grace period is up.
    Recheck,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::EventarcBinary => "eventarc-binary",
            Transport::EventarcStructured => "eventarc-structured",
            Transport::PubSubPush => "pubsub-push",
            Transport::LogEntry => "log-entry",
            Transport::Replay => "replay",
            Transport::Scan => "scan",
            Transport::Recheck => "recheck",
        }
    }
}

/// The `operation` of a long-running call: Compute writes a `first` and a `last` entry for each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationRef {
    pub id: String,
    pub first: bool,
    pub last: bool,
}

/// A Cloud Audit Log entry, reduced to what routing, gating and the journal need.
/// It is a pointer to a resource, never a description of its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub transport: Transport,
    /// What makes a redelivery of this same message recognisable: (`ce-source`, `ce-id`), the Pub/Sub message id,
    /// or (`logName`, `insertId`) when nothing else is known.
    pub delivery_key: String,
    /// (`logName`, `insertId`): the same entry arriving through two pipelines shares it.
    pub log_key: String,
    pub service_name: String,
    pub method_name: String,
    pub resource_name: String,
    pub resource_type: String,
    pub project: String,
    pub principal: String,
    pub caller_ip: String,
    pub user_agent: String,
    pub operation: Option<OperationRef>,
    /// `protoPayload.status.code`; non-zero means the audited call failed and changed nothing.
    pub status_code: i64,
    pub timestamp: String,
    /// The W3C trace id the delivery carried (`traceparent`, `ce-traceparent` or `X-Cloud-Trace-Context`).
    pub trace: Option<String>,
}

/// Why an entry could not be read as an audit log entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the LogEntry has no protoPayload; only Cloud Audit Log entries are accepted")]
    NoProtoPayload,
    #[error("the LogEntry lacks {0}")]
    Missing(&'static str),
}

impl AuditEvent {
    /// Reads a LogEntry (as JSON). `delivery_key` is the transport's own identity, if it has one.
    pub fn from_log_entry(
        entry: &Value,
        transport: Transport,
        delivery_key: Option<String>,
    ) -> Result<AuditEvent, EventError> {
        let payload = entry
            .get("protoPayload")
            .filter(|payload| payload.is_object())
            .ok_or(EventError::NoProtoPayload)?;
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let service_name = text(&payload["serviceName"]);
        if service_name.is_empty() {
            return Err(EventError::Missing("protoPayload.serviceName"));
        }
        let method_name = text(&payload["methodName"]);
        if method_name.is_empty() {
            return Err(EventError::Missing("protoPayload.methodName"));
        }
        let resource_name = text(&payload["resourceName"]);
        let log_name = text(&entry["logName"]);
        let insert_id = text(&entry["insertId"]);
        if insert_id.is_empty() {
            return Err(EventError::Missing("insertId"));
        }
        let log_key = format!("{log_name}|{insert_id}");
        let project = match entry["resource"]["labels"]["project_id"].as_str() {
            Some(project) if !project.is_empty() => project.to_string(),
            _ => project_from_names(&resource_name, &log_name),
        };
        let operation = entry
            .get("operation")
            .filter(|operation| operation.is_object())
            .map(|operation| OperationRef {
                id: text(&operation["id"]),
                first: operation["first"].as_bool().unwrap_or(false),
                last: operation["last"].as_bool().unwrap_or(false),
            });
        let status_code = match &payload["status"]["code"] {
            Value::Number(code) => code.as_i64().unwrap_or(-1),
            Value::String(code) => code.parse().unwrap_or(-1),
            _ => 0,
        };
        Ok(AuditEvent {
            transport,
            delivery_key: delivery_key.unwrap_or_else(|| format!("log:{log_key}")),
            log_key,
            service_name,
            method_name,
            resource_name,
            resource_type: text(&entry["resource"]["type"]),
            project,
            principal: text(&payload["authenticationInfo"]["principalEmail"]),
            caller_ip: text(&payload["requestMetadata"]["callerIp"]),
            user_agent: text(&payload["requestMetadata"]["callerSuppliedUserAgent"]),
            operation,
            status_code,
            timestamp: text(&entry["timestamp"]),
            trace: None,
        })
    }

    /// The last dotted segment of the method name: `v1.compute.firewalls.patch` → `patch`.
    pub fn verb(&self) -> &str {
        self.method_name
            .rsplit('.')
            .next()
            .unwrap_or(&self.method_name)
    }
}

/// `projects/P/...` in the resource name, else in the log name (`projects/_/buckets/B` names no project).
fn project_from_names(resource_name: &str, log_name: &str) -> String {
    [resource_name, log_name]
        .iter()
        .filter_map(|name| name.strip_prefix("projects/"))
        .filter_map(|rest| rest.split('/').next())
        .find(|project| !project.is_empty() && *project != "_")
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn project_falls_back_to_names_when_labels_are_missing() {
        let entry = json!({"insertId": "x", "logName": "projects/p9/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "storage.googleapis.com", "methodName": "storage.setIamPermissions",
                             "resourceName": "projects/_/buckets/b"}});
        let event =
            AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry");
        assert_eq!(event.project, "p9");
        assert_eq!(
            event.delivery_key,
            "log:projects/p9/logs/cloudaudit.googleapis.com%2Factivity|x"
        );
    }

    #[test]
    fn failed_calls_carry_their_status_code() {
        let entry = json!({"insertId": "x", "protoPayload": {"serviceName": "s", "methodName": "m", "status": {"code": 9}}});
        let event =
            AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry");
        assert_eq!(event.status_code, 9);
    }

    #[test]
    fn entries_without_an_audit_payload_are_refused() {
        let entry = json!({"insertId": "x", "textPayload": "hello"});
        assert_eq!(
            AuditEvent::from_log_entry(&entry, Transport::LogEntry, None),
            Err(EventError::NoProtoPayload)
        );
    }
}
