//! The `vm-instance` policy: Security Health Analytics' instance findings, judged on an instance with its project's
//! common metadata (or on that metadata alone), and the fix each finding is configured for. Pure.

use std::collections::BTreeMap;

use crate::gcp::instances::{Instance, Metadata};
use crate::policy::{Finding, Severity, glob_match};

pub const POLICY: &str = "vm-instance";

pub const SERIAL_PORTS: &str = "COMPUTE_SERIAL_PORTS_ENABLED";
pub const PROJECT_SSH_KEYS: &str = "COMPUTE_PROJECT_WIDE_SSH_KEYS_ALLOWED";
pub const OS_LOGIN: &str = "OS_LOGIN_DISABLED";
pub const PUBLIC_IP: &str = "PUBLIC_IP_ADDRESS";
pub const FULL_API_ACCESS: &str = "FULL_API_ACCESS";
pub const DEFAULT_ACCOUNT: &str = "DEFAULT_SERVICE_ACCOUNT_USED";
pub const IP_FORWARDING: &str = "IP_FORWARDING_ENABLED";
pub const SHIELDED_VM: &str = "SHIELDED_VM_DISABLED";

/// Every finding the policy knows, with its default severity.
pub const CATEGORIES: &[(&str, Severity)] = &[
    (SERIAL_PORTS, Severity::High),
    (PROJECT_SSH_KEYS, Severity::Medium),
    (OS_LOGIN, Severity::Medium),
    (PUBLIC_IP, Severity::High),
    (FULL_API_ACCESS, Severity::High),
    (DEFAULT_ACCOUNT, Severity::Medium),
    (IP_FORWARDING, Severity::Low),
    (SHIELDED_VM, Severity::Low),
];

/// What to do about one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not checked.
    Off,
    /// Journaled and alerted; nothing changed.
    Alert,
    /// Fixed (what the fix is depends on the finding).
    Fix,
}

/// The validated `[policies.vm_instance]` section.
#[derive(Debug, Clone)]
pub struct InstancePolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    /// Per finding category; absent categories are `Alert`.
    pub actions: BTreeMap<&'static str, Action>,
    pub severities: BTreeMap<&'static str, Severity>,
    /// Scopes that grant every API the account can reach.
    pub full_scopes: Vec<String>,
    /// Principals whose changes are left alone (Google's service agents that create instances for a service).
    pub allow_principals: Vec<String>,
    /// What `FULL_API_ACCESS` set to `Fix` does.
    pub full_access_fix: FullAccessFix,
}

/// The fix of an instance running as the default account with full access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullAccessFix {
    /// Stop it (undo starts it).
    Stop,
    /// Stop it, give it this account and these scopes, start it again if it was running.
    Rescope(Rescope),
}

/// A service account and scopes to run an instance as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rescope {
    pub email: String,
    pub scopes: Vec<String>,
}

/// The service agents that create instances on a user's behalf: managed instance groups (the Google APIs service
/// agent), GKE and Dataflow.
pub const SERVICE_AGENTS: &[&str] = &[
    "*@cloudservices.gserviceaccount.com",
    "service-*@container-engine-robot.iam.gserviceaccount.com",
    "service-*@dataflow-service-producer-prod.iam.gserviceaccount.com",
];

pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

impl Default for InstancePolicy {
    fn default() -> Self {
        let mut actions = BTreeMap::new();
        for (category, _) in CATEGORIES {
            actions.insert(*category, Action::Alert);
        }
        actions.insert(SERIAL_PORTS, Action::Fix);
        InstancePolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            actions,
            severities: CATEGORIES.iter().copied().collect(),
            full_scopes: vec![CLOUD_PLATFORM.to_string()],
            allow_principals: SERVICE_AGENTS
                .iter()
                .map(|agent| agent.to_string())
                .collect(),
            full_access_fix: FullAccessFix::Stop,
        }
    }
}

/// A metadata boolean as Google's guest environment reads it: `true`/`1`/`TRUE`/`y`/`yes`/`on` (any case) and
/// `false`/`0`/`n`/`no`/`off`; anything else counts as unset.
pub fn metadata_bool(value: Option<&str>) -> Option<bool> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "y" | "yes" | "on" => Some(true),
        "false" | "0" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `PROJECT_NUMBER-compute@developer.gserviceaccount.com`: the Compute Engine default service account; a template
/// (and an insert) may name it `default`.
pub fn is_default_account(email: &str) -> bool {
    email == "default"
        || email
            .strip_suffix("-compute@developer.gserviceaccount.com")
            .is_some_and(|number| {
                !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit())
            })
}

/// What the fix of one resource changes: metadata keys to set, access configs to delete, whether to stop, the
/// account to run as instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub metadata: BTreeMap<String, String>,
    /// (network interface, access config name).
    pub access_configs: Vec<(String, String)>,
    pub stop: bool,
    pub rescope: Option<Rescope>,
}

impl Planned {
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty()
            && self.access_configs.is_empty()
            && !self.stop
            && self.rescope.is_none()
    }
}

impl InstancePolicy {
    pub fn action(&self, category: &str) -> Action {
        self.actions.get(category).copied().unwrap_or(Action::Alert)
    }

    fn finding(&self, category: &'static str, message: String) -> Option<Finding> {
        (self.action(category) != Action::Off).then(|| Finding {
            policy: POLICY.to_string(),
            category: category.to_string(),
            severity: self
                .severities
                .get(category)
                .copied()
                .unwrap_or(Severity::Medium),
            message,
        })
    }

