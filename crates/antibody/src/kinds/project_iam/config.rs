//! The `[policies.project_iam]` section: what the user writes, and its validation into `ProjectIamPolicy`.

use serde::Deserialize;

use super::policy::ProjectIamPolicy;
use crate::config::mode;

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
