//! antibody's own safety controls cannot be turned into weapons: decoys cannot spend the cap a graver hole needs,
//! and a quarantine slows antibody down without stopping it.

use serde_json::json;

use crate::harness::{Harness, Options, open_ssh};

// Issue 35: ten throw-away world-open rules, each healed in milliseconds, spent the project's cap, and the real change
// that followed — a gmail.com editor — was held for an hour, renewable. Slots are now counted per policy and for
// CRITICAL findings apart; decoys of the same severity and policy still spend their own budget, and a CRITICAL
// fix held by its cap says that the hole is still open.
#[tokio::test]
async fn decoys_of_one_kind_cannot_spend_the_cap_a_graver_hole_needs() {
    let options = Options {
        tweak: Box::new(|config| config.safety.flap_threshold = 0),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    for index in 0..12 {
        harness
            .user_inserts(open_ssh(&format!("decoy-{index}")))
            .await;
    }
    assert_eq!(
        harness.count("remediated").await,
        10,
        "the decoys spent the firewall budget"
    );
    harness
        .user_edits_project_policy("v1", |policy| {
            policy["bindings"].as_array_mut().expect("bindings").push(
                json!({"role": "roles/editor", "members": ["user:insider.backup@gmail.com"]}),
            );
        })
        .await;
    let policy = harness.project_policy().await;
    assert!(
        !policy.to_string().contains("insider.backup@gmail.com"),
        "the outsider editor was removed at once: {policy}"
    );
    assert_eq!(harness.count("remediated").await, 11);

    // CRITICAL grants spend the project-IAM CRITICAL budget; once it is spent a fix is held and says the hole is open.
    for index in 0..11 {
        harness
            .user_edits_project_policy("v1", |policy| {
                policy["bindings"]
                    .as_array_mut()
                    .expect("bindings")
                    .push(json!({"role": "roles/editor", "members": [format!("user:editor-{index}@gmail.com")]}));
            })
            .await;
    }
    let rows = harness.cx().journal.entries(1000).await.expect("journal");
    let held: Vec<_> = rows
        .iter()
        .filter(|row| {
            row.outcome.as_deref() == Some("held")
                && row.resource.starts_with("projects/test-project")
                && !row.resource.contains("firewalls")
        })
        .collect();
    // The first outsider took one of the ten slots: nine more are fixed, the tenth and eleventh held.
    assert_eq!(held.len(), 2, "{held:?}");
    for row in held {
        let reason = row.reason.as_deref().unwrap_or_default();
        assert!(reason.starts_with("THE HOLE IS STILL OPEN"), "{reason}");
        assert!(reason.contains("project-iam CRITICAL"), "{reason}");
    }
}

/// Polls a rule until it reads disabled, up to five seconds of wall time.
async fn closed_soon(harness: &Harness, name: &str) -> bool {
    for _ in 0..200 {
        if harness.rule(name).await["disabled"] == true {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

// Issue 35: re-opening a rule four times got it quarantined, after which antibody stopped fixing it until an
// operator stepped in — a way to keep a hole open. A quarantine now slows antibody down: the hole is closed again
// after a backoff that doubles with every re-break.
#[tokio::test]
async fn a_quarantined_hole_is_closed_again_after_a_backoff() {
    let clock = antibody::clock::Clock::manual();
    let options = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    harness.user_inserts(open_ssh("fought")).await;
    for _ in 0..4 {
        harness
            .user_patches("fought", json!({"disabled": false}))
            .await;
    }
    assert_eq!(
        harness.rule("fought").await["disabled"],
        false,
        "quarantined"
    );
    assert_eq!(
        harness
            .cx()
            .journal
            .quarantined()
            .await
            .expect("list")
            .len(),
        1
    );
    clock.advance(std::time::Duration::from_secs(61));
    assert!(
        closed_soon(&harness, "fought").await,
        "closed again after a minute"
    );

    harness
        .user_patches("fought", json!({"disabled": false}))
        .await;
    assert_eq!(
        harness.rule("fought").await["disabled"],
        false,
        "waits again"
    );
    clock.advance(std::time::Duration::from_secs(61));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        harness.rule("fought").await["disabled"],
        false,
        "the backoff doubled"
    );
    clock.advance(std::time::Duration::from_secs(120));
    assert!(
        closed_soon(&harness, "fought").await,
        "and then it is closed again"
    );
}
