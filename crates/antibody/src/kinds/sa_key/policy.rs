//! The `sa-key` policy (CIS 1.4, Security Health Analytics' `USER_MANAGED_SERVICE_ACCOUNT_KEY`): an enabled
//! user-managed key on a service account is a finding; Google-managed keys never are. Pure.

use crate::gcp::iam_admin::{Key, ServiceAccount};
use crate::policy::{Finding, Severity, glob_match};

pub const POLICY: &str = "sa-key";
pub const CATEGORY: &str = "USER_MANAGED_SERVICE_ACCOUNT_KEY";
pub const EXPIRED: &str = "DISABLED_KEY_KEPT";

/// The validated `[policies.sa_key]` section.
#[derive(Debug, Clone)]
pub struct SaKeyPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    /// Disable the keys (`true`, default) or only report them.
    pub disable: bool,
    pub severity: Severity,
    /// Accounts whose keys are allowed, by email glob.
    pub allow_accounts: Vec<String>,
    /// Principals whose key changes are left alone (a key-rotation service), by glob.
    pub allow_principals: Vec<String>,
    /// Delete a key that has stayed disabled this long (off by default: a deleted key cannot be restored).
    pub delete_after_secs: Option<i64>,
}

impl Default for SaKeyPolicy {
    fn default() -> Self {
        SaKeyPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            disable: true,
            severity: Severity::High,
            allow_accounts: Vec::new(),
            allow_principals: Vec::new(),
            delete_after_secs: None,
        }
    }
}

impl SaKeyPolicy {
    /// The account's enabled user-managed keys: one finding each, and the ids to disable.
    pub fn evaluate(&self, account: &ServiceAccount, keys: &[Key]) -> (Vec<Finding>, Vec<String>) {
        let open: Vec<&Key> = keys
            .iter()
            .filter(|key| key.key_type == "USER_MANAGED" && !key.disabled)
            .collect();
        let findings = open
            .iter()
            .map(|key| Finding {
                policy: POLICY.to_string(),
                category: CATEGORY.to_string(),
                severity: self.severity,
                message: format!(
                    "user-managed key {} of {} ({}, valid from {} until {})",
                    key.id(),
                    account.email,
                    match key.key_origin.as_deref() {
                        Some("USER_PROVIDED") => "uploaded by its holder",
                        _ => "created by Google, its private key downloaded",
                    },
                    key.valid_after_time.as_deref().unwrap_or("?"),
                    key.valid_before_time.as_deref().unwrap_or("?"),
                ),
            })
            .collect();
        let ids = if self.disable {
            open.iter().map(|key| key.id().to_string()).collect()
        } else {
            Vec::new()
        };
        (findings, ids)
    }

    /// Keys disabled for longer than `delete_after` (`expired`, as the enrich step found them): a finding each, and
    /// the ids to delete.
    pub fn evaluate_expired(
        &self,
        account: &ServiceAccount,
        expired: &[String],
    ) -> (Vec<Finding>, Vec<String>) {
        if self.delete_after_secs.is_none() {
            return (Vec::new(), Vec::new());
        }
        let findings = expired
            .iter()
            .map(|id| Finding {
                policy: POLICY.to_string(),
                category: EXPIRED.to_string(),
                severity: Severity::Low,
                message: format!(
                    "key {id} of {} has stayed disabled past delete_after; deleting it cannot be undone",
                    account.email
                ),
            })
            .collect();
        (findings, expired.to_vec())
    }

    /// Why this account's keys, or this principal's change, are left alone.
    pub fn exemption(&self, account: &ServiceAccount, principal: &str) -> Option<String> {
        if let Some(pattern) = self
            .allow_accounts
            .iter()
            .find(|pattern| glob_match(pattern, &account.email))
        {
            return Some(format!(
                "{} may hold keys ('{pattern}' in allow_accounts)",
                account.email
            ));
        }
        self.allow_principals
            .iter()
            .find(|pattern| !principal.is_empty() && glob_match(pattern, principal))
            .map(|pattern| format!("changed by {principal}, allowed by '{pattern}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, kind: &str, disabled: bool) -> Key {
        Key {
            name: format!("projects/p/serviceAccounts/ci@p.iam.gserviceaccount.com/keys/{id}"),
            key_type: kind.into(),
            key_origin: Some("GOOGLE_PROVIDED".into()),
            disabled,
            valid_after_time: Some("2026-11-29T10:00:00Z".into()),
            valid_before_time: Some("9999-12-31T23:59:59Z".into()),
        }
    }

    fn account(email: &str) -> ServiceAccount {
        ServiceAccount {
            email: email.into(),
            unique_id: "100000000000000000001".into(),
            project_id: "p".into(),
            display_name: None,
        }
    }

    #[test]
    fn only_enabled_user_managed_keys_are_findings() {
        let policy = SaKeyPolicy::default();
        let ci = account("ci@p.iam.gserviceaccount.com");
        let cases: [(&[Key], &[&str]); 5] = [
            (&[], &[]),
            (&[key("g1", "SYSTEM_MANAGED", false)], &[]),
            (&[key("u1", "USER_MANAGED", true)], &[]),
            (&[key("u1", "USER_MANAGED", false)], &["u1"]),
            (
                &[
                    key("g1", "SYSTEM_MANAGED", false),
                    key("u1", "USER_MANAGED", false),
                    key("u2", "USER_MANAGED", true),
                    key("u3", "USER_MANAGED", false),
                ],
                &["u1", "u3"],
            ),
        ];
        for (keys, expected) in cases {
            let (findings, ids) = policy.evaluate(&ci, keys);
            assert_eq!(ids, expected, "{keys:?}");
            assert_eq!(findings.len(), expected.len());
            for (finding, id) in findings.iter().zip(expected) {
                assert_eq!(finding.category, CATEGORY);
                assert!(
                    finding.message.contains(id)
                        && finding.message.contains("ci@p.iam.gserviceaccount.com")
                );
            }
        }
        let report_only = SaKeyPolicy {
            disable: false,
            ..SaKeyPolicy::default()
        };
        let (findings, ids) = report_only.evaluate(&ci, &[key("u1", "USER_MANAGED", false)]);
        assert_eq!((findings.len(), ids.len()), (1, 0));
    }

    #[test]
    fn allowed_accounts_and_principals_are_exempt_and_nothing_else() {
        let policy = SaKeyPolicy {
            allow_accounts: vec!["legacy-etl@p.iam.gserviceaccount.com".into()],
            allow_principals: vec!["key-rotator@sec.iam.gserviceaccount.com".into()],
            ..SaKeyPolicy::default()
        };
        assert!(
            policy
                .exemption(
                    &account("legacy-etl@p.iam.gserviceaccount.com"),
                    "me@example.com"
                )
                .is_some()
        );
        assert!(
            policy
                .exemption(
                    &account("ci@p.iam.gserviceaccount.com"),
                    "key-rotator@sec.iam.gserviceaccount.com"
                )
                .is_some()
        );
        assert!(
            policy
                .exemption(&account("ci@p.iam.gserviceaccount.com"), "me@example.com")
                .is_none()
        );
        assert!(
            policy
                .exemption(&account("ci@p.iam.gserviceaccount.com"), "")
                .is_none(),
            "a sweep names no principal"
        );
        assert!(
            SaKeyPolicy::default()
                .exemption(&account("ci@p.iam.gserviceaccount.com"), "x@example.com")
                .is_none()
        );
    }
}
