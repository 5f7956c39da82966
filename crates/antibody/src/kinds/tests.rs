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
