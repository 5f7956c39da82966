//! The `public-iam` policy: `allUsers` or `allAuthenticatedUsers` — or an outsider, by the project policy's own
//! rules (consumer domains, domains not allowed, foreign service accounts, federation pools not allowed) — in the IAM
//! policy of a topic, subscription, secret, key ring, crypto key, repository, Cloud Run service or function. Pure.

use crate::gcp::iam::{Grant, Policy};
use crate::policy::{Finding, Severity};

pub const POLICY: &str = "public-iam";
pub const CATEGORY: &str = "PUBLIC_RESOURCE_IAM";
/// An outsider granted a role on the resource (the project policy's category for the same grant on a project).
pub const OUTSIDER: &str = "EXTERNAL_MEMBER";
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
    /// One finding per public or outsider grant (with its condition, if any), and the grants to remove.
    /// `outsider` judges a member by the project policy's rules. `invoker_role`: the service's invoker role, whose
    /// grants are reported and kept unless `remove_invoker`.
    pub fn evaluate(
        &self,
        what: &str,
        policy: &Policy,
        invoker_role: Option<&str>,
        outsider: &dyn Fn(&str) -> bool,
    ) -> (Vec<Finding>, Vec<Grant>) {
        let public: Vec<Grant> = policy
            .grants()
            .filter(|grant| is_public(&grant.member) || outsider(&grant.member))
            .collect();
        let invoker = |grant: &Grant| Some(grant.role.as_str()) == invoker_role;
        let category = |grant: &Grant| match (invoker(grant), is_public(&grant.member)) {
            (true, _) => INVOKER,
            (false, true) => CATEGORY,
            (false, false) => OUTSIDER,
        };
        let findings = public
            .iter()
            .map(|grant| Finding {
                policy: POLICY.to_string(),
                category: category(grant).to_string(),
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
        let (findings, grants) =
            PublicIamPolicy::default().evaluate("topic t", &policy, None, &|_| false);
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
        assert_eq!(
            report_only
                .evaluate("topic t", &policy, None, &|_| false)
                .1
                .len(),
            0
        );
        let private: Policy = serde_json::from_value(json!({"bindings": [{"role": "roles/owner", "members": ["user:allUsers@example.com"]}]})).expect("policy");
        assert_eq!(
            PublicIamPolicy::default()
                .evaluate("topic t", &private, None, &|_| false)
                .0
                .len(),
            0,
            "a lookalike is not public"
        );
        let site: Policy = serde_json::from_value(json!({"bindings": [
            {"role": "roles/run.invoker", "members": ["allUsers"]}, {"role": "roles/run.developer", "members": ["allUsers"]}]}))
        .expect("policy");
        let (findings, grants) = PublicIamPolicy::default().evaluate(
            "service web",
            &site,
            Some("roles/run.invoker"),
            &|_| false,
        );
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
                .evaluate("service web", &site, Some("roles/run.invoker"), &|_| false)
                .1
                .len(),
            2
        );
    }

    #[test]
    fn outsiders_are_judged_like_the_public_and_named_apart() {
        let policy: Policy = serde_json::from_value(json!({"bindings": [
            {"role": "roles/secretmanager.secretAccessor", "members": ["user:a@gmail.com", "user:b@example.com"]},
            {"role": "roles/run.invoker", "members": ["user:c@gmail.com"]}]}))
        .expect("policy");
        let outsider = |member: &str| member.ends_with("@gmail.com");
        let (findings, grants) = PublicIamPolicy::default().evaluate(
            "secret s",
            &policy,
            Some("roles/run.invoker"),
            &outsider,
        );
        let categories: Vec<&str> = findings
            .iter()
            .map(|finding| finding.category.as_str())
            .collect();
        assert_eq!(categories, [OUTSIDER, INVOKER]);
        assert_eq!(
            grants
                .iter()
                .map(|grant| grant.member.as_str())
                .collect::<Vec<_>>(),
            ["user:a@gmail.com"],
            "an outsider invoker is reported and kept, as a public one is"
        );
    }
}
