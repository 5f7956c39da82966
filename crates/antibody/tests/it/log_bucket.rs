//! Log buckets end to end: `_Default`'s retention shortened with gcloud (Data Access audit logs would be gone after a
//! day) is set back to the minimum; undo restores what the user set; a bucket nobody guards is left alone.

use antibody::undo;
use reqwest::Method;
use serde_json::json;

use crate::gcloud::gcloud_ok;
use crate::harness::{Harness, PROJECT, USER_TOKEN};

async fn retention(harness: &Harness, bucket: &str) -> serde_json::Value {
    let (status, read) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("/v2/projects/{PROJECT}/locations/global/buckets/{bucket}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    read["retentionDays"].clone()
}

// Issue 34: log buckets' retention was never judged: `_Default` cut to one day kept no Data Access audit log past
// the next morning, and nothing noticed.
#[tokio::test]
async fn a_default_bucket_cut_to_a_day_is_restored_and_undo_puts_the_day_back() {
    let harness = Harness::start().await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    gcloud_ok(
        &harness,
        config.path(),
        &[
            "logging",
            "buckets",
            "update",
            "_Default",
            "--location",
            "global",
            "--retention-days",
            "1",
        ],
    )
    .await;
    harness.sandbox.settled().await;
    assert_eq!(retention(&harness, "_Default").await, 30);
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(
        fixed.resource,
        format!("projects/{PROJECT}/locations/global/buckets/_Default")
    );
    assert_eq!(fixed.findings[0].category, "LOG_RETENTION_SHORTENED");
    let request = undo::Request {
        id: fixed.id,
        force: false,
        operator: "operator@example.com".into(),
        keep_exempt_secs: Some(3600),
    };
    let settings = &harness.cx().config;
    let notify = (&settings.templates, settings.channels.as_slice());
    undo::undo(&harness.cx().journal, &harness.cx().gcp, notify, &request)
        .await
        .expect("undo");
    harness.sandbox.settled().await;
    assert_eq!(
        retention(&harness, "_Default").await,
        1,
        "undo restores the user's day"
    );
    // A bucket of the user's own, kept briefly, is theirs to keep briefly.
    let (status, created) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v2/projects/{PROJECT}/locations/global/buckets?bucketId=debug"),
            Some(json!({"retentionDays": 1})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    harness.sandbox.settled().await;
    assert_eq!(retention(&harness, "debug").await, 1);
}
