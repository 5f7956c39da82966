//! Configuration: `RawConfig` as written in `antibody.toml` (serde), validated into `Config` (pure, all problems at once).

use std::path::PathBuf;

use serde::Deserialize;

use crate::policy::Severity;

mod channel;
mod safety;
mod templates;
use crate::policy::bucket::{BucketPolicy, PreventionMode};
use crate::policy::firewall::{FirewallPolicy, FixKind, PortRule};
use crate::policy::ports::{self, Protocol};
use crate::policy::project_iam::ProjectIamPolicy;
use channel::validate_channel;
pub use channel::{Channel, ChannelKind, PAGERDUTY_EVENTS, RawChannel, Smtp, SmtpTls};
use safety::validate_safety;
pub use safety::{DEFAULT_IAC_USER_AGENTS, RawSafety, SafetyLimits};
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
    /// Bearer token to send to Google. Unset: tokens come from the metadata server (Cloud Run, GCE), or, with a
    /// `google_endpoint` override and no metadata host, no Authorization header is sent (the sandbox accepts that).
    pub access_token: Option<String>,
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
    /// Shared secret for self-hosted senders: pushes carry `X-Antibody-Timestamp` and `X-Antibody-Signature: v1=HEX`,
    /// HMAC-SHA256 over `TIMESTAMP.BODY` (the same scheme antibody's webhooks use); also `ANTIBODY_PUSH_SECRET`.
    pub push_secret: Option<String>,
    /// Where the token signing keys are published (default Google's https://www.googleapis.com/oauth2/v3/certs).
    pub jwks_url: Option<String>,
    /// Events handled at once; beyond it the receiver answers 503 so that the sender redelivers later (default 256).
    pub max_in_flight: Option<usize>,
    /// Projects `serve` also sweeps on a timer, as a backstop for lost events (default: none).
    #[serde(default)]
    pub sweep_projects: Vec<String>,
    /// Minutes between sweeps (default 15; 0 turns the timer off).
    pub sweep_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    /// Firewall rules that open risky ports to (almost) everyone.
    #[serde(default)]
    pub open_firewall: RawFirewallPolicy,
    /// Project IAM grants that must never exist.
    #[serde(default)]
    pub project_iam: RawProjectIamPolicy,
    /// Buckets readable or writable by allUsers / allAuthenticatedUsers.
    #[serde(default)]
    pub public_bucket: RawBucketPolicy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucketPolicy {
    /// Wait this long before enforcing (to let Terraform or a person finish), then decide again on the live state
    /// (default 0: at once).
    pub grace_seconds: Option<u32>,
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// A bucket carrying this label is meant to be public (default `antibody-exempt`; its value is the reason).
    pub exempt_label: Option<String>,
    /// Bucket names meant to be public; `*` matches any run.
    #[serde(default)]
    pub allow_buckets: Vec<String>,
    /// Report buckets without public access prevention, at this severity (LOW, MEDIUM, HIGH, CRITICAL; default: off).
    pub flag_public_access_prevention: Option<String>,
    /// When to enforce public access prevention: `never`, `when-public` (default) or `always`.
    pub enforce_public_access_prevention: Option<String>,
    /// Report buckets with fine-grained ACLs (uniform access off), at this severity (default: off).
    pub flag_uniform_access: Option<String>,
    /// Switch uniform bucket-level access on when fixing (default: off; it disables ACLs for good after 90 days).
    #[serde(default)]
    pub enable_uniform_access: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjectIamPolicy {
    /// Wait this long before enforcing (to let Terraform or a person finish), then decide again on the live state
    /// (default 0: at once).
    pub grace_seconds: Option<u32>,
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// The organisation's domains (`example.com` also admits `eng.example.com`). With none, only consumer domains
    /// count as outsiders.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Consumer e-mail domains (default: gmail.com, googlemail.com, yahoo.com, outlook.com and other webmail).
    pub consumer_domains: Option<Vec<String>>,
    /// Flag any role held by an outsider (default: on).
    pub external_members: Option<bool>,
    /// Flag roles/owner and roles/editor held by an outsider (default: on).
    pub primitive_roles: Option<bool>,
    /// Also flag roles/owner and roles/editor held by service accounts (default: off; default compute accounts hold editor).
    pub primitive_roles_for_service_accounts: Option<bool>,
    /// Roles that are high-risk in an outsider's hands; `*` matches any run (default includes `roles/*Admin`).
    pub high_risk_roles: Option<Vec<String>>,
    /// Members never touched, besides Google's service agents; `*` matches any run.
    #[serde(default)]
    pub allow_members: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirewallPolicy {
    /// Wait this long before enforcing (to let Terraform or a person finish), then decide again on the live state
    /// (default 0: at once).
    pub grace_seconds: Option<u32>,
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// `disable` (default), `narrow` (remove only the world-wide sources for the risky ports) or `delete`.
    pub fix: Option<String>,
    /// An IPv4 range with a prefix this short or shorter counts as "almost everyone" (default 8), unless private.
    pub broad_prefix_v4: Option<u8>,
    /// The same threshold for IPv6 (default 16).
    pub broad_prefix_v6: Option<u8>,
    /// Replace the default risky-port table (`[{name, protocol, ports}]`, ports like "22" or "27017-27019").
    pub ports: Option<Vec<RawPortRule>>,
    /// Add to the default table.
    #[serde(default)]
    pub extra_ports: Vec<RawPortRule>,
    /// Also flag HTTP (tcp/80), which is off by default because public web servers are normal.
    #[serde(default)]
    pub include_http: bool,
    /// Rule names never touched; `*` at the end matches any suffix (default: `gke-*`, `k8s-*`).
    pub allow_rules: Option<Vec<String>>,
    /// Principals whose changes are left alone; `*` matches any run of characters (default: GKE's service agents).
    pub allow_principals: Option<Vec<String>>,
    /// A rule whose description contains this marker is exempt (firewall rules have no labels).
    pub exempt_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortRule {
    /// A name for findings, e.g. `SSH`.
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// A port or an inclusive range: "22", "27017-27019".
    pub ports: String,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub state: PathBuf,
    pub google_endpoint: Option<String>,
    pub access_token: Option<String>,
    pub metadata_host: Option<String>,
    pub impersonate: Option<String>,
    pub max_requests_per_second_per_project: u32,
    pub identities: Vec<String>,
    pub dry_run: bool,
    pub insecure_no_auth: bool,
    pub push_audience: Option<String>,
    pub push_emails: Vec<String>,
    pub jwks_url: Option<String>,
    pub push_secret: Option<String>,
    pub sweep_projects: Vec<String>,
    pub sweep_minutes: u32,
    pub max_in_flight: usize,
    pub firewall: FirewallPolicy,
    pub project_iam: ProjectIamPolicy,
    pub bucket: BucketPolicy,
    pub safety: SafetyLimits,
    pub channels: Vec<Channel>,
    pub templates: Templates,
    pub owner_label: Option<String>,
}

/// Every problem found, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct Error {
    pub problems: Vec<String>,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| Error {
            problems: vec![err.to_string()],
        })?;
        Config::validate(raw)
    }

    pub fn validate(raw: RawConfig) -> Result<Config, Error> {
        let mut problems = Vec::new();
        let env_port = std::env::var("PORT")
            .ok()
            .and_then(|port| port.parse().ok());
        let firewall = validate_firewall(raw.policies.open_firewall, &mut problems);
        let project_iam = validate_project_iam(raw.policies.project_iam, &mut problems);
        let bucket = validate_bucket(raw.policies.public_bucket, &mut problems);
        let channels: Vec<Channel> = raw
            .notify
            .into_iter()
            .enumerate()
            .filter_map(|(index, channel)| validate_channel(index, channel, &mut problems))
            .collect();
        let safety = validate_safety(raw.safety, &mut problems);
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
            access_token: raw.serve.access_token,
            metadata_host: raw
                .serve
                .metadata_host
                .or_else(|| std::env::var("GCE_METADATA_HOST").ok()),
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
                .or_else(|| std::env::var("ANTIBODY_PUSH_AUDIENCE").ok()),
            push_emails: if raw.serve.push_emails.is_empty() {
                std::env::var("ANTIBODY_PUSH_EMAILS")
                    .map(|emails| emails.split(',').map(str::to_string).collect())
                    .unwrap_or_default()
            } else {
                raw.serve.push_emails
            },
            jwks_url: raw.serve.jwks_url,
            push_secret: raw
                .serve
                .push_secret
                .or_else(|| std::env::var("ANTIBODY_PUSH_SECRET").ok()),
            sweep_projects: raw.serve.sweep_projects,
            sweep_minutes: raw.serve.sweep_minutes.unwrap_or(15),
            max_in_flight: raw.serve.max_in_flight.unwrap_or(256).max(1),
            firewall,
            project_iam,
            bucket,
            safety,
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

/// `enforce` or `dry-run`, as a dry-run flag.
fn mode(key: &str, mode: Option<&str>, problems: &mut Vec<String>) -> bool {
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

pub(super) fn severity(
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

fn validate_bucket(raw: RawBucketPolicy, problems: &mut Vec<String>) -> BucketPolicy {
    let key = "policies.public_bucket";
    let defaults = BucketPolicy::default();
    let enforce = match raw.enforce_public_access_prevention.as_deref() {
        None => defaults.enforce_public_access_prevention,
        Some("never") => PreventionMode::Never,
        Some("when-public") => PreventionMode::WhenPublic,
        Some("always") => PreventionMode::Always,
        Some(other) => {
            problems.push(format!("{key}.enforce_public_access_prevention: '{other}' is not one of never, when-public, always"));
            defaults.enforce_public_access_prevention
        }
    };
    BucketPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        exempt_label: raw.exempt_label.unwrap_or(defaults.exempt_label),
        allow_buckets: raw.allow_buckets,
        flag_public_access_prevention: severity(
            &format!("{key}.flag_public_access_prevention"),
            raw.flag_public_access_prevention.as_deref(),
            problems,
        ),
        enforce_public_access_prevention: enforce,
        flag_uniform_access: severity(
            &format!("{key}.flag_uniform_access"),
            raw.flag_uniform_access.as_deref(),
            problems,
        ),
        enable_uniform_access: raw.enable_uniform_access,
    }
}

fn validate_project_iam(raw: RawProjectIamPolicy, problems: &mut Vec<String>) -> ProjectIamPolicy {
    let key = "policies.project_iam";
    let defaults = ProjectIamPolicy::default();
    for domain in &raw.allowed_domains {
        let valid = !domain.is_empty()
            && domain.split('.').count() >= 2
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            problems.push(format!(
                "{key}.allowed_domains: '{domain}' is not a domain name like example.com"
            ));
        }
    }
    ProjectIamPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        allowed_domains: raw
            .allowed_domains
            .iter()
            .map(|domain| domain.to_ascii_lowercase())
            .collect(),
        consumer_domains: raw.consumer_domains.unwrap_or(defaults.consumer_domains),
        external_members: raw.external_members.unwrap_or(defaults.external_members),
        primitive_roles: raw.primitive_roles.unwrap_or(defaults.primitive_roles),
        primitive_roles_for_service_accounts: raw
            .primitive_roles_for_service_accounts
            .unwrap_or(defaults.primitive_roles_for_service_accounts),
        high_risk_roles: raw.high_risk_roles.unwrap_or(defaults.high_risk_roles),
        allow_members: raw.allow_members,
    }
}

fn validate_firewall(raw: RawFirewallPolicy, problems: &mut Vec<String>) -> FirewallPolicy {
    let mut policy = FirewallPolicy::default();
    let key = "policies.open_firewall";
    policy.enabled = raw.enabled.unwrap_or(true);
    policy.dry_run = mode(key, raw.mode.as_deref(), problems);
    policy.grace_secs = raw.grace_seconds.unwrap_or(0);
    match raw.fix.as_deref() {
        None | Some("disable") => policy.fix = FixKind::Disable,
        Some("narrow") => policy.fix = FixKind::Narrow,
        Some("delete") => policy.fix = FixKind::Delete,
        Some(other) => problems.push(format!(
            "{key}.fix: '{other}' is not one of disable, narrow, delete"
        )),
    }
    if let Some(bits) = raw.broad_prefix_v4 {
        if bits > 32 {
            problems.push(format!("{key}.broad_prefix_v4: {bits} is more than 32"));
        }
        policy.broad_prefix_v4 = bits;
    }
    if let Some(bits) = raw.broad_prefix_v6 {
        if bits > 128 {
            problems.push(format!("{key}.broad_prefix_v6: {bits} is more than 128"));
        }
        policy.broad_prefix_v6 = bits;
    }
    let mut table = match raw.ports {
        Some(rules) => port_rules(&format!("{key}.ports"), rules, problems),
        None => ports::default_table(raw.include_http),
    };
    table.extend(port_rules(
        &format!("{key}.extra_ports"),
        raw.extra_ports,
        problems,
    ));
    policy.ports = table;
    if let Some(rules) = raw.allow_rules {
        policy.allow_rules = rules;
    }
    if let Some(principals) = raw.allow_principals {
        policy.allow_principals = principals;
    }
    if let Some(marker) = raw.exempt_marker {
        policy.exempt_marker = marker;
    }
    policy
}

fn port_rules(key: &str, rules: Vec<RawPortRule>, problems: &mut Vec<String>) -> Vec<PortRule> {
    let mut table = Vec::new();
    for (index, rule) in rules.into_iter().enumerate() {
        let protocol = match Protocol::parse(&rule.protocol) {
            Some(protocol @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp)) => protocol,
            _ => {
                problems.push(format!(
                    "{key}[{index}].protocol: '{}' is not one of tcp, udp, sctp",
                    rule.protocol
                ));
                continue;
            }
        };
        match ports::PortRange::parse(&rule.ports) {
            Some(range) => table.push(PortRule {
                name: rule.name,
                protocol,
                range,
            }),
            None => problems.push(format!(
                "{key}[{index}].ports: '{}' is not a port or a range like 27017-27019",
                rule.ports
            )),
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../../antibody.example.toml");
        let config = Config::parse(text).expect("antibody.example.toml is valid");
        assert_eq!(config.firewall.fix, FixKind::Disable);
        assert!(config.firewall.ports.iter().any(|rule| rule.name == "SSH"));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = Config::parse(
            "[policies.open_firewall]\nmode = \"sometimes\"\nfix = \"explode\"\nextra_ports = [{name = \"x\", protocol = \"icmp\", ports = \"1\"}]\n",
        )
        .expect_err("three problems");
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(err.problems[0].contains("policies.open_firewall.mode"));
        assert!(err.problems[2].contains("extra_ports[0].protocol"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("[serve]\nprot = 1\n").expect_err("typo");
        assert!(err.to_string().contains("prot"), "{err}");
    }
}
