//! The service-account key kind end to end: a key created or uploaded is disabled at once, Google's own key and
//! allowed accounts are left alone, a re-enabled key is disabled again, undo enables it, a sweep finds old keys.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, Options, PROJECT, USER_TOKEN};

async fn account(harness: &Harness, id: &str) -> Value {
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/projects/{PROJECT}/serviceAccounts"),
            Some(json!({"accountId": id})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn keys(harness: &Harness, email: &str) -> Vec<Value> {
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("/v1/projects/{PROJECT}/serviceAccounts/{email}/keys"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["keys"].as_array().cloned().unwrap_or_default()
}

async fn create_key(harness: &Harness, email: &str) -> String {
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/projects/{PROJECT}/serviceAccounts/{email}/keys"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["name"]
        .as_str()
        .expect("name")
        .rsplit('/')
        .next()
        .expect("id")
        .to_string()
}

fn state_of<'a>(keys: &'a [Value], id: &str) -> &'a Value {
    keys.iter()
        .find(|key| key["name"].as_str().is_some_and(|name| name.ends_with(id)))
        .expect("the key")
}

#[tokio::test]
async fn a_new_key_is_disabled_and_googles_own_key_left_alone() {
    let harness = Harness::start().await;
    let ci = account(&harness, "ci-deployer").await;
    let email = ci["email"].as_str().expect("email").to_string();
    let id = create_key(&harness, &email).await;
    let listed = keys(&harness, &email).await;
    assert_eq!(state_of(&listed, &id)["disabled"], true, "{listed:?}");
    let system = listed
        .iter()
        .find(|key| key["keyType"] == "SYSTEM_MANAGED")
        .expect("Google's key");
    assert!(
        system.get("disabled").is_none(),
        "Google-managed keys are never touched"
    );

    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let key = format!(
        "projects/{PROJECT}/serviceAccounts/{}",
        ci["uniqueId"].as_str().expect("uniqueId")
    );
    let fixed = rows
        .iter()
        .find(|row| row.resource == key && row.outcome.as_deref() == Some("remediated"))
        .expect("remediated, keyed by the account's unique id");
    assert!(
        fixed.findings[0].message.contains(&id),
        "{:?}",
        fixed.findings
    );

    // Enabling it again is a re-opening: disabled again.
    let (status, _) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/projects/{PROJECT}/serviceAccounts/{email}/keys/{id}:enable"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        state_of(&keys(&harness, &email).await, &id)["disabled"],
        true
    );

    // Undo enables it, in the operator's name, and keeps antibody from disabling it again for a while.
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let latest = rows
        .iter()
        .find(|row| row.resource == key && row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    harness.undo(latest.id).await;
    assert!(
        state_of(&keys(&harness, &email).await, &id)
            .get("disabled")
            .is_none()
    );
}

#[tokio::test]
async fn allowed_accounts_keep_their_keys_and_uploaded_keys_are_disabled_too() {
    let harness = Harness::with(Options {
        tweak: Box::new(|config| {
            config.policies.sa_key.allow_accounts =
                vec!["legacy-etl@test-project.iam.gserviceaccount.com".into()];
        }),
        ..Options::default()
    })
    .await;
    let legacy = account(&harness, "legacy-etl").await;
    let legacy_email = legacy["email"].as_str().expect("email").to_string();
    let kept = create_key(&harness, &legacy_email).await;
    assert!(
        state_of(&keys(&harness, &legacy_email).await, &kept)
            .get("disabled")
            .is_none()
    );

    let other = account(&harness, "uploader").await;
    let email = other["email"].as_str().expect("email").to_string();
    let (status, uploaded) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/projects/{PROJECT}/serviceAccounts/{email}/keys:upload"),
            Some(json!({"publicKeyData": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"})),
        )
        .await;
    assert_eq!(status, 200, "{uploaded}");
    let id = uploaded["name"]
        .as_str()
        .expect("name")
        .rsplit('/')
        .next()
        .expect("id")
        .to_string();
    assert_eq!(
        state_of(&keys(&harness, &email).await, &id)["disabled"],
        true
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(
        rows.iter()
            .any(|row| row.outcome.as_deref() == Some("exempt")
                && row
                    .reason
                    .as_deref()
                    .unwrap_or_default()
                    .contains("allow_accounts")),
        "{rows:?}"
    );
}

struct Quiet;

impl antibody::scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}

/// A key made by a principal whose changes are left alone (a key-rotation service) is still a key: a sweep, which
/// cannot tell who made it, reports it and `--fix` disables it.
#[tokio::test]
async fn a_sweep_finds_keys_the_events_left_alone() {
    let harness = Harness::with(Options {
        tweak: Box::new(|config| {
            config.policies.sa_key.allow_principals = vec![crate::harness::USER.into()]
        }),
        ..Options::default()
    })
    .await;
    let ci = account(&harness, "rotated-by-tool").await;
    let email = ci["email"].as_str().expect("email").to_string();
    let id = create_key(&harness, &email).await;
    assert!(
        state_of(&keys(&harness, &email).await, &id)
            .get("disabled")
            .is_none(),
        "the event was exempt"
    );
    let projects = [PROJECT.to_string()];
    let report = antibody::scan::sweep(harness.cx(), &projects, false, &Quiet).await;
    assert_eq!(report.swept.get("sa-key"), Some(&1), "{:?}", report.swept);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    let report = antibody::scan::sweep(harness.cx(), &projects, true, &Quiet).await;
    assert_eq!(
        report.violations[0].outcome.as_deref(),
        Some("remediated"),
        "{:?}",
        report.violations
    );
    assert_eq!(
        state_of(&keys(&harness, &email).await, &id)["disabled"],
        true
    );
}

/// `delete_after`: a key disabled longer than that, as the audit log dates it, is deleted by the sweep; undo then
/// says it cannot come back.
#[tokio::test]
async fn a_key_disabled_past_delete_after_is_deleted_by_the_sweep() {
    let clock = antibody::clock::Clock::manual();
    let harness = Harness::with(Options {
        tweak: Box::new(|config| config.policies.sa_key.delete_after_secs = Some(7 * 86_400)),
        clock: clock.clone(),
        ..Options::default()
    })
    .await;
    let ci = account(&harness, "old-deployer").await;
    let email = ci["email"].as_str().expect("email").to_string();
    let id = create_key(&harness, &email).await;
    assert_eq!(
        state_of(&keys(&harness, &email).await, &id)["disabled"],
        true
    );
    let projects = [PROJECT.to_string()];
    let report = antibody::scan::sweep(harness.cx(), &projects, false, &Quiet).await;
    assert!(
        report.violations.is_empty(),
        "disabled a moment ago: {:?}",
        report.violations
    );

    clock.advance(std::time::Duration::from_secs(8 * 86_400));
    let report = antibody::scan::sweep(harness.cx(), &projects, true, &Quiet).await;
    let violation = report.violations.first().expect("the old key");
    assert_eq!(
        violation.findings[0].category, "DISABLED_KEY_KEPT",
        "{violation:?}"
    );
    assert_eq!(
        violation.outcome.as_deref(),
        Some("remediated"),
        "{violation:?}"
    );
    let left = keys(&harness, &email).await;
    assert!(
        left.iter()
            .all(|key| !key["name"].as_str().unwrap_or_default().ends_with(&id)),
        "{left:?}"
    );
}
