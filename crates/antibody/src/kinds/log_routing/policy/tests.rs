//! Table tests of the log-tamper policy: which filters drop audit logs, and what a sink's change restores.

use serde_json::json;

use super::*;

#[test]
fn filters_that_select_audit_logs_and_those_that_do_not() {
    let markers = LogTamperPolicy::default().audit_log_markers;
    for (filter, drops) in [
        (r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#, true),
        (
            r#"logName:"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access""#,
            true,
        ),
        (
            r#"protoPayload.@type="type.googleapis.com/google.cloud.audit.AuditLog""#,
            true,
        ),
        (
            r#"severity<ERROR AND logName:"projects/p/logs/CLOUDAUDIT.googleapis.com%2Factivity""#,
            true,
        ),
        (
            r#"(resource.type="k8s_container") OR LOG_ID("cloudaudit.googleapis.com/data_access")"#,
            true,
        ),
        (
            r#"NOT NOT LOG_ID("cloudaudit.googleapis.com/activity")"#,
            true,
        ),
        (r#"LOG_ID("externalaudit.googleapis.com/activity")"#, true),
        (r#"NOT LOG_ID("cloudaudit.googleapis.com/activity")"#, false),
        (
            r#"-logName:"projects/p/logs/cloudaudit.googleapis.com%2Factivity""#,
            false,
        ),
        (
            r#"NOT (LOG_ID("cloudaudit.googleapis.com/activity") OR LOG_ID("cloudaudit.googleapis.com/data_access"))"#,
            false,
        ),
        (r#"resource.type="gce_instance" AND severity<ERROR"#, false),
        (r#"textPayload:"cloud audit""#, false),
        (
            r#"NOT LOG_ID("cloudaudit.googleapis.com/activity") AND NOT LOG_ID("externalaudit.googleapis.com/activity") AND NOT LOG_ID("cloudaudit.googleapis.com/system_event")"#,
            false,
        ),
    ] {
        assert_eq!(names_audit_logs(filter, &markers), drops, "{filter}");
    }
}

fn exclusion(name: &str, filter: &str, disabled: bool) -> Exclusion {
    Exclusion {
        name: name.into(),
        filter: filter.into(),
        disabled,
        description: None,
    }
}

fn sink(name: &str, destination: &str, disabled: bool, exclusions: Vec<Exclusion>) -> Sink {
    Sink {
        name: name.into(),
        destination: destination.into(),
        filter: r#"logName:"cloudaudit.googleapis.com""#.into(),
        disabled,
        exclusions,
        writer_identity: None,
    }
}

fn protected() -> LogTamperPolicy {
    LogTamperPolicy {
        protected_sinks: vec![ProtectedSink {
            name: "audit-archive".into(),
            destination: "storage.googleapis.com/sec-archive".into(),
            filter: r#"logName:"cloudaudit.googleapis.com""#.into(),
        }],
        ..LogTamperPolicy::default()
    }
}

#[test]
fn an_exclusion_of_audit_logs_is_disabled_and_others_left_alone() {
    let policy = LogTamperPolicy::default();
    let (findings, fix) = policy.evaluate_exclusion(&exclusion(
        "x",
        r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#,
        false,
    ));
    assert_eq!(findings[0].category, AUDIT_LOG_EXCLUSION);
    assert_eq!(
        fix,
        Some(Planned::Update {
            body: json!({"disabled": true}),
            mask: vec!["disabled".into()]
        })
    );
    assert_eq!(
        policy
            .evaluate_exclusion(&exclusion(
                "x",
                r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#,
                true
            ))
            .0
            .len(),
        0
    );
    assert_eq!(
        policy
            .evaluate_exclusion(&exclusion("debug", r#"severity=DEBUG"#, false))
            .0
            .len(),
        0
    );
}

#[test]
fn protected_sinks_are_restored_and_unprotected_ones_left_alone() {
    let policy = protected();
    let archive = "storage.googleapis.com/sec-archive";
    assert_eq!(
        policy
            .evaluate_sink(
                "audit-archive",
                Some(&sink("audit-archive", archive, false, vec![]))
            )
            .0
            .len(),
        0
    );
    let (findings, fix) = policy.evaluate_sink(
        "audit-archive",
        Some(&sink(
            "audit-archive",
            "storage.googleapis.com/attacker",
            true,
            vec![],
        )),
    );
    let categories: Vec<&str> = findings
        .iter()
        .map(|finding| finding.category.as_str())
        .collect();
    assert_eq!(categories, [SINK_DISABLED, SINK_CHANGED]);
    assert_eq!(
        fix,
        Some(Planned::Update {
            body: json!({"disabled": false, "destination": archive, "filter": r#"logName:"cloudaudit.googleapis.com""#}),
            mask: vec!["destination".into(), "disabled".into(), "filter".into()],
        })
    );
    let (findings, fix) = policy.evaluate_sink("audit-archive", None);
    assert_eq!(findings[0].category, SINK_DELETED);
    assert!(matches!(fix, Some(Planned::Create(_))));
    assert_eq!(
        policy.evaluate_sink("team-export", None),
        (vec![], None),
        "an unprotected sink may go"
    );
    assert_eq!(
        policy
            .evaluate_sink(
                "team-export",
                Some(&sink(
                    "team-export",
                    "bigquery.googleapis.com/x",
                    true,
                    vec![]
                ))
            )
            .0
            .len(),
        0
    );
    let (findings, _) = policy.evaluate_sink(
        "_Default",
        Some(&sink("_Default", "logging.googleapis.com/x", true, vec![])),
    );
    assert_eq!(
        findings[0].category, SINK_DISABLED,
        "_Default is protected from being disabled by default"
    );
}

#[test]
fn a_sinks_exclusion_of_audit_logs_is_disabled_and_the_rest_kept() {
    let policy = LogTamperPolicy::default();
    let exclusions = vec![
        exclusion("noisy", r#"resource.type="k8s_container""#, false),
        exclusion(
            "hide",
            r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#,
            false,
        ),
    ];
    let (findings, fix) = policy.evaluate_sink(
        "_Default",
        Some(&sink(
            "_Default",
            "logging.googleapis.com/x",
            false,
            exclusions,
        )),
    );
    assert_eq!(findings.len(), 1);
    assert_eq!(
        fix,
        Some(Planned::Update {
            body: json!({"exclusions": [
                {"name": "noisy", "filter": r#"resource.type="k8s_container""#},
                {"name": "hide", "filter": r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#, "disabled": true},
            ]}),
            mask: vec!["exclusions".into()],
        })
    );
    let report_only = LogTamperPolicy {
        restore: false,
        ..LogTamperPolicy::default()
    };
    assert_eq!(
        report_only
            .evaluate_exclusion(&exclusion(
                "x",
                r#"LOG_ID("cloudaudit.googleapis.com/activity")"#,
                false
            ))
            .1,
        None
    );
}
