//! Undo: restore the before-state a fix recorded, but only if nobody changed the resource since (unless forced).
//! Every undo is journaled and alerted like any other change.

use serde_json::Value;

use crate::gcp::iam::{Binding, Grant, Policy};
use crate::gcp::{self, Client};
use crate::journal::{self, Journal, Record};

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

/// A policy's grants in a stable order, to compare two reads.
pub(crate) fn bindings_set(policy: &Policy) -> Vec<Grant> {
    let mut grants: Vec<Grant> = policy.grants().collect();
    grants.sort_by_key(|grant| format!("{}{}{:?}", grant.role, grant.member, grant.condition));
    grants
}

/// Adds grants back, keeping conditions; the caller writes with the etag it read.
pub(crate) fn with_grants(policy: &Policy, grants: &[Grant]) -> Policy {
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
    let restored = fix.undo(client, &before, &after, force).await?;
    let (resource, current) = (restored.resource, restored.overwritten);
    let restored = restored.what;
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
