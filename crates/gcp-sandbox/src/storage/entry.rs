//! The audit entries Cloud Storage writes for bucket changes, refused ones included.

use serde_json::{Value, json};

use super::bucket::Bucket;
use crate::audit;
use crate::time_fmt::logging_pair;

/// What a successful or refused write leaves in the audit log.
pub(super) struct StorageWrite<'a> {
    pub method_name: &'a str,
    pub permission: &'a str,
    pub bucket: &'a Bucket,
    pub principal: &'a str,
    pub user_agent: &'a str,
    pub request: Option<Value>,
    pub deltas: Vec<Value>,
    /// A refused call is logged too, with its status.
    pub failure: Option<(i64, String)>,
}

pub(super) fn storage_entry(write: StorageWrite<'_>) -> Value {
    let resource_name = format!("projects/_/buckets/{}", write.bucket.name);
    let (now, received) = logging_pair();
    let mut payload = json!({
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": write.principal},
        "requestMetadata": {"callerIp": "127.0.0.1", "callerSuppliedUserAgent": write.user_agent, "requestAttributes": {}, "destinationAttributes": {}},
        "serviceName": "storage.googleapis.com",
        "methodName": write.method_name,
        "authorizationInfo": [{"resource": resource_name, "permission": write.permission, "granted": true, "resourceAttributes": {}}],
        "resourceName": resource_name,
        "resourceLocation": {"currentLocations": [write.bucket.location.to_ascii_lowercase()]},
    });
    if let Some(request) = write.request {
        payload["request"] = request;
    }
    if !write.deltas.is_empty() {
        payload["serviceData"] = json!({"@type": "type.googleapis.com/google.iam.v1.logging.AuditData", "policyDelta": {"bindingDeltas": write.deltas}});
    }
    let mut severity = "NOTICE";
    if let Some((code, message)) = write.failure {
        payload["status"] = json!({"code": code, "message": message});
        severity = "ERROR";
    }
    json!({
        "protoPayload": payload,
        "insertId": audit::insert_id(),
        "resource": {"type": "gcs_bucket", "labels": {"bucket_name": write.bucket.name, "project_id": write.bucket.project, "location": write.bucket.location.to_ascii_lowercase()}},
        "timestamp": now,
        "severity": severity,
        "logName": format!("projects/{}/logs/cloudaudit.googleapis.com%2Factivity", write.bucket.project),
        "receiveTimestamp": received,
    })
}
