//! Log buckets: the `log-retention` policy — a guarded bucket (`_Default`, where Data Access audit logs are kept, and
//! those configured) keeping its entries fewer days than the minimum — its fix (the retention set back) and its undo.

pub mod config;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::log_buckets::LogBucket;
use crate::gcp::{self, Client};
use crate::policy::{Finding, glob_match};
use crate::undo;

pub use config::RetentionPolicy;

pub const POLICY: &str = "log-retention";
pub const CATEGORY: &str = "LOG_RETENTION_SHORTENED";

/// The log bucket kind.
pub struct LogBuckets;

/// A bucket as just read, with its project.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRead {
    pub project: String,
    pub bucket: LogBucket,
}

/// The fix of a bucket: its retention set back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    RestoreRetention {
        project: String,
        /// `projects/P/locations/L/buckets/B`.
        bucket: String,
        days: u32,
    },
}

const WATCHES: &[Watch] = &[
    watch("google.logging.v2.ConfigServiceV2.UpdateBucket"),
    watch("google.logging.v2.ConfigServiceV2.UpdateBucketAsync"),
    watch("google.logging.v2.ConfigServiceV2.CreateBucket"),
    watch("google.logging.v2.ConfigServiceV2.CreateBucketAsync"),
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "logging.googleapis.com",
        method,
    }
}

/// Logging's bucket ids: up to 100 letters, digits, `_`, `-` and `.`.
fn bucket_id(text: &str) -> Result<&str, names::NameError> {
    let valid = (1..=100).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a log bucket id",
            names::printable(text)
        ))
    }
}

/// A location: `global` or a region.
fn location(text: &str) -> Result<&str, names::NameError> {
    if text == "global" {
        return Ok(text);
    }
    names::region(text)
}

/// `projects/P/locations/L/buckets/B`.
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    match parts.as_slice() {
        ["projects", project, "locations", place, "buckets", id] => {
            let project = names::project(project)?;
            let path = format!(
                "projects/{project}/locations/{}/buckets/{}",
                location(place)?,
                bucket_id(id)?
            );
            Ok(Target::new(KindId::LogBucket, project, &path, path.clone()))
        }
        _ => Err(format!(
            "'{}' is not a log bucket (projects/PROJECT/locations/LOCATION/buckets/BUCKET)",
            names::printable(resource_name)
        )),
    }
}

/// Whether the policy guards the bucket, by its id.
fn guarded(policy: &RetentionPolicy, bucket: &LogBucket) -> bool {
    let id = bucket.name.rsplit('/').next().unwrap_or_default();
    policy.buckets.iter().any(|pattern| glob_match(pattern, id))
}

