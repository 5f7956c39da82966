//! The `public-iam` policy: `allUsers` or `allAuthenticatedUsers` in the IAM policy of a topic, subscription, secret,
//! key ring, crypto key or repository. Pure.

use crate::gcp::iam::{Grant, Policy};
use crate::policy::{Finding, Severity};

pub const POLICY: &str = "public-iam";
pub const CATEGORY: &str = "PUBLIC_RESOURCE_IAM";

/// The validated `[policies.public_iam]` section.
#[derive(Debug, Clone)]
pub struct PublicIamPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    /// Remove the public grants (default) or only report them.
    pub remove: bool,
    pub severity: Severity,
}

impl Default for PublicIamPolicy {
    fn default() -> Self {
        PublicIamPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            remove: true,
            severity: Severity::High,
        }
    }
}

pub fn is_public(member: &str) -> bool {
    member == "allUsers" || member == "allAuthenticatedUsers"
}

impl PublicIamPolicy {
    /// One finding per public grant (with its condition, if any), and the grants to remove.
    pub fn evaluate(&self, what: &str, policy: &Policy) -> (Vec<Finding>, Vec<Grant>) {
        let public: Vec<Grant> = policy
            .grants()
            .filter(|grant| is_public(&grant.member))
            .collect();
        let findings = public
            .iter()
            .map(|grant| Finding {
                policy: POLICY.to_string(),
                category: CATEGORY.to_string(),
                severity: self.severity,
                message: format!(
                    "{} holds {} on {what}{}",
                    grant.member,
                    grant.role,
                    if grant.condition.is_some() {
                        " (under a condition)"
                    } else {
                        ""
                    }
                ),
            })
            .collect();
        let grants = if self.remove { public } else { Vec::new() };
        (findings, grants)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn public_members_are_found_under_any_role_and_condition_and_nothing_else() {
        let policy: Policy = serde_json::from_value(json!({"version": 3, "etag": "BwX=", "bindings": [
            {"role": "roles/pubsub.subscriber", "members": ["allUsers", "user:a@example.com"]},
            {"role": "roles/pubsub.viewer", "members": ["allAuthenticatedUsers"],
             "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}},
            {"role": "roles/pubsub.publisher", "members": ["serviceAccount:x@p.iam.gserviceaccount.com", "domain:example.com"]},
        ]}))
        .expect("policy");
        let (findings, grants) = PublicIamPolicy::default().evaluate("topic t", &policy);
        let members: Vec<(&str, &str, bool)> = grants
            .iter()
            .map(|grant| {
                (
                    grant.role.as_str(),
                    grant.member.as_str(),
                    grant.condition.is_some(),
                )
            })
            .collect();
        assert_eq!(
            members,
            [
                ("roles/pubsub.subscriber", "allUsers", false),
                ("roles/pubsub.viewer", "allAuthenticatedUsers", true)
            ]
        );
        assert_eq!(findings.len(), 2);
        assert!(findings[1].message.contains("under a condition"));
        let report_only = PublicIamPolicy {
            remove: false,
            ..PublicIamPolicy::default()
        };
        assert_eq!(report_only.evaluate("topic t", &policy).1.len(), 0);
        let private: Policy = serde_json::from_value(json!({"bindings": [{"role": "roles/owner", "members": ["user:allUsers@example.com"]}]})).expect("policy");
        assert_eq!(
            PublicIamPolicy::default()
                .evaluate("topic t", &private)
                .0
                .len(),
            0,
            "a lookalike is not public"
        );
    }
}
