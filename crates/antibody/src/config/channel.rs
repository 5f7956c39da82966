//! Alert channels in the configuration: `[[notify]]` tables and `--notify KIND=VALUE` flags.

use serde::Deserialize;

use super::secret::{Secret, redact_url};
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
    /// The incoming-webhook URL is the credential.
    Slack {
        url: Secret,
    },
    Webhook {
        url: String,
        secret: Option<Secret>,
    },
    PagerDuty {
        url: String,
        routing_key: Secret,
    },
    /// SMTP: `smtp://[user:password@]host[:port]/?to=a@b[,c@d][&from=x@y][&tls=starttls|none]`, or `smtps://` for
    /// implicit TLS.
    Email(Smtp),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Implicit TLS (smtps, usually port 465).
    Tls,
    /// STARTTLS on a plain connection (usually port 587): the default.
    StartTls,
    /// No encryption: local relays and tests only.
    None,
}

impl Smtp {
    pub fn parse(text: &str) -> Result<Smtp, String> {
        let url =
            reqwest::Url::parse(text).map_err(|err| format!("the SMTP URL is not a URL: {err}"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(format!("'{other}' is not smtp or smtps")),
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or("the SMTP URL names no host")?
            .to_string();
        let query = |key: &str| {
            url.query_pairs()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.into_owned())
        };
        let to: Vec<String> = query("to")
            .unwrap_or_default()
            .split(',')
            .filter(|to| !to.is_empty())
            .map(str::to_string)
            .collect();
        if to.is_empty() {
            return Err("the SMTP URL needs ?to=ADDRESS".into());
        }
        let tls = match (implicit, query("tls").as_deref()) {
            (true, _) => SmtpTls::Tls,
            (false, None | Some("starttls")) => SmtpTls::StartTls,
            (false, Some("none")) => SmtpTls::None,
            (false, Some(other)) => return Err(format!("tls={other} is not starttls or none")),
        };
        let decode = |text: &str| {
            reqwest::Url::parse(&format!("x://h/{text}"))
                .ok()
                .and_then(|url| {
                    url.path_segments()
                        .and_then(|mut segments| segments.next().map(str::to_string))
                })
                .map(|segment| percent_decode(&segment))
        };
        Ok(Smtp {
            port: url.port().unwrap_or(if implicit { 465 } else { 587 }),
            username: (!url.username().is_empty())
                .then(|| decode(url.username()).unwrap_or_default()),
            password: url
                .password()
                .map(|password| Secret::new(decode(password).unwrap_or_default())),
            tls,
            from: query("from").unwrap_or_else(|| format!("antibody@{host}")),
            to,
            host,
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let decoded = (bytes[index] == b'%')
            .then(|| {
                text.get(index + 1..index + 3)
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            })
            .flatten();
        match decoded {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

impl Channel {
    /// `--notify slack=URL`, `webhook=URL` (signed with `secret`), `pagerduty=ROUTING_KEY`, or an SMTP URL.
    pub fn from_flag(index: usize, flag: &str, secret: Option<&str>) -> Result<Channel, String> {
        if flag.starts_with("smtp://") || flag.starts_with("smtps://") {
            let raw = RawChannel {
                kind: "email".into(),
                url: Some(flag.into()),
                ..RawChannel::default()
            };
            let mut problems = Vec::new();
            return match (
                validate_channel(index, raw, &mut problems),
                problems.is_empty(),
            ) {
                (Some(channel), true) => Ok(channel),
                _ => Err(format!(
                    "--notify {}: {}",
                    redact_url(flag),
                    problems.join("; ")
                )),
            };
        }
        let (kind, value) = flag
            .split_once('=')
            .ok_or_else(|| "--notify: expected KIND=VALUE or an smtp:// URL".to_string())?;
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
                    "--notify {other}=…: '{other}' is not one of slack, webhook, pagerduty"
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
        Some(_) => {
            problems.push(format!("{key}.url must start with http:// or https://"));
            None
        }
        None => {
            problems.push(format!("{key}.url is required for {}", raw.kind));
            None
        }
    };
    let kind = match raw.kind.as_str() {
        "slack" => ChannelKind::Slack {
            url: Secret::new(url(problems)?),
        },
        "webhook" => ChannelKind::Webhook {
            url: url(problems)?,
            secret: raw.secret.clone().map(Secret::new),
        },
        "pagerduty" => match raw.routing_key.clone() {
            Some(routing_key) if !routing_key.is_empty() => ChannelKind::PagerDuty {
                url: raw.url.clone().unwrap_or_else(|| PAGERDUTY_EVENTS.into()),
                routing_key: Secret::new(routing_key),
            },
            _ => {
                problems.push(format!("{key}.routing_key is required for pagerduty"));
                return None;
            }
        },
        "email" => match raw.url.as_deref().map(Smtp::parse) {
            Some(Ok(smtp)) => ChannelKind::Email(smtp),
            Some(Err(message)) => {
                problems.push(format!("{key}.url: {message}"));
                return None;
            }
            None => {
                problems.push(format!(
                    "{key}.url is required for email (smtp://user:password@host:port/?to=a@b)"
                ));
                return None;
            }
        },
        other => {
            problems.push(format!(
                "{key}.kind: '{other}' is not one of slack, webhook, pagerduty, email"
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
