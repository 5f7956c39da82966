//! The sandbox refuses what Google refuses: a request naming a field the API does not have is 400 with Google's
//! "Unknown name" message — a misspelt sink `filter` would otherwise make a sink that exports everything — while a
//! field's proto name (`include_children`) is taken like its JSON name, as Google's parser takes it.

mod common;

use gcp_sandbox::SandboxConfig;
use reqwest::Method;
use serde_json::{Value, json};

async fn send(client: &reqwest::Client, method: Method, url: &str, body: Value) -> (u16, Value) {
    let response = client
        .request(method, url)
        .json(&body)
        .send()
        .await
        .expect("the sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn unknown_fields_are_refused_where_google_refuses_them() {
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let base = sandbox.base_url();
    let refused = [
        (
            Method::POST,
            format!("{base}/v2/projects/p1/sinks"),
            json!({"name": "export", "destination": "storage.googleapis.com/b", "filtre": "severity>=ERROR"}),
            "Unknown name \"filtre\"",
        ),
        (
            Method::POST,
            format!("{base}/v2/projects/p1/exclusions"),
            json!({"name": "quiet", "filter": "severity<ERROR", "disable": true}),
            "Unknown name \"disable\"",
        ),
        (
            Method::POST,
            format!("{base}/v1/projects/p1/instances"),
            json!({"name": "db", "settings": {"tier": "db-f1-micro", "ipConfiguration": {"authorisedNetworks": []}}}),
            "Unknown name \"authorisedNetworks\" at 'settings.ip_configuration'",
        ),
        (
            Method::POST,
            format!("{base}/bigquery/v2/projects/p1/datasets"),
            json!({"datasetReference": {"datasetId": "sales"}, "acess": []}),
            "Unknown name \"acess\"",
        ),
    ];
    for (method, url, body, message) in refused {
        let (status, answer) = send(&client, method, &url, body).await;
        assert_eq!(status, 400, "{url}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|text| text.contains(message)),
            "{url}: {answer}"
        );
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{answer}");
    }
    // Nothing was made by the refused requests.
    let (_, sinks) = send(
        &client,
        Method::GET,
        &format!("{base}/v2/projects/p1/sinks"),
        json!({}),
    )
    .await;
    assert!(!sinks.to_string().contains("export"), "{sinks}");
    // A proto name is a known name.
    let (status, sink) = send(
        &client,
        Method::POST,
        &format!("{base}/v2/projects/p1/sinks"),
        json!({"name": "export", "destination": "storage.googleapis.com/b", "filter": "severity>=ERROR",
            "include_children": false}),
    )
    .await;
    assert_eq!(status, 200, "{sink}");
}
