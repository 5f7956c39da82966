//! `antibody scan`: sweep whole projects — every kind in the registry, each enumerated by its room —
//! through the same policies, and (with `--fix`) through the same gate and pipeline as events.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::event::{AuditEvent, Transport};
use crate::journal::Exemption;
use crate::kinds::{self, KindId, Resource};
use crate::pipeline::{self, Context, Outcome};
use crate::policy::Finding;

mod bounded;
mod render;
mod tree;

use bounded::{bounded, bounded_each};

pub use render::{markdown, sarif, table};

/// One resource that violates a policy, as reports list it.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub resource: String,
    pub project: String,
    pub findings: Vec<Finding>,
    /// What `--fix` did, as a pipeline outcome (`remediated`, `held`, `exempt`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<i64>,
    /// Why `--fix` did what it did (the journal's reason).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The sweep's run: its fixes' journal keys carry it (a fresh one unless the caller names one).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run: String,
    pub projects: Vec<String>,
    /// How many resources of each kind were swept, by kind name.
    pub swept: BTreeMap<&'static str, usize>,
    pub violations: Vec<Violation>,
    /// Quarantined resources the sweep found compliant again: with `--fix`, antibody fixes them again from now on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<String>,
    /// Fixes the blast-radius caps held back (with `--fix`), or would hold (a report-only sweep's estimate).
    pub held_by_caps: usize,
    /// Projects `[scope]` leaves alone, each with the reason: never listed, never fixed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub out_of_scope: Vec<String>,
    pub errors: Vec<String>,
}

/// Progress as the sweep goes: how many steps there are once known, then one call per finished step.
pub trait Progress: Send + Sync {
    fn total(&self, _steps: usize) {}
    fn step(&self, message: &str);
}

/// How many (project, kind) listings run at once: a listing mostly waits on Google, and each project's quota is its
/// own, so a sweep of many projects keeps many in flight.
const LISTINGS: usize = 1024;
/// How many projects' ancestries are read at once.
const PLACEMENTS: usize = 16;
/// How many fixes run at once in all, and in one project (Compute's writes are quota'd per project).
const FIXES: usize = 32;
const FIXES_PER_PROJECT: usize = 16;

/// Sweeps `projects`; with `fix`, each violating resource is handed to the pipeline as a synthetic event.
pub async fn sweep(
    cx: &Arc<Context>,
    projects: &[String],
    fix: bool,
    progress: &dyn Progress,
) -> Report {
    sweep_run(cx, projects, fix, progress, None).await
}

/// `sweep`, as the run `run` names (a fresh one when `None`): the same run swept again — Cloud Scheduler retrying
/// an attempt — takes over what an interrupted attempt left and does not fix twice what it finished.
pub async fn sweep_run(
    cx: &Arc<Context>,
    projects: &[String],
    fix: bool,
    progress: &dyn Progress,
    run: Option<&str>,
) -> Report {
    let mut report = Report {
        run: run
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        ..Report::default()
    };
    let placed = place(cx, projects, &mut report).await;
    sweep_placed(cx, placed, Vec::new(), fix, progress, report).await
}

/// Sweeps every active project under `organization` (`organizations/N`) that `[scope]` allows, found by walking the
/// folders (`folders.list`) and asking `projects:search` for each container's projects, plus the IAM policies of
/// the organization and its folders themselves.
pub async fn sweep_organization(
    cx: &Arc<Context>,
    organization: &str,
    fix: bool,
    progress: &dyn Progress,
) -> Report {
    let mut report = Report {
        run: uuid::Uuid::new_v4().to_string(),
        ..Report::default()
    };
    let tree = match tree::walk(cx, organization).await {
        Ok(tree) => tree,
        Err(err) => {
            report
                .errors
                .push(format!("{organization}: walking its folders: {err}"));
            return report;
        }
    };
    report.out_of_scope.extend(tree.left_alone);
    let mut projects = Vec::new();
    for project in tree.projects {
        match cx.config.scope.excludes(&project) {
            Some(reason) => report.out_of_scope.push(reason),
            None => projects.push(project),
        }
    }
    sweep_placed(cx, projects, tree.containers, fix, progress, report).await
}

