//! The `log-tamper` policy: exclusions that drop Cloud Audit Logs, and protected sinks disabled, redirected,
//! re-filtered or deleted — the moves that erase an intruder's tracks. Filters are judged by what they select
//! (`entries.rs`), never by how they are spelled. Pure.

mod entries;

use entries::{Selection, audit_entries_selected, default_sink_misses};

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
    /// `_Default` must stay enabled, routed to its bucket and selecting the audit logs it carries (Data Access,
    /// Policy Denied and most others).
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
            protect_default_sink: true,
            protected_sinks: Vec::new(),
        }
    }
}

/// The filter Google gives a project's `_Default` sink: everything but the logs `_Required` keeps.
pub const DEFAULT_SINK_FILTER: &str = "NOT LOG_ID(\"cloudaudit.googleapis.com/activity\") AND NOT LOG_ID(\"externalaudit.googleapis.com/activity\") AND NOT LOG_ID(\"cloudaudit.googleapis.com/system_event\") AND NOT LOG_ID(\"externalaudit.googleapis.com/system_event\") AND NOT LOG_ID(\"cloudaudit.googleapis.com/access_transparency\") AND NOT LOG_ID(\"externalaudit.googleapis.com/access_transparency\")";

/// A routing's parent as Logging names it: `projects/P` for a project id, the container itself for
/// `organizations/N` or `folders/N`.
pub fn parent(project: &str) -> String {
    if project.starts_with("organizations/") || project.starts_with("folders/") {
        project.to_string()
    } else {
        format!("projects/{project}")
    }
}

/// Where a `_Default` sink routes: its project's (folder's, organization's) `_Default` log bucket.
pub fn default_sink_destination(project: &str) -> String {
    format!(
        "logging.googleapis.com/{}/locations/global/buckets/_Default",
        parent(project)
    )
}

/// Whether an exclusion's filter drops any of the project's audit entries: the entries it selects, described.
pub fn drops_audit_logs(filter: &str, project: &str) -> Option<String> {
    match audit_entries_selected(filter, project, |_| true) {
        Selection::Selects(what) => Some(what),
        Selection::None => None,
        Selection::Unreadable(reason) => Some(format!(
            "what Google accepted as a filter and antibody cannot read ({reason}), so possibly audit entries"
        )),
    }
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

    /// What an enabled exclusion drops of the project's audit entries, if anything.
    fn excludes_audit_logs(&self, project: &str, exclusion: &Exclusion) -> Option<String> {
        if exclusion.disabled {
            return None;
        }
        drops_audit_logs(&exclusion.filter, project)
    }

    /// A standalone exclusion of `project`.
    pub fn evaluate_exclusion(
        &self,
        project: &str,
        exclusion: &Exclusion,
    ) -> (Vec<Finding>, Option<Planned>) {
        let Some(dropped) = self.excludes_audit_logs(project, exclusion) else {
            return (Vec::new(), None);
        };
        let finding = self.finding(
            AUDIT_LOG_EXCLUSION,
            format!(
                "exclusion {} drops audit logs: {dropped} (filter: {})",
                exclusion.name, exclusion.filter
            ),
        );
        let fix = self.restore.then(|| Planned::Update {
            body: json!({"disabled": true}),
            mask: vec!["disabled".into()],
        });
        (vec![finding], fix)
    }

    /// A sink of `project` (`None`: it does not exist) named `name`.
    pub fn evaluate_sink(
        &self,
        project: &str,
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
        if self.protect_default_sink && name == "_Default" && protected.is_none() {
            let destination = default_sink_destination(project);
            let misses = default_sink_misses(&sink.filter, project);
            if sink.destination != destination || misses.is_some() {
                let why = match &misses {
                    Some(missed) => format!("its filter no longer selects {missed}"),
                    None => format!("it routes to {} instead of {destination}", sink.destination),
                };
                findings.push(self.finding(
                    SINK_CHANGED,
                    format!(
                        "the _Default sink was changed: {why} (filter: {:?})",
                        sink.filter
                    ),
                ));
                if sink.destination != destination {
                    body.insert("destination".into(), json!(destination));
                    mask.insert("destination");
                }
                if misses.is_some() {
                    body.insert("filter".into(), json!(DEFAULT_SINK_FILTER));
                    mask.insert("filter");
                }
            }
        }
        let dropping: Vec<(&Exclusion, String)> = sink
            .exclusions
            .iter()
            .filter_map(|exclusion| {
                self.excludes_audit_logs(project, exclusion)
                    .map(|dropped| (exclusion, dropped))
            })
            .collect();
        if !dropping.is_empty() {
            for (exclusion, dropped) in &dropping {
                findings.push(self.finding(
                    AUDIT_LOG_EXCLUSION,
                    format!(
                        "sink {name}'s exclusion {} drops audit logs: {dropped} (filter: {})",
                        exclusion.name, exclusion.filter
                    ),
                ));
            }
            // Judged once above: the exclusions found dropping audit logs are the ones disabled.
            let kept: Vec<Exclusion> = sink
                .exclusions
                .iter()
                .map(|exclusion| Exclusion {
                    disabled: exclusion.disabled
                        || dropping
                            .iter()
                            .any(|(found, _)| std::ptr::eq(*found, exclusion)),
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
