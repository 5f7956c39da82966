//! Cloud Logging's sinks and exclusions in the sandbox: the two sinks every project has, `updateMask`, what cannot
//! be changed, and the audit entries each change leaves.

mod common;

use gcp_sandbox::SandboxConfig;
use reqwest::Method;
use serde_json::{Value, json};

async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sinks_and_exclusions_as_logging_serves_them() {
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let base = format!("{}/v2/projects/p1-project", sandbox.base_url());
    let (_, sinks) = call(&client, Method::GET, &format!("{base}/sinks"), None).await;
    let names: Vec<&str> = sinks["sinks"]
        .as_array()
        .expect("sinks")
        .iter()
        .filter_map(|sink| sink["name"].as_str())
        .collect();
    assert_eq!(names, ["_Default", "_Required"]);
    let (status, _) = call(
        &client,
        Method::PATCH,
        &format!("{base}/sinks/_Required?updateMask=disabled"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 400, "_Required cannot be changed");
    assert_eq!(
        call(
            &client,
            Method::DELETE,
            &format!("{base}/sinks/_Default"),
            None
        )
        .await
        .0,
        400
    );

    let (status, created) = call(
        &client,
        Method::POST,
        &format!("{base}/sinks?uniqueWriterIdentity=true"),
        Some(
            json!({"name": "audit-archive", "destination": "storage.googleapis.com/audit-archive",
            "filter": "logName:\"cloudaudit.googleapis.com\""}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert!(
        created["writerIdentity"]
            .as_str()
            .expect("writer")
            .contains("@gcp-sa-logging.iam.gserviceaccount.com")
    );
    let (_, updated) = call(
        &client,
        Method::PATCH,
        &format!("{base}/sinks/audit-archive?updateMask=disabled"),
        Some(json!({"disabled": true, "destination": "storage.googleapis.com/elsewhere"})),
    )
    .await;
    assert_eq!(updated["disabled"], true);
    assert_eq!(
        updated["destination"], "storage.googleapis.com/audit-archive",
        "only the masked field changes"
    );

    let (status, _) = call(
        &client,
        Method::POST,
        &format!("{base}/exclusions"),
        Some(json!({"name": "drop-audit", "filter": "logName:\"cloudaudit.googleapis.com\""})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(
            &client,
            Method::PATCH,
            &format!("{base}/exclusions/drop-audit"),
            Some(json!({"disabled": true}))
        )
        .await
        .0,
        400,
        "an exclusion update needs a mask"
    );
    let (_, exclusion) = call(
        &client,
        Method::PATCH,
        &format!("{base}/exclusions/drop-audit?updateMask=disabled"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(exclusion["disabled"], true);
    assert_eq!(
        call(
            &client,
            Method::DELETE,
            &format!("{base}/sinks/audit-archive"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &client,
            Method::GET,
            &format!("{base}/sinks/audit-archive"),
            None
        )
        .await
        .0,
        404
    );

    let entries = sandbox.audit_entries();
    let methods: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["protoPayload"]["methodName"].as_str())
        .collect();
    assert_eq!(
        methods,
        [
            "google.logging.v2.ConfigServiceV2.CreateSink",
            "google.logging.v2.ConfigServiceV2.UpdateSink",
            "google.logging.v2.ConfigServiceV2.CreateExclusion",
            "google.logging.v2.ConfigServiceV2.UpdateExclusion",
            "google.logging.v2.ConfigServiceV2.DeleteSink",
        ]
    );
    assert_eq!(
        entries[1]["protoPayload"]["resourceName"],
        "projects/p1-project/sinks/audit-archive"
    );
    assert_eq!(
        entries[1]["protoPayload"]["serviceName"],
        "logging.googleapis.com"
    );
    assert_eq!(
        entries[3]["protoPayload"]["resourceName"],
        "projects/p1-project/exclusions/drop-audit"
    );
}
