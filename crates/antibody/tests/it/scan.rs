//! `scan` end to end against a seeded sandbox with a mix of good and bad resources.

use std::sync::Arc;

use antibody::scan::{self, Progress};
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options, PROJECT, open_ssh};

struct Quiet;

impl Progress for Quiet {
    fn step(&self, _message: &str) {}
}

fn seeded() -> Options {
    Options {
        seed: vec![
            json!({"name": "ssh-world", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
            json!({"name": "web", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["0.0.0.0/0"]}),
            json!({"name": "gke-node-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
            json!({"name": "already-off", "disabled": true, "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"]}),
        ],
        buckets: vec![
            json!({"name": "public-acl", "acl": [{"entity": "allUsers", "role": "READER"}, {"entity": "project-owners-1", "role": "OWNER"}]}),
            json!({"name": "private-data"}),
            json!({"name": "site", "labels": {"antibody-exempt": "website"}, "acl": [{"entity": "allUsers", "role": "READER"}]}),
        ],
        project_policy: Some(
            json!({"bindings": [{"role": "roles/owner", "members": ["user:owner@example.com"]},
            {"role": "roles/editor", "members": ["user:someone@gmail.com"]}]}),
        ),
        ..Options::default()
    }
}

/// A sweep cannot tell who set a name or a label: the operator registers what is meant to stay open.
async fn register_exemptions(harness: &Harness) {
    for resource in [
        format!("projects/{PROJECT}/global/firewalls/gke-*"),
        "projects/_/buckets/site".to_string(),
    ] {
        harness
            .cx()
            .journal
            .add_exemption(&resource, "platform-team", "meant to be public", None)
            .await
            .expect("registered");
    }
}

#[tokio::test]
async fn a_report_only_sweep_finds_exactly_the_bad_resources_and_changes_nothing() {
    let harness = Harness::with(seeded()).await;
    let cx: &Arc<_> = harness.cx();
    register_exemptions(&harness).await;
    let report = scan::sweep(cx, &[PROJECT.to_string()], false, &Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        (
            report.swept["firewall"],
            report.swept["bucket"],
            report.swept["project-iam"]
        ),
        (4, 3, 1)
    );
    let resources: Vec<&str> = report
        .violations
        .iter()
        .map(|violation| violation.resource.as_str())
        .collect();
    assert_eq!(
        resources,
        vec![
            "projects/_/buckets/public-acl",
            "projects/test-project",
            "projects/test-project/global/firewalls/ssh-world"
        ]
    );
    assert_eq!(harness.rule("ssh-world").await["disabled"], false);
    assert!(
        harness.sandbox.audit_entries().is_empty(),
        "a report changes nothing"
    );
    let sarif = scan::sarif(&report);
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"].as_array().map(Vec::len),
        Some(
            report
                .violations
                .iter()
                .map(|violation| violation.findings.len())
                .sum()
        )
    );
    assert!(
        scan::markdown(&report).contains("| `projects/test-project/global/firewalls/ssh-world` |")
    );
}

#[tokio::test]
async fn a_fixing_sweep_goes_through_the_pipeline() {
    let harness = Harness::with(seeded()).await;
    register_exemptions(&harness).await;
    let report = scan::sweep(harness.cx(), &[PROJECT.to_string()], true, &Quiet).await;
    harness.sandbox.settled().await;
    assert!(
        report
            .violations
            .iter()
            .all(|violation| violation.outcome.as_deref() == Some("remediated")),
        "{:?}",
        report.violations
    );
    assert_eq!(harness.rule("ssh-world").await["disabled"], true);
    assert_eq!(harness.rule("gke-node-ssh").await["disabled"], false);
    assert!(
        !harness.bucket("public-acl").await["acl"]
            .to_string()
            .contains("allUsers")
    );
    assert!(
        harness.bucket("site").await["acl"]
            .to_string()
            .contains("allUsers"),
        "exempt buckets stay public"
    );
    assert!(
        !harness
            .project_policy()
            .await
            .to_string()
            .contains("gmail.com")
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(rows.iter().filter(|row| row.transport == "scan").count() >= 3);
}

#[tokio::test]
async fn all_projects_sweeps_every_project_the_credentials_can_see() {
    let mut config = gcp_sandbox::SandboxConfig::default();
    for project in ["alpha", "beta"] {
        config.seed.firewalls.insert(
            project.into(),
            vec![crate::harness::open_ssh(&format!("{project}-ssh"))],
        );
    }
    let sandbox = gcp_sandbox::start(
        config,
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "scan",
            "--all-projects",
            "--format",
            "json",
            "--google-endpoint",
        ])
        .arg(sandbox.base_url())
        .output()
        .await
        .expect("antibody runs");
    assert_eq!(output.status.code(), Some(1), "violations found");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["projects"], serde_json::json!(["alpha", "beta"]));
    let resources: Vec<&str> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|violation| violation["resource"].as_str())
        .collect();
    assert!(
        resources.iter().any(|r| r.contains("alpha-ssh"))
            && resources.iter().any(|r| r.contains("beta-ssh")),
        "{resources:?}"
    );
}