impl Kind for LogBuckets {
    type Resource = BucketRead;
    type Fix = Fix;
    const NAME: &'static str = "log-bucket";
    const NOUN: &'static str = "log buckets";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/[^/]+/locations/[^/]+/buckets/[^/]+$";
    const INPUTS: &'static [&'static str] = &["log-bucket"];
    type RawPolicy = config::RawRetentionPolicy;
    type Policy = RetentionPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_retention(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.log_retention;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "logging.googleapis.com" {
            return None;
        }
        let verb = event
            .method_name
            .strip_prefix("google.logging.v2.ConfigServiceV2.")?;
        if !verb.contains("Bucket") {
            return None;
        }
        let target = match parse(&event.resource_name) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match verb {
            "DeleteBucket" => Route::Deleted(target),
            "UpdateBucket" | "UpdateBucketAsync" | "CreateBucket" | "CreateBucketAsync" => {
                Route::Check(target)
            }
            other => Route::Ignore(format!(
                "'{}' changes no bucket's retention",
                names::printable(other)
            )),
        })
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec!["logging.buckets.get", "logging.buckets.list"];
        if enforcing && config.policies.log_retention.restore {
            permissions.push("logging.buckets.update");
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(BucketRead, Value), gcp::Error> {
        let (bucket, raw) = gcp.get_log_bucket(&target.name).await?;
        Ok((
            BucketRead {
                project: target.project.clone(),
                bucket,
            },
            raw,
        ))
    }

    fn evaluate(config: &Config, read: &BucketRead) -> (Vec<Finding>, Option<Fix>) {
        let policy = &config.policies.log_retention;
        // Logging answers 30 for a bucket whose retention was never set.
        let days = read.bucket.retention_days.unwrap_or(30);
        if !guarded(policy, &read.bucket) || days >= policy.min_days {
            return (Vec::new(), None);
        }
        let finding = Finding {
            policy: POLICY.into(),
            category: CATEGORY.into(),
            severity: policy.severity,
            message: format!(
                "log bucket {} keeps its entries {days} day(s), fewer than the {} required",
                read.bucket.name, policy.min_days
            ),
        };
        // A locked bucket's retention cannot change (and cannot have been shortened): reported only.
        let fix = (policy.restore && !read.bucket.locked).then(|| Fix::RestoreRetention {
            project: read.project.clone(),
            bucket: read.bucket.name.clone(),
            days: policy.min_days,
        });
        (vec![finding], fix)
    }

    fn exemption(_config: &Config, _read: &BucketRead, _principal: &str) -> Option<String> {
        None
    }

    fn target_of(read: &BucketRead) -> Target {
        Target::new(
            KindId::LogBucket,
            &read.project,
            &read.bucket.name,
            read.bucket.name.clone(),
        )
    }

    fn describe(fix: &Fix) -> String {
        let Fix::RestoreRetention { days, .. } = fix;
        format!("set the retention back to {days} days")
    }

    async fn apply(
        _config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::RestoreRetention { bucket, days, .. } = fix;
        gcp.set_log_retention(bucket, *days).await?;
        let (read, after) = gcp.get_log_bucket(bucket).await?;
        if read.retention_days.unwrap_or(30) < *days {
            return Err(apply::Error::NotFixed(format!(
                "{bucket} keeps its entries {} day(s)",
                read.retention_days.unwrap_or(30)
            )));
        }
        Ok(Some(after))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let Fix::RestoreRetention { bucket, .. } = fix;
        let (_, current) = gcp.get_log_bucket(bucket).await?;
        if !force && current["retentionDays"] != after["retentionDays"] {
            return Err(undo::Error::Changed(bucket.clone()));
        }
        let days = before["retentionDays"]
            .as_u64()
            .and_then(|days| u32::try_from(days).ok())
            .unwrap_or(30);
        gcp.set_log_retention(bucket, days).await?;
        Ok(Restored {
            resource: bucket.clone(),
            what: format!("a retention of {days} days"),
            overwritten: current,
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<BucketRead> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        match gcp.list_log_buckets(project).await {
            Ok(buckets) => {
                for bucket in buckets {
                    // The project is the operator's; the rest of the name is checked as Google spells it.
                    let listed = bucket
                        .name
                        .strip_prefix(&format!("projects/{project}/locations/"))
                        .and_then(|rest| rest.split_once("/buckets/"))
                        .is_some_and(|(place, id)| {
                            location(place).is_ok() && bucket_id(id).is_ok()
                        });
                    match listed {
                        true => swept.resources.push(BucketRead {
                            project: project.to_string(),
                            bucket,
                        }),
                        false => swept.errors.push(format!(
                            "{project}: a log bucket named '{}'",
                            names::printable(&bucket.name)
                        )),
                    }
                }
            }
            Err(err) => swept
                .errors
                .push(format!("{project}: listing log buckets: {err}")),
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        format!(
            "https://console.cloud.google.com/logs/storage?project={}",
            target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<BucketRead, String> {
        let bucket: LogBucket = serde_json::from_str(text)
            .map_err(|err| format!("the input is not a log bucket: {err}"))?;
        let project = parse(&bucket.name)
            .map(|target| target.project)
            .unwrap_or_else(|_| "-".into());
        Ok(BucketRead { project, bucket })
    }
}
