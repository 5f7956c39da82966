//! Alerts: what happened, who did it, what antibody changed and how to undo it — rendered for each channel.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::AuditEvent;
use crate::journal::Record;
use crate::outcome::Outcome;
use crate::policy::Severity;

/// The version of the webhook body's schema (documented in README.md).
pub const WEBHOOK_SCHEMA: &str = "antibody.alert/v1";

/// One alert, independent of the channel it goes to; stored in the outbox as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub journal_id: i64,
    pub severity: Severity,
    pub title: String,
    pub outcome: String,
    pub policy: String,
    pub resource: String,
    pub project: String,
    pub principal: String,
    pub caller_ip: String,
    pub user_agent: String,
    pub time: String,
    pub findings: Vec<String>,
    /// What antibody did, or would do in dry-run.
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The exact command that reverts the fix, when there is one.
    pub undo: Option<String>,
    pub console_url: String,
    /// Stable per resource: PagerDuty's `dedup_key`.
    pub dedup_key: String,
    /// The owner named by the resource's owner label: a Slack channel or an e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Fills `{name}` placeholders.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

/// Which outcomes alert, and how loudly.
pub fn severity_of(outcome: &Outcome, record: &Record) -> Option<Severity> {
    let worst = record
        .findings
        .iter()
        .map(|finding| finding.severity)
        .max()
        .unwrap_or(Severity::High);
    match outcome {
        Outcome::Remediated { .. } | Outcome::DryRun { .. } | Outcome::Detected => Some(worst),
        Outcome::Quarantined { new: true, .. } | Outcome::Held { .. } | Outcome::Refused { .. } => {
            Some(Severity::Critical)
        }
        Outcome::Failed { .. } => Some(Severity::High),
        // An operator re-opened what antibody closed: the security team hears about it.
        Outcome::Undone { .. } => Some(Severity::High),
        Outcome::Exempt { .. } if !record.findings.is_empty() => Some(Severity::Low),
        _ => None,
    }
}

/// The resource's page in the Cloud Console, as its kind links it; the project's IAM page for any other name.
fn console_url(resource: &str, project: &str) -> String {
    match crate::kinds::target_of(resource, project) {
        Some(target) => target.console_url(),
        None => format!("https://console.cloud.google.com/iam-admin/iam?project={project}"),
    }
}

/// Stable per resource (each resource kind has one policy), so a later compliant check can resolve the incident.
pub fn dedup_key(resource: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, resource.as_bytes());
    format!("antibody-{}", crate::hex(&digest.as_ref()[..12]))
}

