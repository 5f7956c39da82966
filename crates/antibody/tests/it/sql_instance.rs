//! Cloud SQL end to end: an instance opened to the internet loses exactly its broad networks (a concurrent settings
//! change read again), the office network stays, undo puts them back.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, PROJECT, USER_TOKEN};

async fn networks(harness: &Harness) -> Vec<String> {
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("/v1/projects/{PROJECT}/instances/orders-db"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["settings"]["ipConfiguration"]["authorizedNetworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|network| network["value"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_database_on_the_internet_is_closed_and_undo_reopens_it() {
    let harness = Harness::start().await;
    let (status, _) = harness
        .google_as(USER_TOKEN, Method::POST, &format!("/v1/projects/{PROJECT}/instances"),
            Some(json!({"name": "orders-db", "settings": {"ipConfiguration": {"ipv4Enabled": true, "requireSsl": true}}})))
        .await;
    assert_eq!(status, 200);
    harness.sandbox.inject(gcp_sandbox::faults::Fault {
        method: Some("PATCH".into()),
        path_contains: "/instances/orders-db".into(),
        principal: Some(crate::harness::ENGINE.into()),
        times: 1,
        status: Some(412),
        retry_after: None,
        delay_ms: None,
        operation_error: None,
        delete_first: false,
        reset: None,
    });
    let open: Value = json!({"settings": {"ipConfiguration": {"authorizedNetworks": [
        {"value": "0.0.0.0/0", "name": "debug"}, {"value": "203.0.113.0/24", "name": "office"}]}}});
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::PATCH,
            &format!("/v1/projects/{PROJECT}/instances/orders-db"),
            Some(open),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(networks(&harness).await, ["203.0.113.0/24"]);
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    assert_eq!(fixed.findings[0].category, "PUBLIC_SQL_INSTANCE");
    harness.undo(fixed.id).await;
    assert_eq!(networks(&harness).await, ["203.0.113.0/24", "0.0.0.0/0"]);
}
