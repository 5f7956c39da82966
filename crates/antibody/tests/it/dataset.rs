//! BigQuery datasets end to end: a dataset opened to allUsers is closed under its etag (a concurrent change read
//! again), the project's own entries kept; undo puts the entry back; a sweep finds a public dataset.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, PROJECT, USER_TOKEN};

async fn dataset(harness: &Harness, id: &str) -> Value {
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn public(access: &Value) -> usize {
    access
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| antibody::kinds::dataset::is_public(entry))
        .count()
}

#[tokio::test]
async fn a_dataset_opened_to_everyone_is_closed_and_undo_reopens_it() {
    let harness = Harness::start().await;
    let (status, _) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
            Some(json!({"datasetReference": {"datasetId": "sales"}})),
        )
        .await;
    assert_eq!(status, 200);
    // A 412 on the engine's first patch (another writer moved the etag): it reads again and patches again.
    harness.sandbox.inject(gcp_sandbox::faults::Fault {
        method: Some("PATCH".into()),
        path_contains: "/datasets/sales".into(),
        principal: Some(crate::harness::ENGINE.into()),
        times: 1,
        status: Some(412),
        retry_after: None,
        delay_ms: None,
        operation_error: None,
        delete_first: false,
        reset: None,
    });
    let mut access = dataset(&harness, "sales").await["access"].clone();
    access
        .as_array_mut()
        .expect("access")
        .push(json!({"role": "READER", "iamMember": "allUsers"}));
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::PATCH,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets/sales"),
            Some(json!({"access": access})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let read = dataset(&harness, "sales").await;
    assert_eq!(public(&read["access"]), 0, "{read}");
    assert_eq!(
        read["access"].as_array().map(Vec::len),
        Some(3),
        "the project's own entries are kept"
    );

    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    assert_eq!(fixed.findings[0].category, "PUBLIC_DATASET");
    harness.undo(fixed.id).await;
    assert_eq!(public(&dataset(&harness, "sales").await["access"]), 1);
}

#[tokio::test]
async fn a_stale_etag_is_refused_by_the_sandbox() {
    let harness = Harness::start().await;
    let (status, created) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
            Some(json!({"datasetReference": {"datasetId": "guarded"}})),
        )
        .await;
    assert_eq!(status, 200);
    let url = format!(
        "{}/bigquery/v2/projects/{PROJECT}/datasets/guarded",
        harness.sandbox.base_url()
    );
    let stale = harness
        .http
        .patch(&url)
        .bearer_auth(USER_TOKEN)
        .header("If-Match", "stale")
        .json(&json!({"description": "x"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(stale.status().as_u16(), 412);
    let fresh = harness
        .http
        .patch(&url)
        .bearer_auth(USER_TOKEN)
        .header("If-Match", created["etag"].as_str().expect("etag"))
        .json(&json!({"description": "x"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(fresh.status().as_u16(), 200);
}

// Issue 34: only the public was judged on a dataset: WRITER for a gmail.com account stayed. An outsider's entry is
// removed by the project policy's rules; a colleague's stays.
#[tokio::test]
async fn an_outsider_given_a_dataset_is_removed_and_a_colleague_kept() {
    let harness = Harness::start().await;
    let (status, _) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
            Some(json!({"datasetReference": {"datasetId": "finance"}})),
        )
        .await;
    assert_eq!(status, 200);
    let mut access = dataset(&harness, "finance").await["access"].clone();
    let list = access.as_array_mut().expect("access");
    list.push(json!({"role": "WRITER", "userByEmail": "someone@gmail.com"}));
    list.push(json!({"role": "READER", "userByEmail": "colleague@example.com"}));
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::PATCH,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets/finance"),
            Some(json!({"access": access})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    harness.sandbox.settled().await;
    let read = dataset(&harness, "finance").await;
    let emails: Vec<&str> = read["access"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["userByEmail"].as_str())
        .collect();
    assert_eq!(emails, ["colleague@example.com"], "{read}");
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(
        rows.iter()
            .any(|row| row.outcome.as_deref() == Some("remediated")
                && row
                    .findings
                    .iter()
                    .any(|finding| finding.category == "EXTERNAL_MEMBER")),
        "{rows:?}"
    );
}
