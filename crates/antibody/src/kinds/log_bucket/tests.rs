//! Log buckets: the guarded ones judged by their retention, a locked one only reported, Google's names.

use serde_json::json;

use super::*;

fn read(name: &str, days: Option<u32>, locked: bool) -> BucketRead {
    BucketRead {
        project: "acme-prod".into(),
        bucket: LogBucket {
            name: name.into(),
            retention_days: days,
            locked,
        },
    }
}

#[test]
fn a_guarded_bucket_kept_too_briefly_is_restored_and_the_rest_left_alone() {
    let config = Config::default();
    let default = "projects/acme-prod/locations/global/buckets/_Default";
    let (findings, fix) = LogBuckets::evaluate(&config, &read(default, Some(1), false));
    assert_eq!(findings[0].category, CATEGORY);
    assert_eq!(
        fix,
        Some(Fix::RestoreRetention {
            project: "acme-prod".into(),
            bucket: default.into(),
            days: 30
        })
    );
    for (name, days, locked) in [
        (default, Some(30), false),
        (default, None, false),
        (
            "projects/acme-prod/locations/global/buckets/debug",
            Some(1),
            false,
        ),
    ] {
        assert!(
            LogBuckets::evaluate(&config, &read(name, days, locked))
                .0
                .is_empty(),
            "{name} {days:?}"
        );
    }
    let (findings, fix) = LogBuckets::evaluate(&config, &read(default, Some(7), true));
    assert!(
        !findings.is_empty() && fix.is_none(),
        "a locked bucket is reported only"
    );
}

#[test]
fn buckets_route_by_google_names() {
    let event = |method: &str, name: &str| {
        let entry = json!({"insertId": "b-1", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "logging.googleapis.com", "methodName": method, "resourceName": name},
            "resource": {"type": "audited_resource", "labels": {"project_id": "acme-prod"}}});
        crate::kinds::route(
            &AuditEvent::from_log_entry(&entry, crate::event::Transport::LogEntry, None)
                .expect("an entry"),
        )
    };
    let name = "projects/acme-prod/locations/global/buckets/_Default";
    let Route::Check(target) = event("google.logging.v2.ConfigServiceV2.UpdateBucket", name) else {
        panic!("routed");
    };
    assert_eq!((target.kind, target.key()), (KindId::LogBucket, name));
    assert!(matches!(
        event(
            "google.logging.v2.ConfigServiceV2.UpdateBucket",
            "projects/acme-prod/locations/Earth/buckets/x"
        ),
        Route::Refuse(_)
    ));
}
