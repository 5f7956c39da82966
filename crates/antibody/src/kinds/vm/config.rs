//! The `[policies.vm_instance]` section: what the user writes, and its validation into `InstancePolicy`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::policy::{
    Action, CATEGORIES, CLOUD_PLATFORM, DEFAULT_ACCOUNT, FULL_API_ACCESS, FullAccessFix,
    IP_FORWARDING, InstancePolicy, OS_LOGIN, PROJECT_SSH_KEYS, PUBLIC_IP, Rescope, SERIAL_PORTS,
    SHIELDED_VM, is_default_account,
};
use crate::config::{mode, severity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstancePolicy {
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// Wait this long before enforcing, then decide again on the live state (default 0).
    pub grace_seconds: Option<u32>,
    /// `serial-port-enable` true: `fix` (default: set it to false on the instance, or on the project's common
    /// metadata), `alert` or `off`.
    pub serial_ports: Option<String>,
    /// `block-project-ssh-keys` not true: `alert` (default), `fix` (set it; people who log in with project-wide
    /// keys lose access) or `off`.
    pub project_ssh_keys: Option<String>,
    /// `enable-oslogin` false: `alert` (default), `fix` (set it TRUE; metadata SSH keys stop working) or `off`.
    pub os_login: Option<String>,
    /// An external IP address: `alert` (default), `fix` (delete the access config; the address is released) or `off`.
    pub public_ip: Option<String>,
    /// The default service account with a full-access scope: `alert` (default), `stop` (stop the instance; undo
    /// starts it), `rescope` (stop it, run it as `rescope_account` with `rescope_scopes`, start it again if it was
    /// running; undo restores account, scopes and power) or `off`.
    pub full_api_access: Option<String>,
    /// With `full_api_access = "rescope"`: the service account to run as (not a default compute account).
    pub rescope_account: Option<String>,
    /// With `full_api_access = "rescope"`: its scopes (default `cloud-platform`: the account's IAM roles then decide).
    pub rescope_scopes: Option<Vec<String>>,
    /// The default service account without a full-access scope: `alert` (default) or `off`.
    pub default_service_account: Option<String>,
    /// IP forwarding on: `alert` (default) or `off`; never fixed (it is set at creation only).
    pub ip_forwarding: Option<String>,
    /// Shielded VM secure boot off: `alert` (default) or `off`; never fixed (it needs the instance stopped).
    pub shielded_vm: Option<String>,
    /// Scopes that count as access to every API (default: `https://www.googleapis.com/auth/cloud-platform`).
    pub full_scopes: Option<Vec<String>>,
    /// Principals whose changes are left alone, globs (default: the service agents of managed instance groups,
    /// GKE and Dataflow). An instance's own `created-by` metadata is not trusted: its creator writes it.
    pub allow_principals: Option<Vec<String>>,
    /// Severity per finding category, e.g. `{ PUBLIC_IP_ADDRESS = "critical" }`.
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
}

/// The account and scopes `rescope` runs an instance as: a real account that is not a default compute account.
fn rescope(
    key: &str,
    account: &Option<String>,
    scopes: &Option<Vec<String>>,
    problems: &mut Vec<String>,
) -> FullAccessFix {
    let email = account.clone().unwrap_or_default();
    if !email.ends_with(".gserviceaccount.com") || is_default_account(&email) {
        problems.push(format!(
            "{key}.rescope_account: full_api_access = \"rescope\" needs a service account to run as, other than the \
             default compute account (got '{email}')"
        ));
    }
    FullAccessFix::Rescope(Rescope {
        email,
        scopes: scopes
            .clone()
            .unwrap_or_else(|| vec![CLOUD_PLATFORM.to_string()]),
    })
}

pub fn validate_instance(raw: RawInstancePolicy, problems: &mut Vec<String>) -> InstancePolicy {
    let key = "policies.vm_instance";
    let mut policy = InstancePolicy {
        enabled: raw.enabled.unwrap_or(true),
        dry_run: mode(key, raw.mode.as_deref(), problems),
        grace_secs: raw.grace_seconds.unwrap_or(0),
        ..InstancePolicy::default()
    };
    let fixable: [(&str, &'static str, Option<String>); 5] = [
        ("serial_ports", SERIAL_PORTS, raw.serial_ports),
        ("project_ssh_keys", PROJECT_SSH_KEYS, raw.project_ssh_keys),
        ("os_login", OS_LOGIN, raw.os_login),
        ("public_ip", PUBLIC_IP, raw.public_ip),
        ("full_api_access", FULL_API_ACCESS, raw.full_api_access),
    ];
    for (name, category, text) in fixable {
        let fix_words: &[&str] = if category == FULL_API_ACCESS {
            &["stop", "rescope"]
        } else {
            &["fix"]
        };
        let action = match text.as_deref() {
            None => continue,
            Some("off") => Action::Off,
            Some("alert") => Action::Alert,
            Some(word) if fix_words.contains(&word) => {
                if word == "rescope" {
                    policy.full_access_fix =
                        rescope(key, &raw.rescope_account, &raw.rescope_scopes, problems);
                }
                Action::Fix
            }
            Some(other) => {
                problems.push(format!(
                    "{key}.{name}: '{other}' is not one of {}, alert, off",
                    fix_words.join(", ")
                ));
                continue;
            }
        };
        policy.actions.insert(category, action);
    }
    let reported: [(&str, &'static str, Option<String>); 3] = [
        (
            "default_service_account",
            DEFAULT_ACCOUNT,
            raw.default_service_account,
        ),
        ("ip_forwarding", IP_FORWARDING, raw.ip_forwarding),
        ("shielded_vm", SHIELDED_VM, raw.shielded_vm),
    ];
    for (name, category, text) in reported {
        match text.as_deref() {
            None => {}
            Some("off") => {
                policy.actions.insert(category, Action::Off);
            }
            Some("alert") => {
                policy.actions.insert(category, Action::Alert);
            }
            Some(other) => problems.push(format!(
                "{key}.{name}: '{other}' is not one of alert, off (this finding is reported only)"
            )),
        }
    }
    if let Some(scopes) = raw.full_scopes {
        policy.full_scopes = scopes;
    }
    if let Some(principals) = raw.allow_principals {
        policy.allow_principals = principals;
    }
    for (category, text) in raw.severity {
        let Some((known, _)) = CATEGORIES.iter().find(|(known, _)| *known == category) else {
            problems.push(format!(
                "{key}.severity: '{category}' is not a finding of this policy ({})",
                CATEGORIES
                    .iter()
                    .map(|(category, _)| *category)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        if let Some(severity) =
            severity(&format!("{key}.severity.{category}"), Some(&text), problems)
        {
            policy.severities.insert(known, severity);
        }
    }
    policy
}
