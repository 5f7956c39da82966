//! `antibody scan`: sweep whole projects — every kind in the registry, each enumerated by its room —
//! through the same policies, and (with `--fix`) through the same gate and pipeline as events.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::event::{AuditEvent, Transport};
use crate::journal::Exemption;
use crate::kinds::{KindId, Resource};
use crate::pipeline::{self, Context};
use crate::policy::{self, Finding};

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

/// Progress as the sweep goes: one call per finished step.
pub trait Progress: Send + Sync {
    fn step(&self, message: &str);
}

/// Sweeps `projects`; with `fix`, each violating resource is handed to the pipeline as a synthetic event.
pub async fn sweep(
    cx: &Arc<Context>,
    projects: &[String],
    fix: bool,
    progress: &dyn Progress,
) -> Report {
    let mut report = Report::default();
    for project in projects {
        let mut excluded = cx.config.scope.excludes(project);
        if excluded.is_none() && cx.config.scope.needs_ancestry() {
            match cx.ancestry(project).await {
                Ok(ancestors) => {
                    excluded = cx.config.scope.excludes_by_ancestry(project, &ancestors)
                }
                Err(err) => {
                    report
                        .errors
                        .push(format!("{project}: reading its ancestry: {err}"));
                    continue;
                }
            }
        }
        match excluded {
            Some(reason) => report.out_of_scope.push(reason),
            None => report.projects.push(project.clone()),
        }
    }
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
    let mut compliant_again = Vec::new();
    for project in &report.projects.clone() {
        for kind in KindId::ALL {
            if !kind.common(&cx.config).enabled {
                continue;
            }
            let swept = kind.sweep(&cx.gcp, project).await;
            *report.swept.entry(kind.name()).or_default() += swept.resources.len();
            report.errors.extend(swept.errors);
            for mut resource in swept.resources {
                if let Err(err) = resource
                    .enrich(&cx.config, &cx.gcp, cx.clock().now_secs())
                    .await
                {
                    report.errors.push(format!("{project}: {err}"));
                    continue;
                }
                if let Some(key) =
                    judge(cx, &registry, &quarantined, &mut report, project, resource)
                {
                    compliant_again.push(key);
                }
            }
            progress.step(&format!(
                "{project}: {} {}",
                report.swept[kind.name()],
                kind.noun()
            ));
        }
    }
    report
        .violations
        .sort_by(|a, b| a.resource.cmp(&b.resource));
    if !fix {
        report.held_by_caps = would_hold(cx, &report).await;
    }
    if fix {
        for key in compliant_again {
            match cx.journal.release(&key).await {
                Ok(_) => report.released.push(key),
                Err(err) => report.errors.push(format!("{key}: releasing: {err}")),
            }
        }
        for violation in &mut report.violations {
            let event =
                AuditEvent::synthetic(Transport::Scan, &violation.project, &violation.resource);
            match pipeline::handle(cx, &event).await {
                Ok(handled) => {
                    violation.outcome = Some(handled.outcome.name().to_string());
                    violation.reason = handled.outcome.reason();
                    violation.journal_id = Some(handled.id);
                }
                Err(err) => report.errors.push(format!("{}: {err}", violation.resource)),
            }
        }
    }
    report.held_by_caps += report
        .violations
        .iter()
        .filter(|violation| {
            violation.outcome.as_deref() == Some("held")
                && violation.reason.contains("blast-radius cap")
        })
        .count();
    report
}

