//! handle(): the stages in order — route, screen, claim, serialise, re-read, evaluate, admit, apply, journal, notify.

mod context;
mod due;
mod locks;

pub use context::Context;
pub use due::{Ticked, deliver_due, recheck_due, rechecks, tick};

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::apply;
use crate::event::AuditEvent;
use crate::gate::{self, Early, Verdict};
use crate::gcp;
use crate::journal::{self, Claim, Record};
use crate::kinds::{self, Fix, Route, Target};
use crate::notify;
pub use crate::outcome::{HeldBy, Outcome};
use crate::policy::Finding;

/// The answer to the sender: the journal row and the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Handled {
    pub id: i64,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The decision wrote alerts to the outbox.
    #[serde(skip)]
    pub alerted: bool,
}

/// Handles one event. `Err` means nothing durable was written, so the sender must redeliver.
pub async fn handle(cx: &Context, event: &AuditEvent) -> Result<Handled, journal::Error> {
    gcp::GOOGLE_TIME
        .scope(std::cell::Cell::new(0), handle_counted(cx, event))
        .await
}

/// `handle`, inside the scope that counts the time spent waiting on Google. The stages, in order.
async fn handle_counted(cx: &Context, event: &AuditEvent) -> Result<Handled, journal::Error> {
    let started = Instant::now();
    let route = kinds::route(event);
    if let Some(outcome) = screen(cx, event, &route) {
        return settle(cx, event, outcome, started).await;
    }
    let (id, interrupted) = match claim(cx, event).await? {
        Claimed::New { id, interrupted } => (id, interrupted),
        Claimed::Answered(handled) => return Ok(*handled),
    };
    let mut decision = Decision::default();
    let outcome = match route {
        Route::Check(target) => match placed(cx, &target).await {
            Ok(None) => serialised(cx, id, event, &target, &mut decision).await,
            Ok(Some(reason)) => Outcome::Ignored { reason },
            Err(err) => failure(err.to_string(), err.is_retryable()),
        },
        Route::Deleted(_) => Outcome::Gone,
        Route::Ignore(reason) => Outcome::Ignored { reason },
        Route::Refuse(reason) => Outcome::Rejected { reason },
    };
    let outcome = confirm_interrupted(outcome, interrupted, &mut decision);
    journal(cx, id, event, outcome, decision, started).await
}

/// Events that cannot lead to a change, settled from the event alone: our own writes, failed calls, events no
/// policy watches, names outside Google's grammar, projects outside `[scope]`.
fn screen(cx: &Context, event: &AuditEvent, route: &Route) -> Option<Outcome> {
    let own_operation = event
        .operation
        .as_ref()
        .is_some_and(|operation| cx.gcp.started_operation(&operation.id));
    match gate::screen(&cx.config, event, own_operation) {
        Some(Early::OwnWrite) => Some(Outcome::OwnWrite),
        Some(Early::FailedCall(code)) => Some(Outcome::FailedCall { code }),
        None => match route {
            Route::Ignore(reason) => Some(Outcome::Ignored {
                reason: reason.clone(),
            }),
            Route::Refuse(reason) => Some(Outcome::Rejected {
                reason: reason.clone(),
            }),
            // A project named by its number is placed by its id once that is read (`placed`): globs name ids.
            Route::Check(target) if is_number(&target.project) => None,
            Route::Check(target) | Route::Deleted(target) => cx
                .config
                .scope
                .excludes(&target.project)
                .map(|reason| Outcome::Ignored { reason }),
        },
    }
}

/// Whether `[scope]`'s organization and folder rules leave the target's project alone (its ancestry read from
/// Resource Manager, cached); before the resource is re-read.
async fn placed(cx: &Context, target: &kinds::Target) -> Result<Option<String>, gcp::Error> {
    let scope = &cx.config.scope;
    if is_number(&target.project) && scope.has_project_globs() {
        let id = cx.gcp.project_id(&target.project).await?;
        if let Some(reason) = scope.excludes(&id) {
            return Ok(Some(format!(
                "{reason} (named by its number {})",
                target.project
            )));
        }
    }
    // A project's resource is placed by its project; an organization's or folder's policy by the container itself.
    let placed = if target.project.is_empty() {
        target.key()
    } else {
        target.project()
    };
    if !scope.needs_ancestry() || placed.is_empty() {
        return Ok(None);
    }
    let ancestors = cx.ancestry(placed).await?;
    Ok(scope.excludes_by_ancestry(placed, &ancestors))
}

