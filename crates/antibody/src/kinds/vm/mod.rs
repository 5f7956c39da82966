//! Compute Engine instances and the project's common instance metadata: the `vm-instance` policy (Security Health
//! Analytics' instance findings), its fixes (metadata, external addresses, stopping) and their undo.

pub mod config;
mod fix;
pub mod policy;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::instances::{Instance, Metadata};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub use policy::InstancePolicy;

/// The instance kind.
pub struct Instances;

/// What was just read: an instance with the project metadata it inherits, or that project metadata alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Vm {
    Instance {
        project: String,
        zone: String,
        instance: Box<Instance>,
        common: Metadata,
    },
    ProjectMetadata {
        project: String,
        common: Metadata,
    },
}

/// The fixes of an instance or of its project's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// Set metadata keys (fingerprint-guarded), delete external access configs, stop the instance: in that order,
    /// each step only when planned.
    SecureInstance {
        project: String,
        zone: String,
        name: String,
        #[serde(default)]
        metadata: std::collections::BTreeMap<String, String>,
        /// (network interface, access config name).
        #[serde(default)]
        access_configs: Vec<(String, String)>,
        #[serde(default)]
        stop: bool,
        /// Stop, run as this account with these scopes, start again if it was running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rescope: Option<policy::Rescope>,
    },
    /// Set keys of the project's common instance metadata (fingerprint-guarded).
    SecureProjectMetadata {
        project: String,
        metadata: std::collections::BTreeMap<String, String>,
    },
}

/// Compute logs `v1.` or `beta.` by the API surface the caller used, and nothing first for some writes Google makes
/// itself; each spelling Google's audit-log catalog lists is watched.
const WATCHES: &[Watch] = &[
    watch("v1.compute.instances.insert"),
    watch("beta.compute.instances.insert"),
    watch("compute.instances.insert"),
    watch("v1.compute.instances.setMetadata"),
    watch("beta.compute.instances.setMetadata"),
    watch("compute.instances.setMetadata"),
    watch("v1.compute.instances.setServiceAccount"),
    watch("beta.compute.instances.setServiceAccount"),
    watch("compute.instances.setSecondaryServiceAccount"),
    watch("v1.compute.instances.addAccessConfig"),
    watch("beta.compute.instances.addAccessConfig"),
    watch("v1.compute.instances.updateNetworkInterface"),
    watch("beta.compute.instances.updateNetworkInterface"),
    watch("v1.compute.instances.updateShieldedInstanceConfig"),
    watch("beta.compute.instances.updateShieldedInstanceConfig"),
    watch("beta.compute.instances.updateShieldedVmConfig"),
    watch("v1.compute.instances.update"),
    watch("beta.compute.instances.update"),
    // A fix that stopped an instance (full API access as the default account) is undone by starting it again.
    watch("v1.compute.instances.start"),
    watch("beta.compute.instances.start"),
    watch("v1.compute.instances.startWithEncryptionKey"),
    watch("beta.compute.instances.startWithEncryptionKey"),
    watch("v1.compute.instances.resume"),
    watch("beta.compute.instances.resume"),
    watch("v1.compute.projects.setCommonInstanceMetadata"),
    watch("beta.compute.projects.setCommonInstanceMetadata"),
];

/// The instance methods whose entries re-read the instance, whatever the surface.
const CHECKED_VERBS: &[&str] = &[
    "insert",
    "setMetadata",
    "setServiceAccount",
    "setSecondaryServiceAccount",
    "addAccessConfig",
    "updateNetworkInterface",
    "updateShieldedInstanceConfig",
    "updateShieldedVmConfig",
    "update",
    "start",
    "startWithEncryptionKey",
    "resume",
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "compute.googleapis.com",
        method,
    }
}

const COMMON_METADATA: &str = "commonInstanceMetadata";

pub(crate) fn instance_target(project: &str, zone: &str, name: &str) -> Target {
    Target::new(
        KindId::Vm,
        project,
        &format!("{zone}/{name}"),
        format!("projects/{project}/zones/{zone}/instances/{name}"),
    )
}

/// The project's common metadata: audit logs name it `projects/P`, which is also the project's IAM policy; its own
/// key keeps locks, counters and exemptions of the two apart.
pub(crate) fn metadata_target(project: &str) -> Target {
    Target::new(
        KindId::Vm,
        project,
        "",
        format!("projects/{project}/{COMMON_METADATA}"),
    )
}

