//! BigQuery datasets: the `public-dataset` policy (Security Health Analytics' `PUBLIC_DATASET`, CIS 7.1), the removal
//! of public access entries under the dataset's etag, and its undo.

pub mod config;
mod policy;

pub use policy::is_public;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply::{self, Attempt, raced, until_settled};
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::bigquery::Dataset;
use crate::gcp::{self, Client};
use crate::policy::{Finding, Severity};
use crate::undo;

pub const POLICY: &str = "public-dataset";
pub const CATEGORY: &str = "PUBLIC_DATASET";

/// The dataset kind.
pub struct Datasets;

/// A dataset as just read.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRead {
    pub project: String,
    pub dataset: String,
    pub read: Dataset,
}

/// The validated `[policies.public_dataset]` section.
#[derive(Debug, Clone)]
pub struct DatasetPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub grace_secs: u32,
    pub remove: bool,
    pub severity: Severity,
}

impl Default for DatasetPolicy {
    fn default() -> Self {
        DatasetPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            remove: true,
            severity: Severity::High,
        }
    }
}

/// The fix of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// `datasets.patch` with the access list minus exactly these entries, under the dataset's etag.
    RemovePublicAccess {
        project: String,
        dataset: String,
        entries: Vec<Value>,
    },
}

const WATCHES: &[Watch] = &[
    watch("google.cloud.bigquery.v2.DatasetService.InsertDataset"),
    watch("google.cloud.bigquery.v2.DatasetService.PatchDataset"),
    watch("google.cloud.bigquery.v2.DatasetService.UpdateDataset"),
    // A dataset's access changed through the IAM API is logged with IAM's generic method name.
    watch(IAM_SET_POLICY),
];

const IAM_SET_POLICY: &str = "google.iam.v1.IAMPolicy.SetIamPolicy";

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "bigquery.googleapis.com",
        method,
    }
}

fn target(project: &str, dataset: &str) -> Target {
    Target::new(
        KindId::Dataset,
        project,
        dataset,
        format!("projects/{project}/datasets/{dataset}"),
    )
}

/// `projects/P/datasets/D`, the dataset id letters, digits and underscores.
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    let ["projects", project, "datasets", dataset] = parts.as_slice() else {
        return Err(format!(
            "'{}' is not a dataset (projects/PROJECT/datasets/DATASET)",
            names::printable(resource_name)
        ));
    };
    let valid = (1..=1024).contains(&dataset.len())
        && dataset
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "'{}' is not a dataset id",
            names::printable(dataset)
        ));
    }
    Ok(target(names::project(project)?, dataset))
}

