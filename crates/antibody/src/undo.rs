//! Undo: restore the before-state a fix recorded, but only if nobody changed the resource since (unless forced).
//! Every undo is journaled and alerted like any other change.

use serde_json::{Value, json};

use crate::gcp::iam::{Binding, Grant, Policy};
use crate::gcp::{self, Client};
use crate::journal::{self, Journal, Record};
use crate::policy::Fix;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal entry #{0} does not exist")]
    NoSuchEntry(i64),
    #[error(
        "journal entry #{0} is not an applied fix (outcome {1}); only remediations can be undone"
    )]
    NotAFix(i64, String),
    #[error(
        "{0} changed since antibody fixed it; re-run with --force to overwrite the current state"
    )]
    Changed(String),
    #[error(transparent)]
    Google(#[from] gcp::Error),
    #[error(transparent)]
    Journal(#[from] journal::Error),
}

/// What an undo did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Undone {
    pub journal_id: i64,
    pub resource: String,
    pub restored: String,
}

const OUTPUT_ONLY: &[&str] = &["id", "creationTimestamp", "selfLink", "kind"];

/// A firewall body as it can be written back: output-only fields dropped.
fn writable(firewall: &Value) -> Value {
    let mut firewall = firewall.clone();
    if let Some(fields) = firewall.as_object_mut() {
        fields.retain(|key, _| !OUTPUT_ONLY.contains(&key.as_str()));
    }
    firewall
}

fn bindings_set(policy: &Policy) -> Vec<Grant> {
    let mut grants: Vec<Grant> = policy.grants().collect();
    grants.sort_by_key(|grant| format!("{}{}{:?}", grant.role, grant.member, grant.condition));
    grants
}

/// Adds grants back, keeping conditions; the caller writes with the etag it read.
fn with_grants(policy: &Policy, grants: &[Grant]) -> Policy {
    let mut policy = policy.clone();
    for grant in grants {
        if policy.grants().any(|existing| &existing == grant) {
            continue;
        }
        match policy
            .bindings
            .iter_mut()
            .find(|binding| binding.role == grant.role && binding.condition == grant.condition)
        {
            Some(binding) => binding.members.push(grant.member.clone()),
            None => policy.bindings.push(Binding {
                role: grant.role.clone(),
                members: vec![grant.member.clone()],
                condition: grant.condition.clone(),
                extra: Default::default(),
            }),
        }
    }
    policy.version = 3;
    policy
}

/// Undoes the fix recorded in journal row `id`.
pub async fn undo(
    journal: &Journal,
    client: &Client,
    identity: &str,
    id: i64,
    force: bool,
) -> Result<Undone, Error> {
    let entry = journal.entry(id).await?.ok_or(Error::NoSuchEntry(id))?;
    let outcome = entry.outcome.clone().unwrap_or_default();
    let (Some(fix), Some(before), "remediated") =
        (entry.fix.clone(), entry.before.clone(), outcome.as_str())
    else {
        return Err(Error::NotAFix(id, outcome));
    };
    let after = entry.after.clone().unwrap_or(Value::Null);
    let (resource, restored, current) = match &fix {
        Fix::DisableFirewall { project, name } | Fix::NarrowFirewall { project, name, .. } => {
            let resource = format!("projects/{project}/global/firewalls/{name}");
            let (_, current) = client.get_firewall(project, name).await?;
            if !force && writable(&current) != writable(&after) {
                return Err(Error::Changed(resource));
            }
            client
                .update_firewall(project, name, &writable(&before))
                .await?;
            if let Fix::NarrowFirewall {
                split: Some(split), ..
            } = &fix
            {
                match client.delete_firewall(project, &split.name).await {
                    Ok(()) | Err(gcp::Error::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            (
                resource,
                "the rule as it was before the fix".to_string(),
                current,
            )
        }
        Fix::DeleteFirewall { project, name } => {
            let resource = format!("projects/{project}/global/firewalls/{name}");
            match client.get_firewall(project, name).await {
                Err(gcp::Error::NotFound(_)) => {}
                Ok(_) if force => client.delete_firewall(project, name).await?,
                Ok(_) => return Err(Error::Changed(resource)),
                Err(err) => return Err(err.into()),
            }
            client
                .insert_firewall_json(project, &writable(&before))
                .await?;
            (resource, "the deleted rule".to_string(), Value::Null)
        }
        Fix::RemoveProjectMembers { project, grants } => {
            let resource = format!("projects/{project}");
            let current = client.get_project_policy(project).await?;
            let recorded: Policy = serde_json::from_value(after.clone()).unwrap_or_default();
            if !force && bindings_set(&current) != bindings_set(&recorded) {
                return Err(Error::Changed(resource));
            }
            client
                .set_project_policy(project, &with_grants(&current, grants))
                .await?;
            (
                resource,
                format!("{} grant(s)", grants.len()),
                serde_json::to_value(&current).unwrap_or_default(),
            )
        }
        Fix::SecureBucket {
            bucket: name,
            remove_members,
            ..
        } => {
            let resource = format!("projects/_/buckets/{name}");
            let (bucket, current_raw) = client.get_bucket(name).await?;
            let current_policy = client.get_bucket_policy(name).await?;
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
            let unchanged = bindings_set(&current_policy) == bindings_set(&recorded_policy)
                && acl(&current_raw, "acl") == acl(&after["bucket"], "acl")
                && current_raw["iamConfiguration"]["publicAccessPrevention"]
                    == after["bucket"]["iamConfiguration"]["publicAccessPrevention"];
            if !force && !unchanged {
                return Err(Error::Changed(resource));
            }
            let mut patch = json!({"iamConfiguration": {
                "publicAccessPrevention": before["bucket"]["iamConfiguration"]["publicAccessPrevention"].as_str().unwrap_or("inherited"),
            }});
            if !bucket.iam_configuration.uniform_bucket_level_access.enabled {
                patch["acl"] = json!(acl(&before["bucket"], "acl"));
                patch["defaultObjectAcl"] = json!(acl(&before["bucket"], "defaultObjectAcl"));
            }
            // Prevention goes back first, or the public grants below would be refused.
            client
                .patch_bucket(name, &bucket.metageneration, &patch)
                .await?;
            let policy = client.get_bucket_policy(name).await?;
            client
                .set_bucket_policy(name, &with_grants(&policy, remove_members))
                .await?;
            (
                resource,
                "the bucket's ACLs, IAM grants and prevention setting".to_string(),
                json!({"bucket": current_raw, "iam": current_policy}),
            )
        }
    };
    let record = Record {
        outcome: "undone".into(),
        reason: format!("undo of #{id}: restored {restored}"),
        fix: Some(fix),
        before: Some(current),
        after: Some(before),
        resource_key: Some(resource.clone()),
        ..Record::default()
    };
    let journal_id = journal
        .record_action("undo", &resource, &entry.project, identity, &record)
        .await?;
    Ok(Undone {
        journal_id,
        resource,
        restored,
    })
}
