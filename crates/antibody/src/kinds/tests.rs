//! Routing that comes before any kind: the parts of a split audit entry.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn split_part(split: serde_json::Value) -> Route {
    let entry = json!({"insertId": "i", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {"serviceName": "cloudresourcemanager.googleapis.com", "methodName": "SetIamPolicy",
            "resourceName": "projects/acme-prod"},
        "resource": {"type": "project", "labels": {"project_id": "acme-prod"}}, "split": split});
    route(&AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"))
}

#[test]
fn the_first_part_of_a_split_entry_re_reads_the_resource_and_the_others_are_ignored() {
    let first = split_part(json!({"uid": "u-1", "index": 0, "totalSplits": 3}));
    assert!(matches!(first, Route::Check(_)), "{first:?}");
    let Route::Ignore(reason) = split_part(json!({"uid": "u-1", "index": 2, "totalSplits": 3}))
    else {
        panic!("a later part is ignored");
    };
    assert_eq!(
        reason,
        "part 3 of 3 of the split entry 'u-1'; its first part re-reads the resource"
    );
}

#[test]
fn a_split_whose_index_cannot_be_read_is_checked_rather_than_skipped() {
    for split in [
        json!({"uid": "u", "index": "one", "totalSplits": 2}),
        json!({"uid": "u", "index": -3}),
        json!({"uid": "u"}),
        json!("not an object"),
    ] {
        assert!(
            matches!(split_part(split.clone()), Route::Check(_)),
            "{split}"
        );
    }
}

// Issue 34: Cloud SQL's Admin Activity entries, as Google writes them, name the instance `instances/NAME`, the
// project only in `resource.labels.project_id` (and `database_id` = `PROJECT:INSTANCE`); only
// `projects/P/instances/I` was routed, so the public-SQL fix would never have run on Google.
#[test]
fn cloud_sql_entries_route_in_the_form_google_writes_them() {
    let entry = |resource_name: &str, project: &str| {
        json!({"insertId": "sql-1", "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"),
            "protoPayload": {"serviceName": "cloudsql.googleapis.com", "methodName": "cloudsql.instances.update",
                "resourceName": resource_name},
            "resource": {"type": "cloudsql_database", "labels": {"project_id": project,
                "database_id": format!("{project}:orders-db"), "region": "europe-north1"}}})
    };
    for (resource_name, project) in [
        ("instances/orders-db", "acme-prod"),
        ("projects/acme-prod/instances/orders-db", "acme-prod"),
    ] {
        let event =
            AuditEvent::from_log_entry(&entry(resource_name, project), Transport::LogEntry, None)
                .expect("valid entry");
        let Route::Check(target) = route(&event) else {
            panic!("{resource_name}: {:?}", route(&event));
        };
        assert_eq!(target.project(), "acme-prod");
        assert_eq!(target.key(), "projects/acme-prod/instances/orders-db");
    }
    // Without a project to place it in, the short form is refused, never guessed.
    let event = AuditEvent::from_log_entry(
        &json!({"insertId": "sql-2", "logName": "organizations/1/logs/x",
            "protoPayload": {"serviceName": "cloudsql.googleapis.com", "methodName": "cloudsql.instances.update",
                "resourceName": "instances/orders-db"}}),
        Transport::LogEntry,
        None,
    )
    .expect("valid entry");
    assert!(
        matches!(route(&event), Route::Refuse(_)),
        "{:?}",
        route(&event)
    );
}

// Issue 34: a dataset's access changed through the IAM API is logged as `google.iam.v1.IAMPolicy.SetIamPolicy` on
// `projects/P/datasets/D`, which no policy watched.
#[test]
fn a_dataset_policy_set_through_the_iam_api_is_checked() {
    let entry = |resource_name: &str| {
        json!({"insertId": "bq-1", "logName": "projects/acme-data/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "bigquery.googleapis.com",
                "methodName": "google.iam.v1.IAMPolicy.SetIamPolicy", "resourceName": resource_name},
            "resource": {"type": "bigquery_dataset", "labels": {"project_id": "acme-data", "dataset_id": "sales"}}})
    };
    let event = AuditEvent::from_log_entry(
        &entry("projects/acme-data/datasets/sales"),
        Transport::LogEntry,
        None,
    )
    .expect("valid entry");
    let Route::Check(target) = route(&event) else {
        panic!("{:?}", route(&event));
    };
    assert_eq!(target.key(), "projects/acme-data/datasets/sales");
    assert_eq!(target.kind, KindId::Dataset);
}

// Issue 32/34: `gcloud run deploy` and `gcloud run services update` write Run Admin v1's `CreateService` and
// `ReplaceService`, naming the service `namespaces/P/services/S` with its region in the resource's labels; nothing
// watched them, so a service deployed with `--no-invoker-iam-check` was only found by a sweep.
#[test]
fn run_v1_service_writes_are_checked_in_their_region() {
    let entry = |method: &str, location: Option<&str>| {
        let mut labels = json!({"project_id": "acme-web", "service_name": "site"});
        if let Some(location) = location {
            labels["location"] = json!(location);
        }
        json!({"insertId": "run-1", "logName": "projects/acme-web/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "run.googleapis.com", "methodName": method,
                "resourceName": "namespaces/acme-web/services/site"},
            "resource": {"type": "cloud_run_revision", "labels": labels}})
    };
    for method in [
        "google.cloud.run.v1.Services.CreateService",
        "google.cloud.run.v1.Services.ReplaceService",
    ] {
        let event = AuditEvent::from_log_entry(
            &entry(method, Some("europe-west1")),
            Transport::LogEntry,
            None,
        )
        .expect("valid entry");
        let Route::Check(target) = route(&event) else {
            panic!("{method}: {:?}", route(&event));
        };
        assert_eq!(
            target.key(),
            "projects/acme-web/locations/europe-west1/services/site"
        );
        let event = AuditEvent::from_log_entry(&entry(method, None), Transport::LogEntry, None)
            .expect("valid entry");
        assert!(
            matches!(route(&event), Route::Refuse(_)),
            "no region, no guess"
        );
    }
}
