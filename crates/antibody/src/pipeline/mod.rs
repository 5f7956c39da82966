//! handle(): the stages in order — claim, screen, route, re-read, decide, gate, apply, journal, notify.

mod locks;

use locks::ResourceLocks;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gate::{self, Early, Verdict};
use crate::gcp::{self, Client};
use crate::journal::{self, Claim, Journal, Record};
use crate::notify::{self, LogSink};
use crate::policy::{self, Finding, Fix, Resource};
use crate::route::{self, Route, Target};

/// Everything a handler needs; built once per process.
pub struct Context {
    pub config: Config,
    pub gcp: Client,
    pub journal: Journal,
    pub log: LogSink,
    locks: ResourceLocks,
    /// When this process applied its recent fixes (the per-instance cap).
    fixes: Mutex<std::collections::VecDeque<Instant>>,
    /// Whether each of the recent Google calls failed (the circuit breaker).
    google_calls: Mutex<std::collections::VecDeque<bool>>,
    /// Wakes the outbox worker when a decision wrote alerts.
    pub alerts_waiting: Arc<tokio::sync::Notify>,
    /// Verifies who pushes events; `None` only when serving without authentication was asked for.
    pub verifier: Option<crate::receive::auth::Verifier>,
}

impl Context {
    pub fn new(config: Config, gcp: Client, journal: Journal, log: LogSink) -> Context {
        Context {
            config,
            gcp,
            journal,
            log,
            locks: ResourceLocks::default(),
            fixes: Mutex::new(std::collections::VecDeque::new()),
            alerts_waiting: Arc::new(tokio::sync::Notify::new()),
            google_calls: Mutex::new(std::collections::VecDeque::new()),
            verifier: None,
        }
    }

    fn instance_fixes_last_hour(&self) -> u32 {
        let mut fixes = self.fixes.lock().expect("fix counter poisoned");
        let hour_ago = Instant::now().checked_sub(std::time::Duration::from_secs(3600));
        while fixes
            .front()
            .is_some_and(|at| hour_ago.is_some_and(|hour_ago| *at < hour_ago))
        {
            fixes.pop_front();
        }
        fixes.len() as u32
    }

    /// Remembers whether a Google call failed for a reason other than "not found" or "changed meanwhile".
    fn count_google_call<T>(&self, result: &Result<T, gcp::Error>) {
        let failed = matches!(
            result,
            Err(gcp::Error::Retryable { .. } | gcp::Error::Permanent { .. })
        );
        let mut calls = self.google_calls.lock().expect("call history poisoned");
        if calls.len() == 50 {
            calls.pop_front();
        }
        calls.push_back(failed);
    }

    /// The failed share of the last 50 Google calls, once there are at least 10.
    fn google_failure_rate(&self) -> Option<f64> {
        let calls = self.google_calls.lock().expect("call history poisoned");
        (calls.len() >= 10)
            .then(|| calls.iter().filter(|failed| **failed).count() as f64 / calls.len() as f64)
    }

    fn count_fix(&self) {
        self.fixes
            .lock()
            .expect("fix counter poisoned")
            .push_back(Instant::now());
    }
}

/// How handling one event ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Ignored {
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
    /// A safety control held the fix back (kill switch, blast-radius cap).
    Held {
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
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Ignored { .. } => "ignored",
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
        }
    }
}

/// The answer to the sender: the journal row and the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Handled {
    pub id: i64,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// Handles one event. `Err` means nothing durable was written, so the sender must redeliver.
pub async fn handle(cx: &Context, event: &AuditEvent) -> Result<Handled, journal::Error> {
    gcp::GOOGLE_TIME
        .scope(std::cell::Cell::new(0), handle_counted(cx, event))
        .await
}

