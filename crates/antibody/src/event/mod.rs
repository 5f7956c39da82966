//! AuditEvent: the one normalised shape every source (Eventarc, Pub/Sub push, raw LogEntry, replay) produces.

mod entry;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A LogEntry read from JSON, holding only what an `AuditEvent` keeps (borrowed from the text where it can be).
#[derive(Debug, Default, Deserialize)]
pub struct LogEntry<'a>(#[serde(borrow)] entry::Object<entry::Entry<'a>>);

impl<'a> LogEntry<'a> {
    /// Parses JSON text; the subtrees an `AuditEvent` does not keep (the request, the response, metadata) are
    /// skipped rather than built.
    pub fn parse(text: &'a [u8]) -> Result<LogEntry<'a>, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

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
    /// An operator's command (`antibody undo`).
    Operator,
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
            Transport::Operator => "operator",
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

/// `split`: this entry is one part of an audit entry too large for one LogEntry. Every part repeats the service,
/// method and resource names; the request, response and metadata are divided among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitRef {
    pub uid: String,
    /// The part's position, from 0; -1 when unreadable.
    pub index: i64,
    pub total: i64,
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
    /// `resource.labels.location`: the region of a resource whose name leaves it out (Cloud Run v1's
    /// `namespaces/P/services/S`).
    pub location: String,
    pub principal: String,
    pub caller_ip: String,
    pub user_agent: String,
    pub operation: Option<OperationRef>,
    pub split: Option<SplitRef>,
    /// `protoPayload.status.code`; non-zero means the audited call failed and changed nothing.
    pub status_code: i64,
    pub timestamp: String,
    /// The W3C trace id the delivery carried (`traceparent`, `ce-traceparent` or `X-Cloud-Trace-Context`).
    pub trace: Option<String>,
    /// `serviceData.policyDelta.auditConfigDeltas` of an IAM write: what it did to the audit-log configuration.
    pub audit_config_deltas: Vec<AuditConfigDelta>,
    /// A re-check's hint: what the deferred events said the change did (their target's hint), kept by the journal.
    pub hint: Option<String>,
}

/// One change of an IAM policy's `auditConfigs`, as Google's policy delta reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditConfigDelta {
    /// `ADD` or `REMOVE`.
    pub action: String,
    pub service: String,
    pub log_type: String,
    /// Empty when the log type itself was added or removed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exempted_member: String,
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
    /// Reads a LogEntry (as a JSON value). `delivery_key` is the transport's own identity, if it has one.
    pub fn from_log_entry(
        entry: &Value,
        transport: Transport,
        delivery_key: Option<String>,
    ) -> Result<AuditEvent, EventError> {
        let entry =
            LogEntry::deserialize(entry).map_err(|err| EventError::Json(err.to_string()))?;
        AuditEvent::from_parsed(entry, transport, delivery_key)
    }