/// `scan --organization`: the projects under the organization are swept (with its and its folders' own policies), none
/// elsewhere.
#[tokio::test]
async fn an_organization_sweep_covers_its_projects_only() {
    let mut config = gcp_sandbox::SandboxConfig::default();
    for project in ["inside", "outside"] {
        config.seed.firewalls.insert(
            project.into(),
            vec![crate::harness::open_ssh(&format!("{project}-ssh"))],
        );
    }
    config
        .seed
        .folders
        .insert("folders/7".into(), "organizations/123456789012".into());
    config
        .seed
        .parents
        .insert("inside".into(), "folders/7".into());
    config
        .seed
        .folders
        .insert("folders/8".into(), "organizations/555".into());
    config
        .seed
        .parents
        .insert("outside".into(), "folders/8".into());
    let sandbox = gcp_sandbox::start(
        config,
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "scan",
            "--organization",
            "123456789012",
            "--format",
            "json",
            "--google-endpoint",
        ])
        .arg(sandbox.base_url())
        .output()
        .await
        .expect("antibody runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        report["projects"],
        serde_json::json!(["inside"]),
        "{report}"
    );
    // The walk starts at the organization: a project of another organization is never even listed. Besides the
    // project's policy, the organization's and its folder's own are swept.
    assert_eq!(report["swept"]["project-iam"], 3, "{report}");
    assert!(!report.to_string().contains("outside-ssh"), "{report}");
}

fn open_rules(count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|index| crate::harness::open_ssh(&format!("burst-{index}")))
        .collect()
}

// Issue 25, item 3: an operator's sweep held 290 of 300 fixes behind the event-mode cap and only said "held".
#[tokio::test]
async fn a_sweep_says_how_many_fixes_the_caps_hold_and_how_to_proceed() {
    let harness = Harness::with(Options {
        seed: open_rules(15),
        ..Options::default()
    })
    .await;
    let projects = [PROJECT.to_string()];
    let report = scan::sweep(harness.cx(), &projects, false, &Quiet).await;
    assert_eq!(
        report.held_by_caps, 5,
        "a report says in advance what the cap of 10 would hold"
    );
    assert!(
        scan::table(&report).contains("would be held"),
        "{}",
        scan::table(&report)
    );
    let report = scan::sweep(harness.cx(), &projects, true, &Quiet).await;
    let held = report
        .violations
        .iter()
        .filter(|violation| violation.outcome.as_deref() == Some("held"))
        .count();
    assert_eq!((held, report.held_by_caps), (5, 5));
    let table = scan::table(&report);
    assert!(
        table.contains("were held") && table.contains("--max-fixes 15"),
        "{table}"
    );
}

// Issue 25, item 3: the way to proceed works, and is journaled as the operator's decision.
#[tokio::test]
async fn max_fixes_lets_an_operator_fix_a_whole_sweep() {
    let mut config = gcp_sandbox::SandboxConfig::default();
    config
        .seed
        .firewalls
        .insert("sweep-project".into(), open_rules(15));
    let sandbox = gcp_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "scan",
            "--project",
            "sweep-project",
            "--fix",
            "--max-fixes",
            "15",
            "--operator",
            "ops@example.com",
            "--format",
            "json",
            "--state",
            state.to_str().expect("utf-8"),
            "--google-endpoint",
        ])
        .arg(sandbox.base_url())
        .output()
        .await
        .expect("scan runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    let outcomes: Vec<&str> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|violation| violation["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.len(), 15);
    assert!(
        outcomes.iter().all(|outcome| *outcome == "remediated"),
        "{outcomes:?}"
    );
    let journal = antibody::journal::Journal::open(&state)
        .await
        .expect("journal");
    let rows = journal.entries(100).await.expect("rows");
    let decision = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("override"))
        .expect("the operator's decision is journaled");
    assert_eq!(decision.principal, "ops@example.com");
}

/// A sweep never lists a project `[scope]` leaves alone, and its report says which were skipped and why.
#[tokio::test]
async fn a_sweep_skips_projects_outside_the_scope_and_says_so() {
    let harness = Harness::with(Options {
        tweak: Box::new(|config| config.scope.exclude_projects = vec!["test-*".into()]),
        ..Options::default()
    })
    .await;
    harness.user_inserts(open_ssh("out-of-scope")).await;
    let report = antibody::scan::sweep(harness.cx(), &[PROJECT.to_string()], true, &Quiet).await;
    assert!(report.projects.is_empty(), "{:?}", report.projects);
    assert!(report.violations.is_empty());
    assert_eq!(
        report.out_of_scope,
        ["project 'test-project' is excluded by [scope] exclude_projects 'test-*'"]
    );
    assert!(
        antibody::scan::table(&report).contains("not swept: project 'test-project' is excluded")
    );
    assert!(antibody::scan::markdown(&report).contains("Not swept:\n- project 'test-project'"));
    assert!(
        harness.sandbox.permissions_used_by(ENGINE).is_empty(),
        "nothing in the project was read"
    );
    assert_eq!(harness.rule("out-of-scope").await["disabled"], false);
}