impl Alert {
    pub fn new(
        templates: &crate::config::Templates,
        id: i64,
        severity: Severity,
        event: &AuditEvent,
        outcome: &Outcome,
        record: &Record,
    ) -> Alert {
        let resource = record
            .resource_key
            .clone()
            .unwrap_or_else(|| event.resource_name.clone());
        let policy = record
            .findings
            .first()
            .map(|finding| finding.policy.clone())
            .unwrap_or_default();
        let action = match outcome {
            Outcome::Remediated { fix } => format!("antibody {}", fix.describe()),
            Outcome::DryRun { fix } => format!("dry-run: antibody would have {}", fix.describe()),
            // A hole antibody did not close is said to be open, in the first words a person reads.
            Outcome::Held { reason, .. } => {
                format!("THE HOLE IS STILL OPEN: antibody held the fix back: {reason}")
            }
            Outcome::Quarantined { reason, .. } => format!(
                "THE HOLE IS STILL OPEN: antibody stopped fixing this resource (quarantined): {reason}. Close it by \
                 hand and find who keeps re-opening it; `antibody quarantine release {resource}` lets antibody fix it \
                 again"
            ),
            Outcome::Refused { reason } => {
                format!("THE HOLE IS STILL OPEN: antibody refused the fix: {reason}")
            }
            Outcome::Failed { error } => {
                format!("THE HOLE IS STILL OPEN: the fix failed: {error}")
            }
            Outcome::Exempt { reason } => format!("left alone: {reason}"),
            Outcome::Detected => "reported, nothing to change".to_string(),
            Outcome::Undone { reason } => reason.clone(),
            other => other.name().to_string(),
        };
        let severity_text = format!("{severity:?}");
        let id_text = id.to_string();
        let values = [
            ("resource", resource.as_str()),
            ("project", event.project.as_str()),
            ("principal", event.principal.as_str()),
            ("outcome", outcome.name()),
            ("policy", policy.as_str()),
            ("severity", severity_text.as_str()),
            ("journal_id", id_text.as_str()),
        ];
        let template = match outcome {
            Outcome::Remediated { .. } => &templates.remediated,
            Outcome::DryRun { .. } => &templates.dry_run,
            Outcome::Quarantined { .. } => &templates.quarantined,
            _ => &templates.other,
        };
        let title = render(template, &values);
        Alert {
            journal_id: id,
            severity,
            title,
            outcome: outcome.name().to_string(),
            dedup_key: dedup_key(&resource),
            console_url: console_url(&resource, &event.project),
            policy,
            project: event.project.clone(),
            principal: event.principal.clone(),
            caller_ip: event.caller_ip.clone(),
            user_agent: event.user_agent.clone(),
            time: event.timestamp.clone(),
            findings: record
                .findings
                .iter()
                .map(|finding| finding.message.clone())
                .collect(),
            action,
            before: record.before.clone(),
            after: record.after.clone(),
            undo: matches!(outcome, Outcome::Remediated { .. })
                .then(|| format!("antibody undo {id}")),
            owner: record.owner.clone(),
            resource,
        }
    }

