//! Undo restores each fix kind's before-state exactly, refuses when the resource changed since, and is journaled.

use antibody::undo::{self, Error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, Options};

fn without_output_only(mut firewall: Value) -> Value {
    for key in ["id", "creationTimestamp", "selfLink", "kind"] {
        firewall.as_object_mut().map(|fields| fields.remove(key));
    }
    firewall
}

async fn fix_id(harness: &Harness) -> i64 {
    let entries = harness.cx().journal.entries(1000).await.expect("journal");
    entries
        .iter()
        .find(|entry| entry.outcome.as_deref() == Some("remediated"))
        .expect("a fix")
        .id
}

async fn run_undo(harness: &Harness, id: i64, force: bool) -> Result<undo::Undone, Error> {
    let request = undo::Request {
        id,
        force,
        operator: "operator@example.com".into(),
        keep_exempt_secs: Some(3600),
    };
    let config = &harness.cx().config;
    let notify = (&config.templates, config.channels.as_slice());
    let result = undo::undo(&harness.cx().journal, &harness.cx().gcp, notify, &request).await;
    harness.sandbox.settled().await;
    result
}

#[tokio::test]
async fn undoing_a_disable_restores_the_rule_exactly_and_does_not_loop() {
    let harness = Harness::start().await;
    let rule = json!({"name": "wanted", "description": "vendor support access", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
        "sourceRanges": ["0.0.0.0/0"], "targetTags": ["support"], "priority": 700});
    harness.user_inserts(rule).await;
    let id = fix_id(&harness).await;
    let before = harness
        .cx()
        .journal
        .entry(id)
        .await
        .expect("journal")
        .expect("row")
        .before
        .expect("before-state");
    let undone = run_undo(&harness, id, false).await.expect("undo");
    assert_eq!(
        without_output_only(harness.rule("wanted").await),
        without_output_only(before)
    );
    assert_eq!(
        harness.rule("wanted").await["disabled"],
        false,
        "antibody's own restore is not re-fixed"
    );
    let row = harness
        .cx()
        .journal
        .entry(undone.journal_id)
        .await
        .expect("journal")
        .expect("undo row");
    assert_eq!(row.outcome.as_deref(), Some("undone"));
    assert!(matches!(
        run_undo(&harness, undone.journal_id, false).await,
        Err(Error::NotAFix(..))
    ));
}

#[tokio::test]
async fn undo_refuses_when_the_resource_changed_since_unless_forced() {
    let harness = Harness::start().await;
    harness.user_inserts(json!({"name": "moved", "allowed": [{"IPProtocol": "tcp", "ports": ["3389"]}], "sourceRanges": ["0.0.0.0/0"]})).await;
    let id = fix_id(&harness).await;
    // Someone edits the (disabled) rule after the fix.
    harness
        .user_patches("moved", json!({"description": "edited later"}))
        .await;
    assert!(matches!(
        run_undo(&harness, id, false).await,
        Err(Error::Changed(_))
    ));
    assert_eq!(harness.rule("moved").await["description"], "edited later");
    run_undo(&harness, id, true).await.expect("forced undo");
    assert_eq!(harness.rule("moved").await["disabled"], false);
    assert!(harness.rule("moved").await.get("description").is_none());
}