/// `handle`, inside the scope that counts the time spent waiting on Google.
async fn handle_counted(cx: &Context, event: &AuditEvent) -> Result<Handled, journal::Error> {
    let started = Instant::now();
    // Events that cannot lead to a change are settled from the event alone, with one journal write.
    let own_operation = event
        .operation
        .as_ref()
        .is_some_and(|operation| cx.gcp.started_operation(&operation.id));
    let early = match gate::screen(&cx.config, event, own_operation) {
        Some(Early::OwnWrite) => Some(Outcome::OwnWrite),
        Some(Early::FailedCall(code)) => Some(Outcome::FailedCall { code }),
        None => match route::route(event) {
            Route::Ignore(reason) => Some(Outcome::Ignored { reason }),
            _ => None,
        },
    };
    if let Some(outcome) = early {
        let record = Record {
            outcome: outcome.name().to_string(),
            reason: match &outcome {
                Outcome::Ignored { reason } => reason.clone(),
                Outcome::FailedCall { code } => {
                    format!("the audited call failed with status {code}")
                }
                _ => String::new(),
            },
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
        return Ok(Handled {
            id,
            outcome,
            findings: Vec::new(),
        });
    }
    let (id, interrupted) = match cx.journal.claim(event).await? {
        Claim::Duplicate { of } => {
            return Ok(Handled {
                id: of,
                outcome: Outcome::Duplicate { of },
                findings: Vec::new(),
            });
        }
        Claim::InProgress { of } => {
            return Ok(Handled {
                id: of,
                outcome: Outcome::InProgress { of },
                findings: Vec::new(),
            });
        }
        Claim::New {
            id,
            remediated_by: Some(of),
            ..
        } => {
            let record = Record {
                outcome: "duplicate".into(),
                reason: format!("operation already remediated by #{of}"),
                ..Record::default()
            };
            cx.journal.finish(id, &record).await?;
            return Ok(Handled {
                id,
                outcome: Outcome::Duplicate { of },
                findings: Vec::new(),
            });
        }
        Claim::New {
            id,
            remediated_by: None,
            interrupted,
        } => (id, interrupted),
    };
    // One remediation of a resource at a time: in this process, then across replicas. Held until the outcome is
    // journaled, so the next decision on the resource counts this one.
    let key = match route::route(event) {
        Route::Check(target) => Some(target.key()),
        _ => None,
    };
    let _serialised = match &key {
        Some(key) => Some(cx.locks.lock(key.clone()).await),
        None => None,
    };
    let lease = match &key {
        Some(key) => cx.journal.hold(key).await,
        None => Ok(None),
    };
    let mut record = Record::default();
    let (outcome, _lease) = match (&key, lease) {
        (Some(key), Ok(None)) => (
            Outcome::Retry {
                error: format!("another replica is handling {key}"),
            },
            None,
        ),
        (_, Err(err)) => (
            Outcome::Retry {
                error: err.to_string(),
            },
            None,
        ),
        (_, Ok(lease)) => (decide_and_act(cx, id, event, &mut record).await, lease),
    };
    // A process that died had announced a fix for this event; the live state is now compliant, so that fix took.
    let finished_before_restart = match (&outcome, interrupted) {
        (Outcome::Compliant, Some((fix, before))) => {
            record.after = record.before.replace(before);
            Some(fix)
        }
        _ => None,
    };
    let restarted = finished_before_restart.is_some();
    let outcome = match finished_before_restart {
        Some(fix) => Outcome::Remediated { fix },
        None => outcome,
    };
    record.outcome = outcome.name().to_string();
    record.retry = matches!(outcome, Outcome::Retry { .. });
    record.reason = match &outcome {
        Outcome::Ignored { reason }
        | Outcome::Exempt { reason }
        | Outcome::Refused { reason }
        | Outcome::Held { reason }
        | Outcome::Quarantined { reason, .. } => reason.clone(),
        Outcome::Failed { error } | Outcome::Retry { error } => error.clone(),
        Outcome::FailedCall { code } => format!("the audited call failed with status {code}"),
        Outcome::DryRun { fix } | Outcome::Remediated { fix } => fix.describe(),
        _ => String::new(),
    };
    if let Outcome::DryRun { fix } | Outcome::Remediated { fix } = &outcome {
        record.fix = Some(fix.clone());
    }
    if restarted {
        record
            .reason
            .push_str(" (applied before a restart; a fresh read confirms it)");
    }
    record.duration_us = started.elapsed().as_micros() as i64;
    record.google_us = gcp::GOOGLE_TIME
        .try_with(std::cell::Cell::get)
        .unwrap_or_default() as i64;
    let alerts = notify::alerts(
        &cx.config.templates,
        &cx.config.channels,
        &cx.journal,
        id,
        event,
        &outcome,
        &record,
    )
    .await?;
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
    })
}

