//! Undo: restore the before-state a fix recorded, but only if nobody changed the resource since (unless forced).
//! Every undo is journaled and alerted like any other change.

use serde_json::Value;

use crate::config::{Channel, Templates};
use crate::event::{AuditEvent, Transport};
use crate::gcp::iam::{Binding, Grant, Policy};
use crate::gcp::{self, Client};
use crate::journal::{self, Journal, Record};
use crate::outcome::Outcome;

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
    #[error("{0} is being changed by another replica; try again in a minute")]
    Busy(String),
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

/// Who asked for an undo, and what else it should do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The journal row of the fix.
    pub id: i64,
    /// Overwrite the resource even if it changed since the fix.
    pub force: bool,
    /// Who asked: journaled and alerted as the undo's principal (never antibody's own identity).
    pub operator: String,
    /// Register an exemption for the restored resource for this long, so that antibody does not fix again what
    /// the operator restored (`None`: no exemption; the next change is judged like any other).
    pub keep_exempt_secs: Option<i64>,
}

/// Undoes the fix recorded in journal row `request.id`, like a fix of its own: under the resource's lease, after
/// registering the exemption that keeps antibody from fighting the operator, journaled with the operator as its
/// principal, and alerted through the outbox in the same transaction as its row.
pub async fn undo(
    journal: &Journal,
    client: &Client,
    notify: (&Templates, &[Channel]),
    request: &Request,
) -> Result<Undone, Error> {
    let id = request.id;
    let entry = journal.entry(id).await?.ok_or(Error::NoSuchEntry(id))?;
    let outcome = entry.outcome.clone().unwrap_or_default();
    let (Some(fix), Some(before), "remediated") =
        (entry.fix.clone(), entry.before.clone(), outcome.as_str())
    else {
        return Err(Error::NotAFix(id, outcome));
    };
    // One change of a resource at a time: with PostgreSQL or Firestore the lease is shared by every replica and this
    // command; a SQLite journal's lease lives in its file, so it serialises only the processes that open that file.
    let Some(lease) = journal.hold(&entry.resource).await? else {
        return Err(Error::Busy(entry.resource.clone()));
    };
    let exemption = match request.keep_exempt_secs.filter(|secs| *secs > 0) {
        Some(secs) => Some(
            journal
                .add_exemption(
                    &entry.resource,
                    &request.operator,
                    &format!("restored by `antibody undo {id}`"),
                    Some(journal.clock().now_secs() + secs),
                )
                .await?,
        ),
        None => None,
    };
    let after = entry.after.clone().unwrap_or(Value::Null);
    let restored = match fix.undo(client, &before, &after, request.force).await {
        Ok(restored) => restored,
        Err(err) => {
            if let Some(exemption) = exemption {
                journal.remove_exemption(exemption).await?;
            }
            return Err(err);
        }
    };
    let (resource, current) = (restored.resource, restored.overwritten);
    let restored = restored.what;
    let exempt = match exemption {
        Some(exemption) => format!(
            "; exempt until the registry entry #{exemption} expires (remove it with `antibody exempt remove {exemption}`)"
        ),
        None => String::new(),
    };
    let outcome = Outcome::Undone {
        reason: format!(
            "undo of #{id} asked by {}: restored {restored}{exempt}",
            request.operator
        ),
    };
    let record = Record {
        outcome: outcome.name().into(),
        reason: outcome.reason(),
        fix: Some(fix),
        before: Some(current),
        after: Some(before),
        resource_key: Some(resource.clone()),
        ..Record::default()
    };
    let journal_id = journal
        .begin_action("undo", &resource, &entry.project, &request.operator)
        .await?;
    let mut event = AuditEvent::synthetic(Transport::Operator, &entry.project, &resource);
    event.principal = request.operator.clone();
    event.method_name = "antibody.undo".into();
    let (templates, channels) = notify;
    let alerts = crate::notify::alerts(
        templates, channels, journal, journal_id, &event, &outcome, &record,
    )
    .await?;
    journal.finish_with(journal_id, &record, alerts).await?;
    // Released before the command exits: a lease left to expire would make every replica answer the undo's own
    // audit event `retry` until it did.
    lease.release().await;
    Ok(Undone {
        journal_id,
        resource,
        restored,
    })
}
