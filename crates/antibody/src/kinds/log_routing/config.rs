//! The `[policies.log_tamper]` section: what the user writes, and its validation into `LogTamperPolicy`.

use serde::Deserialize;

use super::policy::{LogTamperPolicy, ProtectedSink};
use crate::config::{fixes, mode, severity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogTamperPolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `restore` (default: disable the exclusion, re-enable or re-route or recreate the sink) or `alert`.
    pub fix: Option<String>,
    /// The findings' severity (default HIGH).
    pub severity: Option<String>,
    /// No longer used, accepted so that older configurations still load: a filter is judged by evaluating it
    /// against the project's audit entries, not by the text it contains.
    pub audit_log_markers: Option<Vec<String>>,
    /// Keep the `_Default` sink enabled, routed to the `_Default` bucket, selecting the audit logs it carries (Data
    /// Access, Policy Denied), and without exclusions of them (default true).
    pub protect_default_sink: Option<bool>,
    /// Sinks that must exist and route exactly so: `[{name, destination, filter}]`.
    #[serde(default)]
    pub protected_sinks: Vec<RawProtectedSink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProtectedSink {
    pub name: String,
    /// `storage.googleapis.com/BUCKET`, `bigquery.googleapis.com/projects/P/datasets/D`, `pubsub.googleapis.com/…`,
    /// `logging.googleapis.com/projects/P/locations/L/buckets/B`.
    pub destination: String,
    pub filter: String,
}

pub fn validate_log_tamper(raw: RawLogTamperPolicy, problems: &mut Vec<String>) -> LogTamperPolicy {
    let key = "policies.log_tamper";
    let defaults = LogTamperPolicy::default();
    let restore = fixes(key, raw.fix.as_deref(), "restore", problems);
    let mut protected_sinks = Vec::new();
    for (index, sink) in raw.protected_sinks.into_iter().enumerate() {
        if sink.name.is_empty() || sink.name.starts_with('_') || sink.destination.is_empty() {
            problems.push(format!(
                "{key}.protected_sinks[{index}]: a protected sink needs a name (not _Required or _Default) and a destination"
            ));
            continue;
        }
        protected_sinks.push(ProtectedSink {
            name: sink.name,
            destination: sink.destination,
            filter: sink.filter,
        });
    }
    LogTamperPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        restore,
        severity: severity(
            &format!("{key}.severity"),
            raw.severity.as_deref(),
            problems,
        )
        .unwrap_or(defaults.severity),
        protect_default_sink: raw.protect_default_sink.unwrap_or(true),
        protected_sinks,
    }
}
