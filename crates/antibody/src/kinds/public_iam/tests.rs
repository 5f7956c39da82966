//! Routing tests of the IAM-bearing resource kind: each service's method and name shapes, Secret Manager's project
//! numbers, forged names.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn route_of(service: &str, method: &str, resource: &str) -> Route {
    let entry = json!({"insertId": "i", "logName": "projects/my-project/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {"serviceName": service, "methodName": method, "resourceName": resource},
        "resource": {"labels": {"project_id": "my-project"}}});
    crate::kinds::route(
        &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
    )
}

#[test]
fn every_service_routes_its_resources() {
    let cases = [
        (WATCHES[0], "projects/my-project/topics/orders"),
        (WATCHES[0], "projects/my-project/subscriptions/orders-sub"),
        (WATCHES[1], "projects/123456789012/secrets/db-password"),
        (WATCHES[2], "projects/my-project/secrets/db-password"),
        (
            WATCHES[3],
            "projects/my-project/locations/global/keyRings/ring",
        ),
        (
            WATCHES[3],
            "projects/my-project/locations/global/keyRings/ring/cryptoKeys/key",
        ),
        (
            WATCHES[4],
            "projects/my-project/locations/europe-west1/repositories/images",
        ),
        (
            WATCHES[5],
            "projects/my-project/locations/europe-west1/repositories/images",
        ),
    ];
    for (watch, resource) in cases {
        assert_eq!(
            route_of(watch.service, watch.method, resource),
            Route::Check(target("my-project", resource)),
            "{resource}"
        );
    }
}

#[test]
fn other_methods_and_forged_names_do_not_reach_a_policy() {
    assert!(matches!(
        route_of(
            "pubsub.googleapis.com",
            "google.pubsub.v1.Publisher.CreateTopic",
            "projects/my-project/topics/t"
        ),
        Route::Ignore(_)
    ));
    for resource in [
        "projects/my-project/topics/t/extra",
        "projects/my-project/topics/..",
        "projects/my-project/topics/a%2Fb",
        "projects/my-project/buckets/b",
        "projects/MY-PROJECT/topics/t",
        "https://evil.example/v1/projects/my-project/topics/t",
    ] {
        assert!(
            matches!(
                route_of(
                    "pubsub.googleapis.com",
                    "google.iam.v1.IAMPolicy.SetIamPolicy",
                    resource
                ),
                Route::Refuse(_)
            ),
            "{resource}"
        );
    }
}
