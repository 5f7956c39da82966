//! The instance kind's fixes: planned from the policy's findings, applied step by step (metadata under the
//! fingerprint, retried after a lost race like the IAM etag loop; external addresses; power), verified by
//! re-reading, and undone from the journaled before-state.

use std::collections::BTreeMap;

use serde_json::Value;

use super::policy::{InstancePolicy, Planned};
use super::{Fix, Vm, instance_target, metadata_target};
use crate::apply::{self, Attempt, raced, until_settled};
use crate::gcp::instances::{AccessConfig, Instance, Metadata};
use crate::gcp::{self, Client};
use crate::kinds::Restored;
use crate::policy::Finding;
use crate::undo;

/// Pure: the findings and the fix the configuration asks for.
pub(super) fn plan(policy: &InstancePolicy, vm: &Vm) -> (Vec<Finding>, Option<Fix>) {
    match vm {
        Vm::Instance {
            project,
            zone,
            instance,
            common,
        } => {
            let (findings, planned) = policy.evaluate_instance(instance, common);
            let fix = (!planned.is_empty()).then(|| Fix::SecureInstance {
                project: project.clone(),
                zone: zone.clone(),
                name: instance.name.clone(),
                metadata: planned.metadata,
                access_configs: planned.access_configs,
                stop: planned.stop,
                rescope: planned.rescope,
            });
            (findings, fix)
        }
        Vm::ProjectMetadata { project, common } => {
            let (findings, planned) = policy.evaluate_project(common);
            let fix = (!planned.metadata.is_empty()).then(|| Fix::SecureProjectMetadata {
                project: project.clone(),
                metadata: planned.metadata,
            });
            (findings, fix)
        }
    }
}

pub(super) fn describe(fix: &Fix) -> String {
    let keys = |metadata: &BTreeMap<String, String>| {
        metadata
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match fix {
        Fix::SecureInstance {
            metadata,
            access_configs,
            stop,
            rescope,
            ..
        } => {
            let mut steps = Vec::new();
            if !metadata.is_empty() {
                steps.push(format!("set instance metadata {}", keys(metadata)));
            }
            if !access_configs.is_empty() {
                steps.push("removed the external IP address".to_string());
            }
            if let Some(rescope) = rescope {
                steps.push(format!(
                    "now runs as {} with {} scope(s)",
                    rescope.email,
                    rescope.scopes.len()
                ));
            } else if *stop {
                steps.push("stopped the instance".to_string());
            }
            steps.join("; ")
        }
        Fix::SecureProjectMetadata { metadata, .. } => {
            format!("set project-wide instance metadata {}", keys(metadata))
        }
    }
}

/// Whether `metadata` already says what `wanted` asks.
fn already(metadata: &Metadata, wanted: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(key, value)| metadata.get(key) == Some(value.as_str()))
}

fn with_all(metadata: &Metadata, wanted: &BTreeMap<String, String>) -> Metadata {
    wanted
        .iter()
        .fold(metadata.clone(), |updated, (key, value)| {
            updated.with(key, value)
        })
}

pub(super) async fn apply(
    policy: &InstancePolicy,
    gcp: &Client,
    fix: &Fix,
) -> Result<Option<Value>, apply::Error> {
    match fix {
        Fix::SecureInstance {
            project,
            zone,
            name,
            metadata,
            access_configs,
            stop,
            rescope,
        } => {
            if !metadata.is_empty() {
                until_settled("the instance's metadata", || async {
                    let (instance, _) = gcp.get_instance(project, zone, name).await?;
                    if already(&instance.metadata, metadata) {
                        return Ok(Attempt::Done(()));
                    }
                    raced(
                        gcp.set_instance_metadata(
                            project,
                            zone,
                            name,
                            &with_all(&instance.metadata, metadata),
                        )
                        .await,
                    )
                })
                .await?;
            }
            if !access_configs.is_empty() || *stop {
                let (instance, _) = gcp.get_instance(project, zone, name).await?;
                for (interface, config) in access_configs {
                    if present(&instance, interface, config).is_some() {
                        gcp.delete_access_config(project, zone, name, interface, config)
                            .await?;
                    }
                }
                if *stop && instance.status == "RUNNING" {
                    gcp.stop_instance(project, zone, name).await?;
                }
            }
            if let Some(rescope) = rescope {
                let (instance, _) = gcp.get_instance(project, zone, name).await?;
                let running = instance.status == "RUNNING";
                if running {
                    gcp.stop_instance(project, zone, name).await?;
                }
                gcp.set_service_account(project, zone, name, &rescope.email, &rescope.scopes)
                    .await?;
                if running {
                    gcp.start_instance(project, zone, name).await?;
                }
            }
            let (project_read, _) = gcp.get_compute_project(project).await?;
            let (instance, raw) = gcp.get_instance(project, zone, name).await?;
            let (findings, planned) =
                policy.evaluate_instance(&instance, &project_read.common_instance_metadata);
            verify(&findings, &planned)?;
            Ok(Some(raw))
        }
        Fix::SecureProjectMetadata { project, metadata } => {
            until_settled("the project's instance metadata", || async {
                let (read, _) = gcp.get_compute_project(project).await?;
                let common = read.common_instance_metadata;
                if already(&common, metadata) {
                    return Ok(Attempt::Done(()));
                }
                raced(
                    gcp.set_common_metadata(project, &with_all(&common, metadata))
                        .await,
                )
            })
            .await?;
            let (read, raw) = gcp.get_compute_project(project).await?;
            let (findings, planned) = policy.evaluate_project(&read.common_instance_metadata);
            verify(&findings, &planned)?;
            Ok(Some(raw))
        }
    }
}

