//! Alert channels in the configuration: `[[notify]]` tables and `--notify KIND=VALUE` flags.

use serde::Deserialize;

use super::severity;
use crate::policy::Severity;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    /// `slack` (incoming webhook), `webhook` (signed JSON) or `pagerduty` (Events API v2).
    pub kind: String,
    /// The Slack or webhook URL; for PagerDuty the Events API endpoint (default
    /// https://events.pagerduty.com/v2/enqueue).
    pub url: Option<String>,
    /// PagerDuty's integration (routing) key.
    pub routing_key: Option<String>,
    /// Webhook only: HMAC-SHA256 secret for the `X-Antibody-Signature` header.
    pub secret: Option<String>,
    /// Alerts below this severity are not sent here (LOW, MEDIUM, HIGH, CRITICAL; default LOW).
    pub min_severity: Option<String>,
    /// Slack and webhook: when more than this many alerts wait for this channel at once (a flood, a `scan --fix`),
    /// they go as one summary message (default 10; 0 = never).
    pub digest_after: Option<usize>,
    /// Only alerts about these projects (default: all).
    #[serde(default)]
    pub projects: Vec<String>,
    /// Only alerts from these policies (default: all).
    #[serde(default)]
    pub policies: Vec<String>,
}

/// A validated alert channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// `kind#index`, the outbox's name for it.
    pub name: String,
    pub kind: ChannelKind,
    pub min_severity: Severity,
    pub projects: Vec<String>,
    pub policies: Vec<String>,
    pub digest_after: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    Slack { url: String },
    Webhook { url: String, secret: Option<String> },
    PagerDuty { url: String, routing_key: String },
}

pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

impl Channel {
    /// `--notify slack=URL`, `webhook=URL` (signed with `secret`), `pagerduty=ROUTING_KEY`.
    pub fn from_flag(index: usize, flag: &str, secret: Option<&str>) -> Result<Channel, String> {
        let (kind, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("--notify {flag}: expected KIND=VALUE"))?;
        let raw = match kind {
            "slack" | "webhook" => RawChannel {
                kind: kind.into(),
                url: Some(value.into()),
                secret: secret.map(str::to_string),
                ..RawChannel::default()
            },
            "pagerduty" => RawChannel {
                kind: kind.into(),
                routing_key: Some(value.into()),
                ..RawChannel::default()
            },
            other => {
                return Err(format!(
                    "--notify {flag}: '{other}' is not one of slack, webhook, pagerduty"
                ));
            }
        };
        let mut problems = Vec::new();
        let channel = validate_channel(index, raw, &mut problems);
        match (channel, problems.is_empty()) {
            (Some(channel), true) => Ok(channel),
            _ => Err(problems.join("; ")),
        }
    }

    /// Whether an alert of this severity, project and policy goes to this channel.
    pub fn wants(&self, severity: Severity, project: &str, policy: &str) -> bool {
        severity >= self.min_severity
            && (self.projects.is_empty() || self.projects.iter().any(|wanted| wanted == project))
            && (self.policies.is_empty() || self.policies.iter().any(|wanted| wanted == policy))
    }
}

pub(super) fn validate_channel(
    index: usize,
    raw: RawChannel,
    problems: &mut Vec<String>,
) -> Option<Channel> {
    let key = format!("notify[{index}]");
    let url = |problems: &mut Vec<String>| match raw.url.clone() {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => Some(url),
        Some(url) => {
            problems.push(format!(
                "{key}.url: '{url}' must start with http:// or https://"
            ));
            None
        }
        None => {
            problems.push(format!("{key}.url is required for {}", raw.kind));
            None
        }
    };
    let kind = match raw.kind.as_str() {
        "slack" => ChannelKind::Slack {
            url: url(problems)?,
        },
        "webhook" => ChannelKind::Webhook {
            url: url(problems)?,
            secret: raw.secret.clone(),
        },
        "pagerduty" => match raw.routing_key.clone() {
            Some(routing_key) if !routing_key.is_empty() => ChannelKind::PagerDuty {
                url: raw.url.clone().unwrap_or_else(|| PAGERDUTY_EVENTS.into()),
                routing_key,
            },
            _ => {
                problems.push(format!("{key}.routing_key is required for pagerduty"));
                return None;
            }
        },
        other => {
            problems.push(format!(
                "{key}.kind: '{other}' is not one of slack, webhook, pagerduty"
            ));
            return None;
        }
    };
    Some(Channel {
        name: format!("{}#{index}", raw.kind),
        kind,
        digest_after: raw.digest_after.unwrap_or(10),
        min_severity: severity(
            &format!("{key}.min_severity"),
            raw.min_severity.as_deref(),
            problems,
        )
        .unwrap_or(Severity::Low),
        projects: raw.projects,
        policies: raw.policies,
    })
}
