//! Resource Manager's hierarchy in the sandbox as IAM sees it: roles granted on a folder or the organization reach
//! the projects below, as Google's IAM inherits them.

use axum::http::StatusCode;
use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

mod common;
use common::{rule, sandbox};

/// Sends a request and reads its JSON answer.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("a JSON answer")
}

/// IAM is inherited down the hierarchy, as Google's is: a custom role created at the organization and granted on a
/// folder lets its holder write in every project under that folder, and nowhere else.
#[tokio::test]
async fn roles_granted_on_a_folder_or_the_organization_reach_the_projects_below() {
    let mut config = SandboxConfig {
        enforce_iam: true,
        ..SandboxConfig::default()
    };
    config
        .seed
        .folders
        .insert("folders/5".into(), "organizations/123456789012".into());
    config.seed.parents.insert("p1".into(), "folders/5".into());
    config.seed.container_policies.insert(
        "organizations/123456789012".into(),
        json!({"bindings": [{"role": "roles/resourcemanager.organizationAdmin", "members": ["user:admin@example.com"]}]}),
    );
    let (running, client, base) = sandbox(config).await;
    let root = running.base_url();
    let insert = |token: &'static str, name: &str| {
        client
            .post(&base)
            .bearer_auth(token)
            .json(&rule(name))
            .send()
    };
    assert_eq!(
        insert("fixer@example.com", "before")
            .await
            .expect("insert")
            .status(),
        StatusCode::FORBIDDEN
    );
    let role = json_of(
        client
            .post(format!("{root}/v1/organizations/123456789012/roles"))
            .bearer_auth("admin@example.com")
            .json(&json!({"roleId": "fixer", "role": {"includedPermissions": ["compute.firewalls.create", "compute.networks.updatePolicy"]}})),
    )
    .await;
    assert_eq!(role["name"], "organizations/123456789012/roles/fixer");
    let policy = json_of(
        client
            .post(format!("{root}/v3/folders/5:getIamPolicy"))
            .bearer_auth("admin@example.com")
            .json(&json!({})),
    )
    .await;
    let mut bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    bindings.push(json!({"role": "organizations/123456789012/roles/fixer", "members": ["user:fixer@example.com"]}));
    let written = client
        .post(format!("{root}/v3/folders/5:setIamPolicy"))
        .bearer_auth("admin@example.com")
        .json(&json!({"policy": {"bindings": bindings, "etag": policy["etag"]}}))
        .send()
        .await
        .expect("set");
    assert_eq!(written.status(), StatusCode::OK);
    assert_eq!(
        insert("fixer@example.com", "after")
            .await
            .expect("insert")
            .status(),
        StatusCode::OK,
        "the folder's grant reaches p1"
    );
    let elsewhere = client
        .post(format!("{root}/compute/v1/projects/p2/global/firewalls"))
        .bearer_auth("fixer@example.com")
        .json(&rule("elsewhere"))
        .send()
        .await
        .expect("insert");
    assert_eq!(
        elsewhere.status(),
        StatusCode::FORBIDDEN,
        "p2 is not under the folder"
    );
    let denied = client
        .post(format!("{root}/v1/organizations/123456789012:setIamPolicy"))
        .bearer_auth("fixer@example.com")
        .json(&json!({"policy": {"bindings": []}}))
        .send()
        .await
        .expect("set");
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
}

/// A project under another organization is outside the sandbox's: `getAncestry` and the v3 project read agree that
/// its top is that organization alone, so an ancestry-based scope check sees it as outside.
#[tokio::test]
async fn a_project_of_another_organization_has_only_that_organization_above_it() {
    let mut config = SandboxConfig::default();
    config
        .seed
        .parents
        .insert("foreign-app".into(), "organizations/999".into());
    config
        .seed
        .folders
        .insert("folders/7".into(), "organizations/999".into());
    config
        .seed
        .parents
        .insert("foreign-web".into(), "folders/7".into());
    let (running, client, _) = sandbox(config).await;
    let root = running.base_url();
    let ancestry = |project: &'static str| {
        let client = client.clone();
        let url = format!("{root}/v1/projects/{project}:getAncestry");
        async move { json_of(client.post(url).json(&json!({}))).await }
    };
    assert_eq!(
        ancestry("foreign-app").await["ancestor"],
        json!([{"resourceId": {"type": "project", "id": "foreign-app"}},
            {"resourceId": {"type": "organization", "id": "999"}}])
    );
    assert_eq!(
        ancestry("foreign-web").await["ancestor"],
        json!([{"resourceId": {"type": "project", "id": "foreign-web"}},
            {"resourceId": {"type": "folder", "id": "7"}},
            {"resourceId": {"type": "organization", "id": "999"}}])
    );
    let read = json_of(client.get(format!("{root}/v3/projects/foreign-app"))).await;
    assert_eq!(read["parent"], "organizations/999", "{read}");
    // A project the sandbox was never told about sits under its own organization.
    assert_eq!(
        ancestry("home-app").await["ancestor"][1],
        json!({"resourceId": {"type": "organization", "id": "123456789012"}})
    );
}
