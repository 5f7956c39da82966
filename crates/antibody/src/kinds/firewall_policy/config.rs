//! The `[policies.firewall_policy]` section: what the user writes, and its validation into `NetworkPolicyPolicy`.

use serde::Deserialize;

use crate::config::{fixes, mode};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetworkPolicyPolicy {
    /// Turn the policy off entirely (default: on). A rule is judged by `[policies.open_firewall]`: its risky ports,
    /// what counts as (almost) everyone, its allowed principals and markers.
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `disable` (default: the open rule is disabled in place, `patchRule`; undo enables it) or `alert`.
    pub fix: Option<String>,
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct NetworkPolicyPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    pub disable: bool,
}

impl Default for NetworkPolicyPolicy {
    fn default() -> Self {
        NetworkPolicyPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            disable: true,
        }
    }
}

pub fn validate_network_policy(
    raw: RawNetworkPolicyPolicy,
    problems: &mut Vec<String>,
) -> NetworkPolicyPolicy {
    let key = "policies.firewall_policy";
    NetworkPolicyPolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        disable: fixes(key, raw.fix.as_deref(), "disable", problems),
    }
}