/// Whether a project is named by its number rather than its id.
fn is_number(project: &str) -> bool {
    !project.is_empty() && project.bytes().all(|byte| byte.is_ascii_digit())
}

/// Journals a screened event with one write; a copy of one already journaled is a duplicate.
async fn settle(
    cx: &Context,
    event: &AuditEvent,
    outcome: Outcome,
    started: Instant,
) -> Result<Handled, journal::Error> {
    let record = Record {
        outcome: outcome.name().to_string(),
        reason: outcome.reason(),
        duration_us: started.elapsed().as_micros() as i64,
        ..Record::default()
    };
    let (id, first) = cx.journal.record_settled(event, &record).await?;
    let outcome = if first {
        outcome
    } else {
        Outcome::Duplicate { of: id }
    };
    notify::decision(&cx.log, id, event, &outcome, &record);
    Ok(Handled {
        id,
        outcome,
        findings: Vec::new(),
        alerted: false,
    })
}

enum Claimed {
    /// This delivery handles the event; `interrupted` is the fix a process that died had announced for it.
    New {
        id: i64,
        interrupted: Option<Box<(Fix, Value)>>,
    },
    /// Another delivery has it, or had it: the answer is already known.
    Answered(Box<Handled>),
}

/// Claims the event's journal row, deduplicating redeliveries and copies through other pipelines.
async fn claim(cx: &Context, event: &AuditEvent) -> Result<Claimed, journal::Error> {
    let answered = |id: i64, outcome: Outcome| {
        Claimed::Answered(Box::new(Handled {
            id,
            outcome,
            findings: Vec::new(),
            alerted: false,
        }))
    };
    Ok(match cx.journal.claim(event).await? {
        Claim::Duplicate { of } => answered(of, Outcome::Duplicate { of }),
        Claim::InProgress { of } => answered(of, Outcome::InProgress { of }),
        Claim::New {
            id,
            remediated_by: Some(of),
            ..
        } => {
            let record = Record {
                outcome: "duplicate".into(),
                reason: format!("operation already decided by #{of}"),
                ..Record::default()
            };
            cx.journal.finish(id, &record).await?;
            answered(id, Outcome::Duplicate { of })
        }
        Claim::New {
            id,
            remediated_by: None,
            interrupted,
        } => Claimed::New { id, interrupted },
    })
}

/// What deciding on one resource produced; it becomes the journal's `Record` once, in `journal`.
#[derive(Default)]
struct Decision {
    resource_key: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
    findings: Vec<Finding>,
    /// The fix the gate saw (held, quarantined, refused or failed fixes are journaled with it too).
    fix: Option<Fix>,
    owner: Option<String>,
}

/// One remediation of a resource at a time: in this process, then across replicas. Both are held until the
/// outcome is journaled (the caller journals right after), so the next decision on the resource counts this one.
async fn serialised(
    cx: &Context,
    id: i64,
    event: &AuditEvent,
    target: &Target,
    decision: &mut Decision,
) -> Outcome {
    let _serialised = cx.locks.lock(target.key().to_string()).await;
    match cx.journal.hold(target.key()).await {
        Ok(Some(_lease)) => {
            // An operation's entries arrive together (Compute's `first` and `last`); the one that waited for the
            // resource is answered by the decision the other took.
            if let Some(operation) = event.operation.as_ref().filter(|op| !op.id.is_empty()) {
                match cx.journal.operation_decided(&operation.id, id).await {
                    Ok(Some(of)) => return Outcome::Duplicate { of },
                    Ok(None) => {}
                    Err(err) => {
                        return Outcome::Retry {
                            error: err.to_string(),
                        };
                    }
                }
            }
            decide(cx, id, event, target, decision).await
        }
        Ok(None) => Outcome::Retry {
            error: format!("another replica is handling {}", target.key()),
        },
        Err(err) => Outcome::Retry {
            error: err.to_string(),
        },
    }
}

