//! The sandbox's Resource Manager behaves as Google's does on the hazards that matter for a read-modify-write.

use std::time::Duration;

use gcp_sandbox::SandboxConfig;
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
            .insert("alice".into(), "alice@example.com".into());
        let running = gcp_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sandbox");
        Api {
            running,
            client: gcp_sandbox::http_client(Duration::from_secs(5)),
        }
    }

    async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.running.base_url()))
            .bearer_auth("alice")
            .json(&body)
            .send()
            .await
            .expect("call");
        (
            response.status().as_u16(),
            response.json().await.expect("json"),
        )
    }

    async fn get(&self, version: i64) -> Value {
        self.call(
            "/v1/projects/p:getIamPolicy",
            json!({"options": {"requestedPolicyVersion": version}}),
        )
        .await
        .1
    }

    async fn set(&self, api: &str, policy: Value) -> (u16, Value) {
        self.call(
            &format!("/{api}/projects/p:setIamPolicy"),
            json!({"policy": policy}),
        )
        .await
    }
}

fn conditional() -> Value {
    json!({"role": "roles/editor", "members": ["user:temp@example.com"], "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}})
}

fn owner() -> Value {
    json!({"role": "roles/owner", "members": ["user:owner@example.com"]})
}

#[tokio::test]
async fn a_stale_etag_is_409_aborted_and_etags_advance() {
    let api = Api::start().await;
    let first = api.get(3).await;
    let (status, written) = api.set("v1", json!({"etag": first["etag"], "bindings": [owner(), {"role": "roles/viewer", "members": ["user:a@example.com"]}]})).await;
    assert_eq!(status, 200);
    assert_ne!(written["etag"], first["etag"]);
    let (status, error) = api
        .set("v1", json!({"etag": first["etag"], "bindings": [owner()]}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["status"], "ABORTED");
    // Issue 18, item 7: Google's 409 carries errors[].reason "aborted" and exactly this message
    // (shared/reference/gcp-formats.md §9).
    assert_eq!(
        error["error"]["message"],
        "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
    );
    assert_eq!(error["error"]["errors"][0]["reason"], "aborted");
}

// Issue 18, item 7: a GET of a method created a project named `x:getIamPolicy`; unknown paths answered an empty 404.
#[tokio::test]
async fn unknown_paths_and_methods_answer_googles_error_json() {
    let api = Api::start().await;
    let response = api
        .client
        .get(format!(
            "{}/v1/projects/ghost-project:getIamPolicy",
            api.running.base_url()
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 404);
    let projects: Value = api
        .client
        .get(format!("{}/v3/projects:search", api.running.base_url()))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert!(
        !projects.to_string().contains("getIamPolicy"),
        "no project named after a method: {projects}"
    );
    for (method, path, status) in [
        (
            reqwest::Method::GET,
            "/compute/v1/projects/p1/global/nothing-here",
            404,
        ),
        (reqwest::Method::GET, "/no/such/api", 404),
        (reqwest::Method::DELETE, "/v3/projects:search", 405),
    ] {
        let response = api
            .client
            .request(method, format!("{}{path}", api.running.base_url()))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await.expect("Google's error JSON");
        assert_eq!(body["error"]["code"], status, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn version_one_reads_downgrade_conditions_and_unchecked_v1_writes_lose_them() {
    let api = Api::start().await;
    let etag = api.get(3).await["etag"].clone();
    let (status, _) = api
        .set(
            "v3",
            json!({"version": 3, "etag": etag, "bindings": [owner(), conditional()]}),
        )
        .await;
    assert_eq!(status, 200);
    let v1 = api.get(1).await;
    assert_eq!(v1["version"], 1);
    assert!(
        v1["bindings"][1]["role"]
            .as_str()
            .is_some_and(|role| role.starts_with("roles/editor_withcond_")),
        "{v1}"
    );
    let v3 = api.get(3).await;
    assert_eq!(v3["bindings"][1], conditional());
    // Writing conditions at version 1 is refused ...
    let (status, _) = api
        .set(
            "v1",
            json!({"version": 1, "bindings": [owner(), conditional()]}),
        )
        .await;
    assert_eq!(status, 400);
    // Issue 18, item 2: a version-1 write sent with its etag over a policy that holds conditions is refused ...
    let (status, error) = api
        .set(
            "v1",
            json!({"version": 1, "etag": api.get(3).await["etag"], "bindings": [owner()]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error["error"]["message"],
        "Specified policy version (1) cannot be less than the existing policy version (3)."
    );
    // ... and a `_withcond_` role a version-1 reader saw is no role to write back.
    let (status, error) = api
        .set(
            "v3",
            json!({"version": 3, "bindings": [owner(), {"role": v1["bindings"][1]["role"], "members": ["user:temp@example.com"]}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("is not supported for this resource")),
        "{error}"
    );
    // ... but a version-1 policy without an etag silently replaces a version-3 one, losing every condition.
    let (status, _) = api.set("v1", json!({"bindings": [owner()]})).await;
    assert_eq!(status, 200);
    assert!(
        api.get(3).await["bindings"]
            .as_array()
            .expect("bindings")
            .iter()
            .all(|binding| binding.get("condition").is_none())
    );
}

#[tokio::test]
async fn projects_refuse_public_members_new_user_owners_and_losing_the_last_owner() {
    let api = Api::start().await;
    let (status, error) = api
        .set(
            "v1",
            json!({"bindings": [owner(), {"role": "roles/viewer", "members": ["allUsers"]}]}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, _) = api.set("v1", json!({"bindings": [owner(), {"role": "roles/owner", "members": ["user:new@gmail.com"]}]})).await;
    assert_eq!(status, 400);
    let (status, _) = api
        .set(
            "v1",
            json!({"bindings": [{"role": "roles/viewer", "members": ["user:a@example.com"]}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        api.running.audit_entries().is_empty(),
        "refused writes change nothing and log nothing here"
    );
}

#[tokio::test]
async fn audit_entries_carry_the_delta_and_both_method_names() {
    let api = Api::start().await;
    api.set(
        "v1",
        json!({"bindings": [owner(), {"role": "roles/viewer", "members": ["user:x@gmail.com"]}]}),
    )
    .await;
    api.set("v3", json!({"bindings": [owner()]})).await;
    let entries = api.running.audit_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["protoPayload"]["methodName"], "SetIamPolicy");
    assert_eq!(
        entries[1]["protoPayload"]["methodName"],
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy"
    );
    assert_eq!(
        entries[0]["protoPayload"]["serviceName"],
        "cloudresourcemanager.googleapis.com"
    );
    assert_eq!(entries[0]["protoPayload"]["resourceName"], "projects/p");
    assert_eq!(
        entries[0]["resource"],
        json!({"type": "project", "labels": {"project_id": "p"}})
    );
    assert_eq!(
        entries[0]["protoPayload"]["authenticationInfo"]["principalEmail"],
        "alice@example.com"
    );
    assert_eq!(
        entries[0]["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"],
        json!([{"action": "ADD", "role": "roles/viewer", "member": "user:x@gmail.com"}])
    );
    assert_eq!(
        entries[1]["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"],
        json!([{"action": "REMOVE", "role": "roles/viewer", "member": "user:x@gmail.com"}])
    );
    assert_eq!(
        entries[0]["protoPayload"]["response"]["@type"],
        "type.googleapis.com/google.iam.v1.Policy"
    );
    assert!(entries[0].get("operation").is_none());
}

#[tokio::test]
async fn update_masks_guard_audit_configs() {
    let api = Api::start().await;
    let audit = json!([{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}]);
    api.call("/v1/projects/p:setIamPolicy", json!({"policy": {"bindings": [owner()], "auditConfigs": audit}, "updateMask": "bindings,etag,auditConfigs"})).await;
    assert_eq!(api.get(3).await["auditConfigs"], audit);
    // The default mask is bindings,etag: a policy without auditConfigs leaves them alone.
    api.set("v1", json!({"bindings": [owner()]})).await;
    assert_eq!(api.get(3).await["auditConfigs"], audit);
    let project: Value = api
        .client
        .get(format!("{}/v1/projects/p", api.running.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(project["projectId"], "p");
    assert!(project["projectNumber"].is_string(), "int64 as a string");
}

// Issue 25: Resource Manager v1's projects.list (Cloud Custodian's gcp.project uses it) was missing.
#[tokio::test]
async fn v1_lists_projects_with_filters() {
    let api = Api::start().await;
    api.get(3).await;
    let list = |filter: &str| {
        let url = format!("{}/v1/projects?filter={}", api.running.base_url(), filter);
        let client = api.client.clone();
        async move {
            let response = client.get(url).send().await.expect("list");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, all) = list("lifecycleState:ACTIVE").await;
    assert_eq!(status, 200, "{all}");
    assert!(
        all["projects"]
            .as_array()
            .is_some_and(|projects| !projects.is_empty()),
        "{all}"
    );
    assert!(all["projects"][0]["projectNumber"].is_string());
    let (_, none) = list("id:no-such-project").await;
    // Google's JSON leaves an empty repeated field out.
    assert_eq!(none, serde_json::json!({}));
    let (status, _) = list("colour:red").await;
    assert_eq!(status, 400);
}

// Organization and folder IAM: the same read-modify-write rules as a project's, logged under the container.
#[tokio::test]
async fn organization_and_folder_policies_are_read_modify_written_and_audit_logged() {
    let api = Api::start().await;
    for (version, container, method, resource_type, label, admin) in [
        (
            "v1",
            "organizations/123456789",
            "SetIamPolicy",
            "organization",
            "organization_id",
            "roles/resourcemanager.organizationAdmin",
        ),
        (
            "v3",
            "folders/42",
            "google.cloud.resourcemanager.v3.Folders.SetIamPolicy",
            "folder",
            "folder_id",
            "roles/resourcemanager.folderAdmin",
        ),
    ] {
        let path = |verb: &str| format!("/{version}/{container}:{verb}");
        let (_, read) = api
            .call(
                &path("getIamPolicy"),
                json!({"options": {"requestedPolicyVersion": 3}}),
            )
            .await;
        assert_eq!(read["bindings"][0]["role"], admin, "{read}");
        let mut policy = read.clone();
        policy["bindings"]
            .as_array_mut()
            .expect("bindings")
            .push(json!({"role": "roles/viewer", "members": ["user:x@gmail.com"]}));
        let set = path("setIamPolicy");
        assert_eq!(api.call(&set, json!({"policy": policy})).await.0, 200);
        // The etag of the first read is stale now.
        assert_eq!(api.call(&set, json!({"policy": read})).await.0, 409);
        let public = json!({"bindings": [{"role": "roles/viewer", "members": ["allUsers"]}]});
        assert_eq!(api.call(&set, json!({"policy": public})).await.0, 400);
        let entry = api
            .running
            .audit_entries()
            .into_iter()
            .rev()
            .find(|entry| entry["protoPayload"]["resourceName"] == container)
            .expect("an audit entry");
        assert_eq!(entry["protoPayload"]["methodName"], method);
        assert_eq!(
            entry["logName"],
            format!("{container}/logs/cloudaudit.googleapis.com%2Factivity")
        );
        assert_eq!(entry["resource"]["type"], resource_type);
        assert_eq!(
            entry["resource"]["labels"][label],
            container.rsplit('/').next().expect("id")
        );
        assert_eq!(
            entry["protoPayload"]["authenticationInfo"]["principalEmail"],
            "alice@example.com"
        );
        assert!(
            entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"]
                .as_array()
                .is_some_and(|deltas| {
                    deltas.iter().any(|delta| {
                        delta["member"] == "user:x@gmail.com" && delta["action"] == "ADD"
                    })
                }),
            "{entry}"
        );
    }
    for wrong in [
        "/v1/organizations/acme:getIamPolicy",
        "/v2/organizations/1:getIamPolicy",
        "/v1/folders/1:getIamPolicy",
        "/v3/folders/1:deleteEverything",
    ] {
        let (status, _) = api.call(wrong, json!({})).await;
        assert!(status == 400 || status == 404, "{wrong}: {status}");
    }
}
