//! Google's bad days, injected by the sandbox: bounded retries, redelivery through 5xx, clear journal entries.

use gcp_sandbox::faults::Fault;
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options, open_ssh};

fn fault(method: &str, path: &str) -> Fault {
    Fault {
        method: Some(method.into()),
        path_contains: path.into(),
        principal: Some(ENGINE.into()),
        times: 1,
        status: None,
        retry_after: None,
        delay_ms: None,
        operation_error: None,
        delete_first: false,
        reset: None,
    }
}

async fn seeded(name: &str) -> Harness {
    Harness::with(Options {
        seed: vec![open_ssh(name)],
        ..Options::default()
    })
    .await
}

/// Makes the user touch the rule so that its event is delivered.
async fn poke(harness: &Harness, name: &str) {
    harness
        .user_patches(name, json!({"description": "touched"}))
        .await;
}

#[tokio::test]
async fn transient_read_errors_are_retried_within_the_call() {
    let harness = seeded("flaky-read").await;
    harness.sandbox.inject(Fault {
        times: 2,
        status: Some(503),
        ..fault("GET", "/firewalls/flaky-read")
    });
    poke(&harness, "flaky-read").await;
    assert_eq!(harness.rule("flaky-read").await["disabled"], true);
    assert_eq!(
        harness.count("retry").await,
        0,
        "two 503s fit within one call's bounded retries"
    );
}

#[tokio::test]
async fn quota_errors_honour_retry_after_and_still_fix() {
    let harness = seeded("throttled").await;
    harness.sandbox.inject(Fault {
        status: Some(429),
        retry_after: Some(1),
        ..fault("PATCH", "/firewalls/throttled")
    });
    let started = std::time::Instant::now();
    poke(&harness, "throttled").await;
    assert_eq!(harness.rule("throttled").await["disabled"], true);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "Retry-After: 1 was waited out"
    );
}

#[tokio::test]
async fn a_persistent_outage_answers_503_and_the_redelivery_fixes_it() {
    let harness = seeded("outage").await;
    // More failures than one call retries: the event is answered 503, the sandbox redelivers, the next try works.
    harness.sandbox.inject(Fault {
        times: 3,
        status: Some(500),
        ..fault("GET", "/firewalls/outage")
    });
    poke(&harness, "outage").await;
    assert_eq!(harness.rule("outage").await["disabled"], true);
    let statuses: Vec<u16> = harness
        .sandbox
        .delivery_attempts()
        .iter()
        .map(|attempt| attempt.status)
        .collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    assert_eq!(
        harness.count("remediated").await,
        1,
        "one fix, however many deliveries"
    );
}

#[tokio::test]
async fn an_operation_that_ends_in_error_is_a_clear_failure() {
    let harness = seeded("op-fails").await;
    harness.sandbox.inject(Fault {
        operation_error: Some("Quota 'FIREWALLS' exceeded".into()),
        ..fault("PATCH", "/firewalls/op-fails")
    });
    poke(&harness, "op-fails").await;
    let entries = harness.cx().journal.entries(20).await.expect("journal");
    let failed = entries
        .iter()
        .find(|entry| entry.outcome.as_deref() == Some("failed"))
        .expect("a failed row");
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("Quota 'FIREWALLS' exceeded")),
        "{failed:?}"
    );
    assert!(failed.fix.is_some(), "the attempted fix is journaled");
    // Issue 18, item 4: the last audit entry of an operation that ends in an error says so. (The insert's own last
    // entry is then decided again, and that fix goes through.)
    let last = harness
        .sandbox
        .audit_entries()
        .into_iter()
        .find(|entry| {
            entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ENGINE
                && entry["operation"]["last"] == true
        })
        .expect("the last entry of antibody's patch");
    assert_eq!(last["severity"], "ERROR", "{last}");
    assert!(
        last["protoPayload"]["status"]["code"]
            .as_i64()
            .is_some_and(|code| code != 0)
    );
}

