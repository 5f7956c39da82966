//! An instance's own IAM policy end to end: `roles/compute.osAdminLogin` on one VM, granted to a consumer account, is
//! root on that VM for a stranger; the grant is removed and a colleague's kept.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Harness, PROJECT, USER_TOKEN};

const ZONE: &str = "us-central1-a";

// Issue 34: IAM-bearing resources antibody already reads were judged for outsiders, but an instance's own policy was
// not read at all (`v1.compute.instances.setIamPolicy` was "a change the policy does not check").
#[tokio::test]
async fn an_outsider_given_root_on_one_instance_is_removed() {
    let harness = Harness::start().await;
    let (status, body) = harness
        .compute_as(
            USER_TOKEN,
            Method::POST,
            &format!("/zones/{ZONE}/instances"),
            Some(json!({"name": "build-box", "machineType": "e2-medium",
                "metadata": {"items": [{"key": "block-project-ssh-keys", "value": "true"}]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let policy = json!({"policy": {"bindings": [{"role": "roles/compute.osAdminLogin",
        "members": ["user:stranger@gmail.com", "user:colleague@example.com"]}]}});
    let (status, body) = harness
        .compute_as(
            USER_TOKEN,
            Method::POST,
            &format!("/zones/{ZONE}/instances/build-box/setIamPolicy"),
            Some(policy),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    harness.sandbox.settled().await;
    let (status, read) = harness
        .compute_as(
            USER_TOKEN,
            Method::GET,
            &format!("/zones/{ZONE}/instances/build-box/getIamPolicy"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        read["bindings"][0]["members"],
        json!(["user:colleague@example.com"]),
        "{read}"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let key = format!("projects/{PROJECT}/zones/{ZONE}/instances/build-box/iamPolicy");
    let fixed = rows
        .iter()
        .find(|row| row.resource == key && row.outcome.as_deref() == Some("remediated"))
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(
        fixed
            .findings
            .iter()
            .any(|finding| finding.category == "EXTERNAL_MEMBER"),
        "{fixed:?}"
    );
}
