//! Cloud SQL instances: the `public-sql` policy (Security Health Analytics' `PUBLIC_SQL_INSTANCE`, `SSL_NOT_ENFORCED`;
//! CIS 6.5/6.7), judging authorised networks with the firewall's union-of-ranges rule, the removal of the broad
//! networks under the settings version, and its undo. Turning off the public IP or requiring SSL is never automatic.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply::{self, Attempt, raced, until_settled};
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::sql::{AclEntry, SqlInstance};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub const POLICY: &str = "public-sql";
pub const PUBLIC: &str = "PUBLIC_SQL_INSTANCE";
pub const SSL: &str = "SSL_NOT_ENFORCED";

mod config;
mod policy;

pub use config::{RawSqlPolicy, SqlPolicy};

/// The Cloud SQL kind.
pub struct SqlInstances;

/// An instance as just read.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRead {
    pub project: String,
    pub instance: SqlInstance,
}

/// The fix of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// `instances.patch` with the authorised networks minus exactly these, under the settings version.
    RemoveNetworks {
        project: String,
        instance: String,
        networks: Vec<AclEntry>,
    },
}

const WATCHES: &[Watch] = &[
    watch("cloudsql.instances.create"),
    watch("cloudsql.instances.update"),
    watch("cloudsql.instances.clone"),
    watch("cloudsql.instances.restoreBackup"),
    watch("cloudsql.instances.promoteReplica"),
    watch("cloudsql.instances.demoteMaster"),
    watch("cloudsql.instances.migrate"),
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "cloudsql.googleapis.com",
        method,
    }
}

fn target(project: &str, instance: &str) -> Target {
    Target::new(
        KindId::SqlInstance,
        project,
        instance,
        format!("projects/{project}/instances/{instance}"),
    )
}

/// `projects/P/instances/I`, or `instances/I` — the form Cloud SQL's own audit entries use, their project only in
/// `resource.labels.project_id` (`entry_project`).
fn parse(resource_name: &str, entry_project: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    let (project, instance) = match parts.as_slice() {
        ["projects", project, "instances", instance] => (*project, *instance),
        ["instances", instance] if !entry_project.is_empty() => (entry_project, *instance),
        _ => {
            return Err(format!(
                "'{}' is not a Cloud SQL instance",
                names::printable(resource_name)
            ));
        }
    };
    let valid = (1..=98).contains(&instance.len())
        && instance.starts_with(|c: char| c.is_ascii_lowercase())
        && instance
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "'{}' is not a Cloud SQL instance name",
            names::printable(instance)
        ));
    }
    Ok(target(names::project(project)?, instance))
}

