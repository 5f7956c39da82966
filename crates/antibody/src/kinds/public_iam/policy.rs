//! The `public-iam` policy: `allUsers` or `allAuthenticatedUsers` in the IAM policy of a topic, subscription, secret,
//! key ring, crypto key or repository. Pure.

use crate::gcp::iam::{Grant, Policy};
use crate::policy::{Finding, Severity};

pub const POLICY: &str = "public-iam";
pub const CATEGORY: &str = "PUBLIC_RESOURCE_IAM";
pub const INVOKER: &str = "PUBLIC_INVOKER";
pub const INVOKER_CHECK_DISABLED: &str = "RUN_INVOKER_IAM_CHECK_DISABLED";

/// A Cloud Run service anyone may call because its invoker IAM check is off: reported, never changed (turning the
/// check back on can take a public site down, and it is a deployment's decision).
pub fn invoker_check_disabled(what: &str) -> Finding {
    Finding {
        policy: POLICY.to_string(),
        category: INVOKER_CHECK_DISABLED.to_string(),
        severity: Severity::Medium,
        message: format!(
            "{what} has its invoker IAM check disabled: anyone can call it, whatever its IAM policy says (reported, \
             not changed)"
        ),
    }
}

/// The validated `[policies.public_iam]` section.
#[derive(Debug, Clone)]
pub struct PublicIamPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    /// Remove the public grants (default) or only report them.
    pub remove: bool,
    pub severity: Severity,
    /// Remove a public invoker of a Cloud Run service or a function too (default false: reported, since it is
    /// usually a public website or webhook).
    pub remove_invoker: bool,
}

impl Default for PublicIamPolicy {
    fn default() -> Self {
        PublicIamPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            remove: true,
            severity: Severity::High,
            remove_invoker: false,
        }
    }
}

pub fn is_public(member: &str) -> bool {
    member == "allUsers" || member == "allAuthenticatedUsers"
}

impl PublicIamPolicy {
    /// One finding per public grant (with its condition, if any), and the grants to remove. `invoker_role`: the
    /// service's invoker role, whose public grants are reported and kept unless `remove_invoker`.
    pub fn evaluate(
        &self,
        what: &str,
        policy: &Policy,
        invoker_role: Option<&str>,
    ) -> (Vec<Finding>, Vec<Grant>) {
        let public: Vec<Grant> = policy
            .grants()
            .filter(|grant| is_public(&grant.member))
            .collect();
        let invoker = |grant: &Grant| Some(grant.role.as_str()) == invoker_role;
        let findings = public
            .iter()
            .map(|grant| Finding {
                policy: POLICY.to_string(),
                category: if invoker(grant) { INVOKER } else { CATEGORY }.to_string(),
                severity: if invoker(grant) {
                    Severity::Medium
                } else {
                    self.severity
                },
                message: format!(
                    "{} holds {} on {what}{}{}",
                    grant.member,
                    grant.role,
                    if grant.condition.is_some() {
                        " (under a condition)"
                    } else {
                        ""
                    },
                    if invoker(grant) && !self.remove_invoker {
                        "; anyone can call it (kept: public sites are)"
                    } else {
                        ""
                    }
                ),
            })
            .collect();
        let grants = if self.remove {
            public
                .into_iter()
                .filter(|grant| self.remove_invoker || !invoker(grant))
                .collect()
        } else {
            Vec::new()
        };
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
        let (findings, grants) = PublicIamPolicy::default().evaluate("topic t", &policy, None);
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
        assert_eq!(report_only.evaluate("topic t", &policy, None).1.len(), 0);
        let private: Policy = serde_json::from_value(json!({"bindings": [{"role": "roles/owner", "members": ["user:allUsers@example.com"]}]})).expect("policy");
        assert_eq!(
            PublicIamPolicy::default()
                .evaluate("topic t", &private, None)
                .0
                .len(),
            0,
            "a lookalike is not public"
        );
        let site: Policy = serde_json::from_value(json!({"bindings": [
            {"role": "roles/run.invoker", "members": ["allUsers"]}, {"role": "roles/run.developer", "members": ["allUsers"]}]}))
        .expect("policy");
        let (findings, grants) =
            PublicIamPolicy::default().evaluate("service web", &site, Some("roles/run.invoker"));
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].category, INVOKER);
        assert_eq!(
            grants
                .iter()
                .map(|grant| grant.role.as_str())
                .collect::<Vec<_>>(),
            ["roles/run.developer"],
            "only the invoker stays"
        );
        let strict = PublicIamPolicy {
            remove_invoker: true,
            ..PublicIamPolicy::default()
        };
        assert_eq!(
            strict
                .evaluate("service web", &site, Some("roles/run.invoker"))
                .1
                .len(),
            2
        );
    }
}
