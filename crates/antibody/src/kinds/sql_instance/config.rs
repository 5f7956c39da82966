//! The `[policies.public_sql]` section: what the user writes, and its validation into `SqlPolicy`.

use serde::Deserialize;

use crate::config::{fixes, mode, severity};
use crate::policy::Severity;

/// The validated `[policies.public_sql]` section.
#[derive(Debug, Clone)]
pub struct SqlPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    pub remove: bool,
    pub severity: Severity,
    pub broad_prefix_v4: u8,
    pub broad_prefix_v6: u8,
    /// Report instances that accept connections without SSL (default on; never fixed).
    pub report_ssl: bool,
}

impl Default for SqlPolicy {
    fn default() -> Self {
        SqlPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            remove: true,
            severity: Severity::Critical,
            broad_prefix_v4: 8,
            broad_prefix_v6: 16,
            report_ssl: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqlPolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `remove` (default: the broad authorised networks, under the settings version) or `alert`.
    pub fix: Option<String>,
    /// The public finding's severity (default CRITICAL).
    pub severity: Option<String>,
    /// A public network this wide or wider counts as everyone (default 8 for IPv4, 16 for IPv6); so do networks that
    /// cover as many public addresses together.
    pub broad_prefix_v4: Option<u8>,
    pub broad_prefix_v6: Option<u8>,
    /// Report instances that do not require SSL (default true; reported, never changed: it can break clients).
    pub report_ssl: Option<bool>,
}

pub(super) fn validate(raw: RawSqlPolicy, problems: &mut Vec<String>) -> SqlPolicy {
    let key = "policies.public_sql";
    let defaults = SqlPolicy::default();
    let remove = fixes(key, raw.fix.as_deref(), "remove", problems);
    SqlPolicy {
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
        broad_prefix_v4: raw
            .broad_prefix_v4
            .unwrap_or(defaults.broad_prefix_v4)
            .min(32),
        broad_prefix_v6: raw
            .broad_prefix_v6
            .unwrap_or(defaults.broad_prefix_v6)
            .min(128),
        report_ssl: raw.report_ssl.unwrap_or(true),
    }
}
