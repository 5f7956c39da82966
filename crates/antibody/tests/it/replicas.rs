//! Several replicas sharing PostgreSQL: deduplication, leases, caps and the outbox hold across processes, and a
//! stopped or frozen database turns into 503 answers (redelivered), never into an acknowledged event left unjournaled.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use antibody::config::Config;
use antibody::event::{AuditEvent, Transport};
use antibody::journal::{Claim, Journal};
use antibody::notify::LogSink;
use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

use crate::harness::{
    ENGINE, ENGINE_TOKEN, PROJECT, USER, USER_TOKEN, free_port, open_ssh, spawn, wait_for,
};
use crate::pg::Cluster;

fn localhost() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A sandbox with the user's and the engine's tokens, these rules, and no subscriber: the tests deliver by hand.
pub async fn sandbox(rules: Vec<Value>) -> gcp_sandbox::Running {
    let mut config = SandboxConfig::default();
    config.principals.insert(USER_TOKEN.into(), USER.into());
    config.principals.insert(ENGINE_TOKEN.into(), ENGINE.into());
    config.seed.firewalls.insert(PROJECT.into(), rules);
    gcp_sandbox::start(config, localhost())
        .await
        .expect("sandbox starts")
}

/// An audit entry as the user's insert of `rule` would produce it, with its own insertId.
pub fn entry_about(rule: &str, insert_id: &str) -> Value {
    json!({
        "insertId": insert_id,
        "logName": format!("projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"),
        "operation": {"id": format!("operation-{insert_id}"), "producer": "compute.googleapis.com", "first": true},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "compute.googleapis.com",
            "methodName": "v1.compute.firewalls.insert",
            "resourceName": format!("projects/{PROJECT}/global/firewalls/{rule}"),
            "authenticationInfo": {"principalEmail": USER},
        },
        "resource": {"type": "gce_firewall_rule", "labels": {"project_id": PROJECT}},
        "severity": "NOTICE",
        "timestamp": "2026-11-26T10:00:00.000Z",
    })
}

fn eventarc_headers(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ce-specversion", "1.0".into()),
        ("ce-id", id.into()),
        (
            "ce-source",
            format!("//cloudaudit.googleapis.com/projects/{PROJECT}/logs/activity"),
        ),
        ("ce-type", "google.cloud.audit.log.v1.written".into()),
        ("content-type", "application/json; charset=utf-8".into()),
    ]
}

pub async fn post(client: &reqwest::Client, url: &str, id: &str, entry: &Value) -> (u16, Value) {
    let mut request = client.post(url).body(entry.to_string());
    for (name, value) in eventarc_headers(id) {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(err) => panic!("posting to {url}: {err}"),
    }
}

/// Writes by antibody to one rule, as the sandbox's audit log records them (one per operation).
pub fn engine_writes(sandbox: &gcp_sandbox::Running, rule: &str) -> usize {
    sandbox
        .audit_entries()
        .iter()
        .filter(|entry| {
            entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ENGINE
                && entry["protoPayload"]["resourceName"]
                    .as_str()
                    .is_some_and(|name| name.ends_with(&format!("/firewalls/{rule}")))
                && entry["operation"]["last"] != true
        })
        .count()
}

/// An HTTP receiver that counts what it is sent.
pub async fn counting_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (sender, received) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(serde_json::from_slice(&body).unwrap_or_default());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_deliveries_over_two_processes_make_one_fix_one_outcome_one_alert() {
    let cluster = Cluster::start("ten_concurrent_deliveries_over_two_processes");
    let database = cluster.database().await;
    let sandbox = sandbox(vec![open_ssh("contested")]).await;
    ten_deliveries_over_two_processes(&database, &sandbox).await;
}

/// A journal as the state commands open it: `firestore://` through the sandbox, as `serve` reaches it.
pub async fn open_state(state: &str, sandbox: &gcp_sandbox::Running) -> Journal {
    let access = antibody::journal::Access {
        endpoints: antibody::gcp::Endpoints::new(Some(&sandbox.base_url())),
        credentials: std::sync::Arc::new(antibody::gcp::auth::Credentials::Token(
            ENGINE_TOKEN.into(),
        )),
    };
    Journal::open_using(
        state.as_ref(),
        antibody::clock::Clock::system(),
        Some(&access),
    )
    .await
    .expect("journal")
}

