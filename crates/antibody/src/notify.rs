//! Notification: one structured JSON line per decision, in Cloud Run's logging format.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::event::AuditEvent;
use crate::journal::Record;
use crate::pipeline::Outcome;

/// Where decision lines go.
pub enum LogSink {
    Stdout,
    /// Kept in memory (the demo and tests read them).
    Memory(Mutex<Vec<Value>>),
    Silent,
}

impl LogSink {
    pub fn memory() -> Self {
        LogSink::Memory(Mutex::new(Vec::new()))
    }

    pub fn lines(&self) -> Vec<Value> {
        match self {
            LogSink::Memory(lines) => lines.lock().expect("log sink lock poisoned").clone(),
            _ => Vec::new(),
        }
    }
}

/// Cloud Logging severity for an outcome; routine outcomes are not written at all.
fn severity(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Remediated { .. } => Some("WARNING"),
        Outcome::DryRun { .. } => Some("WARNING"),
        Outcome::Exempt { .. } => Some("NOTICE"),
        Outcome::Detected => Some("NOTICE"),
        Outcome::Failed { .. } => Some("ERROR"),
        Outcome::Refused { .. } => Some("ERROR"),
        Outcome::Held { .. } => Some("ERROR"),
        Outcome::Quarantined { new: true, .. } => Some("CRITICAL"),
        Outcome::Quarantined { new: false, .. } => Some("NOTICE"),
        Outcome::Retry { .. } => Some("ERROR"),
        _ => None,
    }
}

pub fn decision(sink: &LogSink, id: i64, event: &AuditEvent, outcome: &Outcome, record: &Record) {
    if matches!(sink, LogSink::Silent) {
        return;
    }
    let Some(severity) = severity(outcome) else {
        return;
    };
    let policy = record
        .findings
        .first()
        .map(|finding| finding.policy.as_str())
        .unwrap_or("");
    let what = record
        .findings
        .iter()
        .map(|finding| finding.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let message = match outcome {
        Outcome::Remediated { fix } => format!(
            "{}: {what}; antibody {}",
            event.resource_name,
            fix.describe()
        ),
        Outcome::DryRun { fix } => format!(
            "{}: {what}; dry-run, would have {}",
            event.resource_name,
            fix.describe()
        ),
        _ => format!(
            "{}: {} ({})",
            event.resource_name,
            outcome.name(),
            record.reason
        ),
    };
    let line = json!({
        "severity": severity,
        "message": message,
        "logging.googleapis.com/labels": {"policy": policy, "outcome": outcome.name(), "project": event.project},
        "journal_id": id,
        "resource": event.resource_name,
        "method": event.method_name,
        "principal": event.principal,
        "event_time": event.timestamp,
        "caller_ip": event.caller_ip,
        "user_agent": event.user_agent,
        "findings": record.findings,
        "fix": record.fix,
        "before": record.before,
        "after": record.after,
    });
    match sink {
        LogSink::Stdout => println!("{line}"),
        LogSink::Memory(lines) => lines.lock().expect("log sink lock poisoned").push(line),
        LogSink::Silent => {}
    }
}
