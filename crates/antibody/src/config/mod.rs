//! Configuration: `RawConfig` as written in `antibody.toml` (serde), validated into `Config` (pure, all problems at once).

use std::path::PathBuf;

use serde::Deserialize;

use crate::kinds::{Policies, RawPolicies};
use crate::policy::Severity;

mod channel;
mod safety;
mod scope;
mod secret;
mod templates;
use channel::validate_channel;
pub use channel::{Channel, ChannelKind, PAGERDUTY_EVENTS, RawChannel, Smtp, SmtpTls};
use safety::validate_safety;
pub use safety::{DEFAULT_IAC_USER_AGENTS, RawSafety, SafetyLimits};
use scope::validate_scope;
pub use scope::{RawScope, Scope};
pub use secret::{Secret, redact_url};
pub use templates::{RawRouting, RawTemplates, Templates};

/// The file as the user writes it. Every field is optional; the defaults are the safe behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The HTTP receiver and the engine's own identity.
    #[serde(default)]
    pub serve: RawServe,
    /// Policies, each on/off and tunable.
    #[serde(default)]
    pub policies: RawPolicies,
    /// Controls that keep antibody from doing harm at scale.
    #[serde(default)]
    pub safety: RawSafety,
    /// Where alerts go: any number of `[[notify]]` channels.
    #[serde(default)]
    pub notify: Vec<RawChannel>,
    /// The wording of alerts, with `{resource}`, `{project}`, `{principal}`, `{outcome}`, `{policy}`, `{severity}`,
    /// `{journal_id}` (and `{title}` in `email_subject`) filled in.
    #[serde(default)]
    pub templates: RawTemplates,
    /// Who else hears about a resource.
    #[serde(default)]
    pub routing: RawRouting,
    /// The projects antibody may act on and those it must leave alone.
    #[serde(default)]
    pub scope: RawScope,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    /// Port for `antibody serve` (default: the PORT environment variable, else 8080).
    pub port: Option<u16>,
    /// The state store: a SQLite file (default `antibody.sqlite`, or `sqlite://PATH`) or `postgres://…`.
    pub state: Option<PathBuf>,
    /// Base URL that replaces every Google API host (for the sandbox); unset means Google's real endpoints.
    pub google_endpoint: Option<String>,
    /// Speak HTTP/2 without TLS to a plain `http://` `google_endpoint` (antibody's sandbox serves it), so that calls
    /// share a connection as they do with Google, whose `https://` endpoints negotiate HTTP/2 by themselves.
    pub google_http2: Option<bool>,
    /// Bearer token to send to Google. Unset: tokens come from the metadata server (Cloud Run, GCE), or, with a
    /// `google_endpoint` override and no metadata host, no Authorization header is sent (the sandbox accepts that).
    pub access_token: Option<Secret>,
    /// The metadata server's host:port (default: the GCE_METADATA_HOST environment variable, else
    /// metadata.google.internal when talking to Google).
    pub metadata_host: Option<String>,
    /// Act as this service account, impersonated with the Application Default Credentials (which need
    /// `roles/iam.serviceAccountTokenCreator` on it).
    pub impersonate: Option<String>,
    /// Most requests per second antibody sends to Google's APIs for any one project (0 = no limit).
    pub max_requests_per_second_per_project: Option<u32>,
    /// Principals that are antibody itself: events they cause are journaled and never acted on (loop guard).
    #[serde(default)]
    pub identities: Vec<String>,
    /// Journal every plan but change nothing, for every policy.
    #[serde(default)]
    pub dry_run: bool,
    /// Serve without verifying who posts events (local use only).
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// The audience push tokens must name: the push subscription's audience, by default the service URL.
    pub push_audience: Option<String>,
    /// Service accounts allowed to push (the trigger's or subscription's account).
    #[serde(default)]
    pub push_emails: Vec<String>,
    /// Shared secret for self-hosted senders: requests carry `X-Antibody-Timestamp`, `X-Antibody-Nonce` and
    /// `X-Antibody-Signature: v2=HEX`, HMAC-SHA256 over `TIMESTAMP.NONCE.METHOD.PATH.BODY` (pushes also accept `v1`
    /// over `TIMESTAMP.BODY`, the scheme antibody's webhooks use); also `ANTIBODY_PUSH_SECRET`.
    pub push_secret: Option<Secret>,
    /// Where the token signing keys are published (default Google's https://www.googleapis.com/oauth2/v3/certs).
    pub jwks_url: Option<String>,
    /// Events handled at once; beyond it the receiver answers 503 so that the sender redelivers later (default 2048:
    /// handling mostly waits on Google, so the limit is sized for waiting, not for CPU).
    pub max_in_flight: Option<usize>,
    /// Projects `serve` also sweeps on a timer, as a backstop for lost events (default: none).
    #[serde(default)]
    pub sweep_projects: Vec<String>,
    /// Minutes between sweeps (default 15; 0 turns the timer off).
    pub sweep_minutes: Option<u32>,
    /// When the process has CPU: `always` (the default: alerts, their retries and deferred decisions run on timers
    /// beside the receiver) or `request` (Cloud Run's request-based billing: the instance has CPU only while it
    /// answers, so a decision's alerts go out before its push is acknowledged and the rest runs on `POST /tick`,
    /// which Cloud Scheduler calls every minute). Also `ANTIBODY_CPU`.
    pub cpu: Option<Cpu>,
}

