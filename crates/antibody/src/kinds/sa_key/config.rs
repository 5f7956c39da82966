//! The `[policies.sa_key]` section: what the user writes, and its validation into `SaKeyPolicy`.

use serde::Deserialize;

use super::policy::SaKeyPolicy;
use crate::config::{fixes, mode, severity};

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
    /// Delete a key that has stayed disabled this long, e.g. `7d` (`s`, `m`, `h`, `d`; default: never). The disable
    /// time is the audit log's; a deleted key cannot be restored, and its alert says so.
    pub delete_after: Option<String>,
}

/// `30s`, `90m`, `12h`, `7d` → seconds.
fn seconds(text: &str) -> Option<i64> {
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok().filter(|number| *number > 0)?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(unit)
}

pub fn validate_sa_key(raw: RawSaKeyPolicy, problems: &mut Vec<String>) -> SaKeyPolicy {
    let key = "policies.sa_key";
    let defaults = SaKeyPolicy::default();
    let disable = fixes(key, raw.fix.as_deref(), "disable", problems);
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
        delete_after_secs: match raw.delete_after.as_deref() {
            None => None,
            Some(text) => {
                let parsed = seconds(text);
                if parsed.is_none() {
                    problems.push(format!(
                        "{key}.delete_after: '{text}' is not a duration like 7d, 12h or 90m"
                    ));
                }
                parsed
            }
        },
    }
}
