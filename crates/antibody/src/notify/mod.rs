//! Notification: one structured JSON line per decision in Cloud Run's logging format, and alerts to channels through
//! the outbox (written with the decision, delivered by `outbox::run`).

pub mod alert;
pub mod outbox;

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::config::{Channel, ChannelKind};
use crate::event::AuditEvent;
use crate::journal::Record;
use crate::journal::{self, Journal, OutboxItem};
use crate::outcome::Outcome;

/// Where decision lines go.
pub enum LogSink {
    Stdout,
    /// Standard error: for commands whose standard output is a report (`scan --fix --format json`).
    Stderr,
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

/// Cloud Logging severity for an outcome: every decision is logged, routine ones at INFO.
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
        _ => Some("INFO"),
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
    let trace = event.trace.as_ref().map(|trace| {
        // Cloud Logging correlates a line with its request trace through the project the logs are written in.
        let project =
            std::env::var("GOOGLE_CLOUD_PROJECT").unwrap_or_else(|_| event.project.clone());
        format!("projects/{project}/traces/{trace}")
    });
    let line = DecisionLine {
        severity,
        message: &message,
        labels: Labels {
            policy,
            outcome: outcome.name(),
            project: &event.project,
        },
        journal_id: id,
        resource: &event.resource_name,
        method: &event.method_name,
        principal: &event.principal,
        event_time: &event.timestamp,
        caller_ip: &event.caller_ip,
        user_agent: &event.user_agent,
        findings: &record.findings,
        fix: record.fix.as_ref(),
        before: record.before.as_ref(),
        after: record.after.as_ref(),
        trace: trace.as_deref(),
    };
    match sink {
        LogSink::Stdout | LogSink::Stderr => {
            // Serialised straight into one buffer and written with one call, so that lines from concurrent
            // requests never interleave.
            let mut buffer = Vec::with_capacity(1024);
            if serde_json::to_writer(&mut buffer, &line).is_ok() {
                buffer.push(b'\n');
                let _ = match sink {
                    LogSink::Stderr => {
                        std::io::Write::write_all(&mut std::io::stderr().lock(), &buffer)
                    }
                    _ => std::io::Write::write_all(&mut std::io::stdout().lock(), &buffer),
                };
            }
        }
        LogSink::Memory(lines) => {
            let value = serde_json::to_value(&line).expect("a decision line serialises");
            lines.lock().expect("log sink lock poisoned").push(value);
        }
        LogSink::Silent => {}
    }
}

/// One decision, as Cloud Run's logging agent reads a JSON line from stdout.
#[derive(serde::Serialize)]
struct DecisionLine<'a> {
    severity: &'static str,
    message: &'a str,
    #[serde(rename = "logging.googleapis.com/labels")]
    labels: Labels<'a>,
    journal_id: i64,
    resource: &'a str,
    method: &'a str,
    principal: &'a str,
    event_time: &'a str,
    caller_ip: &'a str,
    user_agent: &'a str,
    findings: &'a [crate::policy::Finding],
    fix: Option<&'a crate::kinds::Fix>,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    #[serde(
        rename = "logging.googleapis.com/trace",
        skip_serializing_if = "Option::is_none"
    )]
    trace: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct Labels<'a> {
    policy: &'a str,
    outcome: &'static str,
    project: &'a str,
}

/// The outbox rows for one decision: an alert for every channel that wants it, and a PagerDuty `resolve` when a
/// resource with an open incident is found compliant.
pub async fn alerts(
    templates: &crate::config::Templates,
    channels: &[Channel],
    journal: &Journal,
    id: i64,
    event: &AuditEvent,
    outcome: &Outcome,
    record: &Record,
) -> Result<Vec<OutboxItem>, journal::Error> {
    let mut items = Vec::new();
    let item = |channel: &Channel, action: &str, dedup_key: &str, body: Value| OutboxItem {
        id: 0,
        event_id: id,
        channel: channel.name.clone(),
        action: action.into(),
        dedup_key: dedup_key.into(),
        body: body.to_string(),
        state: "pending".into(),
        attempts: 0,
        last_error: None,
    };
    // No channel, no alert to build (the decision line is written either way).
    // A sweep that finds a quarantined resource still open says so again, at the quarantine's severity.
    let still_quarantined = matches!(outcome, Outcome::Quarantined { new: false, .. })
        && matches!(
            event.transport,
            crate::event::Transport::Scan | crate::event::Transport::Recheck
        );
    let severity = alert::severity_of(outcome, record)
        .or(still_quarantined.then_some(crate::policy::Severity::Critical));
    if let Some(severity) = severity
        && !channels.is_empty()
    {
        let alert = alert::Alert::new(templates, id, severity, event, outcome, record);
        for channel in channels
            .iter()
            .filter(|channel| channel.wants(severity, &alert.project, &alert.policy))
        {
            let (action, body) = match &channel.kind {
                ChannelKind::Slack { .. } => ("alert", alert.slack()),
                ChannelKind::Webhook { .. } => ("alert", alert.webhook()),
                ChannelKind::PagerDuty { routing_key, .. } => {
                    ("trigger", alert.pagerduty(routing_key.expose()))
                }
                ChannelKind::Email(_) => ("alert", alert.email(&templates.email_subject)),
            };
            items.push(item(channel, action, &alert.dedup_key, body));
        }
    }
    if let (Outcome::Compliant, Some(resource)) = (outcome, &record.resource_key) {
        let dedup_key = alert::dedup_key(resource);
        for channel in channels {
            let ChannelKind::PagerDuty { routing_key, .. } = &channel.kind else {
                continue;
            };
            if journal.incident_open(&channel.name, &dedup_key).await? {
                let body = json!({"routing_key": routing_key.expose(), "event_action": "resolve", "dedup_key": dedup_key});
                items.push(item(channel, "resolve", &dedup_key, body));
            }
        }
    }
    Ok(items)
}