#[tokio::test]
async fn a_rule_deleted_between_read_and_patch_is_gone_not_failed() {
    let harness = seeded("vanishing").await;
    harness.sandbox.inject(Fault {
        delete_first: true,
        ..fault("PATCH", "/firewalls/vanishing")
    });
    harness
        .user_patches("vanishing", json!({"description": "touched"}))
        .await;
    let outcomes = harness.outcomes().await;
    assert!(outcomes.contains(&"gone".to_string()), "{outcomes:?}");
    assert!(!outcomes.contains(&"failed".to_string()), "{outcomes:?}");
}

#[tokio::test]
async fn connection_resets_are_retried_and_never_apply_twice() {
    for (name, reset) in [
        ("reset-before", gcp_sandbox::faults::Reset::Before),
        ("reset-after", gcp_sandbox::faults::Reset::After),
    ] {
        let harness = seeded(name).await;
        // The read and the write each lose their connection once; the write, after Google applied it.
        harness.sandbox.inject(Fault {
            reset: Some(reset),
            ..fault("GET", &format!("/firewalls/{name}"))
        });
        harness.sandbox.inject(Fault {
            reset: Some(reset),
            ..fault("PATCH", &format!("/firewalls/{name}"))
        });
        poke(&harness, name).await;
        assert_eq!(harness.rule(name).await["disabled"], true, "{name}");
        assert_eq!(harness.count("remediated").await, 1, "{name}");
        let writes = harness
            .sandbox
            .audit_entries()
            .iter()
            .filter(|entry| {
                entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ENGINE
                    && entry["operation"]["last"] != true
            })
            .count();
        assert_eq!(
            writes, 1,
            "{name}: the retried write took effect once (requestId)"
        );
    }
}

#[tokio::test]
async fn a_connection_that_keeps_resetting_answers_503_for_redelivery() {
    let harness = seeded("always-reset").await;
    harness.sandbox.inject(Fault {
        reset: Some(gcp_sandbox::faults::Reset::Before),
        times: 100,
        ..fault("PATCH", "/firewalls/always-reset")
    });
    poke(&harness, "always-reset").await;
    assert!(
        harness.count("retry").await >= 1,
        "{:?}",
        harness.outcomes().await
    );
    assert_eq!(harness.rule("always-reset").await["disabled"], false);
}

#[tokio::test]
async fn requests_are_paced_per_project() {
    let rules: Vec<_> = (0..3).map(|i| open_ssh(&format!("r{i}"))).collect();
    let harness = Harness::with(Options {
        seed: rules,
        ..Options::default()
    })
    .await;
    let client = antibody::gcp::Client::new(
        antibody::gcp::Endpoints::new(Some(&harness.sandbox.base_url())),
        Some(crate::harness::ENGINE_TOKEN.into()),
    )
    .with_rate_limit(10);
    let started = std::time::Instant::now();
    // 25 reads about one project at 10 per second, evenly spaced (no burst, so that no one-second window of Google's
    // sees more than 10): the 25th goes out 2.4 s after the first.
    let busy = (0..25).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let _ = client
                .get_firewall(crate::harness::PROJECT, &format!("r{}", i % 3))
                .await;
            std::time::Instant::now()
        })
    });
    let busy: Vec<_> = busy.collect();
    // Another project has a budget of its own: its reads do not wait behind the busy one.
    let other = client.clone();
    let quiet = tokio::spawn(async move {
        for _ in 0..5 {
            let _ = other.get_firewall("another-project", "missing").await;
        }
        std::time::Instant::now()
    });
    let mut last = started;
    for handle in busy {
        last = last.max(handle.await.expect("task"));
    }
    let quiet_done = quiet.await.expect("task");
    assert!(
        last - started >= std::time::Duration::from_millis(2300),
        "paced: {:?}",
        last - started
    );
    assert!(quiet_done < last, "the other project was not held up");
}