/// When the process has CPU to spend on work that is due later (`serve.cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Cpu {
    /// Always: timers beside the receiver deliver alerts and decide deferred changes again.
    #[default]
    Always,
    /// Only while answering a request: nothing runs on a timer; due work runs on `POST /tick`.
    Request,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub state: PathBuf,
    pub google_endpoint: Option<String>,
    pub google_http2: bool,
    pub access_token: Option<Secret>,
    pub metadata_host: Option<String>,
    pub impersonate: Option<String>,
    pub max_requests_per_second_per_project: u32,
    pub identities: Vec<String>,
    pub dry_run: bool,
    pub insecure_no_auth: bool,
    pub push_audience: Option<String>,
    pub push_emails: Vec<String>,
    pub jwks_url: Option<String>,
    pub push_secret: Option<Secret>,
    pub sweep_projects: Vec<String>,
    pub sweep_minutes: u32,
    pub cpu: Cpu,
    pub max_in_flight: usize,
    /// Every kind's policy, by the field its registry line names (`config.policies.<field>`).
    pub policies: Policies,
    pub safety: SafetyLimits,
    pub scope: Scope,
    pub channels: Vec<Channel>,
    pub templates: Templates,
    pub owner_label: Option<String>,
}

/// The fewest bytes a shared secret may have.
pub const MIN_SECRET: usize = 32;

/// The fewest different characters a shared secret may have (`openssl rand -hex 32` has about 16).
pub const MIN_DISTINCT: usize = 8;

/// Every problem found, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct Error {
    pub problems: Vec<String>,
}

/// What the process's environment adds to the configuration (file values win). The binary reads it, so that
/// `Config::validate` stays pure.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `PORT` (Cloud Run sets it).
    pub port: Option<String>,
    /// `GCE_METADATA_HOST`.
    pub metadata_host: Option<String>,
    /// `ANTIBODY_PUSH_AUDIENCE`.
    pub push_audience: Option<String>,
    /// `ANTIBODY_PUSH_EMAILS`, comma-separated.
    pub push_emails: Option<String>,
    /// `ANTIBODY_PUSH_SECRET`.
    pub push_secret: Option<Secret>,
    /// `ANTIBODY_CPU`: `always` or `request`.
    pub cpu: Option<String>,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, Error> {
        Config::parse_in(text, &Environment::default())
    }

    /// Parses and validates `text` with what `environment` adds.
    pub fn parse_in(text: &str, environment: &Environment) -> Result<Config, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| Error {
            problems: vec![err.to_string()],
        })?;
        Config::validate_in(raw, environment)
    }

    pub fn validate(raw: RawConfig) -> Result<Config, Error> {
        Config::validate_in(raw, &Environment::default())
    }

    /// Pure: every problem at once, each naming its key.
    pub fn validate_in(raw: RawConfig, environment: &Environment) -> Result<Config, Error> {
        let mut problems = Vec::new();
        let env_port = environment
            .port
            .as_deref()
            .and_then(|port| port.parse().ok());
        let policies = Policies::validate(raw.policies, &mut problems);
        let channels: Vec<Channel> = raw
            .notify
            .into_iter()
            .enumerate()
            .filter_map(|(index, channel)| validate_channel(index, channel, &mut problems))
            .collect();
        let safety = validate_safety(raw.safety, &mut problems);
        let scope = validate_scope(raw.scope, &mut problems);
        let push_secret = raw
            .serve
            .push_secret
            .or_else(|| environment.push_secret.clone());
        if let Some(secret) = &push_secret {
            // An empty secret would turn authentication off without a word; a short one can be guessed, and so can
            // one of spaces or of one repeated character, whatever its length.
            let text = secret.expose();
            let meaningful = text
                .bytes()
                .filter(|byte| !byte.is_ascii_whitespace())
                .count();
            let distinct = text
                .bytes()
                .collect::<std::collections::BTreeSet<u8>>()
                .len();
            if meaningful < MIN_SECRET {
                problems.push(format!(
                    "serve.push_secret (or ANTIBODY_PUSH_SECRET): {meaningful} bytes besides white space is too short; \
                     a shared secret needs at least {MIN_SECRET} (e.g. `openssl rand -hex 32`)"
                ));
            } else if distinct < MIN_DISTINCT {
                problems.push(format!(
                    "serve.push_secret (or ANTIBODY_PUSH_SECRET): only {distinct} different characters; a shared \
                     secret is random (e.g. `openssl rand -hex 32`)"
                ));
            }
        }
        let cpu = match (raw.serve.cpu, environment.cpu.as_deref()) {
            (Some(cpu), _) => cpu,
            (None, None) => Cpu::Always,
            (None, Some(text)) => {
                <Cpu as clap::ValueEnum>::from_str(text, true).unwrap_or_else(|_| {
                    problems.push(format!(
                        "ANTIBODY_CPU: '{}' is not one of always, request",
                        text.escape_debug()
                    ));
                    Cpu::Always
                })
            }
        };
        let endpoint = raw.serve.google_endpoint.as_deref().unwrap_or("https://");
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            problems.push(format!(
                "serve.google_endpoint: '{endpoint}' must start with http:// or https://"
            ));
        }
        if !problems.is_empty() {
            return Err(Error { problems });
        }
        Ok(Config {
            port: raw.serve.port.or(env_port).unwrap_or(8080),
            state: raw
                .serve
                .state
                .unwrap_or_else(|| PathBuf::from("antibody.sqlite")),
            google_endpoint: raw
                .serve
                .google_endpoint
                .map(|url| url.trim_end_matches('/').to_string()),
            google_http2: raw.serve.google_http2.unwrap_or(false),
            access_token: raw.serve.access_token,
            metadata_host: raw
                .serve
                .metadata_host
                .or_else(|| environment.metadata_host.clone()),
            impersonate: raw.serve.impersonate,
            max_requests_per_second_per_project: raw
                .serve
                .max_requests_per_second_per_project
                .unwrap_or(0),
            identities: raw.serve.identities,
            dry_run: raw.serve.dry_run,
            insecure_no_auth: raw.serve.insecure_no_auth,
            push_audience: raw
                .serve
                .push_audience
                .or_else(|| environment.push_audience.clone()),
            push_emails: if raw.serve.push_emails.is_empty() {
                environment
                    .push_emails
                    .as_deref()
                    .map(|emails| emails.split(',').map(str::to_string).collect())
                    .unwrap_or_default()
            } else {
                raw.serve.push_emails
            },
            jwks_url: raw.serve.jwks_url,
            push_secret,
            sweep_projects: raw.serve.sweep_projects,
            sweep_minutes: raw.serve.sweep_minutes.unwrap_or(15),
            cpu,
            max_in_flight: raw.serve.max_in_flight.unwrap_or(2048).max(1),
            policies,
            safety,
            scope,
            channels,
            templates: {
                let defaults = Templates::default();
                let raw = raw.templates;
                Templates {
                    remediated: raw.remediated.unwrap_or(defaults.remediated),
                    dry_run: raw.dry_run.unwrap_or(defaults.dry_run),
                    quarantined: raw.quarantined.unwrap_or(defaults.quarantined),
                    other: raw.other.unwrap_or(defaults.other),
                    email_subject: raw.email_subject.unwrap_or(defaults.email_subject),
                }
            },
            owner_label: raw.routing.owner_label,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::validate(RawConfig::default()).expect("the defaults are valid")
    }
}

