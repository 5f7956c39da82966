//! Routing tests of the bucket kind: which Cloud Storage entries point at a bucket, and which names are refused.

use super::*;
use crate::event::Transport;

fn route_of(method: &str, resource: &str) -> Route {
    let entry = json!({"insertId": "i", "protoPayload": {"serviceName": SERVICE,
        "methodName": method, "resourceName": resource}, "resource": {"labels": {"project_id": "my-project"}}});
    crate::kinds::route(
        &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
    )
}

#[test]
fn bucket_writes_route_and_objects_and_reads_do_not() {
    let bucket = target("my-project", "data-1");
    for watch in WATCHES {
        assert_eq!(
            route_of(watch.method, "projects/_/buckets/data-1"),
            Route::Check(bucket.clone()),
            "{}",
            watch.method
        );
    }
    assert_eq!(
        route_of("storage.buckets.delete", "projects/_/buckets/data-1"),
        Route::Deleted(bucket)
    );
    assert!(matches!(
        route_of(
            "storage.objects.update",
            "projects/_/buckets/data-1/objects/o"
        ),
        Route::Ignore(_)
    ));
    assert!(matches!(
        route_of("storage.buckets.get", "projects/_/buckets/data-1"),
        Route::Ignore(_)
    ));
}

// Issue 17: a bucket name outside Cloud Storage's grammar reached the API under another key.
#[test]
fn forged_bucket_names_are_refused() {
    for resource in [
        "projects/_/buckets/data-1#",
        "projects/_/buckets/data-1?alt=json",
        "projects/_/buckets/%64ata-1",
        "projects/_/buckets/../b/other",
        "projects/my-project/buckets/data-1",
    ] {
        assert!(
            matches!(
                route_of("storage.setIamPermissions", resource),
                Route::Refuse(_)
            ),
            "{resource}"
        );
    }
}