/// The stages for an event that points at a resource (`handle` has settled the rest).
async fn decide_and_act(cx: &Context, id: i64, event: &AuditEvent, record: &mut Record) -> Outcome {
    let target = match route::route(event) {
        Route::Check(target) => target,
        Route::Deleted(_) => return Outcome::Gone,
        Route::Ignore(reason) => return Outcome::Ignored { reason },
    };
    record.resource_key = Some(target.key());
    let read = fetch(&cx.gcp, &target).await;
    cx.count_google_call(&read);
    let (resource, before) = match read {
        Ok(read) => read,
        Err(gcp::Error::NotFound(_)) => return Outcome::Gone,
        Err(err) => return failure(err.to_string(), err.is_retryable()),
    };
    record.before = Some(before);
    record.owner = owner_of(&cx.config, &resource);
    let plan = policy::evaluate(&cx.config, &resource);
    record.findings = plan.findings.clone();
    let safety = match cx
        .journal
        .safety(
            &target.key(),
            target.project(),
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
        Verdict::Nothing => Outcome::Compliant,
        Verdict::Deferred { seconds } => {
            let due = journal::epoch_now() + i64::from(seconds);
            match cx.journal.defer(&target.key(), target.project(), due).await {
                Ok(()) => Outcome::Deferred { seconds },
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
        Verdict::Held { fix, reason } => {
            record.fix = Some(fix);
            Outcome::Held { reason }
        }
        Verdict::Quarantined {
            fix,
            reason,
            principals,
            new,
        } => {
            record.fix = Some(fix);
            let stored = match new {
                true => cx
                    .journal
                    .quarantine(&target.key(), &principals.join(", "), &reason)
                    .await
                    .map(|_| ()),
                false => Ok(()),
            };
            match stored {
                Ok(()) => Outcome::Quarantined { reason, new },
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
        Verdict::Detected => Outcome::Detected,
        Verdict::Exempt(reason) => Outcome::Exempt { reason },
        Verdict::DryRun(fix) => Outcome::DryRun { fix },
        Verdict::Apply(fix) => {
            let cap = cx.config.safety.max_fixes_per_project_per_hour;
            let before = record.before.clone().unwrap_or_default();
            match cx
                .journal
                .announce_fix(id, target.project(), cap, &fix, &before)
                .await
            {
                Ok(true) => {
                    crash_point("decided");
                    apply_fix(cx, fix, record).await
                }
                Ok(false) => {
                    record.fix = Some(fix);
                    Outcome::Held {
                        reason: format!(
                            "blast-radius cap: {cap} fixes in project {} within the last hour \
                             (max_fixes_per_project_per_hour = {cap})",
                            target.project()
                        ),
                    }
                }
                Err(err) => Outcome::Retry {
                    error: err.to_string(),
                },
            }
        }
    }
}

/// Applies an admitted fix and verifies it.
async fn apply_fix(cx: &Context, fix: Fix, record: &mut Record) -> Outcome {
    match apply::run(&cx.config, &cx.gcp, &fix)
        .await
        .inspect(|_| cx.count_google_call::<()>(&Ok(())))
        .inspect_err(|err| {
            if let apply::Error::Google(err) = err {
                cx.count_google_call::<()>(&Err(err.clone()));
            }
        }) {
        Ok(after) => {
            crash_point("applied");
            record.after = after;
            cx.count_fix();
            Outcome::Remediated { fix }
        }
        // Deleted between our read and our write: nothing left to fix.
        Err(apply::Error::Google(gcp::Error::NotFound(_))) => Outcome::Gone,
        Err(apply::Error::Google(err)) => {
            record.fix = Some(fix);
            failure(err.to_string(), err.is_retryable())
        }
        Err(apply::Error::Refused(reason)) => {
            record.fix = Some(fix);
            Outcome::Refused { reason }
        }
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

/// Always re-reads: the event is only a pointer.
async fn fetch(client: &Client, target: &Target) -> Result<(Resource, Value), gcp::Error> {
    match target {
        Target::Firewall { project, name } => {
            let (firewall, raw) = client.get_firewall(project, name).await?;
            Ok((
                Resource::Firewall {
                    project: project.clone(),
                    firewall,
                },
                raw,
            ))
        }
        Target::Bucket { project, name } => {
            let (bucket, raw) = client.get_bucket(name).await?;
            let policy = client.get_bucket_policy(name).await?;
            let before = serde_json::json!({"bucket": raw, "iam": policy});
            Ok((
                Resource::Bucket {
                    project: project.clone(),
                    bucket,
                    policy,
                },
                before,
            ))
        }
        Target::ProjectIam { project } => {
            let policy = client.get_project_policy(project).await?;
            let raw = serde_json::to_value(&policy).expect("a policy serialises");
            Ok((
                Resource::ProjectIam {
                    project: project.clone(),
                    policy,
                },
                raw,
            ))
        }
    }
}

/// Decides again, on the live state, every resource whose grace period is over. Runs beside the receiver.
pub async fn rechecks(cx: Arc<Context>) {
    let mut timer = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        timer.tick().await;
        let due = match cx.journal.take_due_rechecks(journal::epoch_now()).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(%err, "reading the deferred decisions");
                continue;
            }
        };
        for (resource, project) in due {
            let event =
                crate::scan::synthetic_event(crate::event::Transport::Recheck, &project, &resource);
            if let Err(err) = handle(&cx, &event).await {
                tracing::error!(%err, %resource, "re-deciding after the grace period");
            }
        }
    }
}

/// The owner a resource's owner label names, if routing by owner is configured.
fn owner_of(config: &Config, resource: &Resource) -> Option<String> {
    let label = config.owner_label.as_ref()?;
    match resource {
        Resource::Bucket { bucket, .. } => bucket.labels.get(label).cloned(),
        // Firewall rules carry no labels, and the project policy read does not include the project's labels.
        Resource::Firewall { .. } | Resource::ProjectIam { .. } => None,
    }
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
