//! The process dies (abort, as `kill -9`) at each step of handling an event; after a restart and Eventarc's
//! redelivery, the event has exactly one outcome, the fix was applied once, and its alert is delivered once.

use std::time::Duration;

use antibody::journal::Journal;

use crate::harness::{ENGINE, ENGINE_TOKEN, free_port, open_ssh, spawn_with_env, wait_for};
use crate::replicas::{counting_receiver, engine_writes, entry_about, post, sandbox};

/// Runs one crash: the first process dies at `stage`, a second one on the same journal gets the redelivery.
async fn crash_at(stage: &str, answer_after_restart: &str) {
    let rule = format!("crash-{stage}");
    let sandbox = sandbox(vec![open_ssh(&rule)]).await;
    let (hook, mut alerts) = counting_receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let port = free_port();
    let args = [
        "serve",
        "--port",
        &port.to_string(),
        "--google-endpoint",
        &sandbox.base_url(),
        "--state",
        state.to_str().expect("utf-8"),
        "--insecure-no-auth",
        "--access-token",
        ENGINE_TOKEN,
        "--identity",
        ENGINE,
        "--notify",
        &format!("webhook={hook}"),
    ];
    let client = crate::harness::http();
    let url = format!("http://127.0.0.1:{port}/");
    let entry = entry_about(&rule, &format!("insert-{stage}"));
    let mut doomed = spawn_with_env(&args, &[("ANTIBODY_CRASH_AT", stage)]);
    wait_for(&format!("{url}healthz"), &client).await;
    let delivery = client
        .post(&url)
        .header("ce-specversion", "1.0")
        .header("ce-id", format!("event-{stage}"))
        .header(
            "ce-source",
            "//cloudaudit.googleapis.com/projects/test-project/logs/activity",
        )
        .header("ce-type", "google.cloud.audit.log.v1.written")
        .header("content-type", "application/json")
        .body(entry.to_string())
        .send()
        .await;
    assert!(delivery.is_err(), "the process died before answering");
    let status = doomed.0.wait().expect("the first process ends");
    assert!(!status.success(), "it died: {status:?}");

    let _restarted = spawn_with_env(&args, &[]);
    wait_for(&format!("{url}healthz"), &client).await;
    let (status, body) = post(&client, &url, &format!("event-{stage}"), &entry).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some(answer_after_restart)),
        "{body}"
    );
    sandbox.settled().await;
    assert_eq!(
        engine_writes(&sandbox, &rule),
        1,
        "the fix was applied once"
    );
    let journal = Journal::open(&state).await.expect("journal");
    let rows = journal.entries(10).await.expect("rows");
    assert_eq!(rows.len(), 1, "one row for the event");
    assert_eq!(
        rows[0].outcome.as_deref(),
        Some("remediated"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[0].before.is_some(),
        "the before-state is kept for undo"
    );
    if stage == "applied" {
        let reason = rows[0].reason.as_deref().unwrap_or_default();
        assert!(reason.contains("before a restart"), "{reason}");
    }
    let alert = tokio::time::timeout(Duration::from_secs(15), alerts.recv())
        .await
        .expect("the alert arrives")
        .expect("open");
    assert_eq!(alert["outcome"], "remediated");
    crate::harness::all_delivered(&journal).await;
    assert!(alerts.try_recv().is_err(), "exactly one alert");
}

#[tokio::test]
async fn dying_after_receive_loses_nothing() {
    crash_at("received", "remediated").await;
}

#[tokio::test]
async fn dying_after_the_decision_fixes_once_on_redelivery() {
    crash_at("decided", "remediated").await;
}

#[tokio::test]
async fn dying_after_apply_before_journal_does_not_apply_twice() {
    crash_at("applied", "remediated").await;
}

#[tokio::test]
async fn dying_after_journal_before_ack_answers_duplicate_and_still_alerts() {
    crash_at("journaled", "duplicate").await;
}