impl Kind for SqlInstances {
    type Resource = SqlRead;
    type Fix = Fix;
    const NAME: &'static str = "sql-instance";
    const NOUN: &'static str = "Cloud SQL instances";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^(projects/[^/]+/)?instances/[^/]+$";
    const INPUTS: &'static [&'static str] = &["sql-instance"];
    type RawPolicy = RawSqlPolicy;
    type Policy = SqlPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.public_sql;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "cloudsql.googleapis.com" {
            return None;
        }
        let verb = event.method_name.strip_prefix("cloudsql.instances.")?;
        let target = match parse(&event.resource_name, &event.project) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match verb {
            // A clone, a restore, a promotion or a migration may give an instance settings no `update` wrote.
            "create" | "update" | "clone" | "restoreBackup" | "promoteReplica" | "demoteMaster"
            | "migrate" => Route::Check(target),
            "delete" => Route::Deleted(target),
            other => Route::Ignore(format!("'{}' changes no network", names::printable(other))),
        })
    }

    fn target(resource_name: &str, project: &str) -> Option<Target> {
        parse(resource_name, project).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec!["cloudsql.instances.get", "cloudsql.instances.list"];
        if enforcing && config.policies.public_sql.remove {
            permissions.push("cloudsql.instances.update");
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(SqlRead, Value), gcp::Error> {
        let (instance, raw) = gcp.get_sql_instance(&target.project, &target.name).await?;
        Ok((
            SqlRead {
                project: target.project.clone(),
                instance,
            },
            raw,
        ))
    }

    fn evaluate(config: &Config, read: &SqlRead) -> (Vec<Finding>, Option<Fix>) {
        let (findings, networks) = config.policies.public_sql.evaluate(&read.instance);
        let fix = (!networks.is_empty()).then(|| Fix::RemoveNetworks {
            project: read.project.clone(),
            instance: read.instance.name.clone(),
            networks,
        });
        (findings, fix)
    }

    fn exemption(_config: &Config, _read: &SqlRead, _principal: &str) -> Option<String> {
        None
    }

    fn target_of(read: &SqlRead) -> Target {
        target(&read.project, &read.instance.name)
    }

    fn describe(fix: &Fix) -> String {
        let Fix::RemoveNetworks { networks, .. } = fix;
        let ranges: Vec<&str> = networks
            .iter()
            .map(|network| network.value.as_str())
            .collect();
        format!("removed the authorised networks {}", ranges.join(", "))
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::RemoveNetworks {
            project,
            instance,
            networks,
        } = fix;
        until_settled("the instance's authorised networks", || async {
            let (read, _) = gcp.get_sql_instance(project, instance).await?;
            let kept: Vec<AclEntry> = read
                .networks
                .iter()
                .filter(|network| !networks.contains(network))
                .cloned()
                .collect();
            if kept.len() == read.networks.len() {
                return Ok(Attempt::Done(()));
            }
            raced(
                gcp.set_sql_networks(project, instance, &kept, &read.settings_version)
                    .await,
            )
        })
        .await?;
        let (after, raw) = gcp.get_sql_instance(project, instance).await?;
        let (findings, still) = config.policies.public_sql.evaluate(&after);
        if still.iter().any(|network| networks.contains(network)) {
            let message = findings
                .first()
                .map(|finding| finding.message.clone())
                .unwrap_or_default();
            return Err(apply::Error::NotFixed(message));
        }
        Ok(Some(raw))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        _before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let Fix::RemoveNetworks {
            project,
            instance,
            networks,
        } = fix;
        let resource = target(project, instance).key().to_string();
        let (current, raw) = gcp.get_sql_instance(project, instance).await?;
        let recorded = Vec::<AclEntry>::deserialize(
            &after["settings"]["ipConfiguration"]["authorizedNetworks"],
        )
        .unwrap_or_default();
        if !force && current.networks != recorded {
            return Err(undo::Error::Changed(resource));
        }
        let mut restored = current.networks.clone();
        restored.extend(
            networks
                .iter()
                .filter(|network| !current.networks.contains(network))
                .cloned(),
        );
        gcp.set_sql_networks(project, instance, &restored, &current.settings_version)
            .await?;
        Ok(Restored {
            resource,
            what: "the authorised networks".to_string(),
            overwritten: raw,
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<SqlRead> {
        match gcp.list_sql_instances(project).await {
            Ok(instances) => Swept {
                resources: instances
                    .into_iter()
                    .map(|instance| SqlRead {
                        project: project.to_string(),
                        instance,
                    })
                    .collect(),
                errors: Vec::new(),
            },
            Err(err) => Swept {
                resources: Vec::new(),
                errors: vec![format!("{project}: listing Cloud SQL instances: {err}")],
            },
        }
    }

    fn console_url(target: &Target) -> String {
        format!(
            "https://console.cloud.google.com/sql/instances/{}/connections?project={}",
            target.name, target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<SqlRead, String> {
        let raw: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        if raw["name"].as_str().unwrap_or_default().is_empty() {
            return Err("the input must be a Cloud SQL instance with a name".into());
        }
        let project = raw["project"].as_str().unwrap_or("-").to_string();
        let instance = SqlInstance::from_raw(&raw).map_err(|err| err.to_string())?;
        Ok(SqlRead { project, instance })
    }
}

#[cfg(test)]
mod tests;
