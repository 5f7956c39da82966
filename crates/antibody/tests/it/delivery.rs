//! The delivery contract end to end: at least once in, each change acted on once, every accepted event a durable
//! row, a 4xx that says why for what cannot be read, and a 5xx for what should be delivered again.

use std::time::Duration;

use gcp_sandbox::DeliveryMode;
use serde_json::json;

use crate::harness::{Harness, Options, USER, USER_TOKEN, open_ssh};

#[tokio::test]
async fn redeliveries_of_one_event_lead_to_one_action() {
    // The rule exists before antibody subscribed; one event about it then arrives three times.
    let harness = Harness::with(Options {
        seed: vec![open_ssh("twice")],
        ..Options::default()
    })
    .await;
    harness
        .user_inserts(json!({"name": "unrelated", "allowed": [{"IPProtocol": "icmp"}]}))
        .await;
    let before = harness.outcomes().await.len();
    let mut entry = harness.sandbox.audit_entries()[0].clone();
    entry["insertId"] = json!("brand-new-insert-id");
    entry["operation"]["id"] = json!("operation-replayed");
    entry["protoPayload"]["resourceName"] = json!("projects/test-project/global/firewalls/twice");
    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "fixed-id"),
        (
            "ce-source",
            "//cloudaudit.googleapis.com/projects/test-project/logs/activity",
        ),
        ("ce-type", "google.cloud.audit.log.v1.written"),
        ("content-type", "application/json; charset=utf-8"),
    ];
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(harness.post(&headers, entry.to_string()).await);
    }
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert_eq!(answers[0].1["outcome"], "remediated");
    assert_eq!(answers[1].1["outcome"], "duplicate");
    assert_eq!(answers[2].1["outcome"], "duplicate");
    harness.sandbox.settled().await;
    assert_eq!(harness.rule("twice").await["disabled"], true);
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let replayed = rows
        .iter()
        .find(|row| row.operation_id.as_deref() == Some("operation-replayed"))
        .expect("row");
    assert_eq!(replayed.deliveries, 3);
    assert_eq!(
        harness.outcomes().await.len(),
        before + 1 + 2,
        "one row for the event, two for antibody's own patch"
    );
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn the_same_entry_through_two_pipelines_is_one_event() {
    let harness = Harness::start().await;
    harness.user_inserts(open_ssh("two-paths")).await;
    let rows = harness.outcomes().await.len();
    let entry = harness.sandbox.audit_entries()[0].clone();
    use base64::Engine;
    let envelope = json!({"subscription": "projects/test-project/subscriptions/sink", "message": {
        "data": base64::engine::general_purpose::STANDARD.encode(entry.to_string()), "messageId": "9"}});
    let (status, body) = harness
        .post(
            &[("content-type", "application/json")],
            envelope.to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["outcome"], "duplicate",
        "(logName, insertId) already seen via Eventarc"
    );
    assert_eq!(harness.outcomes().await.len(), rows);
}

#[tokio::test]
async fn a_compliant_change_is_one_row_and_its_copies_are_duplicates() {
    let harness = Harness::start().await;
    harness
        .user_inserts(
            json!({"name": "tidy", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
                             "sourceRanges": ["10.0.0.0/8"]}),
        )
        .await;
    // Both entries of the insert re-read the rule and find it compliant: a row each.
    assert_eq!(harness.outcomes().await, ["compliant", "compliant"]);
    let entry = harness.sandbox.audit_entries()[0].clone();
    use base64::Engine;
    let envelope = json!({"subscription": "projects/test-project/subscriptions/sink", "message": {
        "data": base64::engine::general_purpose::STANDARD.encode(entry.to_string()), "messageId": "10"}});
    for _ in 0..2 {
        let (status, body) = harness
            .post(
                &[("content-type", "application/json")],
                envelope.to_string(),
            )
            .await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("duplicate")),
            "the entry was decided through Eventarc already: {body}"
        );
    }
    assert_eq!(harness.outcomes().await.len(), 2);
    let rows = harness.cx().journal.entries(10).await.expect("journal");
    let first = rows.iter().min_by_key(|row| row.id).expect("a row");
    assert_eq!(first.deliveries, 3, "the copies are counted on the row");
    assert_eq!(
        first.before.as_ref().map(|before| before["name"].clone()),
        Some(json!("tidy")),
        "the state the decision was made on is journaled"
    );
}