/// Two `antibody serve` processes sharing the state store `database`; ten deliveries of one entry spread over them
/// make one fix, one row, one alert.
pub async fn ten_deliveries_over_two_processes(database: &str, sandbox: &gcp_sandbox::Running) {
    let (hook, mut alerts) = counting_receiver().await;
    let client = crate::harness::http();
    // Two replicas start at once on an empty database: the migration runs once.
    let ports = [free_port(), free_port()];
    let _replicas: Vec<_> = ports
        .iter()
        .map(|port| {
            spawn(&[
                "serve",
                "--port",
                &port.to_string(),
                "--google-endpoint",
                &sandbox.base_url(),
                "--state",
                database,
                "--insecure-no-auth",
                "--access-token",
                ENGINE_TOKEN,
                "--identity",
                ENGINE,
                "--notify",
                &format!("webhook={hook}"),
            ])
        })
        .collect();
    for port in ports {
        wait_for(&format!("http://127.0.0.1:{port}/healthz"), &client).await;
    }
    let entry = entry_about("contested", "insert-contested");
    let deliveries: Vec<_> = (0..10)
        .map(|index| {
            let (client, entry) = (client.clone(), entry.clone());
            let url = format!("http://127.0.0.1:{}/", ports[index % 2]);
            tokio::spawn(async move { post(&client, &url, "event-contested", &entry).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut redeliver = 0;
    for delivery in deliveries {
        let (status, body) = delivery.await.expect("delivery task");
        if status == 503 {
            // Still being handled by the first delivery: Eventarc would redeliver later.
            assert_eq!(body["outcome"], "in-progress", "{body}");
            redeliver += 1;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        outcomes.push(body["outcome"].as_str().unwrap_or_default().to_string());
    }
    for index in 0..redeliver {
        let url = format!("http://127.0.0.1:{}/", ports[index % 2]);
        let (status, body) = post(&client, &url, "event-contested", &entry).await;
        assert_eq!(status, 200, "{body}");
        outcomes.push(body["outcome"].as_str().unwrap_or_default().to_string());
    }
    let remediated = outcomes.iter().filter(|o| *o == "remediated").count();
    let duplicates = outcomes.iter().filter(|o| *o == "duplicate").count();
    assert_eq!((remediated, duplicates), (1, 9), "{outcomes:?}");
    sandbox.settled().await;
    assert_eq!(engine_writes(sandbox, "contested"), 1, "one mutation");
    let journal = open_state(database, sandbox).await;
    let rows = journal.entries(100).await.expect("rows");
    assert_eq!(rows.len(), 1, "one journal row for the event");
    assert_eq!(rows[0].outcome.as_deref(), Some("remediated"));
    assert_eq!(rows[0].deliveries, 10 + redeliver as i64);
    let alert = tokio::time::timeout(Duration::from_secs(15), alerts.recv())
        .await
        .expect("an alert within 15 s")
        .expect("open");
    assert_eq!(
        alert["resource"],
        format!("projects/{PROJECT}/global/firewalls/contested")
    );
    crate::harness::all_delivered(&journal).await;
    assert!(alerts.try_recv().is_err(), "exactly one alert");
}

async fn replica(database: &str, sandbox: &gcp_sandbox::Running, cap: u32) -> antibody::Server {
    let mut config = Config {
        state: database.into(),
        google_endpoint: Some(sandbox.base_url()),
        access_token: Some(ENGINE_TOKEN.into()),
        identities: vec![ENGINE.into()],
        ..Config::default()
    };
    config.safety.max_fixes_per_project_per_hour = cap;
    config.safety.flap_threshold = 0;
    let context = antibody::build(config, LogSink::memory())
        .await
        .expect("engine builds");
    antibody::start(context, localhost())
        .await
        .expect("engine starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_project_cap_holds_across_replicas() {
    let cluster = Cluster::start("the_project_cap_holds_across_replicas");
    let database = cluster.database().await;
    cap_holds_across_replicas(&database).await;
}

/// Two replicas sharing the state store `database`, a cap of 10 fixes per project: 20 violations make 10 fixes and 10
/// held, whichever replica handles which.
pub async fn cap_holds_across_replicas(database: &str) {
    let rules: Vec<Value> = (0..20).map(|i| open_ssh(&format!("open-{i}"))).collect();
    let sandbox = sandbox(rules).await;
    let replicas = [
        replica(database, &sandbox, 10).await,
        replica(database, &sandbox, 10).await,
    ];
    let client = crate::harness::http();
    let deliveries: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            let url = replicas[i % 2].url();
            tokio::spawn(async move {
                let entry = entry_about(&format!("open-{i}"), &format!("insert-{i}"));
                post(&client, &url, &format!("event-{i}"), &entry).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        let (status, body) = delivery.await.expect("delivery task");
        assert_eq!(status, 200, "{body}");
        outcomes.push(body["outcome"].as_str().unwrap_or_default().to_string());
    }
    let count = |wanted: &str| outcomes.iter().filter(|o| *o == wanted).count();
    assert_eq!(
        (count("remediated"), count("held")),
        (10, 10),
        "{outcomes:?}"
    );
    sandbox.settled().await;
    let fixed = (0..20)
        .filter(|i| engine_writes(&sandbox, &format!("open-{i}")) == 1)
        .count();
    assert_eq!(fixed, 10, "ten rules changed, ten left for a person");
}

/// On Cloud Run a Cloud SQL database is reached through a Unix socket the platform mounts under `/cloudsql/`; a
/// replica connected that way shares its claims with one connected over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reaches_postgresql_through_a_unix_socket() {
    let cluster = Cluster::start_local("a_replica_reaches_postgresql_through_a_unix_socket");
    let database = cluster.database().await;
    let socket = cluster.socket_url(&database);
    let over_socket = Journal::open(socket.as_ref())
        .await
        .expect("a replica over the socket");
    let over_tcp = Journal::open(database.as_ref())
        .await
        .expect("a replica over TCP");
    let first = over_socket.claim(&event("socket")).await.expect("claim");
    assert!(matches!(first, Claim::New { .. }), "{first:?}");
    let second = over_tcp.claim(&event("socket")).await.expect("claim");
    assert!(
        matches!(second, Claim::InProgress { .. }),
        "the TCP replica sees the socket replica's claim: {second:?}"
    );
}

fn event(id: &str) -> AuditEvent {
    AuditEvent::from_log_entry(
        &entry_about("contested", id),
        Transport::EventarcBinary,
        Some(format!("delivery-{id}")),
    )
    .expect("a valid entry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_leases_slots_and_rechecks_are_shared_by_replicas() {
    let cluster = Cluster::start("claims_leases_slots_and_rechecks_are_shared_by_replicas");
    let database = cluster.database().await;
    let (a, b) = (
        Journal::open(database.as_ref()).await.expect("replica a"),
        Journal::open(database.as_ref()).await.expect("replica b"),
    );
    // Ten concurrent claims of one event, five per replica: exactly one is new.
    let claims: Vec<_> = (0..10)
        .map(|i| {
            let journal = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { journal.claim(&event("same")).await.expect("claim") })
        })
        .collect();
    let mut new = 0;
    for claim in claims {
        if matches!(claim.await.expect("task"), Claim::New { .. }) {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    // Twenty concurrent reservations against a cap of 10.
    let slots: Vec<_> = (0..20)
        .map(|i| {
            let journal = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { journal.reserve_fix("p", 10).await.expect("reserve") })
        })
        .collect();
    let mut granted = 0;
    for slot in slots {
        granted += usize::from(slot.await.expect("task"));
    }
    assert_eq!(granted, 10);
    // A lease keeps the other replica waiting until it is released.
    let held = a
        .hold("projects/p/global/firewalls/x")
        .await
        .expect("lease");
    assert!(held.is_some());
    assert!(
        b.try_hold("projects/p/global/firewalls/x")
            .await
            .expect("try")
            .is_none(),
        "the other replica cannot take a held lease"
    );
    assert!(
        b.try_hold("projects/p/global/firewalls/y")
            .await
            .expect("try")
            .is_some(),
        "another resource's lease is free"
    );
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.hold("projects/p/global/firewalls/x").await })
    };
    drop(held);
    let second = waiter.await.expect("task").expect("lease");
    assert!(
        second.is_some(),
        "the waiting replica takes it once released"
    );
    // A due recheck is taken by exactly one replica.
    a.defer("projects/p/global/firewalls/y", "p", 0, None)
        .await
        .expect("defer");
    let (from_a, from_b) = tokio::join!(a.take_due_rechecks(1), b.take_due_rechecks(1));
    assert_eq!(
        from_a.expect("a").len() + from_b.expect("b").len(),
        1,
        "one replica re-decides"
    );
    // The kill switch, quarantine and exemptions are one state for all.
    a.set_paused(true).await.expect("pause");
    assert!(b.metrics().await.expect("metrics").paused);
    assert!(a.quarantine("r", "someone", "flapping").await.expect("q"));
    assert!(!b.quarantine("r", "someone", "flapping").await.expect("q"));
    let id = a
        .add_exemption("projects/p/*", "me", "migration", None)
        .await
        .expect("exempt");
    assert_eq!(b.exemptions().await.expect("list")[0].id, id);
    assert!(b.remove_exemption(id).await.expect("remove"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_or_frozen_database_answers_503_and_nothing_is_lost() {
    let cluster = Cluster::start_local("a_stopped_or_frozen_database_answers_503");
    let database = cluster.database().await;
    let sandbox = sandbox(vec![open_ssh("r1"), open_ssh("r2"), open_ssh("r3")]).await;
    let engine = replica(&database, &sandbox, 0).await;
    let client = crate::harness::http();
    let url = engine.url();
    let (status, body) = post(&client, &url, "e1", &entry_about("r1", "i1")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("remediated"))
    );

    let ready = |client: reqwest::Client, url: String| async move {
        client
            .get(format!("{url}readyz"))
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or_default()
    };
    assert_eq!(ready(client.clone(), url.clone()).await, 200);
    cluster.stop();
    // A successful probe answers for its window (issue 35: each call was a journal write); then it probes again.
    tokio::time::sleep(Duration::from_millis(
        antibody::receive::READINESS_WINDOW_MS as u64 + 100,
    ))
    .await;
    // Issue 17, item 8: /readyz said "ok" whatever the journal's state.
    assert_eq!(
        ready(client.clone(), url.clone()).await,
        503,
        "not ready while the journal cannot be written"
    );
    let (status, body) = post(&client, &url, "e2", &entry_about("r2", "i2")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        engine_writes(&sandbox, "r2"),
        0,
        "nothing changed unjournaled"
    );
    cluster.restart();
    assert_eq!(ready(client.clone(), url.clone()).await, 200);
    let (status, body) = post(&client, &url, "e2", &entry_about("r2", "i2")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("remediated"))
    );

    cluster.freeze(true);
    let started = Instant::now();
    let (status, body) = post(&client, &url, "e3", &entry_about("r3", "i3")).await;
    let waited = started.elapsed();
    cluster.freeze(false);
    assert_eq!(status, 503, "{body}");
    assert!(waited < Duration::from_secs(15), "answered in {waited:?}");
    let (status, body) = post(&client, &url, "e3", &entry_about("r3", "i3")).await;
    assert_eq!(status, 200, "{body}");
    sandbox.settled().await;
    let journal = Journal::open(database.as_ref()).await.expect("journal");
    let rows = journal.entries(100).await.expect("rows");
    let remediated: Vec<&str> = rows
        .iter()
        .filter(|row| row.outcome.as_deref() == Some("remediated"))
        .map(|row| row.resource.as_str())
        .collect();
    assert_eq!(remediated.len(), 3, "{remediated:?}");
    for rule in ["r1", "r2", "r3"] {
        assert_eq!(engine_writes(&sandbox, rule), 1, "{rule} changed once");
    }
}
