//! IAM's service accounts and keys in the sandbox: the private key returned once, `keyTypes`, disable and enable,
//! Google's own keys out of reach, accounts by email or unique id under `-`, and the audit entries IAM writes.

mod common;

use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

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
async fn keys_are_created_once_listed_by_type_disabled_and_audited() {
    use reqwest::Method;
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let accounts = format!(
        "{}/v1/projects/p1-project/serviceAccounts",
        sandbox.base_url()
    );
    let (status, account) = call(
        &client,
        Method::POST,
        &accounts,
        Some(json!({"accountId": "deployer", "serviceAccount": {"displayName": "CI deployer"}})),
    )
    .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(
        account["email"],
        "deployer@p1-project.iam.gserviceaccount.com"
    );
    let unique = account["uniqueId"].as_str().expect("uniqueId").to_string();
    assert!(
        unique.len() == 21 && unique.bytes().all(|byte| byte.is_ascii_digit()),
        "{unique}"
    );
    assert_eq!(
        call(
            &client,
            Method::POST,
            &accounts,
            Some(json!({"accountId": "deployer"}))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        call(
            &client,
            Method::POST,
            &accounts,
            Some(json!({"accountId": "x"}))
        )
        .await
        .0,
        400
    );

    // By unique id under the `-` project, as audit logs name it.
    let by_id = format!(
        "{}/v1/projects/-/serviceAccounts/{unique}",
        sandbox.base_url()
    );
    let (status, found) = call(&client, Method::GET, &by_id, None).await;
    assert_eq!(
        (status, found["email"].as_str()),
        (200, Some("deployer@p1-project.iam.gserviceaccount.com"))
    );

    let keys = format!("{by_id}/keys");
    let (status, created) = call(&client, Method::POST, &keys, Some(json!({}))).await;
    assert_eq!(status, 200, "{created}");
    assert!(
        created["privateKeyData"]
            .as_str()
            .is_some_and(|data| !data.is_empty()),
        "the private key, once"
    );
    let name = created["name"].as_str().expect("name").to_string();
    assert!(name.starts_with(
        "projects/p1-project/serviceAccounts/deployer@p1-project.iam.gserviceaccount.com/keys/"
    ));
    let id = name.rsplit('/').next().expect("id").to_string();
    let (_, read) = call(&client, Method::GET, &format!("{keys}/{id}"), None).await;
    assert!(read.get("privateKeyData").is_none(), "never again: {read}");
    assert_eq!(read["keyType"], "USER_MANAGED");

    let (_, all) = call(&client, Method::GET, &keys, None).await;
    assert_eq!(
        all["keys"].as_array().map(Vec::len),
        Some(2),
        "with Google's own key: {all}"
    );
    let (_, user) = call(
        &client,
        Method::GET,
        &format!("{keys}?keyTypes=USER_MANAGED"),
        None,
    )
    .await;
    assert_eq!(user["keys"].as_array().map(Vec::len), Some(1));
    let (_, system) = call(
        &client,
        Method::GET,
        &format!("{keys}?keyTypes=SYSTEM_MANAGED"),
        None,
    )
    .await;
    let system_id = system["keys"][0]["name"]
        .as_str()
        .expect("name")
        .rsplit('/')
        .next()
        .expect("id")
        .to_string();

    assert_eq!(
        call(
            &client,
            Method::POST,
            &format!("{keys}/{id}:disable"),
            Some(json!({}))
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        call(&client, Method::GET, &format!("{keys}/{id}"), None)
            .await
            .1["disabled"],
        true
    );
    assert_eq!(
        call(
            &client,
            Method::POST,
            &format!("{keys}/{id}:enable"),
            Some(json!({}))
        )
        .await
        .0,
        200
    );
    assert!(
        call(&client, Method::GET, &format!("{keys}/{id}"), None)
            .await
            .1
            .get("disabled")
            .is_none()
    );
    assert_eq!(
        call(
            &client,
            Method::POST,
            &format!("{keys}/{system_id}:disable"),
            Some(json!({}))
        )
        .await
        .0,
        404,
        "Google's own keys are not the caller's"
    );

    let entries = sandbox.audit_entries();
    let created_entry = entries
        .iter()
        .find(|entry| {
            entry["protoPayload"]["methodName"] == "google.iam.admin.v1.CreateServiceAccountKey"
        })
        .expect("a CreateServiceAccountKey entry");
    assert_eq!(
        created_entry["protoPayload"]["serviceName"],
        "iam.googleapis.com"
    );
    assert_eq!(
        created_entry["protoPayload"]["resourceName"],
        format!("projects/-/serviceAccounts/{unique}")
    );
    assert_eq!(created_entry["resource"]["type"], "service_account");
    assert_eq!(
        created_entry["resource"]["labels"]["project_id"],
        "p1-project"
    );
    assert_eq!(
        created_entry["protoPayload"]["response"]["name"],
        name.as_str()
    );
    assert!(
        created_entry["protoPayload"]["response"]
            .get("privateKeyData")
            .is_none(),
        "keys never reach the log"
    );
    for method in ["DisableServiceAccountKey", "EnableServiceAccountKey"] {
        assert!(
            entries
                .iter()
                .any(|entry| entry["protoPayload"]["methodName"]
                    == format!("google.iam.admin.v1.{method}"))
        );
    }
}

/// Lists page as Google's do: IAM's `serviceAccounts.list` gives 20 unless asked and at most 100, with an opaque
/// `nextPageToken` while more remain; a token it never gave is 400.
#[tokio::test]
async fn accounts_are_listed_a_page_at_a_time() {
    use reqwest::Method;
    let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
    let accounts = format!(
        "{}/v1/projects/paged-project/serviceAccounts",
        sandbox.base_url()
    );
    let (_, empty) = call(&client, Method::GET, &accounts, None).await;
    assert_eq!(empty, json!({}), "an empty list leaves the field out");
    for n in 0..25 {
        let (status, _) = call(
            &client,
            Method::POST,
            &accounts,
            Some(json!({"accountId": format!("worker-{n:02}")})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, first) = call(&client, Method::GET, &accounts, None).await;
    assert_eq!(status, 200);
    assert_eq!(first["accounts"].as_array().map(Vec::len), Some(20));
    let token = first["nextPageToken"].as_str().expect("a next page");
    let (_, second) = call(
        &client,
        Method::GET,
        &format!("{accounts}?pageToken={token}"),
        None,
    )
    .await;
    assert_eq!(second["accounts"].as_array().map(Vec::len), Some(5));
    assert!(second.get("nextPageToken").is_none(), "{second}");
    let (_, big) = call(
        &client,
        Method::GET,
        &format!("{accounts}?pageSize=1000"),
        None,
    )
    .await;
    assert_eq!(big["accounts"].as_array().map(Vec::len), Some(25));
    let (_, small) = call(
        &client,
        Method::GET,
        &format!("{accounts}?pageSize=7"),
        None,
    )
    .await;
    assert_eq!(small["accounts"].as_array().map(Vec::len), Some(7));
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{accounts}?pageToken=999"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &client,
        Method::GET,
        &format!("{accounts}?pageSize=many"),
        None,
    )
    .await;
    assert_eq!(status, 400);
}
