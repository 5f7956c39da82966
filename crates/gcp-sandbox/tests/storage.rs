//! The sandbox's Cloud Storage behaves as Google's does where bucket security depends on it.

use std::time::Duration;

use gcp_sandbox::SandboxConfig;
use reqwest::Method;
use serde_json::{Value, json};

struct Api {
    running: gcp_sandbox::Running,
    client: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let mut config = SandboxConfig::default();
        config
            .principals
            .insert("bob".into(), "bob@example.com".into());
        let running = gcp_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sandbox");
        let api = Api {
            running,
            client: gcp_sandbox::http_client(Duration::from_secs(5)),
        };
        assert_eq!(
            api.call(
                Method::POST,
                "/b?project=p",
                Some(json!({"name": "bkt1", "labels": {"team": "x"}}))
            )
            .await
            .0,
            200
        );
        api
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(
                method,
                format!("{}/storage/v1{path}", self.running.base_url()),
            )
            .bearer_auth("bob");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("call");
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn iam(&self) -> Value {
        self.call(
            Method::GET,
            "/b/bkt1/iam?optionsRequestedPolicyVersion=3",
            None,
        )
        .await
        .1
    }
}

#[tokio::test]
async fn buckets_look_like_googles_and_preconditions_hold() {
    let api = Api::start().await;
    let (_, bucket) = api.call(Method::GET, "/b/bkt1", None).await;
    assert_eq!(bucket["kind"], "storage#bucket");
    assert_eq!(bucket["metageneration"], "1");
    assert_eq!(bucket["etag"], "CAE=");
    assert!(bucket["projectNumber"].is_string());
    assert_eq!(
        bucket["iamConfiguration"]["publicAccessPrevention"],
        "inherited"
    );
    assert!(
        bucket.get("acl").is_none(),
        "ACLs only with projection=full"
    );
    let (_, full) = api.call(Method::GET, "/b/bkt1?projection=full", None).await;
    assert_eq!(full["acl"].as_array().map(Vec::len), Some(3));
    let (status, _) = api
        .call(
            Method::PATCH,
            "/b/bkt1?ifMetagenerationMatch=7",
            Some(json!({"labels": {"a": "b"}})),
        )
        .await;
    assert_eq!(status, 412);
    let (status, patched) = api
        .call(
            Method::PATCH,
            "/b/bkt1?ifMetagenerationMatch=1",
            Some(json!({"labels": {"team": null, "a": "b"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["labels"], json!({"a": "b"}));
    assert_eq!(patched["metageneration"], "2");
    assert_eq!(patched["etag"], "CAI=");
    let (status, _) = api.call(Method::GET, "/b/none", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn acls_mirror_into_legacy_roles_and_back() {
    let api = Api::start().await;
    api.call(
        Method::POST,
        "/b/bkt1/acl",
        Some(json!({"entity": "allUsers", "role": "READER"})),
    )
    .await;
    let policy = api.iam().await;
    assert_eq!(policy["kind"], "storage#policy");
    assert_eq!(policy["resourceId"], "projects/_/buckets/bkt1");
    let reader = policy["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .find(|binding| binding["role"] == "roles/storage.legacyBucketReader")
        .expect("legacy reader");
    assert!(
        reader["members"]
            .as_array()
            .expect("members")
            .contains(&json!("allUsers"))
    );
    assert!(
        reader["members"]
            .as_array()
            .expect("members")
            .contains(&json!("projectViewer:p"))
    );
    // Removing the legacy member through IAM removes the ACL entry.
    let mut policy = policy;
    for binding in policy["bindings"].as_array_mut().expect("bindings") {
        binding["members"]
            .as_array_mut()
            .expect("members")
            .retain(|member| member != "allUsers");
    }
    assert_eq!(
        api.call(Method::PUT, "/b/bkt1/iam", Some(policy)).await.0,
        200
    );
    let (_, acl) = api.call(Method::GET, "/b/bkt1/acl", None).await;
    assert!(!acl.to_string().contains("allUsers"), "{acl}");
    assert_eq!(acl["kind"], "storage#bucketAccessControls");
}

#[tokio::test]
async fn stale_iam_etags_fail_with_412_and_etags_advance() {
    let api = Api::start().await;
    let policy = api.iam().await;
    assert_eq!(
        api.call(Method::PUT, "/b/bkt1/iam", Some(policy.clone()))
            .await
            .0,
        200
    );
    let (status, error) = api
        .call(Method::PUT, "/b/bkt1/iam", Some(policy.clone()))
        .await;
    assert_eq!(status, 412);
    assert_eq!(error["error"]["errors"][0]["reason"], "conditionNotMet");
    assert_ne!(api.iam().await["etag"], policy["etag"]);
}

#[tokio::test]
async fn prevention_refuses_public_members_and_the_refusal_is_logged() {
    let api = Api::start().await;
    api.call(
        Method::PATCH,
        "/b/bkt1",
        Some(json!({"iamConfiguration": {"publicAccessPrevention": "enforced"}})),
    )
    .await;
    let mut policy = api.iam().await;
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(json!({"role": "roles/storage.objectViewer", "members": ["allUsers"]}));
    let (status, error) = api.call(Method::PUT, "/b/bkt1/iam", Some(policy)).await;
    assert_eq!(status, 412);
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("public access prevention"))
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/b/bkt1/acl",
            Some(json!({"entity": "allAuthenticatedUsers", "role": "READER"})),
        )
        .await;
    assert_eq!(status, 412);
    let failed: Vec<Value> = api
        .running
        .audit_entries()
        .into_iter()
        .filter(|entry| entry["severity"] == "ERROR")
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0]["protoPayload"]["methodName"],
        "storage.setIamPermissions"
    );
    assert_eq!(failed[0]["protoPayload"]["status"]["code"], 9);
}

// Issue 18, item 2: conditions on a bucket without uniform bucket-level access were accepted; Google answers 412.
#[tokio::test]
async fn conditions_need_uniform_access() {
    let api = Api::start().await;
    let mut policy = api.iam().await;
    policy["version"] = json!(3);
    policy["bindings"].as_array_mut().expect("bindings").push(json!({"role": "roles/storage.objectViewer",
        "members": ["user:temp@example.com"], "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}}));
    let (status, error) = api
        .call(Method::PUT, "/b/bkt1/iam", Some(policy.clone()))
        .await;
    assert_eq!(status, 412, "{error}");
    assert_eq!(error["error"]["errors"][0]["reason"], "conditionNotMet");
    let (status, _) = api
        .call(
            Method::PATCH,
            "/b/bkt1",
            Some(json!({"iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}}})),
        )
        .await;
    assert_eq!(status, 200);
    policy["etag"] = api.iam().await["etag"].clone();
    let (status, written) = api.call(Method::PUT, "/b/bkt1/iam", Some(policy)).await;
    assert_eq!(status, 200, "{written}");
}

#[tokio::test]
async fn uniform_access_hides_acls_and_refuses_the_acl_api() {
    let api = Api::start().await;
    let (_, bucket) = api
        .call(
            Method::PATCH,
            "/b/bkt1",
            Some(json!({"iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}}})),
        )
        .await;
    assert_eq!(
        bucket["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"],
        true
    );
    assert!(bucket["iamConfiguration"]["uniformBucketLevelAccess"]["lockedTime"].is_string());
    assert_eq!(
        bucket["iamConfiguration"]["bucketPolicyOnly"]["enabled"],
        true
    );
    let (_, full) = api.call(Method::GET, "/b/bkt1?projection=full", None).await;
    assert!(full.get("acl").is_none() && full.get("defaultObjectAcl").is_none());
    assert_eq!(api.call(Method::GET, "/b/bkt1/acl", None).await.0, 400);
    assert_eq!(
        api.call(
            Method::POST,
            "/b/bkt1/acl",
            Some(json!({"entity": "allUsers", "role": "READER"}))
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn audit_entries_match_what_google_writes() {
    let api = Api::start().await;
    api.call(
        Method::PATCH,
        "/b/bkt1",
        Some(json!({"labels": {"x": "y"}})),
    )
    .await;
    let mut policy = api.iam().await;
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(json!({"role": "roles/storage.objectViewer", "members": ["allUsers"]}));
    api.call(Method::PUT, "/b/bkt1/iam", Some(policy)).await;
    let entries = api.running.audit_entries();
    let methods: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["protoPayload"]["methodName"].as_str())
        .collect();
    assert_eq!(
        methods,
        vec![
            "storage.buckets.create",
            "storage.buckets.update",
            "storage.setIamPermissions"
        ]
    );
    for entry in &entries {
        assert_eq!(
            entry["protoPayload"]["resourceName"],
            "projects/_/buckets/bkt1"
        );
        assert_eq!(entry["resource"]["type"], "gcs_bucket");
        assert_eq!(entry["resource"]["labels"]["project_id"], "p");
        assert_eq!(
            entry["protoPayload"]["authenticationInfo"]["principalEmail"],
            "bob@example.com"
        );
    }
    let create = &entries[0]["protoPayload"];
    assert!(
        create["serviceData"]["policyDelta"]["bindingDeltas"]
            .to_string()
            .contains("roles/storage.legacyBucketOwner")
    );
    assert!(
        entries[1]["protoPayload"].get("request").is_none(),
        "buckets.update logs no request body"
    );
    assert_eq!(
        entries[2]["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"],
        json!([{"action": "ADD", "role": "roles/storage.objectViewer", "member": "allUsers"}])
    );
}

#[tokio::test]
async fn lists_page_and_names_are_validated() {
    let api = Api::start().await;
    for name in ["bkt2", "bkt3"] {
        api.call(Method::POST, "/b?project=p", Some(json!({"name": name})))
            .await;
    }
    let (_, page) = api
        .call(Method::GET, "/b?project=p&maxResults=2", None)
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let token = page["nextPageToken"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, rest) = api
        .call(
            Method::GET,
            &format!("/b?project=p&maxResults=2&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(rest["items"][0]["name"], "bkt3");
    assert!(rest.get("nextPageToken").is_none());
    assert_eq!(
        api.call(
            Method::POST,
            "/b?project=p",
            Some(json!({"name": "Bad_Name"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        api.call(Method::POST, "/b?project=p", Some(json!({"name": "bkt1"})))
            .await
            .0,
        409
    );
}
