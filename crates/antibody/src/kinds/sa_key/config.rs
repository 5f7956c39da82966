//! The `[policies.sa_key]` section: what the user writes, and its validation into `SaKeyPolicy`.

use serde::Deserialize;

use super::policy::SaKeyPolicy;
use crate::config::{mode, severity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaKeyPolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `disable` (default: the key stops working at once; `antibody undo` enables it again) or `alert`.
    pub fix: Option<String>,
    /// The finding's severity (default HIGH).
    pub severity: Option<String>,
    /// Accounts that may hold user-managed keys, by email glob. Whoever creates an account picks its name, so prefer
    /// exact emails to patterns.
    #[serde(default)]
    pub allow_accounts: Vec<String>,
    /// Principals whose key changes are left alone (a key-rotation service), by glob (default: none).
    #[serde(default)]
    pub allow_principals: Vec<String>,
}

pub fn validate_sa_key(raw: RawSaKeyPolicy, problems: &mut Vec<String>) -> SaKeyPolicy {
    let key = "policies.sa_key";
    let defaults = SaKeyPolicy::default();
    let disable = match raw.fix.as_deref() {
        None | Some("disable") => true,
        Some("alert") => false,
        Some(other) => {
            problems.push(format!("{key}.fix: '{other}' is not one of disable, alert"));
            true
        }
    };
    SaKeyPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        disable,
        severity: severity(
            &format!("{key}.severity"),
            raw.severity.as_deref(),
            problems,
        )
        .unwrap_or(defaults.severity),
        allow_accounts: raw.allow_accounts,
        allow_principals: raw.allow_principals,
    }
}
