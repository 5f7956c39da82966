//! The Firestore journal against the sandbox's Firestore over real HTTP: replicas sharing it, contention, leases,
//! states larger than a document, retention, Firestore's bad days (503s, ABORTED storms, latency, an outage), and the
//! state commands reaching it with `serve`'s endpoint and credentials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use antibody::clock::Clock;
use antibody::event::{AuditEvent, Transport};
use antibody::journal::{Claim, Journal, Record};
use serde_json::{Value, json};

use crate::contract::firestore_journal;
use crate::harness::{ENGINE_TOKEN, open_ssh};
use crate::replicas::{sandbox, ten_deliveries_over_two_processes};

fn event(insert_id: &str) -> AuditEvent {
    let entry = json!({"insertId": insert_id, "logName": "projects/p-firestore/logs/x",
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
            "resourceName": "projects/p-firestore/global/firewalls/fw",
            "authenticationInfo": {"principalEmail": "someone@example.com"}}});
    AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an audit entry")
}

async fn second_replica(sandbox: &gcp_sandbox::Running, state: &str) -> Journal {
    // Over HTTP/2 without TLS, as the default deployment talks to Firestore (HTTP/2, over TLS).
    let access = antibody::journal::Access {
        endpoints: antibody::gcp::Endpoints::new(Some(&sandbox.base_url())).speaking_http2(true),
        credentials: Arc::new(antibody::gcp::auth::Credentials::Anonymous),
    };
    Journal::open_using(state.as_ref(), Clock::system(), Some(&access))
        .await
        .expect("journal")
}

