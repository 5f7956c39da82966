//! The `[policies.instance_template]` section: what the user writes, and its validation into `TemplatePolicy`.

use serde::Deserialize;

use crate::config::mode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplatePolicy {
    /// Turn the policy off entirely (default: on). Which findings a template has, and their severities, are the
    /// `[policies.vm_instance]` section's: a template is judged as every instance made from it would be.
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`. Templates are never changed: every finding is an alert.
    pub mode: Option<String>,
    /// Wait this long before deciding, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// Principals whose template and group changes are left alone, globs (default: none). Google's service agents
    /// are not allowed by default here: Deployment Manager writes templates as the project's Google APIs service
    /// agent on someone's behalf, and what it writes is theirs.
    #[serde(default)]
    pub allow_principals: Vec<String>,
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct TemplatePolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    pub allow_principals: Vec<String>,
}

impl Default for TemplatePolicy {
    fn default() -> Self {
        TemplatePolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            allow_principals: Vec::new(),
        }
    }
}

pub fn validate_template(raw: RawTemplatePolicy, problems: &mut Vec<String>) -> TemplatePolicy {
    TemplatePolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode("policies.instance_template", raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        allow_principals: raw.allow_principals,
    }
}
