//! A sweep's report for people and dashboards: a terminal table, Markdown and SARIF 2.1.0.

use crate::kinds::KindId;
use crate::policy;

use super::Report;

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