/// Google answers lists a page at a time (Cloud SQL 500 instances, IAM 20 accounts, …): with a sandbox that answers
/// one item a page, a sweep still sees every firewall, bucket, database and dataset.
#[tokio::test]
async fn a_sweep_reads_every_list_to_its_last_page() {
    use reqwest::Method;
    let harness = Harness::with(Options {
        page_size: Some(1),
        // Nobody is listening: what the user makes below stays as it is until the sweep.
        sink_filter: Some("logName:\"nothing-selects-this\"".into()),
        ..seeded()
    })
    .await;
    register_exemptions(&harness).await;
    for name in ["orders-db", "users-db", "events-db"] {
        let (status, body) = harness
            .google_as(
                crate::harness::USER_TOKEN,
                Method::POST,
                &format!("/v1/projects/{PROJECT}/instances"),
                Some(
                    json!({"name": name, "settings": {"ipConfiguration": {"ipv4Enabled": true,
                    "authorizedNetworks": [{"value": "0.0.0.0/0"}]}}}),
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for id in ["sales", "ops", "hr"] {
        let (status, body) = harness
            .google_as(
                crate::harness::USER_TOKEN,
                Method::POST,
                &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
                Some(json!({"datasetReference": {"datasetId": id},
                    "access": [{"role": "READER", "specialGroup": "allAuthenticatedUsers"}]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let report = scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        (
            report.swept["firewall"],
            report.swept["bucket"],
            report.swept["sql-instance"],
            report.swept["dataset"]
        ),
        (4, 3, 3, 3)
    );
    let mut resources: Vec<&str> = report
        .violations
        .iter()
        .map(|violation| violation.resource.as_str())
        .collect();
    resources.sort_unstable();
    assert_eq!(
        resources,
        vec![
            "projects/_/buckets/public-acl",
            "projects/test-project",
            "projects/test-project/datasets/hr",
            "projects/test-project/datasets/ops",
            "projects/test-project/datasets/sales",
            "projects/test-project/global/firewalls/ssh-world",
            "projects/test-project/instances/events-db",
            "projects/test-project/instances/orders-db",
            "projects/test-project/instances/users-db",
        ]
    );
}

// Issue 35: sweep events had random keys, so the rows a sweep left `processing` when its process died stayed so
// forever — nothing took them over. A sweep's run is now in its keys: the same run swept again (Cloud Scheduler
// retrying the attempt) finishes what the dead one left, and does not fix twice what it finished.
#[tokio::test]
async fn a_sweep_retried_as_the_same_run_takes_over_what_its_dead_attempt_left() {
    let harness = Harness::with(Options {
        // The live events stay out of it: only the sweeps act.
        sink_filter: Some("logName:\"nothing-selects-this\"".into()),
        sqlite_only: true,
        ..seeded()
    })
    .await;
    register_exemptions(&harness).await;
    let cx = harness.cx();
    let run = "scheduled-2026-12-07T10:00:00Z";
    let resource = format!("projects/{PROJECT}/global/firewalls/ssh-world");
    // The first attempt's process claimed the rule and died before deciding.
    let event = antibody::event::AuditEvent::synthetic_in(
        antibody::event::Transport::Scan,
        run,
        PROJECT,
        &resource,
    );
    assert!(matches!(
        cx.journal.claim(&event).await.expect("claim"),
        antibody::journal::Claim::New { .. }
    ));
    let connection = rusqlite::Connection::open(&cx.config.state).expect("open");
    connection
        .execute(
            "UPDATE events SET claimed_epoch = claimed_epoch - 3600 WHERE delivery_key = ?1",
            [&event.delivery_key],
        )
        .expect("age the claim");
    // The retry, as the same run: the abandoned row is taken over and finished.
    let retried = scan::sweep_run(cx, &[PROJECT.to_string()], true, &Quiet, Some(run)).await;
    harness.sandbox.settled().await;
    let outcome_of = |report: &scan::Report| {
        report
            .violations
            .iter()
            .find(|violation| violation.resource == resource)
            .and_then(|violation| violation.outcome.clone())
    };
    assert_eq!(
        outcome_of(&retried).as_deref(),
        Some("remediated"),
        "{retried:?}"
    );
    assert_eq!(harness.rule("ssh-world").await["disabled"], true);
    let rows = cx.journal.entries(100).await.expect("journal");
    assert!(
        rows.iter().all(|row| row.state != "processing"),
        "no row is left processing: {rows:?}"
    );
    // The rule is opened again; the same run does not fix it twice, the next run does.
    harness
        .user_patches("ssh-world", json!({"disabled": false}))
        .await;
    let again = scan::sweep_run(cx, &[PROJECT.to_string()], true, &Quiet, Some(run)).await;
    assert_eq!(
        outcome_of(&again).as_deref(),
        Some("duplicate"),
        "{again:?}"
    );
    assert_eq!(harness.rule("ssh-world").await["disabled"], false);
    let next = scan::sweep_run(cx, &[PROJECT.to_string()], true, &Quiet, None).await;
    harness.sandbox.settled().await;
    assert_eq!(outcome_of(&next).as_deref(), Some("remediated"), "{next:?}");
    assert_eq!(harness.rule("ssh-world").await["disabled"], true);
}