    /// Slack incoming-webhook body with Block Kit and a severity colour.
    pub fn slack(&self) -> Value {
        let colour = match self.severity {
            Severity::Critical => "#b00020",
            Severity::High => "#e65100",
            Severity::Medium => "#f9a825",
            Severity::Low => "#607d8b",
        };
        // Everything but antibody's own words is written by whoever made the change: escaped, and the caller's
        // own strings set in code so that Slack neither links nor formats them.
        let who = format!(
            "{} from {} ({})",
            slack_code(or_dash(&self.principal)),
            slack_code(or_dash(&self.caller_ip)),
            slack_code(or_dash(&self.user_agent))
        );
        let mut fields = vec![
            json!({"type": "mrkdwn", "text": format!("*Resource*\n<{}|{}>", slack_escape(&self.console_url), slack_escape(&self.resource))}),
            json!({"type": "mrkdwn", "text": format!("*Project*\n{}", slack_escape(&self.project))}),
            json!({"type": "mrkdwn", "text": format!("*Changed by*\n{who}")}),
            json!({"type": "mrkdwn", "text": format!("*Severity*\n{:?}", self.severity)}),
        ];
        if let Some(undo) = &self.undo {
            fields.push(json!({"type": "mrkdwn", "text": format!("*Undo*\n`{undo}`")}));
        }
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": slack_escape(&self.title)}}),
            json!({"type": "section", "fields": fields}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*What was wrong*\n{}", slack_escape(&self.findings.join("\n")))}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*What antibody did*\n{}", slack_escape(&self.action))}}),
        ];
        if let (Some(before), Some(after)) = (&self.before, &self.after) {
            // A backtick inside would close the code block and let the rest be formatted.
            let brief = |value: &Value| {
                slack_escape(&value.to_string().chars().take(1200).collect::<String>())
                    .replace('`', "'")
            };
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
                "text": format!("*Before*\n```{}```\n*After*\n```{}```", brief(before), brief(after))}}));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("journal #{} · {}", self.journal_id, slack_escape(&self.time))}]}));
        let mut message = json!({"text": slack_escape(&self.title),
            "attachments": [{"color": colour, "blocks": blocks}]});
        // A channel named by a label: only a plain channel name is taken, never a mention or a link.
        if let Some(owner) = self.owner.as_ref().filter(|owner| !owner.contains('@')) {
            let channel = owner.trim_start_matches('#');
            if !channel.is_empty()
                && channel.len() <= 80
                && channel
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
            {
                message["channel"] = json!(format!("#{channel}"));
            }
        }
        message
    }

    /// An e-mail: a subject, a plain-text part and an HTML part with the same content.
    pub fn email(&self, subject: &str) -> Value {
        let mut text = format!("{}\n\n", self.title);
        let mut rows: Vec<(&str, String)> = vec![
            ("Severity", format!("{:?}", self.severity)),
            ("Resource", self.resource.clone()),
            ("Project", self.project.clone()),
            (
                "Changed by",
                format!(
                    "{} from {} ({})",
                    or_dash(&self.principal),
                    or_dash(&self.caller_ip),
                    or_dash(&self.user_agent)
                ),
            ),
            ("What was wrong", self.findings.join("; ")),
            ("What antibody did", self.action.clone()),
            ("Journal", format!("#{} at {}", self.journal_id, self.time)),
            ("Console", self.console_url.clone()),
        ];
        if let Some(undo) = &self.undo {
            rows.push(("Undo", undo.clone()));
        }
        for (label, value) in &rows {
            text.push_str(&format!("{label}: {value}\n"));
        }
        let escape = |text: &str| {
            text.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;")
        };
        let cells: String = rows
            .iter()
            .map(|(label, value)| {
                format!(
                    "<tr><th align=\"left\">{label}</th><td>{}</td></tr>",
                    escape(value)
                )
            })
            .collect();
        let html = format!(
            "<html><body><h2>{}</h2><table>{cells}</table></body></html>",
            escape(&self.title)
        );
        let severity = format!("{:?}", self.severity);
        let subject = render(
            subject,
            &[
                ("severity", severity.as_str()),
                ("title", self.title.as_str()),
                ("resource", self.resource.as_str()),
            ],
        );
        let mut email = json!({"subject": one_line(&subject), "text": text, "html": html});
        if let Some(owner) = self.owner.as_ref().filter(|owner| owner.contains('@')) {
            email["extra_to"] = json!([owner]);
        }
        email
    }

    /// The generic webhook body: this struct, versioned.
    pub fn webhook(&self) -> Value {
        let mut body = serde_json::to_value(self).expect("an alert serialises");
        body["schema"] = json!(WEBHOOK_SCHEMA);
        body
    }

    /// PagerDuty Events API v2 `trigger`.
    pub fn pagerduty(&self, routing_key: &str) -> Value {
        let severity = match self.severity {
            Severity::Critical => "critical",
            Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low => "info",
        };
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": self.dedup_key,
            "payload": {
                "summary": format!("{}: {}", self.title, self.findings.first().cloned().unwrap_or_default()).chars().take(1024).collect::<String>(),
                "source": self.resource,
                "severity": severity,
                "component": self.policy,
                "group": self.project,
                "class": self.outcome,
                "custom_details": {"action": self.action, "principal": self.principal, "journal_id": self.journal_id, "undo": self.undo},
            },
            "links": [{"href": self.console_url, "text": "Cloud Console"}],
        })
    }
}

/// Slack's control characters in text: `&`, `<` and `>` start entities, links and mentions (`<!channel>`).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A caller's string as inline code: escaped, its backticks replaced so it cannot leave the code span, and so
/// neither linked, nor formatted, nor a mention.
fn slack_code(text: &str) -> String {
    format!("`{}`", slack_escape(&text.replace('`', "'")))
}

/// A header value: control characters (a CR/LF would start a header of its own) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// The signature header of a webhook delivery: `v1=` + hex(HMAC-SHA256(secret, timestamp + "." + body)).
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    format!("v1={}", crate::hex(tag.as_ref()))
}
