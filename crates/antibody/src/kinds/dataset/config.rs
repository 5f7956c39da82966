//! The `[policies.public_dataset]` section: what the user writes, and its validation into `DatasetPolicy`.

use serde::Deserialize;

use super::DatasetPolicy;
use crate::config::{fixes, mode, severity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatasetPolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `remove` (default: the public access entries, under the dataset's etag) or `alert`.
    pub fix: Option<String>,
    /// The findings' severity (default HIGH).
    pub severity: Option<String>,
}

pub fn validate_dataset(raw: RawDatasetPolicy, problems: &mut Vec<String>) -> DatasetPolicy {
    let key = "policies.public_dataset";
    let defaults = DatasetPolicy::default();
    let remove = fixes(key, raw.fix.as_deref(), "remove", problems);
    DatasetPolicy {
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