/// How many of a report's violations the blast-radius caps would hold if they were fixed now: per project, those
/// beyond the slots the hour has left, and then those beyond the instance's cap.
async fn would_hold(cx: &Context, report: &Report) -> usize {
    let limits = &cx.config.safety;
    let mut per_project: BTreeMap<&str, usize> = BTreeMap::new();
    for violation in &report.violations {
        *per_project.entry(violation.project.as_str()).or_default() += 1;
    }
    let mut held = 0;
    let mut admitted = 0;
    for (project, count) in per_project {
        let remaining = match limits.max_fixes_per_project_per_hour {
            0 => count,
            cap => {
                let used = cx
                    .journal
                    .safety(
                        &format!("projects/{project}"),
                        project,
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

/// What was swept, each kind's count with its noun ("100 …, 3 …").
fn swept(report: &Report) -> String {
    KindId::ALL
        .iter()
        .filter_map(|kind| {
            report
                .swept
                .get(kind.name())
                .map(|count| format!("{count} {}", kind.noun()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report as a terminal table.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "swept {} project(s): {}\n",
        report.projects.len(),
        swept(report)
    );
    for violation in &report.violations {
        for finding in &violation.findings {
            let outcome = violation
                .outcome
                .as_deref()
                .map(|outcome| format!(" [{outcome}]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<9} {:<14} {:<38} {}{outcome}\n",
                format!("{:?}", finding.severity).to_uppercase(),
                finding.policy,
                finding.category,
                finding.message
            ));
        }
    }
    out.push_str(&format!(
        "{} violating resource(s)\n",
        report.violations.len()
    ));
    let fixing = report
        .violations
        .iter()
        .any(|violation| violation.outcome.is_some());
    if report.held_by_caps > 0 {
        // An operator who asked for a sweep hears what the caps did and how to proceed.
        out.push_str(&format!(
            "{} fix(es) {} by the blast-radius caps (max_fixes_per_project_per_hour, max_fixes_per_instance_per_hour): \
             to fix them in this sweep, run `antibody scan --fix --max-fixes {}` (journaled as your decision)\n",
            report.held_by_caps,
            if fixing { "were held" } else { "would be held" },
            report.violations.len()
        ));
    }
    for skipped in &report.out_of_scope {
        out.push_str(&format!("not swept: {skipped}\n"));
    }
    for error in &report.errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

pub fn markdown(report: &Report) -> String {
    let mut out = format!(
        "# antibody scan\n\nSwept {}: {}.\n\n| severity | policy | category | resource | finding |\n|---|---|---|---|---|\n",
        report.projects.join(", "),
        swept(report)
    );
    for violation in &report.violations {
        for finding in &violation.findings {
            out.push_str(&format!(
                "| {:?} | {} | {} | `{}` | {} |\n",
                finding.severity,
                finding.policy,
                finding.category,
                violation.resource,
                finding.message.replace('|', "\\\\|")
            ));
        }
    }
    if !report.out_of_scope.is_empty() {
        out.push_str("\nNot swept:\n");
        for skipped in &report.out_of_scope {
            out.push_str(&format!("- {skipped}\n"));
        }
    }
    out
}

/// SARIF 2.1.0, for code-scanning dashboards: one rule per category, cloud resources as logical locations.
pub fn sarif(report: &Report) -> serde_json::Value {
    use serde_json::json;
    let mut rules: Vec<serde_json::Value> = Vec::new();
    let mut results = Vec::new();
    for violation in &report.violations {
        for finding in &violation.findings {
            if !rules.iter().any(|rule| rule["id"] == finding.category) {
                rules.push(json!({"id": finding.category, "name": finding.category,
                    "shortDescription": {"text": format!("{} ({})", finding.category, finding.policy)}}));
            }
            let level = match finding.severity {
                policy::Severity::Critical | policy::Severity::High => "error",
                policy::Severity::Medium => "warning",
                policy::Severity::Low => "note",
            };
            results.push(json!({
                "ruleId": finding.category,
                "level": level,
                "message": {"text": finding.message},
                "locations": [{"logicalLocations": [{"fullyQualifiedName": violation.resource, "kind": "resource"}]}],
                "properties": {"policy": finding.policy, "severity": finding.severity, "project": violation.project},
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "antibody", "version": env!("CARGO_PKG_VERSION"), "rules": rules}}, "results": results}],
    })
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
        let report = sweep(&cx, &projects, true, &Quiet).await;
        let line = serde_json::json!({
            "severity": if report.errors.is_empty() { "INFO" } else { "WARNING" },
            "message": format!("sweep of {}: {} violating resource(s), {} error(s)", projects.join(", "), report.violations.len(), report.errors.len()),
            "logging.googleapis.com/labels": {"component": "sweep"},
            "swept": report.swept, "errors": report.errors,
        });
        println!("{line}");
    }
}
