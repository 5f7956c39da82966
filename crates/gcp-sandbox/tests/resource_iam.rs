//! IAM on Pub/Sub, Secret Manager, Cloud KMS and Artifact Registry resources in the sandbox: public members accepted
//! (unlike a project's policy), etags, versions, and each service's `SetIamPolicy` audit entry.

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
async fn every_surface_stores_its_policy_and_logs_the_write() {
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let base = format!("{}/v1", sandbox.base_url());
    let public =
        json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["allUsers"]}]}});
    for (path, logged, service, method) in [
        (
            "projects/p1-project/topics/orders",
            "projects/p1-project/topics/orders",
            "pubsub.googleapis.com",
            "google.iam.v1.IAMPolicy.SetIamPolicy",
        ),
        (
            "projects/p1-project/subscriptions/orders-sub",
            "projects/p1-project/subscriptions/orders-sub",
            "pubsub.googleapis.com",
            "google.iam.v1.IAMPolicy.SetIamPolicy",
        ),
        (
            "projects/p1-project/locations/global/keyRings/ring",
            "projects/p1-project/locations/global/keyRings/ring",
            "cloudkms.googleapis.com",
            "SetIamPolicy",
        ),
        (
            "projects/p1-project/locations/global/keyRings/ring/cryptoKeys/key",
            "projects/p1-project/locations/global/keyRings/ring/cryptoKeys/key",
            "cloudkms.googleapis.com",
            "SetIamPolicy",
        ),
        (
            "projects/p1-project/locations/europe-west1/repositories/images",
            "projects/p1-project/locations/europe-west1/repositories/images",
            "artifactregistry.googleapis.com",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.SetIamPolicy",
        ),
    ] {
        assert_eq!(
            call(
                &client,
                Method::GET,
                &format!("{base}/{path}:getIamPolicy"),
                None
            )
            .await
            .0,
            404,
            "{path}: unknown so far"
        );
        let (status, policy) = call(
            &client,
            Method::POST,
            &format!("{base}/{path}:setIamPolicy"),
            Some(public.clone()),
        )
        .await;
        assert_eq!(status, 200, "{path}: {policy}");
        let (status, read) = call(
            &client,
            Method::GET,
            &format!("{base}/{path}:getIamPolicy?options.requestedPolicyVersion=3"),
            None,
        )
        .await;
        assert_eq!(
            (status, &read["bindings"]),
            (200, &public["policy"]["bindings"]),
            "{path}"
        );
        let stale = json!({"policy": {"etag": "BwAAAAAAAAA=", "bindings": []}});
        assert_eq!(
            call(
                &client,
                Method::POST,
                &format!("{base}/{path}:setIamPolicy"),
                Some(stale)
            )
            .await
            .0,
            409,
            "{path}"
        );
        let entries = sandbox.audit_entries();
        let entry = entries
            .iter()
            .rev()
            .find(|entry| entry["protoPayload"]["resourceName"] == logged)
            .unwrap_or_else(|| panic!("{path} was logged"));
        assert_eq!(
            (
                entry["protoPayload"]["serviceName"].as_str(),
                entry["protoPayload"]["methodName"].as_str()
            ),
            (Some(service), Some(method))
        );
        assert_eq!(
            entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"][0]["member"],
            "allUsers"
        );
    }
    // Secret Manager names a secret under the project's number.
    let (status, _) = call(
        &client,
        Method::POST,
        &format!("{base}/projects/p1-project/secrets/db-password:setIamPolicy"),
        Some(public),
    )
    .await;
    assert_eq!(status, 200);
    let entries = sandbox.audit_entries();
    let logged = entries.last().expect("an entry")["protoPayload"]["resourceName"]
        .as_str()
        .expect("name")
        .to_string();
    assert!(
        logged.starts_with("projects/") && logged.ends_with("/secrets/db-password"),
        "{logged}"
    );
    let number = logged.split('/').nth(1).expect("number");
    assert!(number.bytes().all(|byte| byte.is_ascii_digit()), "{logged}");
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{base}/{logged}:getIamPolicy"),
        None,
    )
    .await;
    assert_eq!(status, 200, "readable under the number too");
}
