//! Cloud Storage buckets: the public-bucket policy (IAM, ACLs, default object ACLs, prevention), its guarded fix and
//! its undo.

pub mod config;
pub mod policy;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply::{self, Attempt, raced, remove_grants, until_settled};
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::storage;
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub use policy::{BucketPolicy, PreventionMode};

/// The bucket kind.
pub struct Buckets;

/// A bucket (with its ACLs) and its IAM policy, read together.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub project: String,
    pub bucket: storage::Bucket,
    pub policy: Policy,
}

/// The fixes of a bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// Close a public bucket: public ACL entries go (metageneration-checked), public IAM grants go (etag-checked,
    /// version 3, conditions kept), and optionally public access prevention and uniform access are switched on.
    SecureBucket {
        bucket: String,
        remove_members: Vec<Grant>,
        remove_acl: Vec<String>,
        remove_default_object_acl: Vec<String>,
        enforce_public_access_prevention: bool,
        enable_uniform_access: bool,
    },
}

const SERVICE: &str = "storage.googleapis.com";

/// The bucket methods that can make a bucket public. Any other write on a bucket (an ACL edit's method was never
/// captured live) is routed too: the bucket and its IAM policy are re-read either way.
const WATCHES: &[Watch] = &[
    Watch {
        service: SERVICE,
        method: "storage.setIamPermissions",
    },
    Watch {
        service: SERVICE,
        method: "storage.buckets.update",
    },
    Watch {
        service: SERVICE,
        method: "storage.buckets.create",
    },
];

/// Bucket reads are logged as data access and change nothing.
const READS: &[&str] = &[
    "get",
    "list",
    "getIamPermissions",
    "getIamPolicy",
    "testIamPermissions",
];

/// Bucket IAM reads in flight at once, per sweep.
const CONCURRENCY: usize = 32;

/// `projects/_/buckets/B`, strictly. Storage names no project in the resource name; the entry's project label is
/// used for caps and links only, and must itself be a project id.
fn parse(resource_name: &str, project: &str) -> Result<Target, names::NameError> {
    let Some(name) = resource_name.strip_prefix("projects/_/buckets/") else {
        return Err(format!(
            "'{}' is not a bucket (projects/_/buckets/NAME)",
            names::printable(resource_name)
        ));
    };
    let project = match project {
        "" | "_" => "_",
        project => names::project(project)?,
    };
    Ok(target(project, names::bucket(name)?))
}

fn target(project: &str, name: &str) -> Target {
    Target::new(
        KindId::Bucket,
        project,
        name,
        format!("projects/_/buckets/{name}"),
    )
}