#[tokio::test]
async fn structured_mode_and_pubsub_push_heal_too() {
    for mode in [DeliveryMode::EventarcStructured, DeliveryMode::PubSubPush] {
        let harness = Harness::with(Options {
            mode,
            ..Options::default()
        })
        .await;
        harness.user_inserts(open_ssh("via-other-envelope")).await;
        assert_eq!(
            harness.rule("via-other-envelope").await["disabled"],
            true,
            "{mode:?}"
        );
        assert_eq!(harness.count("remediated").await, 1, "{mode:?}");
    }
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_that_says_why() {
    let harness = Harness::start().await;
    let (status, body) = harness
        .post(
            &[("content-type", "application/json")],
            "{\"hello\": 1}".into(),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| error.contains("LogEntry")),
        "{body}"
    );
    assert!(
        harness.outcomes().await.is_empty(),
        "nothing accepted, nothing journaled"
    );
}

#[tokio::test]
async fn every_accepted_event_has_a_durable_row_in_the_file() {
    let harness = Harness::start().await;
    harness.user_inserts(open_ssh("durable")).await;
    let reopened = harness.reopen_journal().await;
    let rows = reopened.entries(100).await.expect("rows");
    assert_eq!(
        rows.len(),
        4,
        "first+last of the user's insert, first+last of antibody's patch"
    );
    assert!(rows.iter().all(|row| row.state == "done"));
}

#[tokio::test]
async fn a_claim_abandoned_by_a_crash_is_handled_on_redelivery() {
    let harness = Harness::with(Options {
        seed: vec![open_ssh("orphan")],
        sqlite_only: true,
        ..Options::default()
    })
    .await;
    harness
        .user_inserts(json!({"name": "other", "allowed": [{"IPProtocol": "icmp"}]}))
        .await;
    let mut entry = harness.sandbox.audit_entries()[0].clone();
    entry["insertId"] = json!("crash-1");
    entry["operation"] = serde_json::Value::Null;
    entry["protoPayload"]["resourceName"] = json!("projects/test-project/global/firewalls/orphan");
    let event = antibody::event::AuditEvent::from_log_entry(
        &entry,
        antibody::event::Transport::LogEntry,
        None,
    )
    .expect("event");
    // The process claimed the event and died before finishing it.
    assert!(matches!(
        harness.cx().journal.claim(&event).await.expect("claim"),
        antibody::journal::Claim::New { .. }
    ));
    let (status, early) = harness
        .post(&[("content-type", "application/json")], entry.to_string())
        .await;
    assert_eq!(
        (status, early["outcome"].as_str()),
        (503, Some("in-progress")),
        "a fresh claim may still be in progress elsewhere: the sender is asked to come back"
    );
    // Once the claim is stale the claim counts as abandoned, and the redelivery is handled.
    let connection = rusqlite::Connection::open(&harness.cx().config.state).expect("open");
    connection
        .execute(
            "UPDATE events SET claimed_epoch = claimed_epoch - 3600 WHERE log_key LIKE '%crash-1'",
            [],
        )
        .expect("age");
    let (status, body) = harness
        .post(&[("content-type", "application/json")], entry.to_string())
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("remediated")),
        "{body}"
    );
    assert_eq!(harness.rule("orphan").await["disabled"], true);
}

