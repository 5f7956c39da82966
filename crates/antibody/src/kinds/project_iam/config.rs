//! The `[policies.project_iam]` section: what the user writes, and its validation into `ProjectIamPolicy`.

use serde::Deserialize;

use super::audit_config::{AuditConfigPolicy, Required};
use super::policy::ProjectIamPolicy;
use crate::config::{fixes, mode, severity};

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
    /// Consumer e-mail domains (default: gmail.com, googlemail.com, yahoo.com, outlook.com, googlegroups.com and other
    /// webmail, national variants included). Replaces the list; `more_consumer_domains` extends it.
    pub consumer_domains: Option<Vec<String>>,
    /// Consumer domains added to the list above.
    #[serde(default)]
    pub more_consumer_domains: Vec<String>,
    /// Project-id globs whose service accounts are insiders (e.g. `["acme-*"]`). Set, a service account of any other
    /// project is an outsider; unset, service accounts are judged by the other rules only.
    #[serde(default)]
    pub allowed_projects: Vec<String>,
    /// Workload and workforce identity pools whose principals (`principal://…`, `principalSet://…`) are insiders,
    /// as globs over `projects/NUMBER/locations/global/workloadIdentityPools/POOL` or
    /// `locations/global/workforcePools/POOL`. A federated principal of any other pool is an outsider: whoever
    /// controls the pool's identity provider holds the grant.
    #[serde(default)]
    pub allowed_pools: Vec<String>,
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
    /// The policy's audit-log configuration (`auditConfigs`), judged by the `audit-config` policy.
    #[serde(default)]
    pub audit_config: RawAuditConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuditConfig {
    /// Turn the audit-config policy off (default: on).
    pub enabled: Option<bool>,
    /// `restore` (default: put the log types back, take the exemption away) or `alert`.
    pub fix: Option<String>,
    /// Put back what a change removed, as its audit entry reports it (default true).
    pub keep_removed: Option<bool>,
    /// Log types every policy must keep, e.g. `[{service = "allServices", log_types = ["ADMIN_READ"]}]`.
    #[serde(default)]
    pub required: Vec<RawRequired>,
    /// A member newly exempted from a log type is a finding and is removed again (default true).
    pub forbid_exemptions: Option<bool>,
    /// The findings' severity (default HIGH).
    pub severity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequired {
    /// A service (`storage.googleapis.com`) or `allServices`.
    pub service: String,
    /// `ADMIN_READ`, `DATA_READ`, `DATA_WRITE`.
    pub log_types: Vec<String>,
}

fn validate_audit_config(raw: RawAuditConfig, problems: &mut Vec<String>) -> AuditConfigPolicy {
    let key = "policies.project_iam.audit_config";
    let defaults = AuditConfigPolicy::default();
    let restore = fixes(key, raw.fix.as_deref(), "restore", problems);
    let mut required = Vec::new();
    for (index, entry) in raw.required.into_iter().enumerate() {
        if let Some(bad) = entry.log_types.iter().find(|log_type| {
            !["ADMIN_READ", "DATA_READ", "DATA_WRITE"].contains(&log_type.as_str())
        }) {
            problems.push(format!(
                "{key}.required[{index}].log_types: '{bad}' is not one of ADMIN_READ, DATA_READ, DATA_WRITE"
            ));
            continue;
        }
        required.push(Required {
            service: entry.service,
            log_types: entry.log_types,
        });
    }
    AuditConfigPolicy {
        enabled: raw.enabled.unwrap_or(true),
        restore,
        keep_removed: raw.keep_removed.unwrap_or(defaults.keep_removed),
        required,
        forbid_exemptions: raw.forbid_exemptions.unwrap_or(defaults.forbid_exemptions),
        severity: severity(
            &format!("{key}.severity"),
            raw.severity.as_deref(),
            problems,
        )
        .unwrap_or(defaults.severity),
    }
}

pub fn validate_project_iam(
    raw: RawProjectIamPolicy,
    problems: &mut Vec<String>,
) -> ProjectIamPolicy {
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
        consumer_domains: raw
            .consumer_domains
            .unwrap_or(defaults.consumer_domains)
            .into_iter()
            .chain(raw.more_consumer_domains)
            .map(|domain| domain.to_ascii_lowercase())
            .collect(),
        allowed_projects: raw.allowed_projects,
        allowed_pools: raw.allowed_pools,
        external_members: raw.external_members.unwrap_or(defaults.external_members),
        primitive_roles: raw.primitive_roles.unwrap_or(defaults.primitive_roles),
        primitive_roles_for_service_accounts: raw
            .primitive_roles_for_service_accounts
            .unwrap_or(defaults.primitive_roles_for_service_accounts),
        high_risk_roles: raw.high_risk_roles.unwrap_or(defaults.high_risk_roles),
        allow_members: raw.allow_members,
        audit: validate_audit_config(raw.audit_config, problems),
    }
}