/// The fix held when nothing it was planned to change still needs changing.
fn verify(findings: &[Finding], planned: &Planned) -> Result<(), apply::Error> {
    if planned.is_empty() {
        return Ok(());
    }
    let message = findings.first().map_or_else(
        || "the instance still needs the fix".to_string(),
        |finding| finding.message.clone(),
    );
    Err(apply::Error::NotFixed(message))
}

fn present<'a>(instance: &'a Instance, interface: &str, config: &str) -> Option<&'a AccessConfig> {
    instance
        .network_interfaces
        .iter()
        .filter(|candidate| candidate.name == interface)
        .flat_map(|candidate| {
            candidate
                .access_configs
                .iter()
                .chain(&candidate.ipv6_access_configs)
        })
        .find(|candidate| candidate.name == config)
}

fn parse_instance(raw: &Value) -> Result<Instance, undo::Error> {
    serde_json::from_value(raw.clone()).map_err(|err| {
        undo::Error::Google(gcp::Error::Permanent {
            status: 200,
            message: format!("the journaled instance does not read back: {err}"),
        })
    })
}

/// Metadata with each of `keys` as it was in `before` (removed when `before` did not have it).
fn restored_metadata(
    current: &Metadata,
    before: &Metadata,
    keys: &BTreeMap<String, String>,
) -> Metadata {
    let mut metadata = current.clone();
    for key in keys.keys() {
        metadata.items.retain(|item| &item.key != key);
        if let Some(item) = before.items.iter().find(|item| &item.key == key) {
            metadata.items.push(item.clone());
        }
    }
    metadata
}

/// What undo compares to see whether someone changed the instance since the fix: metadata items, access configs
/// (`interface/name`), power state.
type FixedParts = (Vec<(String, Option<String>)>, Vec<String>, String);

fn fixed_parts(instance: &Instance) -> FixedParts {
    let mut items: Vec<(String, Option<String>)> = instance
        .metadata
        .items
        .iter()
        .map(|item| (item.key.clone(), item.value.clone()))
        .collect();
    items.sort();
    let configs = instance
        .network_interfaces
        .iter()
        .flat_map(|interface| {
            interface
                .access_configs
                .iter()
                .map(|config| format!("{}/{}", interface.name, config.name))
        })
        .collect();
    (items, configs, instance.status.clone())
}

pub(super) async fn undo(
    gcp: &Client,
    fix: &Fix,
    before: &Value,
    after: &Value,
    force: bool,
) -> Result<Restored, undo::Error> {
    match fix {
        Fix::SecureInstance {
            project,
            zone,
            name,
            metadata,
            access_configs,
            stop,
            rescope,
        } => {
            let resource = instance_target(project, zone, name).key().to_string();
            let before = parse_instance(before)?;
            let (current, overwritten) = gcp.get_instance(project, zone, name).await?;
            if !force && fixed_parts(&current) != fixed_parts(&parse_instance(after)?) {
                return Err(undo::Error::Changed(resource));
            }
            if rescope.is_some() {
                let account = before.service_accounts.first().cloned().unwrap_or_default();
                if current.status == "RUNNING" {
                    gcp.stop_instance(project, zone, name).await?;
                }
                gcp.set_service_account(project, zone, name, &account.email, &account.scopes)
                    .await?;
                if before.status == "RUNNING" {
                    gcp.start_instance(project, zone, name).await?;
                }
            } else if *stop && before.status == "RUNNING" && current.status != "RUNNING" {
                gcp.start_instance(project, zone, name).await?;
            }
            for (interface, config) in access_configs {
                if present(&current, interface, config).is_some() {
                    continue;
                }
                let Some(original) = present(&before, interface, config).cloned() else {
                    continue;
                };
                // A reserved address can be attached again by its IP; an ephemeral one is gone, so a new one is taken.
                match gcp
                    .add_access_config(project, zone, name, interface, &original)
                    .await
                {
                    Err(gcp::Error::Permanent { .. }) if original.nat_ip.is_some() => {
                        let fresh = AccessConfig {
                            nat_ip: None,
                            ..original
                        };
                        gcp.add_access_config(project, zone, name, interface, &fresh)
                            .await?;
                    }
                    other => other?,
                }
            }
            if !metadata.is_empty() {
                let (latest, _) = gcp.get_instance(project, zone, name).await?;
                let restored = restored_metadata(&latest.metadata, &before.metadata, metadata);
                gcp.set_instance_metadata(project, zone, name, &restored)
                    .await?;
            }
            Ok(Restored {
                resource,
                what: "the instance's metadata, external address and power state as they were"
                    .to_string(),
                overwritten,
            })
        }
        Fix::SecureProjectMetadata { project, metadata } => {
            let resource = metadata_target(project).key().to_string();
            let common = |raw: &Value| -> Metadata {
                serde_json::from_value(raw["commonInstanceMetadata"].clone()).unwrap_or_default()
            };
            let (read, overwritten) = gcp.get_compute_project(project).await?;
            let current = read.common_instance_metadata;
            let items = |metadata: &Metadata| metadata.items.clone();
            if !force && items(&current) != items(&common(after)) {
                return Err(undo::Error::Changed(resource));
            }
            let restored = restored_metadata(&current, &common(before), metadata);
            gcp.set_common_metadata(project, &restored).await?;
            Ok(Restored {
                resource,
                what: "the project's instance metadata as it was".to_string(),
                overwritten,
            })
        }
    }
}