impl Kind for Datasets {
    type Resource = DatasetRead;
    type Fix = Fix;
    const NAME: &'static str = "dataset";
    const NOUN: &'static str = "BigQuery datasets";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/[^/]+/datasets/[^/]+$";
    const INPUTS: &'static [&'static str] = &["dataset"];
    type RawPolicy = config::RawDatasetPolicy;
    type Policy = DatasetPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_dataset(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.public_dataset;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "bigquery.googleapis.com" {
            return None;
        }
        if event.method_name == IAM_SET_POLICY {
            // A table's or routine's own policy is not the dataset's access: not this kind's.
            return match parse(&event.resource_name) {
                Ok(target) => Some(Route::Check(target)),
                Err(_) => None,
            };
        }
        let verb = event
            .method_name
            .strip_prefix("google.cloud.bigquery.v2.DatasetService.")?;
        let target = match parse(&event.resource_name) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match verb {
            "InsertDataset" | "PatchDataset" | "UpdateDataset" => Route::Check(target),
            "DeleteDataset" => Route::Deleted(target),
            other => Route::Ignore(format!("'{}' changes no access", names::printable(other))),
        })
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec!["bigquery.datasets.get"];
        if enforcing && config.policies.public_dataset.remove {
            permissions.push("bigquery.datasets.update");
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(DatasetRead, Value), gcp::Error> {
        let (read, raw) = gcp.get_dataset(&target.project, &target.name).await?;
        Ok((
            DatasetRead {
                project: target.project.clone(),
                dataset: target.name.clone(),
                read,
            },
            raw,
        ))
    }

    fn evaluate(config: &Config, read: &DatasetRead) -> (Vec<Finding>, Option<Fix>) {
        let (findings, entries) =
            config
                .policies
                .public_dataset
                .evaluate_with(&read.dataset, &read.read, &|member| {
                    config.policies.project_iam.outsider(member)
                });
        let fix = (!entries.is_empty()).then(|| Fix::RemovePublicAccess {
            project: read.project.clone(),
            dataset: read.dataset.clone(),
            entries,
        });
        (findings, fix)
    }

    fn exemption(_config: &Config, _read: &DatasetRead, _principal: &str) -> Option<String> {
        None
    }

    fn target_of(read: &DatasetRead) -> Target {
        target(&read.project, &read.dataset)
    }

    fn describe(fix: &Fix) -> String {
        let Fix::RemovePublicAccess { entries, .. } = fix;
        format!(
            "removed {} public access entr{}",
            entries.len(),
            if entries.len() == 1 { "y" } else { "ies" }
        )
    }

    async fn apply(
        _config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::RemovePublicAccess {
            project,
            dataset,
            entries,
        } = fix;
        until_settled("the dataset's access list", || async {
            let (read, _) = gcp.get_dataset(project, dataset).await?;
            let kept: Vec<Value> = read
                .access
                .iter()
                .filter(|entry| !entries.contains(entry))
                .cloned()
                .collect();
            if kept.len() == read.access.len() {
                return Ok(Attempt::Done(()));
            }
            raced(
                gcp.patch_dataset_access(project, dataset, &kept, &read.etag)
                    .await,
            )
        })
        .await?;
        let (after, raw) = gcp.get_dataset(project, dataset).await?;
        if let Some(entry) = after.access.iter().find(|entry| entries.contains(entry)) {
            return Err(apply::Error::NotFixed(format!(
                "dataset {dataset} still has {entry}"
            )));
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
        let Fix::RemovePublicAccess {
            project,
            dataset,
            entries,
        } = fix;
        let resource = target(project, dataset).key().to_string();
        let (current, raw) = gcp.get_dataset(project, dataset).await?;
        if !force && Some(&current.access) != after["access"].as_array() {
            return Err(undo::Error::Changed(resource));
        }
        let mut access = current.access.clone();
        access.extend(
            entries
                .iter()
                .filter(|entry| !current.access.contains(entry))
                .cloned(),
        );
        gcp.patch_dataset_access(project, dataset, &access, &current.etag)
            .await?;
        Ok(Restored {
            resource,
            what: "the public access entries".to_string(),
            overwritten: raw,
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<DatasetRead> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        match gcp.list_datasets(project).await {
            Ok(ids) => {
                for id in ids {
                    match gcp.get_dataset(project, &id).await {
                        Ok((read, _)) => swept.resources.push(DatasetRead {
                            project: project.to_string(),
                            dataset: id,
                            read,
                        }),
                        Err(err) => swept
                            .errors
                            .push(format!("{project}: reading dataset {id}: {err}")),
                    }
                }
            }
            Err(err) => swept
                .errors
                .push(format!("{project}: listing datasets: {err}")),
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        format!(
            "https://console.cloud.google.com/bigquery?project={}&ws=!1m4!1m3!3m2!1s{}!2s{}",
            target.project, target.project, target.name
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<DatasetRead, String> {
        let raw: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        let read = Dataset::deserialize(&raw)
            .map_err(|err| format!("the input is not a BigQuery dataset: {err}"))?;
        let dataset = raw["datasetReference"]["datasetId"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        let project = raw["datasetReference"]["projectId"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        Ok(DatasetRead {
            project,
            dataset,
            read,
        })
    }
}

#[cfg(test)]
mod tests;
