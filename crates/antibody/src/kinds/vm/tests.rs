//! Routing tests of the instance kind: every watched method, the project's metadata, forged names.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn route_of(method: &str, resource: &str) -> Route {
    let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "compute.googleapis.com",
        "methodName": method, "resourceName": resource}, "resource": {"labels": {"project_id": "my-project"}}});
    crate::kinds::route(
        &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
    )
}

#[test]
fn every_watched_method_routes_to_its_target() {
    for watch in WATCHES {
        let (resource, target) = if watch.method.ends_with("setCommonInstanceMetadata") {
            ("projects/my-project", metadata_target("my-project"))
        } else {
            (
                "projects/my-project/zones/europe-west4-b/instances/vm-1",
                instance_target("my-project", "europe-west4-b", "vm-1"),
            )
        };
        assert_eq!(
            route_of(watch.method, resource),
            Route::Check(target),
            "{}",
            watch.method
        );
    }
    assert_eq!(
        route_of(
            "v1.compute.instances.delete",
            "projects/my-project/zones/us-central1-a/instances/vm-1"
        ),
        Route::Deleted(instance_target("my-project", "us-central1-a", "vm-1"))
    );
    assert!(matches!(
        route_of(
            "v1.compute.instances.reset",
            "projects/my-project/zones/us-central1-a/instances/vm-1"
        ),
        Route::Ignore(_)
    ));
}

#[test]
fn the_metadata_key_is_not_the_projects_iam_key() {
    let target = metadata_target("my-project");
    assert_eq!(target.key(), "projects/my-project/commonInstanceMetadata");
    assert_eq!(parse(target.key()), Ok(target.clone()));
    assert_eq!(
        crate::kinds::target_of(target.key(), "my-project"),
        Some(target)
    );
}

#[test]
fn forged_instance_names_are_refused() {
    for resource in [
        "projects/my-project/zones/us-central1-a/instances/vm#x",
        "projects/my-project/zones/us-central1-a/instances/../instances/vm",
        "projects/my-project/zones/us-central1/instances/vm",
        "projects/my-project/zones/US-CENTRAL1-A/instances/vm",
        "projects/my-project/zones/us-central1-a/instances/VM",
        "projects/my-project/commonInstanceMetadata",
        "https://evil.example/compute/v1/projects/my-project/zones/us-central1-a/instances/vm",
    ] {
        assert!(
            matches!(
                route_of("v1.compute.instances.setMetadata", resource),
                Route::Refuse(_)
            ),
            "{resource}"
        );
    }
    assert!(matches!(
        route_of(
            "v1.compute.projects.setCommonInstanceMetadata",
            "projects/../x"
        ),
        Route::Refuse(_)
    ));
}

#[test]
fn a_bare_instance_can_be_checked() {
    let text = json!({"name": "vm", "zone": "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a",
        "metadata": {"items": [{"key": "serial-port-enable", "value": "1"}]}})
    .to_string();
    let Vm::Instance { project, zone, .. } = Instances::parse_input("vm", &text).expect("parses")
    else {
        panic!("an instance")
    };
    assert_eq!((project.as_str(), zone.as_str()), ("p", "us-central1-a"));
    assert!(Instances::parse_input("vm", "[]").is_err());
}