/// A policy's `fix`: `word` (the default: fix) or `alert` (report only), as whether to fix.
pub(crate) fn fixes(key: &str, text: Option<&str>, word: &str, problems: &mut Vec<String>) -> bool {
    match text {
        None => true,
        Some(given) if given == word => true,
        Some("alert") => false,
        Some(other) => {
            problems.push(format!("{key}.fix: '{other}' is not one of {word}, alert"));
            true
        }
    }
}

/// `enforce` or `dry-run`, as a dry-run flag.
pub(crate) fn mode(key: &str, mode: Option<&str>, problems: &mut Vec<String>) -> bool {
    match mode {
        None | Some("enforce") => false,
        Some("dry-run") => true,
        Some(other) => {
            problems.push(format!(
                "{key}.mode: '{other}' is not one of enforce, dry-run"
            ));
            false
        }
    }
}

pub(crate) fn severity(
    key: &str,
    text: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<Severity> {
    let severity = match text?.to_ascii_uppercase().as_str() {
        "LOW" => Severity::Low,
        "MEDIUM" => Severity::Medium,
        "HIGH" => Severity::High,
        "CRITICAL" => Severity::Critical,
        other => {
            problems.push(format!(
                "{key}: '{other}' is not one of LOW, MEDIUM, HIGH, CRITICAL"
            ));
            return None;
        }
    };
    Some(severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../../antibody.example.toml");
        let config = Config::parse(text).expect("antibody.example.toml is valid");
        assert_eq!(config.scope.exclude_projects, ["*-playground"]);
        assert_eq!(config.safety.max_fixes_per_project_per_hour, 10);
    }

    // Issue 17, item 8: a breaker failure rate above 1 was accepted (and silently clamped).
    #[test]
    fn a_breaker_rate_outside_zero_to_one_is_refused() {
        for rate in ["1.5", "-0.1", "nan"] {
            let err = Config::parse(&format!("[safety]\nbreaker_failure_rate = {rate}\n"))
                .expect_err(rate);
            assert!(
                err.to_string().contains("safety.breaker_failure_rate"),
                "{err}"
            );
        }
        assert!(Config::parse("[safety]\nbreaker_failure_rate = 1.0\n").is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("[serve]\nprot = 1\n").expect_err("typo");
        assert!(err.to_string().contains("prot"), "{err}");
    }
}
