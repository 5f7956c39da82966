//! Table tests of the query language: what each filter selects, what is refused, severities and sampling.

use super::*;
use serde_json::json;

fn entries() -> Vec<Value> {
    vec![
        json!({"insertId": "a", "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity",
            "timestamp": "2026-11-29T10:00:00Z", "severity": "NOTICE",
            "protoPayload": {"methodName": "v1.compute.firewalls.insert", "serviceName": "compute.googleapis.com",
                "authenticationInfo": {"principalEmail": "alice@example.com"},
                "status": {"code": 0}}, "labels": {"k8s-pod/app": "web"}}),
        json!({"insertId": "b", "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Fdata_access",
            "timestamp": "2026-11-29T11:00:00Z", "severity": "ERROR",
            "protoPayload": {"methodName": "storage.objects.get", "serviceName": "storage.googleapis.com",
                "authenticationInfo": {"principalEmail": "antibody@p1.iam.gserviceaccount.com"},
                "status": {"code": 7}},
            "resource": {"labels": {"names": ["x", "y"]}}}),
        json!({"insertId": "c", "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity",
            "timestamp": "2026-11-29T12:00:00Z", "severity": "NOTICE",
            "protoPayload": {"methodName": "SetIamPolicy", "serviceName": "cloudresourcemanager.googleapis.com",
                "authenticationInfo": {"principalEmail": "antibody@p1.iam.gserviceaccount.com"}}}),
    ]
}

fn ids(filter: &str) -> String {
    let query = Query::parse(filter).unwrap_or_else(|why| panic!("{filter}: {why}"));
    entries()
        .iter()
        .filter(|entry| query.matches(entry))
        .map(|entry| entry["insertId"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn the_logging_query_language_selects_as_documented() {
    assert_eq!(ids(""), "abc");
    assert_eq!(ids(r#"log_id("cloudaudit.googleapis.com/activity")"#), "ac");
    assert_eq!(ids(r#"protoPayload.methodName = "SetIamPolicy""#), "c");
    assert_eq!(ids(r#"protoPayload.methodName != "SetIamPolicy""#), "ab");
    assert_eq!(ids(r#"protoPayload.methodName : "firewalls""#), "a");
    assert_eq!(ids(r#"protoPayload.methodName =~ "^v1\.compute""#), "a");
    assert_eq!(ids(r#"protoPayload.methodName !~ "^v1\.compute""#), "bc");
    assert_eq!(ids(r#"timestamp >= "2026-11-29T11:00:00Z""#), "bc");
    assert_eq!(ids(r#"timestamp < "2026-11-29T11:00:00Z""#), "a");
    assert_eq!(ids("protoPayload.status.code > 0"), "b");
    assert_eq!(ids("protoPayload.status.code = 0"), "a");
    assert_eq!(
        ids(r#"severity = ERROR OR severity = NOTICE AND insertId = "a""#),
        "a"
    );
    assert_eq!(
        ids(r#"(severity = ERROR OR severity = NOTICE) AND insertId = "a""#),
        "a"
    );
    assert_eq!(
        ids(
            "log_id(\"cloudaudit.googleapis.com/activity\")\nNOT protoPayload.authenticationInfo.principalEmail = \"antibody@p1.iam.gserviceaccount.com\""
        ),
        "a",
        "implicit AND across lines"
    );
    assert_eq!(
        ids(r#"-protoPayload.authenticationInfo.principalEmail = "alice@example.com""#),
        "bc"
    );
    assert_eq!(ids(r#"labels."k8s-pod/app" = "web""#), "a");
    assert_eq!(
        ids(r#"resource.labels.names = "y""#),
        "b",
        "a repeated field"
    );
    assert_eq!(ids("resource.labels.names:*"), "b");
}

#[test]
fn what_it_does_not_understand_is_refused() {
    for filter in [
        "(severity = ERROR",
        "severity = ",
        r#"severity = "open"#,
        "error",
        "severity =~ \"(\"",
        "log_id(activity)",
        "AND severity = ERROR",
        "severity = ERROR)",
    ] {
        assert!(Query::parse(filter).is_err(), "{filter}");
    }
}

#[test]
fn severities_compare_in_their_order() {
    let error = json!({"severity": "ERROR"});
    let info = json!({"severity": "INFO"});
    let unset = json!({});
    let selects = |filter: &str, entry: &Value| Query::parse(filter).expect(filter).matches(entry);
    assert!(selects("severity>=WARNING", &error));
    assert!(!selects("severity>=WARNING", &info));
    assert!(selects("severity<NOTICE", &info));
    assert!(selects("severity>=DEFAULT", &unset));
    assert!(selects("severity=error", &error));
    assert!(selects("severity>=400", &error));
}

#[test]
fn a_sample_may_select_an_entry_and_its_negation_may_too() {
    let entry = json!({"insertId": "abc", "logName": "projects/p/logs/syslog"});
    let sample = Query::parse("sample(insertId, 0.25)").expect("sample");
    assert_eq!(sample.selects(&entry), None);
    assert_eq!(
        Query::parse("NOT sample(insertId, 0.25)")
            .expect("not")
            .selects(&entry),
        None
    );
    assert_eq!(
        Query::parse("logName:\"audit\" AND sample(insertId, 0.25)")
            .expect("and")
            .selects(&entry),
        Some(false)
    );
    assert_eq!(
        Query::parse("sample(insertId, 1)")
            .expect("all")
            .selects(&entry),
        Some(true)
    );
    assert_eq!(
        sample.matches(&entry),
        sample.matches(&entry),
        "the same entry, the same draw"
    );
    for bad in ["sample(insertId)", "sample(insertId, 2)", "sample(, 0.5)"] {
        assert!(Query::parse(bad).is_err(), "{bad}");
    }
}