/// Which of `projects` `[scope]` allows (their ancestries read a few at a time); the others go to the report.
async fn place(cx: &Arc<Context>, projects: &[String], report: &mut Report) -> Vec<String> {
    let mut placed = Vec::new();
    let needs_ancestry = cx.config.scope.needs_ancestry();
    let jobs: Vec<String> = projects.to_vec();
    let answers = bounded(
        jobs,
        PLACEMENTS,
        |_| {},
        |project| {
            let cx = cx.clone();
            async move {
                let mut excluded = cx.config.scope.excludes(&project);
                if excluded.is_none() && needs_ancestry {
                    match cx.ancestry(&project).await {
                        Ok(ancestors) => {
                            excluded = cx.config.scope.excludes_by_ancestry(&project, &ancestors)
                        }
                        Err(err) => return (project, Err(err.to_string())),
                    }
                }
                (project, Ok(excluded))
            }
        },
    )
    .await;
    for answer in answers {
        match answer {
            Some((project, Ok(None))) => placed.push(project),
            Some((_, Ok(Some(reason)))) => report.out_of_scope.push(reason),
            Some((project, Err(err))) => report
                .errors
                .push(format!("{project}: reading its ancestry: {err}")),
            None => report
                .errors
                .push("placing a project: the task failed".into()),
        }
    }
    placed
}

/// One (project, kind) listing, enriched and ready to judge.
struct Listing {
    project: String,
    kind: KindId,
    resources: Vec<Resource>,
    errors: Vec<String>,
}

async fn list(cx: Arc<Context>, project: String, kind: KindId) -> Listing {
    let swept = kind.sweep(&cx.gcp, &project).await;
    let mut errors = swept.errors;
    let mut resources = Vec::with_capacity(swept.resources.len());
    for mut resource in swept.resources {
        match resource
            .enrich(&cx.config, &cx.gcp, cx.clock().now_secs())
            .await
        {
            Ok(()) => resources.push(resource),
            Err(err) => errors.push(format!("{project}: {err}")),
        }
    }
    Listing {
        project,
        kind,
        resources,
        errors,
    }
}

/// An organization's or folder's own policy, read through the kind that owns it.
async fn list_container(cx: Arc<Context>, target: kinds::Target) -> Listing {
    let mut listing = Listing {
        project: target.key().to_string(),
        kind: target.kind,
        resources: Vec::new(),
        errors: Vec::new(),
    };
    match target.fetch(&cx.gcp).await {
        Ok((resource, _)) => listing.resources.push(resource),
        Err(err) => listing.errors.push(format!("{}: {err}", target.key())),
    }
    listing
}

async fn sweep_placed(
    cx: &Arc<Context>,
    projects: Vec<String>,
    containers: Vec<String>,
    fix: bool,
    progress: &dyn Progress,
    mut report: Report,
) -> Report {
    report.projects = projects.clone();
    // The registry is the operator's word: a registered resource is no violation in a report either.
    let registry = match cx.journal.exemptions().await {
        Ok(registry) => registry,
        Err(err) => {
            report
                .errors
                .push(format!("reading the exemption registry: {err}"));
            Vec::new()
        }
    };
    // Quarantined resources are re-checked too: one found compliant is released (with --fix), one still open is
    // reported and, through the pipeline, alerted again.
    let quarantined: std::collections::HashSet<String> = match cx.journal.quarantined().await {
        Ok(quarantined) => quarantined
            .into_iter()
            .map(|quarantine| quarantine.resource_key)
            .collect(),
        Err(err) => {
            report.errors.push(format!("reading the quarantine: {err}"));
            Default::default()
        }
    };
    let mut jobs: Vec<Job> = Vec::new();
    for container in containers {
        match kinds::target_of(&container, "") {
            Some(target) if target.kind.common(&cx.config).enabled => {
                jobs.push(Job::Container(target))
            }
            Some(_) => {}
            None => report
                .errors
                .push(format!("{container}: no kind watches it")),
        }
        // The container's own resources of the kinds that have them (its sinks and exclusions).
        for kind in KindId::ALL {
            if kind.sweeps_containers() && kind.common(&cx.config).enabled {
                jobs.push(Job::Project(container.clone(), *kind));
            }
        }
    }
    for project in &projects {
        for kind in KindId::ALL {
            if kind.common(&cx.config).enabled {
                jobs.push(Job::Project(project.clone(), *kind));
            }
        }
    }
    progress.total(jobs.len());
    let mut compliant_again = Vec::new();
    // Each listing is judged as it arrives and then dropped: memory stays flat in the number of projects.
    let failed = bounded_each(
        jobs,
        LISTINGS,
        |listing: Listing| {
            progress.step(&format!(
                "{}: {} {}",
                listing.project,
                listing.resources.len(),
                listing.kind.noun()
            ));
            *report.swept.entry(listing.kind.name()).or_default() += listing.resources.len();
            report.errors.extend(listing.errors);
            for resource in listing.resources {
                if let Some(key) = judge(
                    cx,
                    &registry,
                    &quarantined,
                    &mut report,
                    &listing.project,
                    resource,
                ) {
                    compliant_again.push(key);
                }
            }
        },
        |job| {
            let cx = cx.clone();
            async move {
                match job {
                    Job::Project(project, kind) => list(cx, project, kind).await,
                    Job::Container(target) => list_container(cx, target).await,
                }
            }
        },
    )
    .await;
    for _ in 0..failed {
        report.errors.push("listing: the task failed".into());
    }
    report
        .violations
        .sort_by(|a, b| a.resource.cmp(&b.resource));
    if !fix {
        report.held_by_caps = would_hold(cx, &report).await;
        return report;
    }
    for key in compliant_again {
        match cx.journal.release(&key).await {
            Ok(_) => report.released.push(key),
            Err(err) => report.errors.push(format!("{key}: releasing: {err}")),
        }
    }
    report.held_by_caps += fix_all(cx, &mut report).await;
    report
}

