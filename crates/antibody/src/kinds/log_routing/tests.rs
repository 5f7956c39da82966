//! Routing tests of the log-routing kind: the watched methods, names, what hides no logs.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn route_of(method: &str, resource: &str) -> Route {
    let entry = json!({"insertId": "i", "logName": "projects/my-project/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {"serviceName": "logging.googleapis.com", "methodName": method, "resourceName": resource}});
    crate::kinds::route(
        &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
    )
}

#[test]
fn sink_and_exclusion_writes_route_and_deleting_an_exclusion_does_not() {
    for watch in WATCHES {
        let collection = if watch.method.ends_with("Sink") {
            "sinks"
        } else {
            "exclusions"
        };
        assert_eq!(
            route_of(
                watch.method,
                &format!("projects/my-project/{collection}/_Default")
            ),
            Route::Check(target("my-project", collection, "_Default")),
            "{}",
            watch.method
        );
    }
    assert!(matches!(
        route_of(
            "google.logging.v2.ConfigServiceV2.DeleteExclusion",
            "projects/my-project/exclusions/x"
        ),
        Route::Ignore(_)
    ));
    for forged in [
        "projects/my-project/sinks/a/b",
        "projects/my-project/sinks/..",
        "projects/my-project/sinks/a%2Fb",
        "projects/my-project/buckets/x",
        "organizations/acme/sinks/x",
        "folders/1/2/sinks/x",
    ] {
        assert!(
            matches!(
                route_of("google.logging.v2.ConfigServiceV2.UpdateSink", forged),
                Route::Refuse(_)
            ),
            "{forged}"
        );
    }
}

// Issue 34: a folder's and an organization's own sinks and exclusions are judged, keyed by their parent.
#[test]
fn an_organizations_and_a_folders_routing_is_their_own() {
    for (name, parent) in [
        (
            "organizations/123456789012/exclusions/quiet",
            "organizations/123456789012",
        ),
        ("folders/42/sinks/siem", "folders/42"),
    ] {
        let Route::Check(target) = route_of("google.logging.v2.ConfigServiceV2.UpdateSink", name)
        else {
            panic!("{name}");
        };
        assert_eq!((target.key(), target.project()), (name, parent));
    }
}
