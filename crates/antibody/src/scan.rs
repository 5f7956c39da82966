//! `antibody scan`: sweep whole projects — firewall rules, buckets with their IAM and ACLs, the project IAM policy —
//! through the same policies, and (with `--fix`) through the same gate and pipeline as events.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::event::{AuditEvent, Transport};
use crate::gcp;
use crate::pipeline::{self, Context};
use crate::policy::{self, Finding, Resource};
use crate::route::Target;

/// Bucket IAM reads in flight at once, per sweep.
const CONCURRENCY: usize = 32;

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
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub projects: Vec<String>,
    pub firewalls: usize,
    pub buckets: usize,
    pub project_policies: usize,
    pub violations: Vec<Violation>,
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
    let mut report = Report {
        projects: projects.to_vec(),
        ..Report::default()
    };
    for project in projects {
        match cx.gcp.list_firewalls(project).await {
            Ok(firewalls) => {
                report.firewalls += firewalls.len();
                for firewall in firewalls {
                    let resource = Resource::Firewall {
                        project: project.clone(),
                        firewall,
                    };
                    judge(cx, &mut report, project, resource);
                }
            }
            Err(err) => report
                .errors
                .push(format!("{project}: listing firewalls: {err}")),
        }
        progress.step(&format!("{project}: {} firewall rules", report.firewalls));
        match cx.gcp.get_project_policy(project).await {
            Ok(policy) => {
                report.project_policies += 1;
                judge(
                    cx,
                    &mut report,
                    project,
                    Resource::ProjectIam {
                        project: project.clone(),
                        policy,
                    },
                );
            }
            Err(err) => report
                .errors
                .push(format!("{project}: reading the IAM policy: {err}")),
        }
        match cx.gcp.list_buckets(project).await {
            Ok(buckets) => {
                report.buckets += buckets.len();
                let limit = Arc::new(Semaphore::new(CONCURRENCY));
                let mut reads = JoinSet::new();
                for bucket in buckets {
                    let (client, limit) = (cx.gcp.clone(), limit.clone());
                    reads.spawn(async move {
                        let _permit = limit.acquire_owned().await;
                        let policy = client.get_bucket_policy(&bucket.name).await;
                        (bucket, policy)
                    });
                }
                while let Some(read) = reads.join_next().await {
                    match read {
                        Ok((bucket, Ok(policy))) => judge(
                            cx,
                            &mut report,
                            project,
                            Resource::Bucket {
                                project: project.clone(),
                                bucket,
                                policy,
                            },
                        ),
                        Ok((bucket, Err(gcp::Error::NotFound(_)))) => {
                            tracing::debug!(bucket = %bucket.name, "deleted during the sweep")
                        }
                        Ok((bucket, Err(err))) => report
                            .errors
                            .push(format!("{}: reading bucket IAM: {err}", bucket.name)),
                        Err(err) => report.errors.push(format!("{project}: {err}")),
                    }
                }
            }
            Err(err) => report
                .errors
                .push(format!("{project}: listing buckets: {err}")),
        }
        progress.step(&format!("{project}: swept ({} buckets)", report.buckets));
    }
    report
        .violations
        .sort_by(|a, b| a.resource.cmp(&b.resource));
    if fix {
        for violation in &mut report.violations {
            let event = synthetic_event(Transport::Scan, &violation.project, &violation.resource);
            match pipeline::handle(cx, &event).await {
                Ok(handled) => {
                    violation.outcome = Some(handled.outcome.name().to_string());
                    violation.journal_id = Some(handled.id);
                }
                Err(err) => report.errors.push(format!("{}: {err}", violation.resource)),
            }
        }
    }
    report
}

/// Evaluates one freshly listed resource with the same policies and exemptions events use.
fn judge(cx: &Context, report: &mut Report, project: &str, resource: Resource) {
    let plan = policy::evaluate(&cx.config, &resource);
    if plan.findings.is_empty() {
        return;
    }
    if crate::gate::configured_exemption(&cx.config, &resource, "").is_some() {
        return;
    }
    let target = match &resource {
        Resource::Firewall { project, firewall } => Target::Firewall {
            project: project.clone(),
            name: firewall.name.clone(),
        },
        Resource::Bucket {
            project, bucket, ..
        } => Target::Bucket {
            project: project.clone(),
            name: bucket.name.clone(),
        },
        Resource::ProjectIam { project, .. } => Target::ProjectIam {
            project: project.clone(),
        },
    };
    report.violations.push(Violation {
        resource: target.key(),
        project: project.to_string(),
        findings: plan.findings,
        outcome: None,
        journal_id: None,
    });
}

/// A sweep's finding enters the pipeline as an event of its own, so it is re-read, gated and journaled like any other.
pub(crate) fn synthetic_event(transport: Transport, project: &str, resource: &str) -> AuditEvent {
    let key = format!("{}:{}:{resource}", transport.as_str(), uuid::Uuid::new_v4());
    AuditEvent {
        transport,
        delivery_key: key.clone(),
        log_key: key,
        service_name: "antibody".into(),
        method_name: format!("antibody.{}", transport.as_str()),
        resource_name: resource.to_string(),
        resource_type: String::new(),
        project: project.to_string(),
        principal: String::new(),
        caller_ip: String::new(),
        user_agent: String::new(),
        operation: None,
        status_code: 0,
        timestamp: String::new(),
        trace: None,
    }
}

/// The report as a terminal table.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "swept {} project(s): {} firewall rules, {} buckets, {} project policies\n",
        report.projects.len(),
        report.firewalls,
        report.buckets,
        report.project_policies
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
    for error in &report.errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

pub fn markdown(report: &Report) -> String {
    let mut out = format!(
        "# antibody scan\n\nSwept {}: {} firewall rules, {} buckets, {} project policies.\n\n| severity | policy | category | resource | finding |\n|---|---|---|---|---|\n",
        report.projects.join(", "),
        report.firewalls,
        report.buckets,
        report.project_policies
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
            "firewalls": report.firewalls, "buckets": report.buckets, "errors": report.errors,
        });
        println!("{line}");
    }
}
