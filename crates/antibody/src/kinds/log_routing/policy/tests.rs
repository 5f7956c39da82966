//! Table tests of the log-tamper policy: which filters drop audit logs, and what a sink's change restores.

use serde_json::json;

use super::*;

#[test]
fn filters_that_select_audit_logs_and_those_that_do_not() {
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
        (r#"NOT LOG_ID("cloudaudit.googleapis.com/activity")"#, true),
        (
            r#"-logName:"projects/p/logs/cloudaudit.googleapis.com%2Factivity""#,
            true,
        ),
        (
            r#"NOT (LOG_ID("cloudaudit.googleapis.com/activity") OR LOG_ID("cloudaudit.googleapis.com/data_access"))"#,
            true,
        ),
        (r#"resource.type="gce_instance" AND severity<ERROR"#, true),
        (r#"textPayload:"cloud audit""#, false),
        (
            r#"resource.type="k8s_container" AND severity<WARNING"#,
            false,
        ),
        (
            r#"resource.type="http_load_balancer" AND sample(insertId, 0.99)"#,
            false,
        ),
        (r#"logName:"projects/p/logs/syslog""#, false),
        (r#"NOT protoPayload.@type:*"#, false),
        // Issue 34: what the spelling-based check let through — each drops Data Access audit logs.
        (r#"logName:"data_access""#, true),
        (r#"logName=~"audit""#, true),
        (r#"severity>=DEFAULT"#, true),
        (r#"protoPayload:*"#, true),
        (r#"protoPayload.serviceName:"storage""#, true),
        (r#"NOT NOT logName:"data_access""#, true),
        (r#"NOT logName:"syslog""#, true),
        (r#"sample(insertId, 0.5)"#, true),
        (r#"severity=INFO"#, true),
        (r#"resource.labels.project_id="p""#, true),
        // Issue 34: keeps every audit log and drops the rest — wrongly disabled before.
        (
            r#"NOT LOG_ID("cloudaudit.googleapis.com/activity") AND NOT LOG_ID("cloudaudit.googleapis.com/data_access") AND NOT LOG_ID("cloudaudit.googleapis.com/system_event") AND NOT LOG_ID("cloudaudit.googleapis.com/policy") AND NOT LOG_ID("externalaudit.googleapis.com/activity") AND NOT LOG_ID("externalaudit.googleapis.com/data_access")"#,
            false,
        ),
        (
            r#"NOT logName:"cloudaudit" AND NOT logName:"externalaudit""#,
            false,
        ),
        // Unreadable to antibody, so judged as dropping: a hole left open is worse than an exclusion disabled.
        (r#"some words searched everywhere"#, true),
    ] {
        assert_eq!(
            drops_audit_logs(filter, "p").is_some(),
            drops,
            "{filter}: {:?}",
            drops_audit_logs(filter, "p")
        );
    }
}

// Issue 34: `_Default` re-filtered to select nothing, or re-routed, passed as compliant (only `disabled` was checked).
#[test]
fn the_default_sink_keeps_its_filter_and_its_bucket() {
    let policy = LogTamperPolicy::default();
    let destination = default_sink_destination("p");
    let default_sink = |filter: &str, destination: &str| Sink {
        name: "_Default".into(),
        destination: destination.into(),
        filter: filter.into(),
        disabled: false,
        exclusions: Vec::new(),
        writer_identity: None,
    };
    let (findings, fix) = policy.evaluate_sink(
        "p",
        "_Default",
        Some(&default_sink(DEFAULT_SINK_FILTER, &destination)),
    );
    assert!(findings.is_empty() && fix.is_none(), "{findings:?}");
    // Narrowed without touching the audit logs it carries: left alone.
    let narrowed = format!("{DEFAULT_SINK_FILTER} AND NOT resource.type=\"k8s_container\"");
    let (findings, _) = policy.evaluate_sink(
        "p",
        "_Default",
        Some(&default_sink(&narrowed, &destination)),
    );
    assert!(findings.is_empty(), "{findings:?}");
    for filter in [
        r#"logName:"syslog""#,
        r#"NOT LOG_ID("cloudaudit.googleapis.com/data_access")"#,
        r#"severity>=ERROR"#,
        r#"sample(insertId, 0.1)"#,
    ] {
        let (findings, fix) =
            policy.evaluate_sink("p", "_Default", Some(&default_sink(filter, &destination)));
        assert_eq!(findings[0].category, SINK_CHANGED, "{filter}");
        assert_eq!(
            fix,
            Some(Planned::Update {
                body: json!({"filter": DEFAULT_SINK_FILTER}),
                mask: vec!["filter".into()]
            }),
            "{filter}"
        );
    }
    let (findings, fix) = policy.evaluate_sink(
        "p",
        "_Default",
        Some(&default_sink(
            DEFAULT_SINK_FILTER,
            "storage.googleapis.com/attacker-bucket",
        )),
    );
    assert_eq!(findings[0].category, SINK_CHANGED);
    assert_eq!(
        fix,
        Some(Planned::Update {
            body: json!({"destination": destination}),
            mask: vec!["destination".into()]
        })
    );
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
    let (findings, fix) = policy.evaluate_exclusion(
        "p",
        &exclusion(
            "x",
            r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#,
            false,
        ),
    );
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
            .evaluate_exclusion(
                "p",
                &exclusion(
                    "x",
                    r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#,
                    true
                )
            )
            .0
            .len(),
        0
    );
    assert_eq!(
        policy
            .evaluate_exclusion("p", &exclusion("debug", r#"severity=DEBUG"#, false))
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
                "p",
                "audit-archive",
                Some(&sink("audit-archive", archive, false, vec![]))
            )
            .0
            .len(),
        0
    );
    let (findings, fix) = policy.evaluate_sink(
        "p",
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
    let (findings, fix) = policy.evaluate_sink("p", "audit-archive", None);
    assert_eq!(findings[0].category, SINK_DELETED);
    assert!(matches!(fix, Some(Planned::Create(_))));
    assert_eq!(
        policy.evaluate_sink("p", "team-export", None),
        (vec![], None),
        "an unprotected sink may go"
    );
    assert_eq!(
        policy
            .evaluate_sink(
                "p",
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
        "p",
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
    let default_sink = Sink {
        filter: DEFAULT_SINK_FILTER.into(),
        ..sink(
            "_Default",
            &default_sink_destination("p"),
            false,
            exclusions,
        )
    };
    let (findings, fix) = policy.evaluate_sink("p", "_Default", Some(&default_sink));
    assert_eq!(findings.len(), 1, "{findings:?}");
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
            .evaluate_exclusion(
                "p",
                &exclusion(
                    "x",
                    r#"LOG_ID("cloudaudit.googleapis.com/activity")"#,
                    false
                )
            )
            .1,
        None
    );
}
