//! What a filter selects, judged by evaluating it (Logging's query language, the `logquery` crate) against
//! representative Cloud Audit Log entries of the project — every audit log type (Admin Activity, Data Access, System
//! Event, Policy Denied, and their external-audit forms), the services and resource types antibody guards, at each
//! severity those logs carry — never by the filter's spelling.

use serde_json::{Value, json};

/// The audit logs, as `log_id` names them, and whether `_Default` is meant to carry them (Admin Activity, System
/// Event and Access Transparency go to `_Required` instead).
const LOGS: &[(&str, bool)] = &[
    ("cloudaudit.googleapis.com/activity", false),
    ("cloudaudit.googleapis.com/data_access", true),
    ("cloudaudit.googleapis.com/system_event", false),
    ("cloudaudit.googleapis.com/policy", true),
    ("externalaudit.googleapis.com/activity", false),
    ("externalaudit.googleapis.com/data_access", true),
];

/// (serviceName, resource.type, methodName): what audit entries name, for the services antibody watches and those
/// whose Data Access logs matter most.
const SOURCES: &[(&str, &str, &str)] = &[
    (
        "compute.googleapis.com",
        "gce_instance",
        "v1.compute.instances.insert",
    ),
    (
        "compute.googleapis.com",
        "gce_firewall_rule",
        "v1.compute.firewalls.insert",
    ),
    (
        "storage.googleapis.com",
        "gcs_bucket",
        "storage.objects.get",
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "project",
        "SetIamPolicy",
    ),
    (
        "iam.googleapis.com",
        "service_account",
        "google.iam.admin.v1.CreateServiceAccountKey",
    ),
    (
        "bigquery.googleapis.com",
        "bigquery_dataset",
        "google.cloud.bigquery.v2.JobService.InsertJob",
    ),
    (
        "bigquery.googleapis.com",
        "bigquery_project",
        "google.cloud.bigquery.v2.JobService.GetQueryResults",
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql_database",
        "cloudsql.instances.update",
    ),
    (
        "secretmanager.googleapis.com",
        "audited_resource",
        "google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion",
    ),
    (
        "logging.googleapis.com",
        "audited_resource",
        "google.logging.v2.ConfigServiceV2.UpdateSink",
    ),
    ("k8s.io", "k8s_cluster", "io.k8s.core.v1.secrets.get"),
    (
        "run.googleapis.com",
        "cloud_run_revision",
        "google.cloud.run.v2.Services.UpdateService",
    ),
];

const SEVERITIES: &[&str] = &["INFO", "NOTICE", "WARNING", "ERROR"];

/// One representative entry, with what a finding says of it.
pub(super) struct Representative {
    pub log: &'static str,
    /// `_Default` is meant to carry this log.
    pub in_default: bool,
    pub entry: Value,
}

impl Representative {
    pub fn describe(&self) -> String {
        format!(
            "{} entries of {} ({}, severity {})",
            self.log,
            self.entry["protoPayload"]["serviceName"]
                .as_str()
                .unwrap_or("?"),
            self.entry["resource"]["type"].as_str().unwrap_or("?"),
            self.entry["severity"].as_str().unwrap_or("?"),
        )
    }
}

/// The representative audit entries of a project — or of a folder or an organization (`project` naming it), whose own
/// entries carry its resource.
pub(super) fn representatives(project: &str) -> Vec<Representative> {
    let parent = super::parent(project);
    let container = match parent.split_once('/') {
        Some(("organizations", id)) => Some(("organization", json!({"organization_id": id}))),
        Some(("folders", id)) => Some(("folder", json!({"folder_id": id}))),
        _ => None,
    };
    let mut entries = Vec::new();
    for (log, in_default) in LOGS {
        for (service, resource_type, method) in SOURCES {
            for severity in SEVERITIES {
                let kind = log.rsplit('/').next().unwrap_or(log);
                entries.push(Representative {
                    log,
                    in_default: *in_default,
                    entry: json!({
                        "insertId": format!("{kind}-{resource_type}-{severity}").to_ascii_lowercase(),
                        "logName": format!("{parent}/logs/{}", log.replace('/', "%2F")),
                        "severity": severity,
                        "timestamp": "2026-01-01T00:00:00Z",
                        "receiveTimestamp": "2026-01-01T00:00:00Z",
                        "resource": match &container {
                            Some((kind, labels)) => json!({"type": kind, "labels": labels}),
                            None => json!({
                                "type": resource_type,
                                "labels": {"project_id": project, "service": service, "method": method},
                            }),
                        },
                        "protoPayload": {
                            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                            "serviceName": service,
                            "methodName": method,
                            "resourceName": parent,
                            "authenticationInfo": {"principalEmail": "someone@example.com"},
                            "requestMetadata": {"callerIp": "203.0.113.7", "callerSuppliedUserAgent": "gcloud"},
                            "status": if *severity == "ERROR" { json!({"code": 7}) } else { json!({}) },
                        },
                    }),
                });
            }
        }
    }
    entries
}

/// What a filter does to the project's audit entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Selection {
    /// It selects (or, through `sample()`, may select) these audit entries: the first, described.
    Selects(String),
    /// It selects none of them.
    None,
    /// The filter could not be read; Google accepted it, so it is judged as selecting audit entries.
    Unreadable(String),
}

/// Which of the project's representative audit entries `filter` selects, among those `keep` admits.
pub(super) fn audit_entries_selected(
    filter: &str,
    project: &str,
    keep: impl Fn(&Representative) -> bool,
) -> Selection {
    let query = match logquery::Query::parse(filter) {
        Ok(query) => query,
        Err(reason) => return Selection::Unreadable(reason),
    };
    representatives(project)
        .into_iter()
        .filter(|representative| keep(representative))
        .find(|representative| query.selects(&representative.entry) != Some(false))
        .map_or(Selection::None, |representative| {
            Selection::Selects(representative.describe())
        })
}

/// Whether a `_Default` sink's filter still selects every audit entry it is meant to carry (Data Access, Policy
/// Denied); `Some(description)` names one it no longer selects.
pub(super) fn default_sink_misses(filter: &str, project: &str) -> Option<String> {
    let query = match logquery::Query::parse(filter) {
        Ok(query) => query,
        Err(reason) => return Some(format!("a filter antibody cannot read ({reason})")),
    };
    representatives(project)
        .into_iter()
        .filter(|representative| representative.in_default)
        .find(|representative| query.selects(&representative.entry) != Some(true))
        .map(|representative| representative.describe())
}
