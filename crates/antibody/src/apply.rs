//! Apply: the only code that mutates the cloud, and only for a fix the gate admitted. Verifies by re-reading.

use serde_json::Value;

use crate::config::Config;
use crate::gcp::{self, Client};
use crate::policy::{self, Fix, Resource};

/// Why an applied fix did not stick.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Google(#[from] gcp::Error),
    #[error("the fix was applied but the rule still violates: {0}")]
    NotFixed(String),
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
        Fix::DeleteFirewall { project, name } => {
            return match client.delete_firewall(project, name).await {
                Ok(()) | Err(gcp::Error::NotFound(_)) => Ok(None),
                Err(err) => Err(err.into()),
            };
        }
    }
    verify(config, client, fix).await
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
