//! The project-IAM policy: grants that must never exist (outsiders, consumer accounts, primitive and high-risk roles),
//! removed one (role, member, condition) at a time so that nothing else in the policy changes.

use serde::Serialize;

use super::Fix;
use crate::gcp::iam::{Grant, Policy};
use crate::policy::{Finding, Severity, glob_match};

pub const POLICY_ID: &str = "project-iam";

const PRIMITIVE: &[&str] = &["roles/owner", "roles/editor"];

/// The validated settings (see `RawProjectIamPolicy` for each field's meaning).
#[derive(Debug, Clone, Serialize)]
pub struct ProjectIamPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    /// Seconds to wait before enforcing; the live state is decided again when they are up.
    pub grace_secs: u32,
    pub allowed_domains: Vec<String>,
    pub consumer_domains: Vec<String>,
    /// Project-id globs whose service accounts are insiders (empty: service accounts are not judged by project).
    pub allowed_projects: Vec<String>,
    /// Identity pools (globs) whose federated principals are insiders.
    pub allowed_pools: Vec<String>,
    pub external_members: bool,
    pub primitive_roles: bool,
    pub primitive_roles_for_service_accounts: bool,
    pub high_risk_roles: Vec<String>,
    pub allow_members: Vec<String>,
    /// The `audit-config` policy of the same IAM policy's `auditConfigs`.
    pub audit: super::audit_config::AuditConfigPolicy,
}

impl Default for ProjectIamPolicy {
    fn default() -> Self {
        ProjectIamPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            allowed_domains: Vec::new(),
            consumer_domains: CONSUMER_DOMAINS
                .iter()
                .map(|domain| domain.to_string())
                .collect(),
            allowed_projects: Vec::new(),
            allowed_pools: Vec::new(),
            external_members: true,
            primitive_roles: true,
            primitive_roles_for_service_accounts: false,
            high_risk_roles: [
                "roles/iam.serviceAccountTokenCreator",
                "roles/iam.serviceAccountKeyAdmin",
                "roles/iam.serviceAccountUser",
                "roles/iam.securityAdmin",
                "roles/iam.roleAdmin",
                "roles/resourcemanager.projectIamAdmin",
                "roles/*Admin",
                "roles/*.admin",
            ]
            .map(String::from)
            .to_vec(),
            allow_members: Vec::new(),
            audit: super::audit_config::AuditConfigPolicy::default(),
        }
    }
}

/// Domains anyone can get an address or a group in: webmail, its national variants, and Google Groups' public
/// domain (a group there is joinable by whoever its owner lets in).
pub const CONSUMER_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "googlegroups.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.co.jp",
    "yahoo.co.in",
    "yahoo.fr",
    "yahoo.de",
    "yahoo.es",
    "yahoo.it",
    "yahoo.com.br",
    "ymail.com",
    "rocketmail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "hotmail.de",
    "hotmail.es",
    "hotmail.it",
    "outlook.com",
    "outlook.fr",
    "outlook.de",
    "live.com",
    "live.co.uk",
    "live.fr",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "tutanota.com",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "mail.com",
    "mail.ru",
    "yandex.com",
    "yandex.ru",
    "zoho.com",
    "qq.com",
    "163.com",
    "126.com",
    "naver.com",
];

/// The project id of a user-managed service account (`serviceAccount:NAME@PROJECT.iam.gserviceaccount.com`).
pub fn service_account_project(member: &str) -> Option<&str> {
    member
        .strip_prefix("serviceAccount:")?
        .rsplit_once('@')?
        .1
        .strip_suffix(".iam.gserviceaccount.com")
}

/// The identity pool of a federated principal: `projects/N/locations/global/workloadIdentityPools/POOL` or
/// `locations/global/workforcePools/POOL`.
pub fn federation_pool(member: &str) -> Option<&str> {
    let path = member
        .strip_prefix("principal://iam.googleapis.com/")
        .or_else(|| member.strip_prefix("principalSet://iam.googleapis.com/"))?;
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments
        .iter()
        .position(|segment| *segment == "workloadIdentityPools" || *segment == "workforcePools")?;
    segments.get(at + 1).filter(|pool| !pool.is_empty())?;
    let length: usize = segments[..=at + 1]
        .iter()
        .map(|segment| segment.len() + 1)
        .sum();
    Some(&path[..length - 1])
}