    /// An instance's findings (its own metadata over the project's) and what its fix changes.
    pub fn evaluate_instance(
        &self,
        instance: &Instance,
        common: &Metadata,
    ) -> (Vec<Finding>, Planned) {
        let mut findings = Vec::new();
        let mut planned = Planned::default();
        let own = |key: &str| metadata_bool(instance.metadata.get(key));
        let inherited = |key: &str| own(key).or_else(|| metadata_bool(common.get(key)));
        let mut add =
            |category: &'static str, message: String, fix: &mut dyn FnMut(&mut Planned)| {
                if let Some(finding) = self.finding(category, message) {
                    findings.push(finding);
                    if self.action(category) == Action::Fix {
                        fix(&mut planned);
                    }
                }
            };
        if inherited("serial-port-enable") == Some(true) {
            let source = if own("serial-port-enable").is_some() {
                "the instance's metadata"
            } else {
                "the project's common metadata"
            };
            add(
                SERIAL_PORTS,
                format!(
                    "interactive serial console access is on (serial-port-enable, from {source})"
                ),
                &mut |planned| {
                    planned
                        .metadata
                        .insert("serial-port-enable".into(), "false".into());
                },
            );
        }
        if own("block-project-ssh-keys") != Some(true) {
            add(
                PROJECT_SSH_KEYS,
                "project-wide SSH keys can log in (block-project-ssh-keys is not true)".into(),
                &mut |planned| {
                    planned
                        .metadata
                        .insert("block-project-ssh-keys".into(), "true".into());
                },
            );
        }
        if inherited("enable-oslogin") == Some(false) {
            add(
                OS_LOGIN,
                "OS Login is turned off (enable-oslogin is false)".into(),
                &mut |planned| {
                    planned
                        .metadata
                        .insert("enable-oslogin".into(), "TRUE".into());
                },
            );
        }
        let external: Vec<(String, String, String)> = instance
            .network_interfaces
            .iter()
            .flat_map(|interface| {
                interface
                    .access_configs
                    .iter()
                    .chain(&interface.ipv6_access_configs)
                    .map(move |config| {
                        (
                            interface.name.clone(),
                            config.name.clone(),
                            config
                                .nat_ip
                                .clone()
                                .unwrap_or_else(|| "an ephemeral address".into()),
                        )
                    })
            })
            .collect();
        if !external.is_empty() {
            let addresses: Vec<&str> = external
                .iter()
                .map(|(_, _, address)| address.as_str())
                .collect();
            add(
                PUBLIC_IP,
                format!("reachable from the internet at {}", addresses.join(", ")),
                &mut |planned| {
                    planned.access_configs.extend(
                        external
                            .iter()
                            .map(|(interface, config, _)| (interface.clone(), config.clone())),
                    );
                },
            );
        }
        for account in &instance.service_accounts {
            if !is_default_account(&account.email) {
                continue;
            }
            let full = account
                .scopes
                .iter()
                .any(|scope| self.full_scopes.contains(scope));
            if full {
                let zone = instance.zone.rsplit('/').next().unwrap_or_default();
                let name = &instance.name;
                add(
                    FULL_API_ACCESS,
                    format!(
                        "runs as the default service account {} with access to every Google Cloud API; to rescope: \
                         gcloud compute instances stop {name} --zone {zone} && gcloud compute instances \
                         set-service-account {name} --zone {zone} --service-account ACCOUNT --scopes SCOPES && \
                         gcloud compute instances start {name} --zone {zone}",
                        account.email
                    ),
                    &mut |planned| match &self.full_access_fix {
                        FullAccessFix::Stop => planned.stop = instance.status == "RUNNING",
                        FullAccessFix::Rescope(rescope) => planned.rescope = Some(rescope.clone()),
                    },
                );
            } else {
                add(
                    DEFAULT_ACCOUNT,
                    format!("runs as the default service account {}", account.email),
                    &mut |_| {},
                );
            }
        }
        if instance.can_ip_forward == Some(true) {
            add(IP_FORWARDING, "IP forwarding is on".into(), &mut |_| {});
        }
        let secure_boot = instance
            .shielded_instance_config
            .as_ref()
            .and_then(|config| config.enable_secure_boot);
        if secure_boot != Some(true) {
            add(
                SHIELDED_VM,
                "Shielded VM secure boot is off".into(),
                &mut |_| {},
            );
        }
        (findings, planned)
    }

    /// The project's common metadata on its own: what every instance inherits unless it says otherwise.
    pub fn evaluate_project(&self, common: &Metadata) -> (Vec<Finding>, Planned) {
        let mut findings = Vec::new();
        let mut planned = Planned::default();
        if metadata_bool(common.get("serial-port-enable")) == Some(true)
            && let Some(finding) = self.finding(
                SERIAL_PORTS,
                "every instance that does not override it has serial console access (project metadata serial-port-enable)".into(),
            )
        {
            findings.push(finding);
            if self.action(SERIAL_PORTS) == Action::Fix {
                planned.metadata.insert("serial-port-enable".into(), "false".into());
            }
        }
        if metadata_bool(common.get("enable-oslogin")) == Some(false)
            && let Some(finding) = self.finding(
                OS_LOGIN,
                "OS Login is off for every instance that does not override it (project metadata enable-oslogin)".into(),
            )
        {
            findings.push(finding);
            if self.action(OS_LOGIN) == Action::Fix {
                planned.metadata.insert("enable-oslogin".into(), "TRUE".into());
            }
        }
        (findings, planned)
    }

    /// Why a change by `principal` is left alone.
    pub fn exemption(&self, principal: &str) -> Option<String> {
        self.allow_principals
            .iter()
            .find(|pattern| glob_match(pattern, principal))
            .map(|pattern| {
                format!("changed by {principal}, a service agent allowed by '{pattern}'")
            })
    }
}

#[cfg(test)]
mod tests;
