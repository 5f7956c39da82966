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

// Issue 34: what a change did to the audit-log configuration is known only from its entry's policy delta; a decision
// deferred by a grace period was taken again without it and journaled "compliant" while Data Access logging stayed
// off. The journal keeps the hint with the deferral, and the re-check turns the logs back on.
#[tokio::test]
async fn data_access_logs_turned_off_are_turned_back_on_after_a_grace_period() {
    let clock = antibody::clock::Clock::manual();
    let harness = Harness::with(Options {
        tweak: Box::new(|config| config.policies.project_iam.grace_secs = 600),
        clock: clock.clone(),
        ..seeded()
    })
    .await;
    set_audit_configs(
        &harness,
        json!([{"service": "allServices", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}]),
    )
    .await;
    assert_eq!(
        log_types(&harness.project_policy().await),
        ["ADMIN_READ"],
        "nothing happens during the grace period"
    );
    assert_eq!(harness.count("deferred").await, 1);
    clock.advance(std::time::Duration::from_secs(601));
    // The engine's own timer takes the due decision (every half second).
    let mut restored = Vec::new();
    for _ in 0..100 {
        harness.sandbox.settled().await;
        restored = log_types(&harness.project_policy().await);
        if restored.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        restored,
        ["ADMIN_READ", "DATA_READ", "DATA_WRITE"],
        "the re-check knows what the change turned off"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(
        rows.iter()
            .any(|row| row.transport == "recheck" && row.outcome.as_deref() == Some("remediated")),
        "{rows:?}"
    );
}
