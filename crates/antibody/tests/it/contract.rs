//! One journal contract for every backend: the operations the engine relies on behave alike on SQLite, PostgreSQL
//! and Firestore (the sandbox's, over real HTTP). A new backend is added by running `contract` against it.

use antibody::event::{AuditEvent, Transport};
use std::time::Duration;

use antibody::clock::Clock;
use antibody::journal::{Claim, Journal, OutboxItem, Record};
use serde_json::json;

use crate::pg::Cluster;

fn event(insert_id: &str, operation: Option<&str>) -> AuditEvent {
    let mut entry = json!({"insertId": insert_id, "logName": "projects/contract-project/logs/x",
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
            "resourceName": "projects/contract-project/global/firewalls/fw",
            "authenticationInfo": {"principalEmail": format!("{insert_id}@example.com")}},
        "resource": {"labels": {"project_id": "contract-project"}}});
    if let Some(operation) = operation {
        entry["operation"] = json!({"id": operation, "first": true});
    }
    AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an audit entry")
}

const KEY: &str = "projects/contract-project/global/firewalls/fw";

fn done(outcome: &str) -> Record {
    Record {
        outcome: outcome.into(),
        reason: format!("{outcome} in the contract test"),
        resource_key: Some(KEY.into()),
        ..Record::default()
    }
}

fn new_id(claim: Claim) -> i64 {
    match claim {
        Claim::New { id, .. } => id,
        other => panic!("expected a new claim, got {other:?}"),
    }
}

fn alert(channel: &str, action: &str, dedup_key: &str) -> OutboxItem {
    OutboxItem {
        id: 0,
        event_id: 0,
        channel: channel.into(),
        action: action.into(),
        dedup_key: dedup_key.into(),
        body: json!({"text": action}).to_string(),
        state: "pending".into(),
        attempts: 0,
        last_error: None,
    }
}