/// Google-managed service agents: removing their grants breaks Google's own services.
const SERVICE_AGENTS: &[&str] = &[
    "serviceAccount:service-*@*.iam.gserviceaccount.com",
    "serviceAccount:*@cloudservices.gserviceaccount.com",
    "serviceAccount:*@cloudbuild.gserviceaccount.com",
];

/// The e-mail domain of a member (`user:`, `group:`) or the domain itself (`domain:`), lower-cased.
pub fn member_domain(member: &str) -> Option<String> {
    let (kind, value) = member.split_once(':')?;
    let domain = match kind {
        "user" | "group" => value.rsplit_once('@')?.1,
        "domain" => value,
        _ => return None,
    };
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// `domain` equals `allowed` or is a subdomain of it; compared label by label, never as a pattern.
pub fn domain_within(domain: &str, allowed: &str) -> bool {
    let allowed = allowed
        .trim()
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    domain == allowed
        || domain
            .strip_suffix(&allowed)
            .is_some_and(|rest| rest.ends_with('.'))
}

impl ProjectIamPolicy {
    fn untouchable(&self, member: &str) -> bool {
        SERVICE_AGENTS
            .iter()
            .chain(
                self.allow_members
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .any(|pattern| glob_match(pattern, member))
    }

    /// Whether the member belongs outside the organisation: not in an allowed domain when some are configured,
    /// otherwise a consumer domain.
    pub fn outsider(&self, member: &str) -> bool {
        if member.starts_with("principal://") || member.starts_with("principalSet://") {
            // Whoever runs the pool's identity provider holds the grant.
            return !federation_pool(member).is_some_and(|pool| {
                self.allowed_pools
                    .iter()
                    .any(|pattern| glob_match(pattern, pool))
            });
        }
        if let Some(project) = service_account_project(member) {
            return !self.allowed_projects.is_empty()
                && !self
                    .allowed_projects
                    .iter()
                    .any(|pattern| glob_match(pattern, project));
        }
        let Some(domain) = member_domain(member) else {
            return false;
        };
        if self.allowed_domains.is_empty() {
            self.consumer_domains
                .iter()
                .any(|consumer| domain_within(&domain, consumer))
        } else {
            !self
                .allowed_domains
                .iter()
                .any(|allowed| domain_within(&domain, allowed))
        }
    }

    fn high_risk(&self, role: &str) -> bool {
        self.high_risk_roles
            .iter()
            .any(|pattern| glob_match(pattern, role))
    }

    /// One finding per offending grant, with its most severe category.
    pub fn evaluate(&self, policy: &Policy) -> Vec<(Finding, Grant)> {
        let mut found = Vec::new();
        for grant in policy.grants() {
            if self.untouchable(&grant.member) {
                continue;
            }
            let primitive = PRIMITIVE.contains(&grant.role.as_str());
            let outsider = self.outsider(&grant.member);
            let service_account = grant.member.starts_with("serviceAccount:");
            let verdict = if outsider && primitive && self.primitive_roles {
                Some((
                    "PRIMITIVE_ROLE_OUTSIDER",
                    Severity::Critical,
                    "a primitive role",
                ))
            } else if outsider && self.high_risk(&grant.role) && !self.high_risk_roles.is_empty() {
                Some((
                    "HIGH_RISK_ROLE_OUTSIDER",
                    Severity::High,
                    "a high-risk role",
                ))
            } else if outsider && self.external_members {
                Some(("EXTERNAL_MEMBER", Severity::High, "a role"))
            } else if service_account && primitive && self.primitive_roles_for_service_accounts {
                Some((
                    "PRIMITIVE_ROLE_SERVICE_ACCOUNT",
                    Severity::Medium,
                    "a primitive role",
                ))
            } else {
                None
            };
            if let Some((category, severity, what)) = verdict {
                let condition = grant
                    .condition
                    .as_ref()
                    .and_then(|condition| condition["title"].as_str())
                    .map(|title| format!(" (condition '{title}')"))
                    .unwrap_or_default();
                let message = format!("{} holds {what}, {}{condition}", grant.member, grant.role);
                found.push((
                    Finding {
                        policy: POLICY_ID.into(),
                        category: category.into(),
                        severity,
                        message,
                    },
                    grant,
                ));
            }
        }
        found
    }

    pub fn plan_fix(
        &self,
        project: &str,
        grants: Vec<Grant>,
        audit: super::audit_config::AuditRepair,
    ) -> Fix {
        Fix::RemoveProjectMembers {
            project: project.into(),
            grants,
            audit,
        }
    }
}

#[cfg(test)]
mod tests;