enum Job {
    Project(String, KindId),
    Container(kinds::Target),
}

/// Hands every violation to the pipeline, `FIXES` at a time and `FIXES_PER_PROJECT` in one project, projects taken
/// in turn so that one large project does not hold the others back. The pipeline keeps its guarantees under
/// concurrency: one change per resource at a time (the lease), the caps' fix slots taken atomically, the journal
/// written before the write. Returns how many fixes a blast-radius cap held back.
async fn fix_all(cx: &Arc<Context>, report: &mut Report) -> usize {
    let mut by_project: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, violation) in report.violations.iter().enumerate() {
        by_project
            .entry(violation.project.clone())
            .or_default()
            .push(index);
    }
    let mut order = Vec::with_capacity(report.violations.len());
    let mut queues: Vec<std::collections::VecDeque<usize>> =
        by_project.into_values().map(Into::into).collect();
    while queues.iter().any(|queue| !queue.is_empty()) {
        for queue in &mut queues {
            if let Some(index) = queue.pop_front() {
                order.push(index);
            }
        }
    }
    let slots: std::collections::HashMap<String, Arc<tokio::sync::Semaphore>> = report
        .violations
        .iter()
        .map(|violation| {
            (
                violation.project.clone(),
                Arc::new(tokio::sync::Semaphore::new(FIXES_PER_PROJECT)),
            )
        })
        .collect();
    let jobs: Vec<(usize, String, String, Arc<tokio::sync::Semaphore>)> = order
        .into_iter()
        .map(|index| {
            let violation = &report.violations[index];
            (
                index,
                violation.project.clone(),
                violation.resource.clone(),
                slots[&violation.project].clone(),
            )
        })
        .collect();
    let run = if report.run.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        report.run.clone()
    };
    let results = bounded(
        jobs,
        FIXES,
        |_| {},
        |(index, project, resource, slot)| {
            let cx = cx.clone();
            let run = run.clone();
            async move {
                let _slot = slot.acquire_owned().await;
                // An organization's or folder's policy belongs to no project.
                let event_project = match kinds::names::organization_or_folder(&project) {
                    Some(_) => "",
                    None => project.as_str(),
                };
                let event =
                    AuditEvent::synthetic_in(Transport::Scan, &run, event_project, &resource);
                (index, pipeline::handle(&cx, &event).await)
            }
        },
    )
    .await;
    let mut held_by_caps = 0;
    for result in results {
        match result {
            Some((index, Ok(handled))) => {
                if matches!(handled.outcome, Outcome::Held { by, .. } if by.is_cap()) {
                    held_by_caps += 1;
                }
                let violation = &mut report.violations[index];
                violation.outcome = Some(handled.outcome.name().to_string());
                violation.reason = handled.outcome.reason();
                violation.journal_id = Some(handled.id);
            }
            Some((index, Err(err))) => {
                let resource = report.violations[index].resource.clone();
                report.errors.push(format!("{resource}: {err}"));
            }
            None => report.errors.push("fixing: the task failed".into()),
        }
    }
    held_by_caps
}

