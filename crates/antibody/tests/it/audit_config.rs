//! The audit-config policy end to end: turning Data Access audit logs off is undone from the change's own policy
//! delta, a member newly exempted from them is taken out again, bindings stay as they were, undo restores the change.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, Options, PROJECT, USER_TOKEN};

const FULL: &str = r#"[{"service": "allServices", "auditLogConfigs": [{"logType": "ADMIN_READ"}, {"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]}]"#;

fn seeded() -> Options {
    Options {
        project_policy: Some(json!({
            "bindings": [{"role": "roles/owner", "members": ["user:owner@example.com", "user:user@example.com"]}],
            "auditConfigs": serde_json::from_str::<Value>(FULL).expect("configs"),
        })),
        ..Options::default()
    }
}

/// The user writes `auditConfigs` (with the mask that lets a write change them).
async fn set_audit_configs(harness: &Harness, configs: Value) {
    let mut policy = harness.project_policy().await;
    policy["auditConfigs"] = configs;
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/projects/{PROJECT}:setIamPolicy"),
            Some(json!({"policy": policy, "updateMask": "bindings,etag,auditConfigs"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn log_types(policy: &Value) -> Vec<String> {
    policy["auditConfigs"][0]["auditLogConfigs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|log| log["logType"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn data_access_logs_turned_off_are_turned_back_on_and_bindings_kept() {
    let harness = Harness::with(seeded()).await;
    set_audit_configs(
        &harness,
        json!([{"service": "allServices", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}]),
    )
    .await;
    let policy = harness.project_policy().await;
    assert_eq!(
        log_types(&policy),
        ["ADMIN_READ", "DATA_READ", "DATA_WRITE"],
        "{policy}"
    );
    assert_eq!(
        policy["bindings"][0]["members"],
        json!(["user:owner@example.com", "user:user@example.com"])
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    assert!(
        fixed
            .findings
            .iter()
            .all(|finding| finding.category == "AUDIT_LOGGING_DISABLED"),
        "{:?}",
        fixed.findings
    );
    assert_eq!(fixed.findings.len(), 2);

    harness.undo(fixed.id).await;
    assert_eq!(
        log_types(&harness.project_policy().await),
        ["ADMIN_READ"],
        "undo restores the change"
    );
}

#[tokio::test]
async fn a_member_exempted_from_audit_logs_is_taken_out_and_others_left() {
    let harness = Harness::with(seeded()).await;
    let mut configs: Value = serde_json::from_str(FULL).expect("configs");
    configs[0]["auditLogConfigs"][1]["exemptedMembers"] = json!(["user:intruder@example.com"]);
    set_audit_configs(&harness, configs).await;
    let policy = harness.project_policy().await;
    assert!(
        policy["auditConfigs"][0]["auditLogConfigs"][1]
            .get("exemptedMembers")
            .is_none(),
        "{policy}"
    );
    // Taking an exemption away again is no finding.
    let remediated = harness.count("remediated").await;
    set_audit_configs(&harness, serde_json::from_str(FULL).expect("configs")).await;
    assert_eq!(
        harness.count("remediated").await,
        remediated,
        "nothing to restore"
    );
}
