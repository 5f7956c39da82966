//! The log-routing kind end to end: an exclusion that drops audit logs is disabled, one added to `_Default` too (the
//! rest kept), a disabled `_Default` enabled again, a protected sink redirected, disabled or deleted is restored.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, Options, PROJECT, USER_TOKEN};

const ARCHIVE: &str = "storage.googleapis.com/sec-audit-archive";
const AUDIT: &str = r#"logName:"cloudaudit.googleapis.com""#;

async fn logging(
    harness: &Harness,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    harness
        .google_as(
            USER_TOKEN,
            method,
            &format!("/v2/projects/{PROJECT}{path}"),
            body,
        )
        .await
}

fn protecting() -> Options {
    Options {
        tweak: Box::new(|config| {
            config.policies.log_tamper.protected_sinks =
                vec![antibody::kinds::log_routing::policy::ProtectedSink {
                    name: "audit-archive".into(),
                    destination: ARCHIVE.into(),
                    filter: AUDIT.into(),
                }];
        }),
        ..Options::default()
    }
}

#[tokio::test]
async fn exclusions_that_drop_audit_logs_are_disabled_and_the_rest_kept() {
    let harness = Harness::start().await;
    let (status, _) = logging(&harness, Method::POST, "/exclusions",
        Some(json!({"name": "cost-saving", "filter": r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#}))).await;
    assert_eq!(status, 200);
    let (_, read) = logging(&harness, Method::GET, "/exclusions/cost-saving", None).await;
    assert_eq!(read["disabled"], true, "{read}");
    let (status, _) = logging(
        &harness,
        Method::POST,
        "/exclusions",
        Some(json!({"name": "debug-noise", "filter": "severity=DEBUG"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, read) = logging(&harness, Method::GET, "/exclusions/debug-noise", None).await;
    assert!(read.get("disabled").is_none(), "{read}");

    let exclusions = json!({"exclusions": [{"name": "noisy", "filter": r#"resource.type="k8s_container""#},
        {"name": "hide", "filter": r#"protoPayload.@type="type.googleapis.com/google.cloud.audit.AuditLog""#}]});
    let (status, _) = logging(
        &harness,
        Method::PATCH,
        "/sinks/_Default?updateMask=exclusions",
        Some(exclusions),
    )
    .await;
    assert_eq!(status, 200);
    let (_, default) = logging(&harness, Method::GET, "/sinks/_Default", None).await;
    assert_eq!(default["exclusions"][0].get("disabled"), None, "{default}");
    assert_eq!(default["exclusions"][1]["disabled"], true);

    let (status, _) = logging(
        &harness,
        Method::PATCH,
        "/sinks/_Default?updateMask=disabled",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, default) = logging(&harness, Method::GET, "/sinks/_Default", None).await;
    assert!(
        default
            .get("disabled")
            .is_none_or(|disabled| disabled == false),
        "{default}"
    );
}

#[tokio::test]
async fn a_protected_sink_redirected_disabled_or_deleted_is_restored() {
    let harness = Harness::with(protecting()).await;
    let (status, _) = logging(
        &harness,
        Method::POST,
        "/sinks",
        Some(json!({"name": "audit-archive", "destination": ARCHIVE, "filter": AUDIT})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = logging(
        &harness,
        Method::PATCH,
        "/sinks/audit-archive?updateMask=destination,disabled",
        Some(json!({"destination": "storage.googleapis.com/attacker-bucket", "disabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, sink) = logging(&harness, Method::GET, "/sinks/audit-archive", None).await;
    assert_eq!(sink["destination"], ARCHIVE, "{sink}");
    assert!(
        sink.get("disabled")
            .is_none_or(|disabled| disabled == false),
        "{sink}"
    );

    let (status, _) = logging(&harness, Method::DELETE, "/sinks/audit-archive", None).await;
    assert_eq!(status, 200);
    let (status, sink) = logging(&harness, Method::GET, "/sinks/audit-archive", None).await;
    assert_eq!(
        (status, sink["destination"].as_str()),
        (200, Some(ARCHIVE)),
        "recreated"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let recreated = rows
        .iter()
        .find(|row| {
            row.findings
                .iter()
                .any(|finding| finding.category == "PROTECTED_SINK_DELETED")
        })
        .expect("the deletion was journaled");
    assert_eq!(recreated.outcome.as_deref(), Some("remediated"));

    // An unprotected sink may be deleted.
    let (status, _) = logging(&harness, Method::POST, "/sinks",
        Some(json!({"name": "team-export", "destination": "bigquery.googleapis.com/projects/p/datasets/d", "filter": ""}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        logging(&harness, Method::DELETE, "/sinks/team-export", None)
            .await
            .0,
        200
    );
    assert_eq!(
        logging(&harness, Method::GET, "/sinks/team-export", None)
            .await
            .0,
        404
    );
}

// Issue 34: exclusions were judged by spelling — `logName:"data_access"`, a regular expression, a severity range or
// "everything but syslog" all drop Data Access audit logs and passed; one that keeps every audit log was disabled.
// `_Default` re-filtered to select nothing, or re-routed, passed because only `disabled` was checked.
#[tokio::test]
async fn filters_are_judged_by_what_they_select_and_default_keeps_its_filter_and_bucket() {
    let harness = Harness::start().await;
    for (name, filter, dropped) in [
        ("by-substring", r#"logName:"data_access""#, true),
        ("by-pattern", r#"logName=~"audit""#, true),
        ("by-severity", "severity>=DEFAULT", true),
        ("all-but-syslog", r#"NOT logName:"syslog""#, true),
        (
            "keeps-audit",
            r#"NOT logName:"cloudaudit" AND NOT logName:"externalaudit""#,
            false,
        ),
    ] {
        let (status, created) = logging(
            &harness,
            Method::POST,
            "/exclusions",
            Some(json!({"name": name, "filter": filter})),
        )
        .await;
        assert_eq!(status, 200, "{created}");
        let (_, read) = logging(&harness, Method::GET, &format!("/exclusions/{name}"), None).await;
        assert_eq!(
            read.get("disabled") == Some(&json!(true)),
            dropped,
            "{name}: {read}"
        );
    }

    let (status, _) = logging(
        &harness,
        Method::PATCH,
        "/sinks/_Default?updateMask=filter",
        Some(json!({"filter": r#"logName:"syslog""#})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, default) = logging(&harness, Method::GET, "/sinks/_Default", None).await;
    assert_eq!(
        default["filter"],
        antibody::kinds::log_routing::policy::DEFAULT_SINK_FILTER,
        "{default}"
    );
    let (status, _) = logging(
        &harness,
        Method::PATCH,
        "/sinks/_Default?updateMask=destination",
        Some(json!({"destination": "storage.googleapis.com/somewhere-else"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, default) = logging(&harness, Method::GET, "/sinks/_Default", None).await;
    assert_eq!(
        default["destination"],
        format!("logging.googleapis.com/projects/{PROJECT}/locations/global/buckets/_Default"),
        "{default}"
    );
}
