//! The `[policies.public_iam]` section: what the user writes, and its validation into `PublicIamPolicy`.

use serde::Deserialize;

use super::policy::PublicIamPolicy;
use crate::config::{fixes, mode, severity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublicIamPolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `remove` (default: the public grants, exactly, by an etag-checked version-3 write) or `alert`.
    pub fix: Option<String>,
    /// The findings' severity (default HIGH).
    pub severity: Option<String>,
    /// A public invoker of a Cloud Run service or a function: `report` (default: usually a public website) or
    /// `remove`.
    pub run_invoker: Option<String>,
}

pub fn validate_public_iam(raw: RawPublicIamPolicy, problems: &mut Vec<String>) -> PublicIamPolicy {
    let key = "policies.public_iam";
    let defaults = PublicIamPolicy::default();
    let remove = fixes(key, raw.fix.as_deref(), "remove", problems);
    let remove_invoker = match raw.run_invoker.as_deref() {
        None | Some("report") => false,
        Some("remove") => true,
        Some(other) => {
            problems.push(format!(
                "{key}.run_invoker: '{other}' is not one of report, remove"
            ));
            false
        }
    };
    PublicIamPolicy {
        remove_invoker,
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        remove,
        severity: severity(
            &format!("{key}.severity"),
            raw.severity.as_deref(),
            problems,
        )
        .unwrap_or(defaults.severity),
    }
}