impl Kind for Buckets {
    type Resource = Bucket;
    type Fix = Fix;
    const NAME: &'static str = "bucket";
    const NOUN: &'static str = "buckets";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/_/buckets/[^/]+$";
    const INPUTS: &'static [&'static str] = &["bucket", "bucket-iam"];
    type RawPolicy = config::RawBucketPolicy;
    type Policy = policy::BucketPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_bucket(raw, problems)
    }

    fn common(config: &Config) -> Common {
        Common {
            enabled: config.policies.bucket.enabled,
            dry_run: config.policies.bucket.dry_run,
            grace_secs: config.policies.bucket.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != SERVICE {
            return None;
        }
        if let Some(rest) = event.resource_name.strip_prefix("projects/_/buckets/")
            && rest.contains("/objects/")
        {
            return Some(Route::Ignore(
                "object-level changes are not watched".to_string(),
            ));
        }
        let target = match parse(&event.resource_name, &event.project) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match event.verb() {
            "delete" => Route::Deleted(target),
            verb if READS.contains(&verb) => Route::Ignore(format!(
                "{} changes nothing",
                names::printable(&event.method_name)
            )),
            _ => Route::Check(target),
        })
    }

    fn target(resource_name: &str, project: &str) -> Option<Target> {
        parse(resource_name, project).ok()
    }

    fn permissions(_config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec![
            "storage.buckets.get",
            "storage.buckets.list",
            "storage.buckets.getIamPolicy",
        ];
        if enforcing {
            permissions.extend(["storage.buckets.update", "storage.buckets.setIamPolicy"]);
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(Bucket, Value), gcp::Error> {
        let (bucket, raw) = gcp.get_bucket(&target.name).await?;
        let policy = gcp.get_bucket_policy(&target.name).await?;
        let before = json!({"bucket": raw, "iam": policy});
        Ok((
            Bucket {
                project: target.project.clone(),
                bucket,
                policy,
            },
            before,
        ))
    }

    fn evaluate(config: &Config, read: &Bucket) -> (Vec<Finding>, Option<Fix>) {
        let policy = &config.policies.bucket;
        let outsider = |member: &str| config.policies.project_iam.outsider(member);
        let findings = policy.evaluate_with(&read.bucket, &read.policy, &outsider);
        let fix = policy.plan_fix_with(&read.bucket, &read.policy, &findings, &outsider);
        (findings, fix)
    }

    fn exemption(config: &Config, read: &Bucket, principal: &str) -> Option<String> {
        config.policies.bucket.exemption(&read.bucket, principal)
    }

    fn owner(config: &Config, read: &Bucket) -> Option<String> {
        let label = config.owner_label.as_ref()?;
        read.bucket.labels.get(label).cloned()
    }

    fn target_of(read: &Bucket) -> Target {
        target(&read.project, &read.bucket.name)
    }

    fn describe(fix: &Fix) -> String {
        let Fix::SecureBucket {
            remove_members,
            remove_acl,
            remove_default_object_acl,
            enforce_public_access_prevention,
            enable_uniform_access,
            ..
        } = fix;
        let mut done = Vec::new();
        let (public, outsiders): (Vec<_>, Vec<_>) = remove_members
            .iter()
            .partition(|grant| policy::is_public(&grant.member));
        if !public.is_empty() || !remove_acl.is_empty() || !remove_default_object_acl.is_empty() {
            done.push("removed public access".to_string());
        }
        if !outsiders.is_empty() {
            let members: Vec<String> = outsiders
                .iter()
                .map(|grant| format!("{} ({})", grant.member, grant.role))
                .collect();
            done.push(format!("removed outsiders {}", members.join(", ")));
        }
        if *enforce_public_access_prevention {
            done.push("enforced public access prevention".to_string());
        }
        if *enable_uniform_access {
            done.push("enabled uniform access".to_string());
        }
        done.join(", ")
    }

    /// Closes a public bucket step by step, each step a guarded read-modify-write: ACLs (metageneration), IAM
    /// (etag), then the bucket-wide guards.
    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::SecureBucket {
            bucket: name,
            remove_members,
            remove_acl,
            remove_default_object_acl,
            enforce_public_access_prevention,
            enable_uniform_access,
        } = fix;
        if !remove_acl.is_empty() || !remove_default_object_acl.is_empty() {
            until_settled("the bucket ACL", move || async move {
                let (bucket, raw) = gcp.get_bucket(name).await?;
                if bucket.iam_configuration.uniform_bucket_level_access.enabled {
                    return Ok(Attempt::Done(()));
                }
                let keep = |field: &str, remove: &[String]| -> Vec<Value> {
                    raw[field]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|control| {
                            !control["entity"].as_str().is_some_and(|entity| {
                                remove.iter().any(|removed| removed == entity)
                            })
                        })
                        .map(
                            |control| json!({"entity": control["entity"], "role": control["role"]}),
                        )
                        .collect()
                };
                let patch = json!({"acl": keep("acl", remove_acl),
                    "defaultObjectAcl": keep("defaultObjectAcl", remove_default_object_acl)});
                raced(
                    gcp.patch_bucket(name, &bucket.metageneration, &patch)
                        .await
                        .map(|_| ()),
                )
            })
            .await?;
        }
        if !remove_members.is_empty() {
            until_settled("the bucket policy", move || async move {
                let policy = gcp.get_bucket_policy(name).await?;
                let Some(updated) = remove_grants(&policy, remove_members)? else {
                    return Ok(Attempt::Done(()));
                };
                raced(gcp.set_bucket_policy(name, &updated).await.map(|_| ()))
            })
            .await?;
        }
        if *enforce_public_access_prevention || *enable_uniform_access {
            until_settled("the bucket settings", move || async move {
                let (bucket, _) = gcp.get_bucket(name).await?;
                let mut settings = serde_json::Map::new();
                if *enforce_public_access_prevention {
                    settings.insert("publicAccessPrevention".into(), "enforced".into());
                }
                if *enable_uniform_access {
                    settings.insert("uniformBucketLevelAccess".into(), json!({"enabled": true}));
                }
                let patch = json!({"iamConfiguration": settings});
                raced(
                    gcp.patch_bucket(name, &bucket.metageneration, &patch)
                        .await
                        .map(|_| ()),
                )
            })
            .await?;
        }
        let (bucket, raw) = gcp.get_bucket(name).await?;
        let policy = gcp.get_bucket_policy(name).await?;
        let public = config
            .policies
            .bucket
            .evaluate_with(&bucket, &policy, &|member| {
                config.policies.project_iam.outsider(member)
            })
            .into_iter()
            .find(|finding| {
                finding.category.starts_with("PUBLIC_BUCKET")
                    || finding.category == "PUBLIC_DEFAULT_OBJECT_ACL"
                    || finding.category == policy::EXTERNAL_MEMBER
            });
        if let Some(finding) = public {
            return Err(apply::Error::NotFixed(finding.message));
        }
        Ok(Some(json!({"bucket": raw, "iam": policy})))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let Fix::SecureBucket {
            bucket: name,
            remove_members,
            ..
        } = fix;
        let resource = format!("projects/_/buckets/{name}");
        let (bucket, current_raw) = gcp.get_bucket(name).await?;
        let current_policy = gcp.get_bucket_policy(name).await?;
        let recorded_policy: Policy =
            serde_json::from_value(after["iam"].clone()).unwrap_or_default();
        let acl = |value: &Value, field: &str| -> Vec<Value> {
            value[field]
                .as_array()
                .into_iter()
                .flatten()
                .map(|control| json!({"entity": control["entity"], "role": control["role"]}))
                .collect()
        };
        let unchanged = undo::bindings_set(&current_policy) == undo::bindings_set(&recorded_policy)
            && acl(&current_raw, "acl") == acl(&after["bucket"], "acl")
            && current_raw["iamConfiguration"]["publicAccessPrevention"]
                == after["bucket"]["iamConfiguration"]["publicAccessPrevention"];
        if !force && !unchanged {
            return Err(undo::Error::Changed(resource));
        }
        let mut patch = json!({"iamConfiguration": {
            "publicAccessPrevention": before["bucket"]["iamConfiguration"]["publicAccessPrevention"]
                .as_str()
                .unwrap_or("inherited"),
        }});
        if !bucket.iam_configuration.uniform_bucket_level_access.enabled {
            patch["acl"] = json!(acl(&before["bucket"], "acl"));
            patch["defaultObjectAcl"] = json!(acl(&before["bucket"], "defaultObjectAcl"));
        }
        // Prevention goes back first, or the public grants below would be refused.
        gcp.patch_bucket(name, &bucket.metageneration, &patch)
            .await?;
        let policy = gcp.get_bucket_policy(name).await?;
        gcp.set_bucket_policy(name, &undo::with_grants(&policy, remove_members))
            .await?;
        Ok(Restored {
            resource,
            what: "the bucket's ACLs, IAM grants and prevention setting".to_string(),
            overwritten: json!({"bucket": current_raw, "iam": current_policy}),
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<Bucket> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        let buckets = match gcp.list_buckets(project).await {
            Ok(buckets) => buckets,
            Err(err) => {
                swept
                    .errors
                    .push(format!("{project}: listing buckets: {err}"));
                return swept;
            }
        };
        let limit = Arc::new(Semaphore::new(CONCURRENCY));
        let mut reads = JoinSet::new();
        for bucket in buckets {
            let (client, limit) = (gcp.clone(), limit.clone());
            reads.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let policy = client.get_bucket_policy(&bucket.name).await;
                (bucket, policy)
            });
        }
        while let Some(read) = reads.join_next().await {
            match read {
                Ok((bucket, Ok(policy))) => swept.resources.push(Bucket {
                    project: project.to_string(),
                    bucket,
                    policy,
                }),
                Ok((bucket, Err(gcp::Error::NotFound(_)))) => {
                    tracing::debug!(bucket = %bucket.name, "deleted during the sweep")
                }
                Ok((bucket, Err(err))) => swept
                    .errors
                    .push(format!("{}: reading bucket IAM: {err}", bucket.name)),
                Err(err) => swept.errors.push(format!("{project}: {err}")),
            }
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        format!(
            "https://console.cloud.google.com/storage/browser/{}?project={}",
            target.name, target.project
        )
    }

    /// `bucket`: the JSON API's `projection=full` resource (its IAM policy unknown: ACLs only); `bucket-iam`: the
    /// policy `GET /storage/v1/b/{bucket}/iam` returns.
    fn parse_input(input: &str, text: &str) -> Result<Bucket, String> {
        if input == "bucket-iam" {
            let policy = crate::gcp::iam::parse_policy(text)?;
            let name = policy
                .extra
                .get("resourceId")
                .and_then(Value::as_str)
                .and_then(|id| id.rsplit('/').next())
                .unwrap_or("-")
                .to_string();
            return Ok(Bucket {
                project: "-".into(),
                bucket: storage::Bucket {
                    name,
                    ..storage::Bucket::default()
                },
                policy,
            });
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        if value
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err("the input is not a bucket: expected an object with a 'name'".into());
        }
        let bucket: storage::Bucket = serde_json::from_value(value)
            .map_err(|err| format!("the input is not a bucket: {err}"))?;
        Ok(Bucket {
            project: "-".into(),
            bucket,
            policy: Policy::default(),
        })
    }
}

#[cfg(test)]
mod tests;