async fn fault(sandbox: &gcp_sandbox::Running, fault: Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&fault)
        .send()
        .await
        .expect("fault armed");
    assert!(response.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_sharing_firestore_make_one_fix_one_row_one_alert() {
    let sandbox = sandbox(vec![open_ssh("contested")]).await;
    ten_deliveries_over_two_processes("firestore://antibody-state", &sandbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_project_cap_holds_across_replicas_sharing_firestore() {
    crate::replicas::cap_holds_across_replicas("firestore://antibody-caps").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_over_two_replicas_make_exactly_one_new() {
    let (sandbox, first) = firestore_journal(Clock::system()).await;
    let second = second_replica(&sandbox, "firestore://contract-project").await;
    let claims: Vec<_> = (0..12)
        .map(|index| {
            let journal = if index % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { journal.claim(&event("contended")).await })
        })
        .collect();
    let mut news = Vec::new();
    for claim in claims {
        match claim.await.expect("task").expect("claim") {
            Claim::New { id, .. } => news.push(id),
            Claim::InProgress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(news.len(), 1, "exactly one handler: {news:?}");
    let rows = second.entries(10).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].deliveries, 12);
    let metrics = first.metrics().await.expect("metrics");
    assert_eq!(
        metrics.events_by_outcome,
        vec![("processing".to_string(), 1)],
        "the sharded counters add up to the rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_exclusive_across_replicas_and_a_dead_holders_lease_expires() {
    let (sandbox, first) = firestore_journal(Clock::system()).await;
    let second = second_replica(&sandbox, "firestore://contract-project").await;
    let key = "projects/p-firestore/global/firewalls/fw";
    let held = first.try_hold(key).await.expect("lease").expect("free");
    assert!(second.try_hold(key).await.expect("lease").is_none());
    drop(held);
    let taken = tokio::time::timeout(Duration::from_secs(5), second.hold(key))
        .await
        .expect("released at once")
        .expect("lease")
        .expect("taken after the release");
    // A replica that dies holding a lease never releases it: it expires by Firestore's clock.
    std::mem::forget(taken);
    let dead = first
        .try_hold_for("projects/p-firestore/global/firewalls/other", 1)
        .await
        .expect("lease")
        .expect("free");
    std::mem::forget(dead);
    assert!(
        second
            .try_hold("projects/p-firestore/global/firewalls/other")
            .await
            .expect("lease")
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        second
            .try_hold("projects/p-firestore/global/firewalls/other")
            .await
            .expect("lease")
            .is_some(),
        "the dead holder's lease expired"
    );
}

#[tokio::test]
async fn states_larger_than_a_document_are_kept_whole() {
    let (_sandbox, journal) = firestore_journal(Clock::system()).await;
    let Claim::New { id, .. } = journal.claim(&event("large")).await.expect("claim") else {
        panic!("new");
    };
    // A policy of 20,000 bindings: about 1.6 MB of JSON, more than one document holds.
    let bindings: Vec<Value> = (0..20_000)
        .map(|index| json!({"role": format!("roles/custom.role{index}"), "members": [format!("user:u{index}@example.com \"quoted\"")]}))
        .collect();
    let before = json!({"bindings": bindings, "etag": "BwX"});
    assert!(before.to_string().len() > 1_048_576);
    let record = Record {
        outcome: "remediated".into(),
        before: Some(before.clone()),
        after: Some(json!({"bindings": []})),
        resource_key: Some("projects/p-firestore".into()),
        ..Record::default()
    };
    journal.finish(id, &record).await.expect("finish");
    let row = journal.entry(id).await.expect("entry").expect("row");
    assert_eq!(row.before, Some(before));
    assert_eq!(row.after, Some(json!({"bindings": []})));
}

#[tokio::test]
async fn rows_past_their_retention_are_not_read_even_before_ttl_deletes_them() {
    let sandbox = gcp_sandbox::start(
        gcp_sandbox::SandboxConfig::default(),
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox");
    let clock = Clock::manual();
    let access = antibody::journal::Access {
        endpoints: antibody::gcp::Endpoints::new(Some(&sandbox.base_url())),
        credentials: Arc::new(antibody::gcp::auth::Credentials::Anonymous),
    };
    let journal = Journal::open_using(
        "firestore://retained-project?retention_days=2".as_ref(),
        clock.clone(),
        Some(&access),
    )
    .await
    .expect("journal");
    let (id, _) = journal
        .record_settled(&event("old"), &Record::default())
        .await
        .expect("settled");
    clock.advance(Duration::from_secs(86_400));
    assert!(journal.entry(id).await.expect("entry").is_some());
    clock.advance(Duration::from_secs(2 * 86_400));
    assert!(journal.entry(id).await.expect("entry").is_none());
    assert!(journal.entries(10).await.expect("rows").is_empty());
}

#[tokio::test]
async fn firestore_503s_aborts_and_latency_are_retried_and_lose_nothing() {
    let (sandbox, journal) = firestore_journal(Clock::system()).await;
    fault(
        &sandbox,
        json!({"path_contains": "documents:commit", "status": 503, "times": 3}),
    )
    .await;
    fault(
        &sandbox,
        // An ABORTED storm: every transaction's commit loses, five times over.
        json!({"path_contains": "documents:commit", "status": 409, "times": 5}),
    )
    .await;
    fault(
        &sandbox,
        json!({"path_contains": "documents:beginTransaction", "delay_ms": 300, "times": 2}),
    )
    .await;
    let Claim::New { id, .. } = journal.claim(&event("faulty")).await.expect("claim") else {
        panic!("new");
    };
    journal
        .finish(
            id,
            &Record {
                outcome: "compliant".into(),
                ..Record::default()
            },
        )
        .await
        .expect("finish");
    assert_eq!(
        journal.claim(&event("faulty")).await.expect("claim"),
        Claim::Duplicate { of: id },
        "recorded once, despite the retries"
    );
    assert_eq!(journal.entries(10).await.expect("rows").len(), 1);
}

#[tokio::test]
async fn a_firestore_outage_fails_within_the_bound_and_writes_nothing() {
    let (sandbox, journal) = firestore_journal(Clock::system()).await;
    fault(
        &sandbox,
        json!({"path_contains": "/documents", "status": 503, "times": 100_000}),
    )
    .await;
    let started = Instant::now();
    let failed = journal.claim(&event("outage")).await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "bounded: {:?}",
        started.elapsed()
    );
    let message = failed.expect_err("error").to_string();
    assert!(message.contains("Firestore"), "{message}");
}

#[test]
fn the_state_commands_reach_firestore_like_serve() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sandbox = runtime.block_on(sandbox(Vec::new()));
    let endpoint = sandbox.base_url();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
            .args(args)
            .args([
                "--state",
                "firestore://state-project",
                "--google-endpoint",
                &endpoint,
            ])
            .env("ANTIBODY_ACCESS_TOKEN", ENGINE_TOKEN)
            .output()
            .expect("antibody runs");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&[
        "exempt",
        "add",
        "projects/p/global/firewalls/keep",
        "--owner",
        "ops",
        "--reason",
        "vendor",
    ]);
    assert!(run(&["exempt", "list"]).contains("projects/p/global/firewalls/keep"));
    run(&["pause"]);
    let journal = runtime.block_on(crate::replicas::open_state(
        "firestore://state-project",
        &sandbox,
    ));
    let metrics = runtime.block_on(journal.metrics()).expect("metrics");
    assert!(metrics.paused, "the kill switch is in Firestore");
    run(&["resume"]);
    assert!(!runtime.block_on(journal.metrics()).expect("metrics").paused);
    assert!(
        run(&["journal", "--format", "json"])
            .trim_start()
            .starts_with('[')
    );
}

// A delivery near the receiver's 1 MiB limit cannot make a row larger than a document (a rejected write would be
// answered 503 and redelivered forever): what the sender wrote is clipped, and the event is recorded once.
#[tokio::test]
async fn a_huge_sender_written_field_is_clipped_not_refused() {
    let (_sandbox, journal) = firestore_journal(Clock::system()).await;
    let huge = format!("projects/p-firestore/{}", "x\"".repeat(450_000));
    let entry = json!({"insertId": "huge", "logName": "projects/p-firestore/logs/x",
        "protoPayload": {"serviceName": "unwatched.googleapis.com", "methodName": "m",
            "resourceName": huge, "authenticationInfo": {"principalEmail": "someone@example.com"}}});
    let event =
        AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an audit entry");
    let ignored = Record {
        outcome: "ignored".into(),
        ..Record::default()
    };
    let (id, first) = journal
        .record_settled(&event, &ignored)
        .await
        .expect("recorded");
    assert!(first);
    let row = journal.entry(id).await.expect("entry").expect("row");
    assert!(
        row.resource_name.len() < 20_000,
        "{}",
        row.resource_name.len()
    );
    assert!(huge.starts_with(row.resource_name.split('…').next().expect("head")));
    assert_eq!(
        journal
            .record_settled(&event, &ignored)
            .await
            .expect("again"),
        (id, false),
        "a redelivery is still recognised: the keys are hashed whole"
    );
}
