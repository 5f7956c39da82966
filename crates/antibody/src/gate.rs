//! The gate: may a planned fix run? Loop guard, failed calls, exemptions and dry-run, each with its reason.

use crate::config::Config;
use crate::event::AuditEvent;
use crate::policy::{Fix, Plan, Resource};

/// What the gate decided about an event before anything is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Early {
    /// Our own write coming back: recorded, never acted on.
    OwnWrite,
    /// The audited call failed, so it changed nothing.
    FailedCall(i64),
}

/// Checks that need only the event.
pub fn screen(config: &Config, event: &AuditEvent) -> Option<Early> {
    if !event.principal.is_empty()
        && config
            .identities
            .iter()
            .any(|identity| identity == &event.principal)
    {
        return Some(Early::OwnWrite);
    }
    if event.status_code != 0 {
        return Some(Early::FailedCall(event.status_code));
    }
    None
}

/// The verdict on a plan for a freshly read resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Apply(Fix),
    DryRun(Fix),
    Exempt(String),
    /// Findings that call for no change (report-only checks).
    Detected,
    Nothing,
}

pub fn admit(config: &Config, event: &AuditEvent, resource: &Resource, plan: &Plan) -> Verdict {
    let Some(fix) = &plan.fix else {
        return Verdict::Nothing;
    };
    match resource {
        Resource::Firewall { firewall, .. } => {
            if let Some(reason) = config.firewall.exemption(firewall, &event.principal) {
                return Verdict::Exempt(reason);
            }
        }
        Resource::Bucket { bucket, .. } => {
            if let Some(reason) = config.bucket.exemption(bucket) {
                return Verdict::Exempt(reason);
            }
        }
        // Member allowlists are applied inside the policy, grant by grant.
        Resource::ProjectIam { .. } => {}
    }
    if plan.dry_run {
        Verdict::DryRun(fix.clone())
    } else {
        Verdict::Apply(fix.clone())
    }
}
