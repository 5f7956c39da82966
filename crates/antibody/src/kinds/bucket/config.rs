//! The `[policies.public_bucket]` section: what the user writes, and its validation into `BucketPolicy`.

use serde::Deserialize;

use super::policy::{BucketPolicy, PreventionMode};
use crate::config::{mode, severity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucketPolicy {
    /// Wait this long before enforcing (to let Terraform or a person finish), then decide again on the live state
    /// (default 0: at once).
    pub grace_seconds: Option<u32>,
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// A bucket carrying this label is meant to be public (its value is the reason), when a principal in
    /// `marker_principals` made the change (default: none).
    pub exempt_label: Option<String>,
    /// Bucket names meant to be public, when a principal in `marker_principals` made the change; `*` matches any run.
    #[serde(default)]
    pub allow_buckets: Vec<String>,
    /// The principals trusted to exempt a bucket by its label or name (globs). Whoever can make a bucket public can
    /// also label it, so without this list a label would let anyone exempt their own bucket.
    #[serde(default)]
    pub marker_principals: Vec<String>,
    /// Report buckets without public access prevention, at this severity (LOW, MEDIUM, HIGH, CRITICAL; default: off).
    pub flag_public_access_prevention: Option<String>,
    /// When to enforce public access prevention: `never`, `when-public` (default) or `always`.
    pub enforce_public_access_prevention: Option<String>,
    /// Report buckets with fine-grained ACLs (uniform access off), at this severity (default: off).
    pub flag_uniform_access: Option<String>,
    /// Switch uniform bucket-level access on when fixing (default: off; it disables ACLs for good after 90 days).
    #[serde(default)]
    pub enable_uniform_access: bool,
}

pub fn validate_bucket(raw: RawBucketPolicy, problems: &mut Vec<String>) -> BucketPolicy {
    let key = "policies.public_bucket";
    let defaults = BucketPolicy::default();
    let enforce = match raw.enforce_public_access_prevention.as_deref() {
        None => defaults.enforce_public_access_prevention,
        Some("never") => PreventionMode::Never,
        Some("when-public") => PreventionMode::WhenPublic,
        Some("always") => PreventionMode::Always,
        Some(other) => {
            problems.push(format!("{key}.enforce_public_access_prevention: '{other}' is not one of never, when-public, always"));
            defaults.enforce_public_access_prevention
        }
    };
    let exempt_label = raw.exempt_label.unwrap_or(defaults.exempt_label);
    if (!exempt_label.is_empty() || !raw.allow_buckets.is_empty())
        && raw.marker_principals.is_empty()
    {
        problems.push(format!(
            "{key}.marker_principals: exempt_label and allow_buckets need the principals trusted to set them; a \
             bucket's labels are written by whoever can change it"
        ));
    }
    BucketPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        exempt_label,
        allow_buckets: raw.allow_buckets,
        marker_principals: raw.marker_principals,
        flag_public_access_prevention: severity(
            &format!("{key}.flag_public_access_prevention"),
            raw.flag_public_access_prevention.as_deref(),
            problems,
        ),
        enforce_public_access_prevention: enforce,
        flag_uniform_access: severity(
            &format!("{key}.flag_uniform_access"),
            raw.flag_uniform_access.as_deref(),
            problems,
        ),
        enable_uniform_access: raw.enable_uniform_access,
    }
}
