//! Stopping as Cloud Run stops an instance: SIGTERM, then a grace period. The event being handled finishes and its
//! alert goes out, a delivery arriving meanwhile is answered 503 (redelivered to another instance), and the process
//! exits by itself.

use std::time::{Duration, Instant};

use gcp_sandbox::SandboxConfig;
use serde_json::json;

use crate::harness::{
    ENGINE, ENGINE_TOKEN, PROJECT, USER, USER_TOKEN, free_port, open_ssh, spawn, wait_for,
};
use crate::replicas::{counting_receiver, entry_about, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_event_in_flight_delivers_its_alert_and_refuses_new_ones() {
    let mut config = SandboxConfig::default();
    config.principals.insert(USER_TOKEN.into(), USER.into());
    config.principals.insert(ENGINE_TOKEN.into(), ENGINE.into());
    config
        .seed
        .firewalls
        .insert(PROJECT.into(), vec![open_ssh("slow"), open_ssh("late")]);
    // The fix's operation runs for a while: the stop arrives while the event is being handled.
    config.operation_delay = Duration::from_millis(1500);
    let sandbox = gcp_sandbox::start(
        config,
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox");
    let (hook, mut alerts) = counting_receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let port = free_port();
    let mut engine = spawn(&[
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
    ]);
    let client = crate::harness::http();
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(&format!("{url}healthz"), &client).await;
    let in_flight = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            post(
                &client,
                &url,
                "event-slow",
                &entry_about("slow", "insert-slow"),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stop_sent = Instant::now();
    // SAFETY: kill(2) on the child this test started; it has not been waited for, so its pid is still its own.
    let signalled = unsafe { libc::kill(engine.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(signalled, 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = post(
        &client,
        &url,
        "event-late",
        &entry_about("late", "insert-late"),
    )
    .await;
    assert_eq!(status, 503, "a delivery during the stop is refused: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("stopping"),
        "{body}"
    );
    let (status, body) = in_flight.await.expect("task");
    assert_eq!(
        (status, body["outcome"].clone()),
        (200, json!("remediated")),
        "{body}"
    );
    let exited = loop {
        if let Some(status) = engine.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stop_sent.elapsed() < Duration::from_secs(12),
            "the process outlived its grace period"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(exited.success(), "{exited:?}");
    let alert = alerts
        .try_recv()
        .expect("the fix's alert went out before the process ended");
    assert_eq!(
        alert["resource"],
        format!("projects/{PROJECT}/global/firewalls/slow")
    );
    let journal = antibody::journal::Journal::open(&state)
        .await
        .expect("journal");
    let rows = journal.entries(10).await.expect("rows");
    assert_eq!(rows.len(), 1, "the refused delivery left no row: {rows:?}");
    assert_eq!(rows[0].outcome.as_deref(), Some("remediated"));
    assert!(
        journal
            .alerts(10)
            .await
            .expect("alerts")
            .iter()
            .all(|alert| alert.state == "delivered")
    );
    assert_ne!(
        sandbox_rule_state(&sandbox, "late").await,
        json!(true),
        "the refused event's rule is left for the redelivery"
    );
}

async fn sandbox_rule_state(sandbox: &gcp_sandbox::Running, rule: &str) -> serde_json::Value {
    let rule: serde_json::Value = crate::harness::http()
        .get(format!(
            "{}/compute/v1/projects/{PROJECT}/global/firewalls/{rule}",
            sandbox.base_url()
        ))
        .bearer_auth(USER_TOKEN)
        .send()
        .await
        .expect("rule")
        .json()
        .await
        .expect("json");
    rule["disabled"].clone()
}

// Issue 36: on SIGTERM a re-check was aborted mid-handling — its row left without an outcome, the fix it had begun
// unverified. Re-checks now count as work in flight: the stop waits for the one under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_the_recheck_under_way() {
    let clock = antibody::clock::Clock::manual();
    let options = crate::harness::Options {
        clock: clock.clone(),
        operation_delay: Duration::from_millis(1500),
        tweak: Box::new(|config| config.policies.firewall.grace_secs = 60),
        ..crate::harness::Options::default()
    };
    let harness = crate::harness::Harness::with(options).await;
    harness.user_inserts(open_ssh("deferred")).await;
    assert_eq!(harness.count("deferred").await, 1);
    clock.advance(Duration::from_secs(61));
    // Wait until the re-check has written its fix (the operation then runs for 1.5 s), and stop then.
    let started = Instant::now();
    while !harness.sandbox.audit_entries().iter().any(|entry| {
        entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ENGINE
            && entry["protoPayload"]["resourceName"]
                .as_str()
                .is_some_and(|name| name.ends_with("/deferred"))
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the re-check never wrote"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let crate::harness::Harness { engine, .. } = harness;
    let journal = engine.context.journal.clone();
    let stopped = engine.stop_gracefully(Duration::from_secs(10)).await;
    assert!(stopped.in_flight_finished, "{stopped:?}");
    let rows = journal.entries(10).await.expect("journal");
    let recheck = rows
        .iter()
        .find(|row| row.transport == "recheck")
        .expect("the re-check's row");
    assert_eq!(
        recheck.outcome.as_deref(),
        Some("remediated"),
        "{recheck:?}"
    );
}
