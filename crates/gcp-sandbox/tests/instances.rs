//! Compute instances and project metadata in the sandbox: zonal operations, the metadata fingerprint, power state,
//! and the audit entries each write leaves, as Google writes them.

mod common;

use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

const ZONE: &str = "us-central1-a";

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
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
async fn an_instance_write_is_a_zonal_operation_with_first_and_last_entries() {
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let instances = format!(
        "{}/compute/v1/projects/p1/zones/{ZONE}/instances",
        sandbox.base_url()
    );
    let (status, operation) = call(&client, reqwest::Method::POST, &instances, Some(json!({
        "name": "vm-1", "machineType": "e2-small",
        "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
        "networkInterfaces": [{"accessConfigs": [{}]}],
    }))).await;
    assert_eq!(status, 200, "{operation}");
    assert!(
        operation["selfLink"]
            .as_str()
            .expect("selfLink")
            .contains(&format!("/zones/{ZONE}/operations/"))
    );
    assert!(
        operation["zone"]
            .as_str()
            .expect("zone")
            .ends_with(&format!("/zones/{ZONE}"))
    );
    let zonal = operation["selfLink"]
        .as_str()
        .expect("selfLink")
        .replace("https://www.googleapis.com", &sandbox.base_url());
    let (status, polled) = call(&client, reqwest::Method::GET, &zonal, None).await;
    assert_eq!((status, polled["status"].as_str()), (200, Some("DONE")));
    let global = zonal.replace(&format!("zones/{ZONE}"), "global");
    assert_eq!(
        call(&client, reqwest::Method::GET, &global, None).await.0,
        404,
        "a zonal operation is not global"
    );

    let (_, vm) = call(
        &client,
        reqwest::Method::GET,
        &format!("{instances}/vm-1"),
        None,
    )
    .await;
    let number = vm["serviceAccounts"][0]["email"]
        .as_str()
        .expect("email")
        .split('-')
        .next()
        .expect("number")
        .to_string();
    assert!(number.chars().all(|c| c.is_ascii_digit()), "{vm}");
    assert_eq!(
        vm["networkInterfaces"][0]["accessConfigs"][0]["type"],
        "ONE_TO_ONE_NAT"
    );
    let fingerprint = vm["metadata"]["fingerprint"].clone();

    // A stale fingerprint is 412 conditionNotMet, and Google logs the refused write.
    let set_metadata = format!("{instances}/vm-1/setMetadata");
    let (status, error) = call(&client, reqwest::Method::POST, &set_metadata,
        Some(json!({"fingerprint": "c3RhbGU=", "items": [{"key": "serial-port-enable", "value": "true"}]}))).await;
    assert_eq!(
        (status, error["error"]["errors"][0]["reason"].as_str()),
        (412, Some("conditionNotMet"))
    );
    let (status, _) = call(&client, reqwest::Method::POST, &set_metadata,
        Some(json!({"fingerprint": fingerprint, "items": [{"key": "serial-port-enable", "value": "true"}]}))).await;
    assert_eq!(status, 200);
    let (status, error) = call(
        &client,
        reqwest::Method::POST,
        &format!("{instances}/vm-1/setServiceAccount"),
        Some(json!({"email": "x@p1.iam.gserviceaccount.com", "scopes": []})),
    )
    .await;
    assert_eq!(status, 400, "{error}");

    let entries = sandbox.audit_entries();
    let of = |method: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|entry| entry["protoPayload"]["methodName"] == method)
            .collect()
    };
    let inserted = of("v1.compute.instances.insert");
    assert_eq!(inserted.len(), 2, "first and last");
    assert_eq!(
        inserted[0]["protoPayload"]["resourceName"],
        format!("projects/p1/zones/{ZONE}/instances/vm-1")
    );
    assert_eq!(inserted[0]["resource"]["type"], "gce_instance");
    assert_eq!(inserted[0]["resource"]["labels"]["zone"], ZONE);
    assert_eq!(inserted[0]["resource"]["labels"]["instance_id"], vm["id"]);
    assert_eq!(inserted[0]["operation"]["first"], true);
    assert_eq!(inserted[1]["operation"]["last"], true);
    assert_eq!(
        inserted[0]["protoPayload"]["resourceLocation"]["currentLocations"][0],
        ZONE
    );
    let set = of("v1.compute.instances.setMetadata");
    assert_eq!(
        set.len(),
        3,
        "the refused write and the accepted one's pair"
    );
    assert_eq!(set[0]["severity"], "ERROR");
    assert_eq!(
        set[0]["protoPayload"]["status"]["code"], 9,
        "FAILED_PRECONDITION"
    );
    assert_eq!(
        set[1]["protoPayload"]["request"]["@type"],
        "type.googleapis.com/compute.instances.setMetadata"
    );
    assert_eq!(
        of("v1.compute.instances.setServiceAccount")[0]["severity"],
        "ERROR"
    );
}

#[tokio::test]
async fn the_projects_common_metadata_is_fingerprinted_and_audited() {
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let project = format!("{}/compute/v1/projects/p1", sandbox.base_url());
    let (status, body) = call(&client, reqwest::Method::GET, &project, None).await;
    assert_eq!(status, 200);
    assert!(
        body["defaultServiceAccount"]
            .as_str()
            .expect("account")
            .ends_with("-compute@developer.gserviceaccount.com")
    );
    let fingerprint = body["commonInstanceMetadata"]["fingerprint"].clone();
    let set = format!("{project}/setCommonInstanceMetadata");
    let items = json!([{"key": "serial-port-enable", "value": "1"}, {"key": "serial-port-enable", "value": "0"}]);
    let (status, _) = call(
        &client,
        reqwest::Method::POST,
        &set,
        Some(json!({"fingerprint": fingerprint, "items": items})),
    )
    .await;
    assert_eq!(status, 400, "a key appears once");
    let items = json!([{"key": "serial-port-enable", "value": "1"}]);
    let (status, operation) = call(
        &client,
        reqwest::Method::POST,
        &set,
        Some(json!({"fingerprint": fingerprint, "items": items})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        operation["selfLink"]
            .as_str()
            .expect("selfLink")
            .contains("/global/operations/")
    );
    let (_, body) = call(&client, reqwest::Method::GET, &project, None).await;
    assert_eq!(body["commonInstanceMetadata"]["items"], items);
    let written: Vec<Value> = sandbox
        .audit_entries()
        .into_iter()
        .filter(|entry| {
            entry["protoPayload"]["methodName"] == "v1.compute.projects.setCommonInstanceMetadata"
        })
        .collect();
    assert_eq!(written.len(), 3, "the refused write and the pair");
    assert_eq!(written[1]["protoPayload"]["resourceName"], "projects/p1");
    assert_eq!(written[1]["resource"]["type"], "gce_project");
}