/// How many of a report's violations the blast-radius caps would hold if they were fixed now: per project, those
/// beyond the slots the hour has left, and then those beyond the instance's cap.
async fn would_hold(cx: &Context, report: &Report) -> usize {
    let limits = &cx.config.safety;
    // Per budget: a project's slots are counted apart for each policy and for CRITICAL findings.
    let mut per_budget: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for violation in &report.violations {
        let budget = crate::gate::cap_budget(&violation.project, &violation.findings);
        *per_budget
            .entry((violation.project.as_str(), budget))
            .or_default() += 1;
    }
    let mut held = 0;
    let mut admitted = 0;
    for ((project, budget), count) in per_budget {
        let remaining = match limits.max_fixes_per_project_per_hour {
            0 => count,
            cap => {
                let used = cx
                    .journal
                    .safety(
                        &format!("projects/{project}"),
                        &budget,
                        limits.flap_window_secs,
                    )
                    .await
                    .map(|safety| safety.recent_fixes_in_project)
                    .unwrap_or(0);
                cap.saturating_sub(used) as usize
            }
        };
        held += count.saturating_sub(remaining);
        admitted += count.min(remaining);
    }
    match limits.max_fixes_per_instance_per_hour as usize {
        0 => held,
        cap => held + admitted.saturating_sub(cap),
    }
}

/// Evaluates one freshly listed resource with the same policies and exemptions events use; the resource's key
/// when it is quarantined and compliant again.
fn judge(
    cx: &Context,
    registry: &[Exemption],
    quarantined: &std::collections::HashSet<String>,
    report: &mut Report,
    project: &str,
    resource: Resource,
) -> Option<String> {
    let plan = resource.evaluate(&cx.config);
    if plan.findings.is_empty() {
        if quarantined.is_empty() {
            return None;
        }
        let key = resource.target().key().to_string();
        return quarantined.contains(&key).then_some(key);
    }
    // A sweep cannot tell who changed a resource: only principal-free exemptions (the registry) apply.
    let target = resource.target();
    let now = cx.clock().now_secs();
    if resource.exemption(&cx.config, "").is_some()
        || registry
            .iter()
            .any(|exemption| exemption.covers(target.key(), now))
    {
        return None;
    }
    report.violations.push(Violation {
        resource: target.key().to_string(),
        project: project.to_string(),
        findings: plan.findings,
        outcome: None,
        journal_id: None,
        reason: String::new(),
    });
    None
}

/// Progress of a sweep nobody watches.
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _message: &str) {}
}

/// `serve`'s backstop: sweeps `projects` with `--fix` semantics every `every`, logging one line per sweep.
pub async fn periodically(cx: Arc<Context>, projects: Vec<String>, every: std::time::Duration) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        sweep_once(&cx, &projects, None).await;
    }
}

/// One sweep of `projects` with `--fix` semantics (the timer's, or Cloud Scheduler's through `/sweep`): logs one line
/// in Cloud Run's format and returns it.
pub async fn sweep_once(
    cx: &Arc<Context>,
    projects: &[String],
    run: Option<&str>,
) -> serde_json::Value {
    // Work in flight: a stopping process waits for a sweep under way (within its grace) and starts none.
    let working = match cx.draining() {
        true => None,
        false => cx.in_flight.clone().acquire_owned().await.ok(),
    };
    let Some(_working) = working else {
        return serde_json::json!({"severity": "WARNING", "message": "antibody is stopping; no sweep started"});
    };
    let report = sweep_run(cx, projects, true, &Quiet, run).await;
    let line = serde_json::json!({
        "severity": if report.errors.is_empty() { "INFO" } else { "WARNING" },
        "message": format!("sweep of {}: {} violating resource(s), {} error(s)", projects.join(", "), report.violations.len(), report.errors.len()),
        "logging.googleapis.com/labels": {"component": "sweep"},
        "swept": report.swept, "violations": report.violations.len(), "errors": report.errors,
        "run": report.run,
    });
    println!("{line}");
    line
}