/// Every operation of the journal, as the engine uses it. `journal` runs on a manual clock: the windows are
/// crossed by moving it, not by waiting.
async fn contract(journal: &Journal) {
    // Settled events: one row per entry; a redelivery counts on it.
    let ignored = event("settled", None);
    let (id, first) = journal
        .record_settled(&ignored, &done("ignored"))
        .await
        .expect("settled");
    assert!(first);
    let (again, first) = journal
        .record_settled(&ignored, &done("ignored"))
        .await
        .expect("settled again");
    assert_eq!((again, first), (id, false));
    let row = journal.entry(id).await.expect("entry").expect("a row");
    assert_eq!(
        (row.deliveries, row.outcome.as_deref()),
        (2, Some("ignored"))
    );
    assert!(journal.entry(i64::MAX).await.expect("entry").is_none());

    // Claims: new, in progress while this process handles it, redelivered after a transient failure, then a
    // duplicate once done.
    let claimed = event("claimed", Some("operation-1"));
    let id = new_id(journal.claim(&claimed).await.expect("claim"));
    assert_eq!(
        journal.claim(&claimed).await.expect("claim"),
        Claim::InProgress { of: id }
    );
    let retry = Record {
        retry: true,
        ..done("retry")
    };
    journal.finish(id, &retry).await.expect("finish");
    assert_eq!(
        new_id(journal.claim(&claimed).await.expect("reclaim")),
        id,
        "a transient failure is claimed again on the same row"
    );
    let fix: antibody::kinds::Fix = serde_json::from_value(
        json!({"kind": "disable_firewall", "project": "contract-project", "name": "fw"}),
    )
    .expect("a fix");
    assert!(
        journal
            .announce_fix(id, "contract-project", 0, &fix, &json!({"name": "fw"}))
            .await
            .expect("announce")
    );
    let remediated = Record {
        fix: Some(fix.clone()),
        before: Some(json!({"name": "fw", "disabled": false})),
        after: Some(json!({"name": "fw", "disabled": true})),
        ..done("remediated")
    };
    journal
        .finish_with(id, &remediated, vec![alert("slack#0", "alert", "dedup-1")])
        .await
        .expect("finish with alerts");
    assert_eq!(
        journal.claim(&claimed).await.expect("claim"),
        Claim::Duplicate { of: id }
    );
    let row = journal.entry(id).await.expect("entry").expect("row");
    assert_eq!(row.outcome.as_deref(), Some("remediated"));
    assert_eq!(row.fix, Some(fix.clone()));
    assert_eq!(row.after, Some(json!({"name": "fw", "disabled": true})));
    // The other entry of the same operation finds the fix already made.
    let last = event("claimed-last", Some("operation-1"));
    match journal.claim(&last).await.expect("claim") {
        Claim::New {
            remediated_by: Some(of),
            ..
        } => assert_eq!(of, id),
        other => panic!("the operation's other entry: {other:?}"),
    }

    // The alert outbox: written with the decision, due, retried, delivered; incidents open until resolved.
    let alerts = journal.alerts_for(id).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    let due = journal
        .due_alerts(i64::MAX / 2, 10)
        .await
        .expect("due alerts");
    assert!(due.iter().any(|item| item.id == alerts[0].id));
    journal
        .alert_attempt_failed(alerts[0].id, "503", Some(0))
        .await
        .expect("failed attempt");
    assert!(journal.next_alert_due().await.expect("next").is_some());
    journal
        .alert_delivered(alerts[0].id)
        .await
        .expect("delivered");
    let delivered = journal.alerts_for(id).await.expect("alerts");
    assert_eq!(
        (delivered[0].state.as_str(), delivered[0].attempts),
        ("delivered", 2),
        "every attempt counts, the one that got through too"
    );
    let pager = new_id(journal.claim(&event("paged", None)).await.expect("claim"));
    journal
        .finish_with(
            pager,
            &done("remediated"),
            vec![alert("pagerduty#1", "trigger", "dedup-2")],
        )
        .await
        .expect("trigger");
    assert!(
        journal
            .incident_open("pagerduty#1", "dedup-2")
            .await
            .expect("open")
    );
    let resolved = new_id(
        journal
            .claim(&event("resolved", None))
            .await
            .expect("claim"),
    );
    journal
        .finish_with(
            resolved,
            &done("compliant"),
            vec![alert("pagerduty#1", "resolve", "dedup-2")],
        )
        .await
        .expect("resolve");
    assert!(
        !journal
            .incident_open("pagerduty#1", "dedup-2")
            .await
            .expect("closed")
    );
    let failed = journal.alerts_for(resolved).await.expect("alerts")[0].id;
    journal
        .alert_attempt_failed(failed, "gone", None)
        .await
        .expect("given up");
    assert_eq!(
        journal.alerts_for(resolved).await.expect("alerts")[0].state,
        "failed"
    );
    assert!(journal.alerts(100).await.expect("all alerts").len() >= 3);

    // The gate's view of a resource: recent fixes and who broke it, the project's slots, the registry, quarantine,
    // the kill switch.
    let safety = journal
        .safety(KEY, "contract-project", 3600)
        .await
        .expect("safety");
    assert_eq!(safety.recent_fixes_of_resource, 2, "{safety:?}");
    assert!(
        safety
            .recent_breakers
            .contains(&"claimed@example.com".to_string())
    );
    assert!(!safety.paused && safety.exemption.is_none() && safety.quarantined.is_none());
    assert!(
        journal
            .reserve_fix("capped-project", 2)
            .await
            .expect("slot")
    );
    assert!(
        journal
            .reserve_fix("capped-project", 2)
            .await
            .expect("slot")
    );
    assert!(
        !journal
            .reserve_fix("capped-project", 2)
            .await
            .expect("no slot")
    );
    assert!(
        journal
            .reserve_fix("capped-project", 0)
            .await
            .expect("no cap")
    );
    let capped = journal
        .safety(
            "projects/capped-project/global/firewalls/x",
            "capped-project",
            3600,
        )
        .await
        .expect("safety");
    assert_eq!(capped.recent_fixes_in_project, 2);
    let claimed_capped = new_id(journal.claim(&event("capped", None)).await.expect("claim"));
    assert!(
        !journal
            .announce_fix(claimed_capped, "capped-project", 2, &fix, &json!({}))
            .await
            .expect("announce"),
        "the cap leaves no slot"
    );

    let exemption = journal
        .add_exemption(
            "projects/contract-project/global/firewalls/*",
            "me",
            "migration",
            None,
        )
        .await
        .expect("exempt");
    let expired = journal
        .add_exemption(KEY, "me", "old", Some(journal.clock().now_secs() - 10))
        .await
        .expect("exempt");
    let safety = journal
        .safety(KEY, "contract-project", 3600)
        .await
        .expect("safety");
    assert_eq!(safety.exemption.map(|found| found.id), Some(exemption));
    assert_eq!(journal.exemptions().await.expect("list").len(), 2);
    assert!(journal.remove_exemption(exemption).await.expect("remove"));
    assert!(
        !journal
            .remove_exemption(exemption)
            .await
            .expect("removed once")
    );
    assert!(
        journal
            .safety(KEY, "contract-project", 3600)
            .await
            .expect("safety")
            .exemption
            .is_none(),
        "an expired entry stops applying by itself"
    );
    assert!(journal.remove_exemption(expired).await.expect("remove"));

    assert!(
        journal
            .quarantine(KEY, "a@example.com", "re-broken")
            .await
            .expect("q")
    );
    assert!(
        !journal
            .quarantine(KEY, "a@example.com", "again")
            .await
            .expect("q once")
    );
    assert_eq!(
        journal.quarantined().await.expect("list")[0].resource_key,
        KEY
    );
    assert!(
        journal
            .safety(KEY, "contract-project", 3600)
            .await
            .expect("safety")
            .quarantined
            .is_some()
    );
    assert!(journal.release(KEY).await.expect("release"));
    assert!(!journal.release(KEY).await.expect("released once"));
    assert_eq!(
        journal
            .safety(KEY, "contract-project", 3600)
            .await
            .expect("safety")
            .recent_fixes_of_resource,
        0,
        "a release starts the flap window afresh"
    );

    journal.set_paused(true).await.expect("pause");
    assert!(
        journal
            .safety(KEY, "contract-project", 3600)
            .await
            .expect("safety")
            .paused
    );
    assert!(journal.metrics().await.expect("metrics").paused);
    journal.set_paused(false).await.expect("resume");
    journal.writable().await.expect("writable");

    // Deferred decisions: the earlier schedule wins, what each deferral said is kept (the hints together), and a
    // due one is taken once.
    let now = journal.clock().now_secs();
    journal
        .defer(
            KEY,
            "contract-project",
            now + 100,
            Some(r#"[{"action":"REMOVE","logType":"DATA_READ"}]"#),
        )
        .await
        .expect("defer");
    journal
        .defer(KEY, "contract-project", now + 50, None)
        .await
        .expect("defer");
    journal
        .defer(
            KEY,
            "contract-project",
            now + 70,
            Some(r#"[{"action":"REMOVE","logType":"DATA_WRITE"}]"#),
        )
        .await
        .expect("defer");
    assert!(
        journal
            .take_due_rechecks(now + 10)
            .await
            .expect("none due")
            .is_empty()
    );
    assert_eq!(
        journal.take_due_rechecks(now + 60).await.expect("due"),
        vec![antibody::journal::Due {
            resource: KEY.to_string(),
            project: "contract-project".to_string(),
            hint: Some(
                r#"[{"action":"REMOVE","logType":"DATA_READ"},{"action":"REMOVE","logType":"DATA_WRITE"}]"#
                    .to_string()
            ),
        }]
    );
    assert!(
        journal
            .take_due_rechecks(now + 200)
            .await
            .expect("taken")
            .is_empty()
    );

    // An operator's action is a row of its own; the newest rows come first; metrics count outcomes.
    let undone = journal
        .begin_action("undo", KEY, "contract-project", "operator@example.com")
        .await
        .expect("action");
    journal
        .finish_with(
            undone,
            &done("undone"),
            vec![alert("slack#0", "alert", "dedup-3")],
        )
        .await
        .expect("action finished");
    assert_eq!(journal.alerts_for(undone).await.expect("alerts").len(), 1);
    let entries = journal.entries(100).await.expect("entries");
    assert_eq!(entries[0].id, undone);
    assert_eq!(entries[0].principal, "operator@example.com");
    assert!(entries.windows(2).all(|pair| pair[0].id > pair[1].id));
    let metrics = journal.metrics().await.expect("metrics");
    let count = |outcome: &str| {
        metrics
            .events_by_outcome
            .iter()
            .find(|(name, _)| name == outcome)
            .map(|(_, count)| *count)
    };
    assert_eq!(count("remediated"), Some(2));
    assert_eq!(count("undone"), Some(1));
    assert_eq!(metrics.quarantined, 0);
}

#[tokio::test]
async fn sqlite_keeps_the_journal_contract() {
    let dir = tempfile::tempdir().expect("dir");
    let journal = Journal::open_with(&dir.path().join("journal.sqlite"), Clock::manual())
        .await
        .expect("journal");
    contract(&journal).await;
    windows(&journal).await;
}

#[tokio::test]
async fn postgres_keeps_the_journal_contract() {
    let cluster = Cluster::start("postgres_keeps_the_journal_contract");
    let database = cluster.database().await;
    let journal = Journal::open_with(database.as_ref(), Clock::manual())
        .await
        .expect("journal");
    contract(&journal).await;
    windows(&journal).await;
}

/// A Firestore journal in a fresh sandbox, reached as `serve` reaches it: the sandbox's endpoint, no credentials.
pub async fn firestore_journal(clock: Clock) -> (gcp_sandbox::Running, Journal) {
    let sandbox = gcp_sandbox::start(
        gcp_sandbox::SandboxConfig::default(),
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox starts");
    let access = antibody::journal::Access {
        endpoints: antibody::gcp::Endpoints::new(Some(&sandbox.base_url())).speaking_http2(true),
        credentials: std::sync::Arc::new(antibody::gcp::auth::Credentials::Anonymous),
    };
    let journal = Journal::open_using(
        std::path::Path::new("firestore://contract-project"),
        clock,
        Some(&access),
    )
    .await
    .expect("journal");
    (sandbox, journal)
}

#[tokio::test]
async fn firestore_keeps_the_journal_contract() {
    let (_sandbox, journal) = firestore_journal(Clock::manual()).await;
    contract(&journal).await;
    windows(&journal).await;
}

/// The journal's windows, crossed on the journal's own (manual) clock: a fix slot frees after an hour, the flap window
/// and a registered exemption end, a deferred decision falls due, and a claim left `processing` goes stale.
async fn windows(journal: &Journal) {
    let clock = journal.clock().clone();
    let key = "projects/window-project/global/firewalls/fw";
    let claim = |insert_id: &str| {
        let entry = json!({"insertId": insert_id, "logName": "projects/window-project/logs/x",
            "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
                "resourceName": key, "authenticationInfo": {"principalEmail": "someone@example.com"}}});
        AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an audit entry")
    };
    let slot = || journal.reserve_fix("window-project", 1);
    assert!(slot().await.expect("slot"));
    assert!(!slot().await.expect("slot"), "one per hour");
    clock.advance(Duration::from_secs(3599));
    assert!(!slot().await.expect("slot"), "still within the hour");
    clock.advance(Duration::from_secs(2));
    assert!(slot().await.expect("slot"), "free again after the hour");

    let fixed = new_id(journal.claim(&claim("window-fix")).await.expect("claim"));
    let mut remediated = done("remediated");
    remediated.resource_key = Some(key.into());
    journal.finish(fixed, &remediated).await.expect("finish");
    let flaps = |window: i64| async move {
        journal
            .safety(key, "window-project", window)
            .await
            .expect("safety")
            .recent_fixes_of_resource
    };
    assert_eq!(flaps(600).await, 1);
    clock.advance(Duration::from_secs(601));
    assert_eq!(flaps(600).await, 0, "the fix left the flap window");

    let now = clock.now_secs();
    journal
        .add_exemption(key, "me", "an hour's maintenance", Some(now + 3600))
        .await
        .expect("exempt");
    journal
        .defer(key, "window-project", now + 30, None)
        .await
        .expect("defer");
    let exempt = || async {
        journal
            .safety(key, "window-project", 600)
            .await
            .expect("safety")
            .exemption
            .is_some()
    };
    assert!(exempt().await);
    assert!(
        journal
            .take_due_rechecks(clock.now_secs())
            .await
            .expect("rechecks")
            .is_empty()
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        journal
            .take_due_rechecks(clock.now_secs())
            .await
            .expect("rechecks"),
        vec![antibody::journal::Due {
            resource: key.to_string(),
            project: "window-project".to_string(),
            hint: None,
        }]
    );
    clock.advance(Duration::from_secs(3600));
    assert!(!exempt().await, "the exemption expired");

    let stuck = claim("window-stuck");
    let id = new_id(journal.claim(&stuck).await.expect("claim"));
    assert!(matches!(
        journal.claim(&stuck).await.expect("claim"),
        Claim::InProgress { of } if of == id
    ));
    clock.advance(Duration::from_secs(301));
    assert!(
        matches!(journal.claim(&stuck).await.expect("claim"), Claim::New { id: again, .. } if again == id),
        "a claim left processing for five minutes is taken over"
    );
}
