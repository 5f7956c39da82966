//! The `log-tamper` policy: exclusions that drop Cloud Audit Logs, and protected sinks disabled, redirected or
//! deleted — the moves that erase an intruder's tracks. Pure.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::gcp::logging::{Exclusion, Sink};
use crate::policy::{Finding, Severity};

pub const POLICY: &str = "log-tamper";
pub const AUDIT_LOG_EXCLUSION: &str = "AUDIT_LOG_EXCLUSION";
pub const SINK_DISABLED: &str = "PROTECTED_SINK_DISABLED";
pub const SINK_CHANGED: &str = "PROTECTED_SINK_CHANGED";
pub const SINK_DELETED: &str = "PROTECTED_SINK_DELETED";

/// A sink that must exist and route where it routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedSink {
    pub name: String,
    pub destination: String,
    pub filter: String,
}

/// The validated `[policies.log_tamper]` section.
#[derive(Debug, Clone)]
pub struct LogTamperPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    /// Restore (default) or only report.
    pub restore: bool,
    pub severity: Severity,
    /// Text that names audit logs in a filter (case-insensitive).
    pub audit_log_markers: Vec<String>,
    /// `_Default` must stay enabled (it carries Data Access audit logs and most others).
    pub protect_default_sink: bool,
    pub protected_sinks: Vec<ProtectedSink>,
}

impl Default for LogTamperPolicy {
    fn default() -> Self {
        LogTamperPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            restore: true,
            severity: Severity::High,
            audit_log_markers: vec![
                "cloudaudit.googleapis.com".into(),
                "externalaudit.googleapis.com".into(),
                "google.cloud.audit.AuditLog".into(),
            ],
            protect_default_sink: true,
            protected_sinks: Vec::new(),
        }
    }
}

/// Whether a Logging filter selects entries that a marker names, in a term that is not negated: terms are split on
/// whitespace outside quotes; `NOT` and a leading `-` negate the next term or parenthesised group.
pub fn names_audit_logs(filter: &str, markers: &[String]) -> bool {
    let markers: Vec<String> = markers
        .iter()
        .map(|marker| marker.to_ascii_lowercase())
        .collect();
    let mut negated_groups = vec![false];
    let mut pending = false;
    for token in tokens(filter) {
        let mut term = token.as_str();
        let upper = term.to_ascii_uppercase();
        if upper == "NOT" {
            pending = !pending;
            continue;
        }
        if upper == "AND" || upper == "OR" {
            pending = false;
            continue;
        }
        let outer = *negated_groups.last().unwrap_or(&false);
        let mut dash = false;
        if let Some(rest) = term.strip_prefix('-') {
            dash = true;
            term = rest;
        }
        while let Some(rest) = term.strip_prefix('(') {
            negated_groups.push(outer ^ pending ^ dash);
            pending = false;
            dash = false;
            term = rest;
        }
        let current = *negated_groups.last().unwrap_or(&false);
        let negated = current ^ pending ^ dash;
        pending = false;
        let lower = term.to_ascii_lowercase();
        if !negated && markers.iter().any(|marker| lower.contains(marker.as_str())) {
            return true;
        }
        let closing = term
            .chars()
            .filter(|c| *c == ')')
            .count()
            .saturating_sub(term.chars().filter(|c| *c == '(').count());
        for _ in 0..closing {
            if negated_groups.len() > 1 {
                negated_groups.pop();
            }
        }
    }
    false
}

/// Whitespace-separated tokens, quoted strings kept whole.
fn tokens(filter: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in filter.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// What restoring a resource changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Update these fields (the body's keys, the mask).
    Update { body: Value, mask: Vec<String> },
    /// Create the sink again.
    Create(Value),
}

impl LogTamperPolicy {
    fn finding(&self, category: &str, message: String) -> Finding {
        Finding {
            policy: POLICY.to_string(),
            category: category.to_string(),
            severity: self.severity,
            message,
        }
    }

    fn excludes_audit_logs(&self, exclusion: &Exclusion) -> bool {
        !exclusion.disabled && names_audit_logs(&exclusion.filter, &self.audit_log_markers)
    }

    /// A standalone exclusion.
    pub fn evaluate_exclusion(&self, exclusion: &Exclusion) -> (Vec<Finding>, Option<Planned>) {
        if !self.excludes_audit_logs(exclusion) {
            return (Vec::new(), None);
        }
        let finding = self.finding(
            AUDIT_LOG_EXCLUSION,
            format!(
                "exclusion {} drops audit logs (filter: {})",
                exclusion.name, exclusion.filter
            ),
        );
        let fix = self.restore.then(|| Planned::Update {
            body: json!({"disabled": true}),
            mask: vec!["disabled".into()],
        });
        (vec![finding], fix)
    }

    /// A sink (`None`: it does not exist) named `name`.
    pub fn evaluate_sink(
        &self,
        name: &str,
        sink: Option<&Sink>,
    ) -> (Vec<Finding>, Option<Planned>) {
        let protected = self
            .protected_sinks
            .iter()
            .find(|protected| protected.name == name);
        let mut findings = Vec::new();
        let Some(sink) = sink else {
            let Some(protected) = protected else {
                return (findings, None);
            };
            findings.push(self.finding(
                SINK_DELETED,
                format!("protected sink {name} was deleted; recreated, it writes as a new identity that needs write access to {}", protected.destination),
            ));
            let sink = json!({"name": protected.name, "destination": protected.destination, "filter": protected.filter});
            return (findings, self.restore.then_some(Planned::Create(sink)));
        };
        let mut body = serde_json::Map::new();
        let mut mask = BTreeSet::new();
        let guarded = protected.is_some() || (self.protect_default_sink && name == "_Default");
        if guarded && sink.disabled {
            findings
                .push(self.finding(SINK_DISABLED, format!("protected sink {name} was disabled")));
            body.insert("disabled".into(), json!(false));
            mask.insert("disabled");
        }
        if let Some(protected) = protected
            && (sink.destination != protected.destination || sink.filter != protected.filter)
        {
            findings.push(self.finding(
                SINK_CHANGED,
                format!(
                    "protected sink {name} now routes {:?} to {} instead of {:?} to {}",
                    sink.filter, sink.destination, protected.filter, protected.destination
                ),
            ));
            body.insert("destination".into(), json!(protected.destination));
            body.insert("filter".into(), json!(protected.filter));
            mask.extend(["destination", "filter"]);
        }
        let dropping: Vec<&Exclusion> = sink
            .exclusions
            .iter()
            .filter(|exclusion| self.excludes_audit_logs(exclusion))
            .collect();
        if !dropping.is_empty() {
            for exclusion in &dropping {
                findings.push(self.finding(
                    AUDIT_LOG_EXCLUSION,
                    format!(
                        "sink {name}'s exclusion {} drops audit logs (filter: {})",
                        exclusion.name, exclusion.filter
                    ),
                ));
            }
            let kept: Vec<Exclusion> = sink
                .exclusions
                .iter()
                .map(|exclusion| Exclusion {
                    disabled: exclusion.disabled || self.excludes_audit_logs(exclusion),
                    ..exclusion.clone()
                })
                .collect();
            body.insert("exclusions".into(), json!(kept));
            mask.insert("exclusions");
        }
        let fix = (self.restore && !mask.is_empty()).then(|| Planned::Update {
            body: Value::Object(body),
            mask: mask.into_iter().map(str::to_string).collect(),
        });
        (findings, fix)
    }
}

#[cfg(test)]
mod tests;