/// Re-read → evaluate → admit → apply, for an event that points at a resource.
async fn decide(
    cx: &Context,
    id: i64,
    event: &AuditEvent,
    target: &Target,
    decision: &mut Decision,
) -> Outcome {
    decision.resource_key = Some(target.key().to_string());
    let read = target.fetch(&cx.gcp).await;
    cx.count_google_call(&read);
    let (mut resource, before) = match read {
        Ok(read) => read,
        Err(gcp::Error::NotFound(_)) => return Outcome::Gone,
        Err(err) => return failure(err.to_string(), err.is_retryable()),
    };
    if let Err(err) = resource
        .enrich(&cx.config, &cx.gcp, cx.clock().now_secs())
        .await
    {
        return failure(err.to_string(), err.is_retryable());
    }
    decision.before = Some(before);
    decision.owner = resource.owner(&cx.config);
    let plan = resource.evaluate(&cx.config);
    decision.findings = plan.findings.clone();
    let safety = match cx
        .journal
        .safety(
            target.key(),
            &gate::cap_budget(target.project(), &plan.findings),
            cx.config.safety.flap_window_secs,
        )
        .await
    {
        Ok(safety) => safety,
        Err(err) => {
            return Outcome::Retry {
                error: err.to_string(),
            };
        }
    };
    let load = gate::Load {
        instance_fixes_last_hour: cx.instance_fixes_last_hour(),
        google_failure_rate: cx.google_failure_rate(),
    };
    match gate::admit(&cx.config, event, &resource, &plan, &safety, load) {
        // A quarantined resource found closed is released: antibody fixes it again if it is re-opened.
        Verdict::Nothing if safety.quarantined.is_some() => {
            match cx.journal.release(target.key()).await {
                Ok(_) => Outcome::Compliant,
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
        Verdict::Nothing => Outcome::Compliant,
        Verdict::Detected => Outcome::Detected,
        Verdict::Exempt(reason) => Outcome::Exempt { reason },
        Verdict::DryRun(fix) => Outcome::DryRun { fix },
        Verdict::Deferred { seconds } => {
            let due = cx.clock().now_secs() + i64::from(seconds);
            match cx
                .journal
                .defer(target.key(), target.project(), due, target.hint())
                .await
            {
                Ok(()) => Outcome::Deferred { seconds },
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
        Verdict::Held {
            fix,
            by,
            reason,
            recheck_secs,
        } => {
            decision.fix = Some(fix);
            hold(cx, target, by, reason, recheck_secs).await
        }
        Verdict::Quarantined {
            fix,
            reason,
            principals,
            new,
        } => {
            decision.fix = Some(fix);
            let stored = match new {
                true => cx
                    .journal
                    .quarantine(target.key(), &principals.join(", "), &reason)
                    .await
                    .map(|_| ()),
                false => Ok(()),
            };
            // The open hole is looked at again after a backoff that doubles with every re-break: still open, it
            // is closed again (a quarantine slows antibody down, never stops it); closed, the quarantine is lifted.
            let due = cx.clock().now_secs()
                + gate::quarantine_backoff_secs(&cx.config, safety.recent_fixes_of_resource);
            let stored = match stored {
                Ok(()) => {
                    cx.journal
                        .defer(target.key(), target.project(), due, target.hint())
                        .await
                }
                Err(err) => Err(err),
            };
            match stored {
                Ok(()) => Outcome::Quarantined { reason, new },
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
        Verdict::Apply(fix) => {
            decision.fix = Some(fix.clone());
            let cap = cx.config.safety.max_fixes_per_project_per_hour;
            let before = decision.before.clone().unwrap_or_default();
            match cx
                .journal
                .announce_fix(
                    id,
                    &gate::cap_budget(target.project(), &decision.findings),
                    cap,
                    &fix,
                    &before,
                )
                .await
            {
                Ok(true) => {
                    crash_point("decided");
                    apply_fix(cx, fix, decision).await
                }
                Ok(false) => {
                    // Another handling took the budget's last slot between the gate's read and this claim.
                    let reason =
                        gate::project_cap_reason(target.project(), &decision.findings, cap, cap);
                    hold(
                        cx,
                        target,
                        HeldBy::ProjectCap,
                        reason,
                        Some(cx.config.safety.held_recheck_secs),
                    )
                    .await
                }
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
    }
}

/// A held fix leaves the hole open: unless a person must act (IaC), it is decided again on the live state later.
async fn hold(
    cx: &Context,
    target: &Target,
    by: HeldBy,
    reason: String,
    recheck_secs: Option<u32>,
) -> Outcome {
    let Some(seconds) = recheck_secs else {
        return Outcome::Held { by, reason };
    };
    let due = cx.clock().now_secs() + i64::from(seconds);
    match cx
        .journal
        .defer(target.key(), target.project(), due, target.hint())
        .await
    {
        Ok(()) => Outcome::Held {
            by,
            reason: format!(
                "{reason}; antibody decides again on the live state in {} min",
                seconds.div_ceil(60)
            ),
        },
        Err(err) => Outcome::Retry {
            error: err.to_string(),
        },
    }
}

/// Applies an admitted fix and verifies it: the only stage that changes the cloud.
async fn apply_fix(cx: &Context, fix: Fix, decision: &mut Decision) -> Outcome {
    let applied = apply::run(&cx.config, &cx.gcp, &fix).await;
    match &applied {
        Ok(_) => cx.count_google_call::<()>(&Ok(())),
        Err(apply::Error::Google(err)) => cx.count_google_call::<()>(&Err(err.clone())),
        Err(_) => {}
    }
    match applied {
        Ok(after) => {
            crash_point("applied");
            decision.after = after;
            cx.count_fix();
            Outcome::Remediated { fix }
        }
        // Deleted between our read and our write: nothing left to fix.
        Err(apply::Error::Google(gcp::Error::NotFound(_))) => Outcome::Gone,
        Err(apply::Error::Google(err)) => failure(err.to_string(), err.is_retryable()),
        Err(apply::Error::Refused(reason)) => Outcome::Refused { reason },
        Err(err @ apply::Error::NotFixed(_)) => Outcome::Failed {
            error: err.to_string(),
        },
    }
}

fn failure(error: String, retryable: bool) -> Outcome {
    if retryable {
        Outcome::Retry { error }
    } else {
        Outcome::Failed { error }
    }
}

/// A process that died had announced a fix for this event; if the live state is now compliant, that fix took.
fn confirm_interrupted(
    outcome: Outcome,
    interrupted: Option<Box<(Fix, Value)>>,
    decision: &mut Decision,
) -> Outcome {
    match (outcome, interrupted.map(|boxed| *boxed)) {
        (Outcome::Compliant, Some((fix, before))) => {
            decision.after = decision.before.replace(before);
            Outcome::Remediated { fix }
        }
        (outcome, _) => outcome,
    }
}

/// The decision becomes the journal's record, written with its alerts in one transaction; then the decision line.
async fn journal(
    cx: &Context,
    id: i64,
    event: &AuditEvent,
    outcome: Outcome,
    decision: Decision,
    started: Instant,
) -> Result<Handled, journal::Error> {
    // A remediation with no fix of this handling's own was applied before a restart (`confirm_interrupted`).
    let restarted = matches!(outcome, Outcome::Remediated { .. }) && decision.fix.is_none();
    let mut reason = outcome.reason();
    if restarted {
        reason.push_str(" (applied before a restart; a fresh read confirms it)");
    }
    let fix = match &outcome {
        Outcome::Remediated { fix } | Outcome::DryRun { fix } => Some(fix.clone()),
        Outcome::Gone | Outcome::Exempt { .. } | Outcome::Deferred { .. } => None,
        _ => decision.fix,
    };
    let record = Record {
        outcome: outcome.name().to_string(),
        reason,
        fix,
        findings: decision.findings,
        before: decision.before,
        after: decision.after,
        duration_us: started.elapsed().as_micros() as i64,
        google_us: gcp::GOOGLE_TIME
            .try_with(std::cell::Cell::get)
            .unwrap_or_default() as i64,
        retry: matches!(outcome, Outcome::Retry { .. }),
        resource_key: decision.resource_key,
        owner: decision.owner,
    };
    // A fix held again at its re-check was alerted when it was first held: the journal row is enough.
    let held_again = event.transport == crate::event::Transport::Recheck
        && matches!(outcome, Outcome::Held { .. });
    let alerts = match held_again {
        true => Vec::new(),
        false => {
            notify::alerts(
                &cx.config.templates,
                &cx.config.channels,
                &cx.journal,
                id,
                event,
                &outcome,
                &record,
            )
            .await?
        }
    };
    let wake = !alerts.is_empty();
    cx.journal.finish_with(id, &record, alerts).await?;
    crash_point("journaled");
    if wake {
        cx.alerts_waiting.notify_one();
    }
    notify::decision(&cx.log, id, event, &outcome, &record);
    Ok(Handled {
        id,
        outcome,
        findings: record.findings,
        alerted: wake,
    })
}

/// Fault injection for the crash tests: `ANTIBODY_CRASH_AT=received|decided|applied|journaled` makes the process die
/// (abort: no destructors, nothing flushed, as `kill -9`) when handling reaches that point. Unset, it costs one
/// comparison.
pub fn crash_point(stage: &str) {
    static CRASH_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if CRASH_AT
        .get_or_init(|| std::env::var("ANTIBODY_CRASH_AT").ok())
        .as_deref()
        == Some(stage)
    {
        eprintln!("ANTIBODY_CRASH_AT={stage}: dying here");
        std::process::abort();
    }
}