#[tokio::test]
async fn undoing_a_narrow_removes_the_split_and_restores_the_original() {
    let options = Options {
        tweak: Box::new(|config| {
            config.policies.firewall.fix = antibody::kinds::firewall::FixKind::Narrow
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    harness.user_inserts(json!({"name": "mixed", "allowed": [{"IPProtocol": "tcp", "ports": ["22", "443"]}], "sourceRanges": ["0.0.0.0/0", "10.0.0.0/8"]})).await;
    assert_eq!(harness.rule("mixed-public").await["name"], "mixed-public");
    let id = fix_id(&harness).await;
    let before = harness
        .cx()
        .journal
        .entry(id)
        .await
        .expect("journal")
        .expect("row")
        .before
        .expect("before");
    run_undo(&harness, id, false).await.expect("undo");
    assert_eq!(
        without_output_only(harness.rule("mixed").await),
        without_output_only(before)
    );
    assert_eq!(harness.rule("mixed-public").await["error"]["code"], 404);
}

#[tokio::test]
async fn undoing_an_iam_removal_restores_the_grant_and_keeps_conditions() {
    let conditional = json!({"role": "roles/viewer", "members": ["user:temp@example.com"], "condition": {"title": "t", "expression": "true"}});
    let options = Options {
        project_policy: Some(
            json!({"bindings": [{"role": "roles/owner", "members": ["user:owner@example.com"]}, conditional]}),
        ),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    harness
        .user_edits_project_policy("v1", |policy| {
            policy["bindings"]
                .as_array_mut()
                .expect("bindings")
                .push(json!({"role": "roles/editor", "members": ["user:contractor@gmail.com"]}));
        })
        .await;
    let id = fix_id(&harness).await;
    let before = harness
        .cx()
        .journal
        .entry(id)
        .await
        .expect("journal")
        .expect("row")
        .before
        .expect("before");
    run_undo(&harness, id, false).await.expect("undo");
    let policy = harness.project_policy().await;
    let sorted = |value: &Value| {
        let mut bindings: Vec<String> = value["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        bindings.sort();
        bindings
    };
    assert_eq!(sorted(&policy), sorted(&before), "{policy}");
}

#[tokio::test]
async fn undoing_a_bucket_fix_restores_acls_grants_and_prevention() {
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "oops-public"})],
        ..Options::default()
    })
    .await;
    assert_eq!(
        harness
            .user_grants_on_bucket("oops-public", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    assert_eq!(
        harness.bucket("oops-public").await["iamConfiguration"]["publicAccessPrevention"],
        "enforced"
    );
    let id = fix_id(&harness).await;
    run_undo(&harness, id, false).await.expect("undo");
    let bucket = harness.bucket("oops-public").await;
    assert_eq!(
        bucket["iamConfiguration"]["publicAccessPrevention"],
        "inherited"
    );
    let policy = harness.bucket_policy("oops-public").await;
    assert!(
        policy["bindings"].to_string().contains("allUsers"),
        "{policy}"
    );
    let (status, _) = harness
        .user_storage(Method::GET, "/b/oops-public/acl", None)
        .await;
    assert_eq!(status, 200);
}

/// A grant removed from an organization comes back on undo, on the organization's policy.
#[tokio::test]
async fn undoing_an_organization_removal_restores_the_grant_there() {
    let harness = Harness::start().await;
    let mut policy = harness.organization_policy("4242").await;
    let grant = json!({"role": "roles/editor", "members": ["user:contractor@gmail.com"]});
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(grant.clone());
    assert_eq!(
        harness.user_sets_organization_policy("4242", policy).await,
        200
    );
    let fixed = harness.organization_policy("4242").await;
    assert!(
        !fixed["bindings"]
            .as_array()
            .expect("bindings")
            .contains(&grant),
        "{fixed}"
    );
    let id = fix_id(&harness).await;
    let undone = run_undo(&harness, id, false).await.expect("undo");
    assert_eq!(undone.resource, "organizations/4242");
    let restored = harness.organization_policy("4242").await;
    assert!(
        restored["bindings"]
            .as_array()
            .expect("bindings")
            .contains(&grant),
        "{restored}"
    );
}

// Issue 35: `antibody undo` left the resource leased for about two minutes after the command exited (the release
// was spawned on a runtime that was shutting down), so the undo's own audit event was answered `retry` until the
// lease expired. The command releases its lease before it exits.
#[tokio::test]
async fn the_undo_command_releases_its_lease_before_it_exits() {
    let options = crate::harness::Options {
        tweak: Box::new(|config| config.state = "firestore://undo-lease".into()),
        ..crate::harness::Options::default()
    };
    let harness = crate::harness::Harness::with(options).await;
    harness
        .user_inserts(crate::harness::open_ssh("undone-by-cli"))
        .await;
    let rows = harness.cx().journal.entries(10).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("a fix");
    let id = fixed.id.to_string();
    let endpoint = harness.sandbox.base_url();
    let command = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
            .args([
                "undo",
                &id,
                "--state",
                "firestore://undo-lease",
                "--google-endpoint",
                &endpoint,
                "--access-token",
                crate::harness::USER_TOKEN,
                "--operator",
                "oncall@example.com",
            ])
            .output()
            .expect("antibody undo runs")
    })
    .await
    .expect("joined");
    assert!(
        command.status.success(),
        "{}",
        String::from_utf8_lossy(&command.stderr)
    );
    // The engine handles the undo's own audit event under the same lease for a few milliseconds; the command's
    // lease, left to expire, would last two minutes.
    let started = std::time::Instant::now();
    let mut lease = None;
    while lease.is_none() && started.elapsed() < std::time::Duration::from_secs(5) {
        lease = harness
            .cx()
            .journal
            .try_hold(&fixed.resource)
            .await
            .expect("journal");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        lease.is_some(),
        "the command's lease was released when it exited"
    );
}