#[tokio::test]
async fn a_saturated_receiver_answers_503_with_retry_after() {
    let options = Options {
        tweak: Box::new(|config| config.max_in_flight = 1),
        operation_delay: Duration::from_millis(300),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let slow = harness
        .http
        .post(harness.firewalls_url())
        .bearer_auth(USER_TOKEN)
        .json(&open_ssh("slow-one"))
        .send();
    slow.await.expect("insert");
    // Wait until the first delivery is being handled (its fix waits on a slow operation): its row is `processing`.
    let mut busy = false;
    for _ in 0..200 {
        let rows = harness.cx().journal.entries(10).await.expect("journal");
        if rows.iter().any(|row| row.state == "processing") {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(busy, "the first event is in flight");
    let response = harness
        .http
        .post(harness.engine.url())
        .header("content-type", "application/json")
        .body(
            json!({"insertId": "x", "protoPayload": {"serviceName": "s", "methodName": "m"}})
                .to_string(),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    harness.sandbox.settled().await;
    assert_eq!(
        harness.rule("slow-one").await["disabled"],
        true,
        "the sandbox redelivered what was refused"
    );
}

/// One deployment fed by its project's Eventarc triggers and an organization sink's push subscription sees each
/// entry twice, at the same moment, through two transports with different delivery ids (the test above replays one
/// afterwards): the entry's (logName, insertId) makes one of them a duplicate — or a redelivery while the other is in
/// flight — so each entry is one row and the change is fixed once.
#[tokio::test]
async fn an_entry_arriving_through_eventarc_and_a_sink_is_fixed_once() {
    let harness = Harness::start().await;
    harness.sandbox.add_delivery(gcp_sandbox::Delivery {
        url: harness.engine.url(),
        mode: DeliveryMode::PubSubPush,
        identity: None,
        filter: None,
    });
    harness.user_inserts(open_ssh("two-pipelines")).await;
    assert_eq!(harness.rule("two-pipelines").await["disabled"], true);
    assert_eq!(harness.count("remediated").await, 1);
    let rows = harness.cx().journal.entries(50).await.expect("journal");
    let transports: std::collections::BTreeSet<&str> =
        rows.iter().map(|row| row.transport.as_str()).collect();
    assert!(transports.contains("eventarc-binary"), "{transports:?}");
    let fixes: Vec<_> = rows.iter().filter(|row| row.fix.is_some()).collect();
    assert_eq!(fixes.len(), 1, "{rows:#?}");
    let users: Vec<_> = rows.iter().filter(|row| row.principal == USER).collect();
    let entries = harness
        .sandbox
        .audit_entries()
        .into_iter()
        .filter(|entry| entry["protoPayload"]["authenticationInfo"]["principalEmail"] == USER)
        .count();
    assert_eq!(
        users.len(),
        entries,
        "one journal row per entry, not per delivery: {users:#?}"
    );
    assert!(users.iter().all(|row| row.deliveries >= 2), "{users:#?}");
}

// Cloud Run's front end speaks HTTP/2 cleartext to a service deployed with `--use-http2`: many deliveries on one
// connection, each handled as over HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_over_http2_cleartext_are_handled_like_any_other() {
    let rules: Vec<serde_json::Value> = (0..20).map(|i| open_ssh(&format!("h2-{i}"))).collect();
    let sandbox = crate::replicas::sandbox(rules).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut config = antibody::config::Config {
        state: dir.path().join("journal.sqlite"),
        google_endpoint: Some(sandbox.base_url()),
        access_token: Some(crate::harness::ENGINE_TOKEN.into()),
        identities: vec![crate::harness::ENGINE.into()],
        ..antibody::config::Config::default()
    };
    config.safety.flap_threshold = 0;
    config.safety.max_fixes_per_project_per_hour = 0;
    config.safety.max_fixes_per_instance_per_hour = 0;
    let context = antibody::build(config, antibody::notify::LogSink::memory())
        .await
        .expect("engine builds");
    let engine = antibody::start(context, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("engine starts");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an HTTP/2 client");
    let deliveries: Vec<_> = (0..20)
        .map(|i| {
            let (client, url) = (h2.clone(), engine.url());
            tokio::spawn(async move {
                let entry =
                    crate::replicas::entry_about(&format!("h2-{i}"), &format!("insert-h2-{i}"));
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(entry.to_string())
                    .send()
                    .await
                    .expect("an HTTP/2 answer");
                assert_eq!(response.version(), reqwest::Version::HTTP_2);
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("json");
                (status, body)
            })
        })
        .collect();
    for delivery in deliveries {
        let (status, body) = delivery.await.expect("task");
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("remediated")),
            "{body}"
        );
    }
    assert_eq!(
        engine
            .context
            .journal
            .entries(100)
            .await
            .expect("rows")
            .len(),
        20,
        "one row per delivery"
    );
}
