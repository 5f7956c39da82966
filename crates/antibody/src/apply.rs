//! Apply: the only code that mutates the cloud, and only for a fix the gate admitted. Verifies by re-reading.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::{self, Client};
use crate::policy::{self, Fix, Resource};

/// Why an applied fix did not stick.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Google(#[from] gcp::Error),
    #[error("the fix was applied but the resource still violates: {0}")]
    NotFixed(String),
    /// Applying the fix would do harm; nothing was written.
    #[error("refused: {0}")]
    Refused(String),
}

/// Runs the fix, re-reads the resource, and returns its state afterwards (`None` once deleted).
pub async fn run(config: &Config, client: &Client, fix: &Fix) -> Result<Option<Value>, Error> {
    match fix {
        Fix::DisableFirewall { project, name } => {
            client
                .patch_firewall(project, name, &serde_json::json!({"disabled": true}))
                .await?;
        }
        Fix::NarrowFirewall {
            project,
            name,
            patch,
            split,
        } => {
            // The safe part goes up first, so legitimate traffic never loses its rule.
            if let Some(split) = split {
                match client.insert_firewall(project, split).await {
                    Ok(()) | Err(gcp::Error::Conflict(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            client.patch_firewall(project, name, patch).await?;
        }
        Fix::RemoveProjectMembers { project, grants } => {
            return remove_project_members(client, project, grants).await;
        }
        Fix::SecureBucket { .. } => return secure_bucket(config, client, fix).await,
        Fix::DeleteFirewall { project, name } => {
            return match client.delete_firewall(project, name).await {
                Ok(()) | Err(gcp::Error::NotFound(_)) => Ok(None),
                Err(err) => Err(err.into()),
            };
        }
    }
    verify(config, client, fix).await
}

/// What one read-modify-write attempt concluded.
enum Attempt<T> {
    Done(T),
    /// A concurrent change won (409/412): read again and redo.
    Raced(String),
}

/// Runs `attempt` until it is done, re-running it after a lost race a bounded number of times with backoff and jitter.
async fn until_settled<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>, Error>>,
{
    const ATTEMPTS: u32 = 5;
    let mut backoff = Duration::from_millis(50);
    for round in 1..=ATTEMPTS {
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Raced(message) if round < ATTEMPTS => {
                tracing::info!(what, round, %message, "concurrent change; re-reading");
                let jitter = Duration::from_millis((uuid::Uuid::new_v4().as_u128() % 50) as u64);
                tokio::time::sleep(backoff + jitter).await;
                backoff *= 2;
            }
            Attempt::Raced(message) => {
                return Err(gcp::Error::Retryable {
                    status: 409,
                    message: format!("{what} kept changing: {message}"),
                    after: None,
                }
                .into());
            }
        }
    }
    unreachable!("the last round returns")
}

/// A write that lost a race becomes `Raced`; any other failure stops.
fn raced<T>(result: Result<T, gcp::Error>) -> Result<Attempt<T>, Error> {
    match result {
        Ok(value) => Ok(Attempt::Done(value)),
        Err(gcp::Error::Conflict(message)) => Ok(Attempt::Raced(message)),
        Err(err) => Err(err.into()),
    }
}

/// Removes `grants` from a policy read at version 3; refuses a downgraded read. `None` when nothing was there.
fn remove_grants(policy: &Policy, grants: &[Grant]) -> Result<Option<Policy>, Error> {
    if policy.downgraded() {
        return Err(Error::Refused("the policy was read below version 3 (a _withcond_ role); writing it would drop conditions".into()));
    }
    let (mut updated, removed) = policy.without(grants);
    updated.version = 3;
    Ok((removed > 0).then_some(updated))
}

/// Read-modify-write at version 3 with the etag; on a concurrent change (409) re-read and redo.
/// Never writes a downgraded read, never removes the last owner.
async fn remove_project_members(
    client: &Client,
    project: &str,
    grants: &[Grant],
) -> Result<Option<Value>, Error> {
    until_settled("the project policy", move || async move {
        let policy = client.get_project_policy(project).await?;
        let Some(updated) = remove_grants(&policy, grants)? else {
            return Ok(Attempt::Done(()));
        };
        if !updated.has_owner() {
            return Err(Error::Refused(
                "removing these grants would leave the project without an owner".into(),
            ));
        }
        raced(
            client
                .set_project_policy(project, &updated)
                .await
                .map(|_| ()),
        )
    })
    .await?;
    let after = client.get_project_policy(project).await?;
    if let Some(grant) = after.grants().find(|grant| grants.contains(grant)) {
        return Err(Error::NotFixed(format!(
            "{} still holds {}",
            grant.member, grant.role
        )));
    }
    Ok(Some(
        serde_json::to_value(&after).expect("a policy serialises"),
    ))
}

/// Closes a public bucket step by step, each step a guarded read-modify-write: ACLs (metageneration), IAM (etag),
/// then the bucket-wide guards.
async fn secure_bucket(
    config: &Config,
    client: &Client,
    fix: &Fix,
) -> Result<Option<Value>, Error> {
    let Fix::SecureBucket {
        bucket: name,
        remove_members,
        remove_acl,
        remove_default_object_acl,
        enforce_public_access_prevention,
        enable_uniform_access,
    } = fix
    else {
        unreachable!("called for bucket fixes only")
    };
    if !remove_acl.is_empty() || !remove_default_object_acl.is_empty() {
        until_settled("the bucket ACL", move || async move {
            let (bucket, raw) = client.get_bucket(name).await?;
            if bucket.iam_configuration.uniform_bucket_level_access.enabled {
                return Ok(Attempt::Done(()));
            }
            let keep = |field: &str, remove: &[String]| -> Vec<Value> {
                raw[field].as_array().into_iter().flatten()
                    .filter(|control| !control["entity"].as_str().is_some_and(|entity| remove.iter().any(|removed| removed == entity)))
                    .map(|control| serde_json::json!({"entity": control["entity"], "role": control["role"]}))
                    .collect()
            };
            let patch = serde_json::json!({"acl": keep("acl", remove_acl), "defaultObjectAcl": keep("defaultObjectAcl", remove_default_object_acl)});
            raced(client.patch_bucket(name, &bucket.metageneration, &patch).await.map(|_| ()))
        })
        .await?;
    }
    if !remove_members.is_empty() {
        until_settled("the bucket policy", move || async move {
            let policy = client.get_bucket_policy(name).await?;
            let Some(updated) = remove_grants(&policy, remove_members)? else {
                return Ok(Attempt::Done(()));
            };
            raced(client.set_bucket_policy(name, &updated).await.map(|_| ()))
        })
        .await?;
    }
    if *enforce_public_access_prevention || *enable_uniform_access {
        until_settled("the bucket settings", move || async move {
            let (bucket, _) = client.get_bucket(name).await?;
            let mut settings = serde_json::Map::new();
            if *enforce_public_access_prevention {
                settings.insert("publicAccessPrevention".into(), "enforced".into());
            }
            if *enable_uniform_access {
                settings.insert(
                    "uniformBucketLevelAccess".into(),
                    serde_json::json!({"enabled": true}),
                );
            }
            let patch = serde_json::json!({"iamConfiguration": settings});
            raced(
                client
                    .patch_bucket(name, &bucket.metageneration, &patch)
                    .await
                    .map(|_| ()),
            )
        })
        .await?;
    }
    let (bucket, raw) = client.get_bucket(name).await?;
    let policy = client.get_bucket_policy(name).await?;
    let public = config
        .bucket
        .evaluate(&bucket, &policy)
        .into_iter()
        .find(|finding| {
            finding.category.starts_with("PUBLIC_BUCKET")
                || finding.category == "PUBLIC_DEFAULT_OBJECT_ACL"
        });
    if let Some(finding) = public {
        return Err(Error::NotFixed(finding.message));
    }
    Ok(Some(serde_json::json!({"bucket": raw, "iam": policy})))
}

async fn verify(config: &Config, client: &Client, fix: &Fix) -> Result<Option<Value>, Error> {
    let (Fix::DisableFirewall { project, name } | Fix::NarrowFirewall { project, name, .. }) = fix
    else {
        return Ok(None);
    };
    let (firewall, raw) = client.get_firewall(project, name).await?;
    let resource = Resource::Firewall {
        project: project.clone(),
        firewall,
    };
    let plan = policy::evaluate(config, &resource);
    if let Some(finding) = plan.findings.first() {
        return Err(Error::NotFixed(finding.message.clone()));
    }
    Ok(Some(raw))
}