    /// Reads a parsed LogEntry (see `LogEntry::parse`).
    pub fn from_parsed(
        entry: LogEntry<'_>,
        transport: Transport,
        delivery_key: Option<String>,
    ) -> Result<AuditEvent, EventError> {
        let entry = entry.0.0.unwrap_or_default();
        let payload = entry.proto_payload.0.ok_or(EventError::NoProtoPayload)?;
        let service_name = payload.service_name.get().to_string();
        if service_name.is_empty() {
            return Err(EventError::Missing("protoPayload.serviceName"));
        }
        let method_name = payload.method_name.get().to_string();
        if method_name.is_empty() {
            return Err(EventError::Missing("protoPayload.methodName"));
        }
        let resource_name = payload.resource_name.get().to_string();
        let log_name = entry.log_name.get();
        let insert_id = entry.insert_id.get();
        if insert_id.is_empty() {
            return Err(EventError::Missing("insertId"));
        }
        let log_key = format!("{log_name}|{insert_id}");
        let resource = entry.resource.0.unwrap_or_default();
        let labelled = resource.labels.0.unwrap_or_default();
        let project = match labelled.project_id.get() {
            "" => project_from_names(&resource_name, log_name),
            project => project.to_string(),
        };
        let operation = entry.operation.0.map(|operation| OperationRef {
            id: operation.id.get().to_string(),
            first: operation.first.0,
            last: operation.last.0,
        });
        let split = entry.split.0.map(|split| SplitRef {
            uid: split.uid.get().to_string(),
            index: split.index.0,
            total: split.total_splits.0,
        });
        let audit_config_deltas = payload
            .service_data
            .0
            .and_then(|data| data.policy_delta.0)
            .map(|delta| {
                delta
                    .audit_config_deltas
                    .0
                    .into_iter()
                    .map(|delta| AuditConfigDelta {
                        action: delta.action.get().to_string(),
                        service: delta.service.get().to_string(),
                        log_type: delta.log_type.get().to_string(),
                        exempted_member: delta.exempted_member.get().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let authentication = payload.authentication_info.0.unwrap_or_default();
        let metadata = payload.request_metadata.0.unwrap_or_default();
        Ok(AuditEvent {
            transport,
            delivery_key: delivery_key.unwrap_or_else(|| format!("log:{log_key}")),
            log_key,
            service_name,
            method_name,
            resource_name,
            resource_type: resource.kind.get().to_string(),
            location: labelled.location.get().to_string(),
            project,
            principal: authentication.principal_email.get().to_string(),
            caller_ip: metadata.caller_ip.get().to_string(),
            user_agent: metadata.caller_supplied_user_agent.get().to_string(),
            operation,
            split,
            status_code: payload.status.0.map(|status| status.code.0).unwrap_or(0),
            timestamp: entry.timestamp.get().to_string(),
            trace: None,
            audit_config_deltas,
            hint: None,
        })
    }

    /// A sweep's finding enters the pipeline as an event of its own, so it is re-read, gated and journaled like any other.
    pub fn synthetic(transport: Transport, project: &str, resource: &str) -> AuditEvent {
        AuditEvent::synthetic_in(
            transport,
            &uuid::Uuid::new_v4().to_string(),
            project,
            resource,
        )
    }

    /// A synthetic event of one run (a sweep): the same run and resource make the same key, so a run retried after
    /// its process died takes over the rows it left `processing` and does not fix again what it finished.
    pub fn synthetic_in(
        transport: Transport,
        run: &str,
        project: &str,
        resource: &str,
    ) -> AuditEvent {
        let key = format!("{}:{run}:{resource}", transport.as_str());
        AuditEvent {
            transport,
            delivery_key: key.clone(),
            log_key: key,
            service_name: "antibody".into(),
            method_name: format!("antibody.{}", transport.as_str()),
            resource_name: resource.to_string(),
            resource_type: String::new(),
            location: String::new(),
            project: project.to_string(),
            principal: String::new(),
            caller_ip: String::new(),
            user_agent: String::new(),
            operation: None,
            split: None,
            status_code: 0,
            timestamp: String::new(),
            trace: None,
            audit_config_deltas: Vec::new(),
            hint: None,
        }
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
    fn fields_of_unexpected_types_read_as_absent() {
        let entry = json!({"insertId": "x", "logName": "projects/p1/logs/a",
            "protoPayload": {"serviceName": "s", "methodName": "m", "resourceName": 7,
                             "authenticationInfo": ["not", "an", "object"], "status": {"code": "9"},
                             "requestMetadata": {"callerIp": {"nested": true}, "callerSuppliedUserAgent": null}},
            "resource": {"type": false, "labels": "p2"},
            "operation": {"id": "op", "first": "yes", "last": true}});
        let event =
            AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry");
        assert_eq!(event.resource_name, "");
        assert_eq!(event.principal, "");
        assert_eq!(event.caller_ip, "");
        assert_eq!(event.status_code, 9);
        assert_eq!(
            event.project, "p1",
            "labels that are not an object fall back to the log name"
        );
        let operation = event.operation.expect("operation");
        assert!(!operation.first && operation.last);
        let unreadable =
            json!({"insertId": 5, "protoPayload": {"serviceName": "s", "methodName": "m"}});
        assert_eq!(
            AuditEvent::from_log_entry(&unreadable, Transport::LogEntry, None),
            Err(EventError::Missing("insertId"))
        );
        let payload_not_object = json!({"insertId": "x", "protoPayload": "text"});
        assert_eq!(
            AuditEvent::from_log_entry(&payload_not_object, Transport::LogEntry, None),
            Err(EventError::NoProtoPayload)
        );
    }

    #[test]
    fn text_and_value_readings_agree() {
        let entry = json!({"insertId": "i\"d", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                             "serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
                             "resourceName": "projects/p/global/firewalls/f\u{e9}",
                             "authenticationInfo": {"principalEmail": "a@example.com"},
                             "request": {"sourceRanges": ["0.0.0.0/0"], "deep": {"deeper": [1, 2.5, null]}},
                             "status": {"code": 18446744073709551615u64}},
            "resource": {"type": "gce_firewall_rule", "labels": {"project_id": "p"}},
            "operation": {"id": "op", "first": true}, "timestamp": "2026-11-26T10:00:00Z"});
        let text = entry.to_string();
        let from_text = AuditEvent::from_parsed(
            LogEntry::parse(text.as_bytes()).expect("parses"),
            Transport::LogEntry,
            None,
        );
        let from_value = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None);
        assert_eq!(from_text, from_value);
        let event = from_text.expect("valid entry");
        assert!(event.log_key.ends_with("|i\"d"));
        assert_eq!(event.resource_name, "projects/p/global/firewalls/f\u{e9}");
        assert_eq!(event.status_code, -1, "a code beyond i64 is unreadable");
    }

    #[test]
    fn entries_without_an_audit_payload_are_refused() {
        let entry = json!({"insertId": "x", "textPayload": "hello"});
        assert_eq!(
            AuditEvent::from_log_entry(&entry, Transport::LogEntry, None),
            Err(EventError::NoProtoPayload)
        );
    }

    #[test]
    fn audit_config_deltas_are_read_leniently() {
        let entry = json!({"insertId": "x", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "cloudresourcemanager.googleapis.com", "methodName": "SetIamPolicy",
                "resourceName": "projects/p", "serviceData": {"policyDelta": {"auditConfigDeltas": [
                    {"action": "REMOVE", "service": "allServices", "logType": "DATA_READ"},
                    "not an object",
                    {"action": "ADD", "service": "allServices", "logType": "DATA_READ", "exemptedMember": "user:x@example.com"},
                    {"action": 7}]}}}});
        let event =
            AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an entry");
        let actions: Vec<(&str, &str, &str)> = event
            .audit_config_deltas
            .iter()
            .map(|delta| {
                (
                    delta.action.as_str(),
                    delta.log_type.as_str(),
                    delta.exempted_member.as_str(),
                )
            })
            .collect();
        assert_eq!(
            actions,
            [
                ("REMOVE", "DATA_READ", ""),
                ("ADD", "DATA_READ", "user:x@example.com"),
                ("", "", "")
            ]
        );
        let mut odd = entry.clone();
        odd["protoPayload"]["serviceData"]["policyDelta"]["auditConfigDeltas"] = json!("nonsense");
        let event = AuditEvent::from_log_entry(&odd, Transport::LogEntry, None).expect("an entry");
        assert!(event.audit_config_deltas.is_empty());
        let text = entry.to_string();
        let parsed = LogEntry::parse(text.as_bytes()).expect("parses");
        let from_text =
            AuditEvent::from_parsed(parsed, Transport::LogEntry, None).expect("an entry");
        assert_eq!(
            from_text.audit_config_deltas.len(),
            3,
            "text and value agree"
        );
    }
}
