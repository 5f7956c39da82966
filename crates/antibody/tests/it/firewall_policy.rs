//! Network firewall policies end to end: a rule added to a policy that lets the whole internet reach SSH is disabled
//! in place, the policy's other rules kept; undo enables it again; a sweep finds an open rule in a regional policy.

use antibody::scan;
use antibody::undo;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, PROJECT, USER_TOKEN};

async fn write(harness: &Harness, path: &str, body: Value) -> Value {
    let (status, reply) = harness
        .compute_as(USER_TOKEN, Method::POST, path, Some(body))
        .await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

async fn rule(harness: &Harness, policy: &str, priority: i64) -> Value {
    let (status, read) = harness
        .compute_as(
            USER_TOKEN,
            Method::GET,
            &format!("{policy}/getRule?priority={priority}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    read
}

fn open_ssh(priority: i64) -> Value {
    json!({"priority": priority, "action": "allow", "direction": "INGRESS", "description": "debugging",
        "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "tcp", "ports": ["22"]}]}})
}

// Issue 34: a world-open SSH rule in a network firewall policy (`networkFirewallPolicies.addRule`) was never seen,
// not even by a sweep, while the same rule as a VPC firewall rule is closed in seconds.
#[tokio::test]
async fn an_open_rule_added_to_a_policy_is_disabled_and_undo_enables_it() {
    let harness = Harness::start().await;
    write(
        &harness,
        "/global/firewallPolicies",
        json!({"name": "edge"}),
    )
    .await;
    let policy = "/global/firewallPolicies/edge";
    let internal = json!({"priority": 900, "action": "allow", "direction": "INGRESS",
        "match": {"srcIpRanges": ["10.0.0.0/8"], "layer4Configs": [{"ipProtocol": "tcp", "ports": ["22"]}]}});
    write(&harness, &format!("{policy}/addRule"), internal).await;
    write(&harness, &format!("{policy}/addRule"), open_ssh(1000)).await;
    harness.sandbox.settled().await;
    assert_eq!(rule(&harness, policy, 1000).await["disabled"], true);
    assert_eq!(rule(&harness, policy, 900).await["disabled"], false);
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let key = format!("projects/{PROJECT}/global/firewallPolicies/edge");
    let fixed = rows
        .iter()
        .find(|row| row.resource == key && row.outcome.as_deref() == Some("remediated"))
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(
        fixed
            .findings
            .iter()
            .any(|finding| finding.category == "OPEN_SSH_PORT"),
        "{fixed:?}"
    );
    assert_eq!(
        fixed.reason.as_deref(),
        Some("disabled the rule(s) at priority 1000")
    );
    let request = undo::Request {
        id: fixed.id,
        force: false,
        operator: "operator@example.com".into(),
        keep_exempt_secs: Some(3600),
    };
    let config = &harness.cx().config;
    let notify = (&config.templates, config.channels.as_slice());
    undo::undo(&harness.cx().journal, &harness.cx().gcp, notify, &request)
        .await
        .expect("undo");
    harness.sandbox.settled().await;
    assert_eq!(
        rule(&harness, policy, 1000).await["disabled"],
        false,
        "enabled again"
    );
}

#[tokio::test]
async fn a_sweep_finds_an_open_rule_in_a_regional_policy() {
    // In dry-run the service leaves the rule open: the sweep must find it on its own.
    let harness = Harness::with(crate::harness::Options {
        tweak: Box::new(|config| config.policies.firewall_policy.dry_run = true),
        ..crate::harness::Options::default()
    })
    .await;
    let policy = "/regions/us-central1/firewallPolicies/internal";
    write(
        &harness,
        "/regions/us-central1/firewallPolicies",
        json!({"name": "internal"}),
    )
    .await;
    harness.sandbox.settled().await;
    let report = scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.swept["firewall-policy"], 1);
    assert!(
        !report
            .violations
            .iter()
            .any(|violation| violation.resource.contains("/firewallPolicies/")),
        "Google's default rules go on to the next policy and open nothing"
    );
    let (status, reply) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/compute/v1/projects/{PROJECT}{policy}/addRule"),
            Some(open_ssh(10)),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    harness.sandbox.settled().await;
    let report = scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
    let found: Vec<&str> = report
        .violations
        .iter()
        .filter(|violation| violation.resource.contains("/firewallPolicies/"))
        .map(|violation| violation.resource.as_str())
        .collect();
    assert_eq!(
        found,
        [format!(
            "projects/{PROJECT}/regions/us-central1/firewallPolicies/internal"
        )]
    );
}

struct Quiet;

impl scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}
