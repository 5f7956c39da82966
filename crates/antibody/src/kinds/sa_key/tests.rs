//! Routing tests of the service-account key kind: the watched methods, the `-` project, forged names.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn route_of(method: &str, resource: &str) -> Route {
    let entry = json!({"insertId": "i", "logName": "projects/my-project/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {"serviceName": "iam.googleapis.com", "methodName": method, "resourceName": resource},
        "resource": {"type": "service_account", "labels": {"project_id": "my-project"}}});
    crate::kinds::route(
        &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
    )
}

#[test]
fn key_writes_route_to_the_account_in_the_events_project() {
    for watch in WATCHES {
        assert_eq!(
            route_of(
                watch.method,
                "projects/-/serviceAccounts/112233445566778899001"
            ),
            Route::Check(target("my-project", "112233445566778899001")),
            "{}",
            watch.method
        );
    }
    assert_eq!(
        route_of(
            "google.iam.admin.v1.CreateServiceAccountKey",
            "projects/my-project/serviceAccounts/ci@my-project.iam.gserviceaccount.com/keys/abc123"
        ),
        Route::Check(target(
            "my-project",
            "ci@my-project.iam.gserviceaccount.com"
        ))
    );
    assert!(matches!(
        route_of(
            "google.iam.admin.v1.DisableServiceAccountKey",
            "projects/-/serviceAccounts/1"
        ),
        Route::Ignore(_)
    ));
    assert!(
        matches!(
            route_of(
                "google.iam.admin.v1.CreateServiceAccount",
                "projects/my-project/serviceAccounts/1"
            ),
            Route::Ignore(_)
        ),
        "not a key method: no policy watches it"
    );
}

#[test]
fn forged_account_names_are_refused() {
    for resource in [
        "projects/-/serviceAccounts/ci@evil.example",
        "projects/-/serviceAccounts/CI@my-project.iam.gserviceaccount.com",
        "projects/-/serviceAccounts/../serviceAccounts/1",
        "projects/-/serviceAccounts/1?alt=json",
        "projects/-/serviceAccounts",
        "projects/../serviceAccounts/1",
    ] {
        assert!(
            matches!(
                route_of("google.iam.admin.v1.CreateServiceAccountKey", resource),
                Route::Refuse(_)
            ),
            "{resource}"
        );
    }
}

#[test]
fn a_key_list_can_be_checked() {
    let text = json!({"account": {"email": "ci@p.iam.gserviceaccount.com", "projectId": "p"},
        "keys": [{"name": "projects/p/serviceAccounts/ci@p.iam.gserviceaccount.com/keys/k1", "keyType": "USER_MANAGED"}]})
    .to_string();
    let read = SaKeys::parse_input("sa-key", &text).expect("parses");
    assert_eq!(read.keys.len(), 1);
    assert!(SaKeys::parse_input("sa-key", "{}").is_err());
}
