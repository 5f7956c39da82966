//! How handling one event ended, with its reason: shared by the pipeline, the journal, the receiver and alerts.

use serde::Serialize;

use crate::kinds::Fix;

/// How handling one event ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Ignored {
        reason: String,
    },
    /// The event names a watched kind's resource outside Google's grammar: journaled as ignored, answered 400.
    Rejected {
        reason: String,
    },
    Duplicate {
        of: i64,
    },
    /// A redelivery while the first delivery is still being handled; answered 503 so the sender asks again.
    InProgress {
        of: i64,
    },
    OwnWrite,
    FailedCall {
        code: i64,
    },
    Gone,
    Compliant,
    /// Findings were recorded, but they call for no change.
    Detected,
    Exempt {
        reason: String,
    },
    DryRun {
        fix: Fix,
    },
    Remediated {
        fix: Fix,
    },
    Failed {
        error: String,
    },
    /// The fix would do harm (e.g. remove the last owner); nothing was changed.
    Refused {
        reason: String,
    },
    /// Enforcement waits out a grace period; the live state is decided again then.
    Deferred {
        seconds: u32,
    },
    /// A safety control held the fix back (kill switch, blast-radius cap); `by` names which.
    Held {
        by: HeldBy,
        reason: String,
    },
    /// The resource is fought over; antibody no longer fixes it. `new` marks the event that started the quarantine.
    Quarantined {
        reason: String,
        new: bool,
    },
    /// A transient failure: the event must be redelivered.
    Retry {
        error: String,
    },
    /// An operator restored a fix's before-state (`antibody undo`).
    Undone {
        reason: String,
    },
}

/// The safety control that holds a fix back: the gate decides it once, and what reports count follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeldBy {
    /// `antibody pause`, or `safety.paused`.
    KillSwitch,
    /// A change by an infrastructure-as-code pipeline (`safety.iac = "hold"`).
    Iac,
    /// `max_fixes_per_project_per_hour`, counted per policy and for CRITICAL findings apart.
    ProjectCap,
    /// `max_fixes_per_instance_per_hour`.
    InstanceCap,
    /// Too many of Google's recent answers were failures.
    Breaker,
}

impl HeldBy {
    /// Whether a blast-radius cap is what held the fix.
    pub fn is_cap(self) -> bool {
        matches!(self, HeldBy::ProjectCap | HeldBy::InstanceCap)
    }
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Ignored { .. } | Outcome::Rejected { .. } => "ignored",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::InProgress { .. } => "in-progress",
            Outcome::OwnWrite => "own-write",
            Outcome::FailedCall { .. } => "failed-call",
            Outcome::Gone => "gone",
            Outcome::Compliant => "compliant",
            Outcome::Detected => "detected",
            Outcome::Exempt { .. } => "exempt",
            Outcome::DryRun { .. } => "dry-run",
            Outcome::Remediated { .. } => "remediated",
            Outcome::Failed { .. } => "failed",
            Outcome::Refused { .. } => "refused",
            Outcome::Held { .. } => "held",
            Outcome::Deferred { .. } => "deferred",
            Outcome::Quarantined { .. } => "quarantined",
            Outcome::Retry { .. } => "retry",
            Outcome::Undone { .. } => "undone",
        }
    }

    /// The sentence the journal keeps as the outcome's reason.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Ignored { reason }
            | Outcome::Rejected { reason }
            | Outcome::Exempt { reason }
            | Outcome::Refused { reason }
            | Outcome::Held { reason, .. }
            | Outcome::Quarantined { reason, .. }
            | Outcome::Undone { reason } => reason.clone(),
            Outcome::Failed { error } | Outcome::Retry { error } => error.clone(),
            Outcome::FailedCall { code } => format!("the audited call failed with status {code}"),
            Outcome::DryRun { fix } | Outcome::Remediated { fix } => fix.describe(),
            Outcome::Duplicate { .. }
            | Outcome::InProgress { .. }
            | Outcome::OwnWrite
            | Outcome::Gone
            | Outcome::Compliant
            | Outcome::Detected
            | Outcome::Deferred { .. } => String::new(),
        }
    }

    /// The fix the outcome carries, if it applied or would apply one.
    pub fn fix(&self) -> Option<&Fix> {
        match self {
            Outcome::DryRun { fix } | Outcome::Remediated { fix } => Some(fix),
            _ => None,
        }
    }
}
