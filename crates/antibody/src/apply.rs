//! Apply: the only code that mutates the cloud, and only for a fix the gate admitted. Verifies by re-reading.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::gcp::iam::Grant;
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
        Fix::DeleteFirewall { project, name } => {
            return match client.delete_firewall(project, name).await {
                Ok(()) | Err(gcp::Error::NotFound(_)) => Ok(None),
                Err(err) => Err(err.into()),
            };
        }
    }
    verify(config, client, fix).await
}

/// Read-modify-write at version 3 with the etag; on a concurrent change (409) re-read and redo, a bounded number of
/// times with backoff and jitter. Never writes a downgraded read, never removes the last owner.
async fn remove_project_members(
    client: &Client,
    project: &str,
    grants: &[Grant],
) -> Result<Option<Value>, Error> {
    const ATTEMPTS: u32 = 5;
    let mut backoff = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        let policy = client.get_project_policy(project).await?;
        if policy.downgraded() {
            return Err(Error::Refused("the policy was read below version 3 (a _withcond_ role); writing it would drop conditions".into()));
        }
        let (mut updated, removed) = policy.without(grants);
        if removed == 0 {
            return Ok(Some(
                serde_json::to_value(&policy).expect("a policy serialises"),
            ));
        }
        if !updated.has_owner() {
            return Err(Error::Refused(
                "removing these grants would leave the project without an owner".into(),
            ));
        }
        updated.version = 3;
        match client.set_project_policy(project, &updated).await {
            Ok(_) => {
                let after = client.get_project_policy(project).await?;
                let remaining: Vec<Grant> = after
                    .grants()
                    .filter(|grant| grants.contains(grant))
                    .collect();
                if let Some(grant) = remaining.first() {
                    return Err(Error::NotFixed(format!(
                        "{} still holds {}",
                        grant.member, grant.role
                    )));
                }
                return Ok(Some(
                    serde_json::to_value(&after).expect("a policy serialises"),
                ));
            }
            Err(gcp::Error::Conflict(message)) if attempt < ATTEMPTS => {
                tracing::info!(project, attempt, %message, "concurrent IAM change; re-reading");
                let jitter = Duration::from_millis((uuid::Uuid::new_v4().as_u128() % 50) as u64);
                tokio::time::sleep(backoff + jitter).await;
                backoff *= 2;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(gcp::Error::Retryable {
        status: 409,
        message: "the policy kept changing under us".into(),
        after: None,
    }
    .into())
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
