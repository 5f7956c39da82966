//! Tests of the dataset kind: which access entries are public, routing and names.

use serde_json::json;

use super::*;
use crate::event::Transport;

#[test]
fn public_entries_and_the_ones_that_are_not() {
    for (entry, public) in [
        (json!({"role": "READER", "iamMember": "allUsers"}), true),
        (
            json!({"role": "roles/bigquery.dataViewer", "iamMember": "allAuthenticatedUsers"}),
            true,
        ),
        (
            json!({"role": "READER", "specialGroup": "allAuthenticatedUsers"}),
            true,
        ),
        (
            json!({"role": "OWNER", "specialGroup": "projectOwners"}),
            false,
        ),
        (json!({"role": "READER", "domain": "example.com"}), false),
        (
            json!({"role": "READER", "userByEmail": "allUsers@example.com"}),
            false,
        ),
        (
            json!({"role": "READER", "groupByEmail": "everyone@example.com"}),
            false,
        ),
        (
            json!({"view": {"projectId": "p", "datasetId": "d", "tableId": "v"}}),
            false,
        ),
    ] {
        assert_eq!(is_public(&entry), public, "{entry}");
    }
    let read = Dataset {
        etag: "e".into(),
        access: vec![
            json!({"role": "READER", "iamMember": "allUsers"}),
            json!({"role": "OWNER", "specialGroup": "projectOwners"}),
        ],
    };
    let (findings, entries) = DatasetPolicy::default().evaluate("sales", &read);
    assert_eq!((findings.len(), entries.len()), (1, 1));
    assert_eq!(findings[0].category, CATEGORY);
    let report_only = DatasetPolicy {
        remove: false,
        ..DatasetPolicy::default()
    };
    assert_eq!(report_only.evaluate("sales", &read).1.len(), 0);
}

#[test]
fn dataset_writes_route_and_forged_names_are_refused() {
    let route_of = |method: &str, resource: &str| {
        let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "bigquery.googleapis.com",
            "methodName": format!("google.cloud.bigquery.v2.DatasetService.{method}"), "resourceName": resource}});
        crate::kinds::route(
            &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
        )
    };
    assert_eq!(
        route_of("PatchDataset", "projects/my-project/datasets/sales_eu"),
        Route::Check(target("my-project", "sales_eu"))
    );
    assert_eq!(
        route_of("DeleteDataset", "projects/my-project/datasets/sales_eu"),
        Route::Deleted(target("my-project", "sales_eu"))
    );
    for forged in [
        "projects/my-project/datasets/sales-eu",
        "projects/my-project/datasets/../x",
        "projects/my-project/datasets/a/tables/t",
    ] {
        assert!(
            matches!(route_of("PatchDataset", forged), Route::Refuse(_)),
            "{forged}"
        );
    }
}

#[test]
fn access_entries_are_members_as_iam_writes_them() {
    use super::policy::member;
    use serde_json::json;
    assert_eq!(
        member(&json!({"userByEmail": "a@x.com"})).as_deref(),
        Some("user:a@x.com")
    );
    assert_eq!(
        member(&json!({"groupByEmail": "g@x.com"})).as_deref(),
        Some("group:g@x.com")
    );
    assert_eq!(
        member(&json!({"domain": "x.com"})).as_deref(),
        Some("domain:x.com")
    );
    assert_eq!(
        member(&json!({"iamMember": "principal://iam.googleapis.com/x"})).as_deref(),
        Some("principal://iam.googleapis.com/x")
    );
    assert_eq!(member(&json!({"specialGroup": "projectOwners"})), None);
    assert_eq!(member(&json!({"view": {"datasetId": "d"}})), None);
}
