//! The `[policies.log_retention]` section: what the user writes, and its validation into `RetentionPolicy`.

use serde::Deserialize;

use crate::config::{fixes, mode, severity};
use crate::policy::Severity;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetentionPolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `restore` (default: the retention is set back to `min_retention_days`; undo sets it to what it was) or
    /// `alert`.
    pub fix: Option<String>,
    /// The fewest days a guarded bucket may keep its entries (default 30, Logging's own default for `_Default`).
    pub min_retention_days: Option<u32>,
    /// The buckets guarded, by id glob in any location (default `["_Default"]`, where Data Access audit logs go); add
    /// the buckets your audit sinks write to.
    pub buckets: Option<Vec<String>>,
    /// The finding's severity (default HIGH).
    pub severity: Option<String>,
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    pub restore: bool,
    pub min_days: u32,
    pub buckets: Vec<String>,
    pub severity: Severity,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            restore: true,
            min_days: 30,
            buckets: vec!["_Default".into()],
            severity: Severity::High,
        }
    }
}

pub fn validate_retention(raw: RawRetentionPolicy, problems: &mut Vec<String>) -> RetentionPolicy {
    let key = "policies.log_retention";
    let defaults = RetentionPolicy::default();
    let min_days = raw.min_retention_days.unwrap_or(defaults.min_days);
    if !(1..=3650).contains(&min_days) {
        problems.push(format!(
            "{key}.min_retention_days: {min_days} is not between 1 and 3650 (Logging's range)"
        ));
    }
    RetentionPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        restore: fixes(key, raw.fix.as_deref(), "restore", problems),
        min_days: min_days.clamp(1, 3650),
        buckets: raw.buckets.unwrap_or(defaults.buckets),
        severity: severity(
            &format!("{key}.severity"),
            raw.severity.as_deref(),
            problems,
        )
        .unwrap_or(defaults.severity),
    }
}
