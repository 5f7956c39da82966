//! End to end through real HTTP: a user opens a rule in the sandbox, the sandbox delivers the audit events,
//! antibody fixes the rule, and the rule reads back fixed.

use std::time::Duration;

use antibody::kinds::firewall::FixKind;
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options, USER, open_ssh};

// Issues 17 (item 2) and 18 (item 1): a rule that names no source is open to the world on Google, and antibody
// closes it.
#[tokio::test]
async fn a_source_less_ssh_rule_is_closed() {
    let harness = Harness::start().await;
    harness
        .user_inserts(
            json!({"name": "no-source", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
        )
        .await;
    let rule = harness.rule("no-source").await;
    assert_eq!(
        rule["sourceRanges"],
        json!(["0.0.0.0/0"]),
        "as Google fills it in"
    );
    assert_eq!(rule["disabled"], true);
    assert_eq!(harness.count("remediated").await, 1);
}

// Issue 17, item 2: 512 /9 ranges are all of IPv4.
#[tokio::test]
async fn a_rule_split_into_many_ranges_is_closed() {
    let harness = Harness::start().await;
    let nines: Vec<String> = (0..512u32)
        .map(|index| format!("{}.{}.0.0/9", index / 2, (index % 2) * 128))
        .collect();
    harness
        .user_inserts(json!({"name": "split", "sourceRanges": nines,
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}))
        .await;
    assert_eq!(harness.rule("split").await["disabled"], true);
}

#[tokio::test]
async fn an_open_ssh_rule_is_disabled_once() {
    let harness = Harness::start().await;
    harness.user_inserts(open_ssh("debug-ssh")).await;
    assert_eq!(harness.rule("debug-ssh").await["disabled"], true);
    // One action for the first/last pair; our own patch's events come back and are not acted on.
    assert_eq!(harness.count("remediated").await, 1);
    assert_eq!(harness.count("own-write").await, 2);
    let entries = harness.cx().journal.entries(100).await.expect("journal");
    let remediated = entries
        .iter()
        .find(|entry| entry.outcome.as_deref() == Some("remediated"))
        .expect("a fix");
    assert_eq!(remediated.principal, USER);
    assert_eq!(
        remediated
            .before
            .as_ref()
            .map(|before| before["disabled"].clone()),
        Some(json!(false))
    );
    assert_eq!(
        remediated
            .after
            .as_ref()
            .map(|after| after["disabled"].clone()),
        Some(json!(true))
    );
    assert_eq!(remediated.findings[0].category, "OPEN_SSH_PORT");
    // The sandbox saw antibody's patch under antibody's identity.
    let audit = harness.sandbox.audit_entries();
    assert!(audit.iter().any(|entry| entry["protoPayload"]["methodName"]
        == "v1.compute.firewalls.patch"
        && entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ENGINE));
    // One structured alert in Cloud Run's format.
    let all = harness.cx().log.lines();
    assert_eq!(
        all.len(),
        4,
        "every decision is logged: two events of the user's insert, two of antibody's patch"
    );
    let lines: Vec<_> = all
        .into_iter()
        .filter(|line| line["severity"] != "INFO")
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["severity"], "WARNING");
    assert_eq!(
        lines[0]["logging.googleapis.com/labels"]["outcome"],
        "remediated"
    );
    assert_eq!(lines[0]["principal"], USER);
}

#[tokio::test]
async fn a_reopened_rule_is_closed_again() {
    let harness = Harness::start().await;
    harness.user_inserts(open_ssh("flappy")).await;
    harness
        .user_patches("flappy", json!({"disabled": false}))
        .await;
    assert_eq!(harness.rule("flappy").await["disabled"], true);
    assert_eq!(harness.count("remediated").await, 2);
}

#[tokio::test]
async fn safe_rules_are_left_alone() {
    let harness = Harness::start().await;
    harness.user_inserts(json!({"name": "web", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["0.0.0.0/0"]})).await;
    harness.user_inserts(json!({"name": "internal", "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["10.0.0.0/8"]})).await;
    // GKE's own rule, made by GKE's service agent: recognised by who made it, not by its name.
    harness
        .inserts_as(
            "service-123@container-engine-robot.iam.gserviceaccount.com",
            json!({"name": "gke-cluster-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
        )
        .await;
    for name in ["web", "internal", "gke-cluster-ssh"] {
        assert_eq!(harness.rule(name).await["disabled"], false, "{name}");
    }
    assert_eq!(harness.count("remediated").await, 0);
    assert_eq!(
        harness.count("exempt").await,
        2,
        "first and last entry of the GKE rule"
    );
    // Nothing but the users' own writes reached the audit log.
    assert!(
        harness
            .sandbox
            .audit_entries()
            .iter()
            .all(|entry| entry["protoPayload"]["authenticationInfo"]["principalEmail"] != ENGINE)
    );
}

// Issue 17, item 1: anyone who could create a rule left SSH open by naming it gke-… or by writing antibody:exempt in
// its description.
#[tokio::test]
async fn a_user_cannot_exempt_their_own_rule_by_name_or_description() {
    let harness = Harness::start().await;
    harness
        .user_inserts(
            json!({"name": "gke-totally-legit", "description": "antibody:exempt",
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
        )
        .await;
    assert_eq!(harness.rule("gke-totally-legit").await["disabled"], true);
    // Configured, a marker counts for the trusted platform account only.
    let platform = "terraform@platform-prod.iam.gserviceaccount.com";
    let harness = Harness::with(Options {
        tweak: Box::new(move |config| {
            config.policies.firewall.exempt_marker = "antibody:exempt".into();
            config.policies.firewall.marker_principals = vec![platform.into()];
        }),
        ..Options::default()
    })
    .await;
    let marked = |name: &str| {
        json!({"name": name, "description": "bastion [antibody:exempt]",
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]})
    };
    harness.user_inserts(marked("users-bastion")).await;
    harness
        .inserts_as(platform, marked("platform-bastion"))
        .await;
    assert_eq!(harness.rule("users-bastion").await["disabled"], true);
    assert_eq!(harness.rule("platform-bastion").await["disabled"], false);
    let entries = harness.cx().journal.entries(100).await.expect("journal");
    let exempt = entries
        .iter()
        .find(|entry| entry.outcome.as_deref() == Some("exempt"))
        .expect("an exempt row");
    assert!(
        exempt
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("exemption marker") && reason.contains(platform)),
        "the journal says which exemption applied: {:?}",
        exempt.reason
    );
}

#[tokio::test]
async fn operations_that_stay_running_are_polled_to_completion() {
    let harness = Harness::with(Options {
        operation_delay: Duration::from_millis(150),
        ..Options::default()
    })
    .await;
    harness.user_inserts(open_ssh("slow")).await;
    assert_eq!(harness.rule("slow").await["disabled"], true);
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn narrow_keeps_safe_traffic_flowing() {
    let tweak =
        |config: &mut antibody::config::Config| config.policies.firewall.fix = FixKind::Narrow;
    let harness = Harness::with(Options {
        tweak: Box::new(tweak),
        ..Options::default()
    })
    .await;
    harness
        .user_inserts(
            json!({"name": "mixed", "allowed": [{"IPProtocol": "tcp", "ports": ["22", "443"]}],
        "sourceRanges": ["0.0.0.0/0", "10.0.0.0/8"], "targetTags": ["app"]}),
        )
        .await;
    let original = harness.rule("mixed").await;
    assert_eq!(original["sourceRanges"], json!(["10.0.0.0/8"]));
    assert_eq!(original["disabled"], false);
    let split = harness.rule("mixed-public").await;
    assert_eq!(split["sourceRanges"], json!(["0.0.0.0/0"]));
    assert_eq!(
        split["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["443"]}])
    );
    assert_eq!(split["targetTags"], json!(["app"]));
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn dry_run_journals_the_plan_and_changes_nothing() {
    let harness = Harness::with(Options {
        tweak: Box::new(|config| config.dry_run = true),
        ..Options::default()
    })
    .await;
    harness.user_inserts(open_ssh("dry")).await;
    assert_eq!(harness.rule("dry").await["disabled"], false);
    let rows = harness.cx().journal.entries(10).await.expect("journal");
    let planned = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("dry-run"))
        .expect("a dry-run row");
    assert_eq!(
        planned.fix,
        Some(antibody::kinds::Fix::Firewall(
            antibody::kinds::firewall::Fix::DisableFirewall {
                project: "test-project".into(),
                name: "dry".into()
            }
        ))
    );
}

#[tokio::test]
async fn failed_calls_in_the_audit_log_are_not_remediated() {
    let harness = Harness::start().await;
    harness.user_inserts(open_ssh("failed-call")).await;
    let mut entry = harness.sandbox.audit_entries()[0].clone();
    entry["insertId"] = json!("failed-1");
    entry["operation"] = serde_json::Value::Null;
    entry["protoPayload"]["status"] = json!({"code": 7, "message": "PERMISSION_DENIED"});
    let (status, body) = harness
        .post(&[("content-type", "application/json")], entry.to_string())
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("failed-call"))
    );
}

#[tokio::test]
async fn a_deleted_rule_is_gone_not_an_error() {
    let harness = Harness::start().await;
    harness
        .user_inserts(json!({"name": "temp", "allowed": [{"IPProtocol": "icmp"}]}))
        .await;
    let response = harness
        .http
        .delete(format!("{}/temp", harness.firewalls_url()))
        .bearer_auth("user-token")
        .send()
        .await
        .expect("delete");
    assert!(response.status().is_success());
    harness.sandbox.settled().await;
    assert_eq!(harness.count("gone").await, 2);
}

#[tokio::test]
async fn serve_sweeps_on_a_timer_as_a_backstop() {
    let harness = Harness::with(Options {
        seed: vec![open_ssh("missed-event")],
        ..Options::default()
    })
    .await;
    let sweeper = tokio::spawn(antibody::scan::periodically(
        harness.cx().clone(),
        vec![crate::harness::PROJECT.to_string()],
        Duration::from_secs(3600),
    ));
    let mut fixed = false;
    for _ in 0..200 {
        if harness.rule("missed-event").await["disabled"] == true {
            fixed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sweeper.abort();
    assert!(
        fixed,
        "the first sweep runs at once and fixes what no event announced"
    );
}

#[tokio::test]
async fn our_own_writes_are_recognised_by_their_operation_even_under_another_name() {
    // antibody does not know the principal its writes are logged under (impersonation, a renamed account).
    let harness = Harness::with(Options {
        tweak: Box::new(|config| config.identities.clear()),
        ..Options::default()
    })
    .await;
    harness.user_inserts(open_ssh("fingerprinted")).await;
    assert_eq!(harness.rule("fingerprinted").await["disabled"], true);
    assert_eq!(harness.count("remediated").await, 1);
    assert_eq!(
        harness.count("own-write").await,
        2,
        "both entries of antibody's own patch, by their operation id"
    );
}