/// `projects/P/zones/Z/instances/NAME` (or as a Compute URL), or this kind's key for a project's metadata.
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    match parts.as_slice() {
        ["projects", project, "zones", zone, "instances", name] => Ok(instance_target(
            names::project(project)?,
            names::zone(zone)?,
            names::compute(name)?,
        )),
        ["projects", project, COMMON_METADATA] => Ok(metadata_target(names::project(project)?)),
        _ => Err(format!(
            "'{}' is not an instance (projects/PROJECT/zones/ZONE/instances/NAME)",
            names::printable(resource_name)
        )),
    }
}

/// (zone, name) of an instance target.
fn zone_and_name(target: &Target) -> (&str, &str) {
    target.name.split_once('/').unwrap_or(("", ""))
}

impl Kind for Instances {
    type Resource = Vm;
    type Fix = Fix;
    const NAME: &'static str = "vm";
    const NOUN: &'static str = "VM instances";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/[^/]+(/zones/[^/]+/instances/[^/]+)?$";
    const INPUTS: &'static [&'static str] = &["vm"];
    type RawPolicy = config::RawInstancePolicy;
    type Policy = InstancePolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_instance(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.vm;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "compute.googleapis.com" {
            return None;
        }
        let (collection, verb) = names::compute_method(&event.method_name)?;
        match collection {
            "projects" if verb == "setCommonInstanceMetadata" => {
                let parts: Vec<&str> = names::relative(&event.resource_name).split('/').collect();
                Some(match parts.as_slice() {
                    ["projects", project] => match names::project(project) {
                        Ok(project) => Route::Check(metadata_target(project)),
                        Err(reason) => Route::Refuse(reason),
                    },
                    _ => Route::Refuse(format!(
                        "'{}' is not a project (projects/PROJECT)",
                        names::printable(&event.resource_name)
                    )),
                })
            }
            // An instance's own IAM policy is the resource-IAM kind's.
            "instances" if verb == "setIamPolicy" => None,
            // A bulk insert names the zone's collection, not the instances it makes: the sweep reads them.
            "instances" if verb == "bulkInsert" => Some(Route::Ignore(
                "a bulk insert names no instance; the scheduled sweep reads the instances it made"
                    .into(),
            )),
            "instances" => {
                let target = match parse(&event.resource_name) {
                    Ok(target) if !target.name.is_empty() => target,
                    Ok(_) => {
                        return Some(Route::Refuse(format!(
                            "'{}' is not an instance",
                            names::printable(&event.resource_name)
                        )));
                    }
                    Err(reason) => return Some(Route::Refuse(reason)),
                };
                Some(if verb == "delete" {
                    Route::Deleted(target)
                } else if CHECKED_VERBS.contains(&verb) {
                    Route::Check(target)
                } else {
                    Route::Ignore(format!(
                        "instance method '{}' changes nothing the policy checks",
                        names::printable(verb)
                    ))
                })
            }
            _ => None,
        }
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        use policy::{
            Action, FULL_API_ACCESS, OS_LOGIN, PROJECT_SSH_KEYS, PUBLIC_IP, SERIAL_PORTS,
        };
        let policy = &config.policies.vm;
        let mut permissions = vec![
            "compute.instances.get",
            "compute.instances.list",
            "compute.projects.get",
        ];
        if !enforcing {
            return permissions;
        }
        let fixes = |category: &str| policy.action(category) == Action::Fix;
        if fixes(SERIAL_PORTS) || fixes(PROJECT_SSH_KEYS) || fixes(OS_LOGIN) {
            // Changing the metadata of an instance that runs as a service account acts as that account.
            permissions.extend([
                "compute.instances.setMetadata",
                "compute.zoneOperations.get",
                "iam.serviceAccounts.actAs",
            ]);
        }
        if fixes(SERIAL_PORTS) || fixes(OS_LOGIN) {
            permissions.extend([
                "compute.projects.setCommonInstanceMetadata",
                "compute.globalOperations.get",
            ]);
        }
        if fixes(PUBLIC_IP) {
            permissions.extend([
                "compute.instances.deleteAccessConfig",
                "compute.zoneOperations.get",
            ]);
        }
        if fixes(FULL_API_ACCESS) {
            permissions.extend(["compute.instances.stop", "compute.zoneOperations.get"]);
            if let policy::FullAccessFix::Rescope(_) = policy.full_access_fix {
                // Giving an instance an account acts as that account.
                permissions.extend([
                    "compute.instances.setServiceAccount",
                    "compute.instances.start",
                    "iam.serviceAccounts.actAs",
                ]);
            }
        }
        permissions.sort_unstable();
        permissions.dedup();
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(Vm, Value), gcp::Error> {
        let (project, raw_project) = gcp.get_compute_project(&target.project).await?;
        if target.name.is_empty() {
            let vm = Vm::ProjectMetadata {
                project: target.project.clone(),
                common: project.common_instance_metadata,
            };
            return Ok((vm, raw_project));
        }
        let (zone, name) = zone_and_name(target);
        let (instance, raw) = gcp.get_instance(&target.project, zone, name).await?;
        let vm = Vm::Instance {
            project: target.project.clone(),
            zone: zone.to_string(),
            instance: Box::new(instance),
            common: project.common_instance_metadata,
        };
        Ok((vm, raw))
    }

    fn evaluate(config: &Config, vm: &Vm) -> (Vec<Finding>, Option<Fix>) {
        fix::plan(&config.policies.vm, vm)
    }

    fn exemption(config: &Config, _vm: &Vm, principal: &str) -> Option<String> {
        config.policies.vm.exemption(principal)
    }

    fn owner(config: &Config, vm: &Vm) -> Option<String> {
        let label = config.owner_label.as_ref()?;
        match vm {
            Vm::Instance { instance, .. } => instance.labels.get(label).cloned(),
            Vm::ProjectMetadata { .. } => None,
        }
    }

    fn target_of(vm: &Vm) -> Target {
        match vm {
            Vm::Instance {
                project,
                zone,
                instance,
                ..
            } => instance_target(project, zone, &instance.name),
            Vm::ProjectMetadata { project, .. } => metadata_target(project),
        }
    }

    fn describe(fix: &Fix) -> String {
        fix::describe(fix)
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        fix::apply(&config.policies.vm, gcp, fix).await
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        fix::undo(gcp, fix, before, after, force).await
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<Vm> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        let common = match gcp.get_compute_project(project).await {
            Ok((read, _)) => read.common_instance_metadata,
            Err(err) => {
                swept
                    .errors
                    .push(format!("{project}: reading Compute's project: {err}"));
                return swept;
            }
        };
        swept.resources.push(Vm::ProjectMetadata {
            project: project.to_string(),
            common: common.clone(),
        });
        match gcp.list_instances(project).await {
            Ok(instances) => swept
                .resources
                .extend(instances.into_iter().map(|instance| {
                    Vm::Instance {
                        project: project.to_string(),
                        zone: instance
                            .zone
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                        instance: Box::new(instance),
                        common: common.clone(),
                    }
                })),
            Err(err) => swept
                .errors
                .push(format!("{project}: listing instances: {err}")),
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        if target.name.is_empty() {
            return format!(
                "https://console.cloud.google.com/compute/metadata?project={}",
                target.project
            );
        }
        let (zone, name) = zone_and_name(target);
        format!(
            "https://console.cloud.google.com/compute/instancesDetail/zones/{zone}/instances/{name}?project={}",
            target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<Vm, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        if !value.is_object() {
            return Err("the input must be a JSON object in Compute's instance shape".into());
        }
        let instance: Instance = serde_json::from_value(value)
            .map_err(|err| format!("the input is not a Compute instance: {err}"))?;
        if instance.name.is_empty() {
            return Err("the instance has no name".into());
        }
        // The project and zone appear only in the zone's URL; a bare instance has neither.
        let zone_url = instance.zone.clone();
        let project = zone_url
            .split("projects/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("-")
            .to_string();
        let zone = zone_url.rsplit('/').next().unwrap_or("-").to_string();
        Ok(Vm::Instance {
            project,
            zone: if zone.is_empty() { "-".into() } else { zone },
            instance: Box::new(instance),
            common: Metadata::default(),
        })
    }
}

#[cfg(test)]
mod tests;
