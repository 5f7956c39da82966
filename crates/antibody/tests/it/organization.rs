//! One deployment for an organization, end to end: the sandbox delivers as an aggregated organization sink does
//! (Pub/Sub push, OIDC-signed, filtered by the filter `antibody plan` prints) from two folders and four projects,
//! one folder out of scope. An outsider on the organization, on a folder and on an in-scope project is removed; the
//! same under the excluded folder is journaled `ignored`; a project created during the run is covered without a
//! restart; `scan --organization` walks the same tree.

use std::sync::Arc;

use antibody::config::Config;
use gcp_sandbox::DeliveryMode;
use gcp_sandbox::oidc::PushIdentity;
use reqwest::Method;
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options, PROJECT, USER_TOKEN};

const ORGANIZATION: &str = "organizations/123456789012";
const AUDIENCE: &str = "https://antibody-org-uc.a.run.app/";
const PUSHER: &str = "service-org-sink@gcp-sa-pubsub.iam.gserviceaccount.com";
const OUTSIDER: &str = "user:stranger@gmail.com";

async fn organization_deployment() -> Harness {
    organization_deployment_with(|_| {}).await
}

/// The same deployment, its configuration changed by `extra` as well.
async fn organization_deployment_with(extra: fn(&mut Config)) -> Harness {
    Harness::with(Options {
        mode: DeliveryMode::PubSubPush,
        push_identity: Some(PushIdentity {
            audience: AUDIENCE.into(),
            email: PUSHER.into(),
        }),
        sink_filter: Some(antibody::plan::sink_filter(
            &Config::default(),
            &[ENGINE.to_string()],
        )),
        tweak: Box::new(move |config| {
            config.push_audience = Some(AUDIENCE.into());
            config.push_emails = vec![PUSHER.into()];
            config.scope.organization = Some(ORGANIZATION.into());
            config.scope.exclude_folders = vec!["folders/20".into()];
            extra(config);
        }),
        folders: vec![
            ("folders/10".into(), ORGANIZATION.into()),
            ("folders/20".into(), ORGANIZATION.into()),
        ],
        parents: vec![
            (PROJECT.into(), "folders/10".into()),
            ("payments-prod".into(), "folders/10".into()),
            ("playground-one".into(), "folders/20".into()),
        ],
        ..Options::default()
    })
    .await
}

/// The user adds `member` as a viewer to the IAM policy at `resource` (`/v1/projects/P`, `/v3/folders/N`, …);
/// returns once every event has been handled.
async fn grant(harness: &Harness, resource: &str, member: &str) {
    let (status, mut policy) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("{resource}:getIamPolicy"),
            Some(json!({"options": {"requestedPolicyVersion": 3}})),
        )
        .await;
    assert_eq!(status, 200, "{resource}: {policy}");
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(json!({"role": "roles/viewer", "members": [member]}));
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("{resource}:setIamPolicy"),
            Some(json!({"policy": policy})),
        )
        .await;
    assert_eq!(status, 200, "{resource}: {body}");
}

async fn holds(harness: &Harness, resource: &str, member: &str) -> bool {
    let (status, policy) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("{resource}:getIamPolicy"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{resource}: {policy}");
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|binding| {
            binding["members"]
                .as_array()
                .is_some_and(|members| members.contains(&json!(member)))
        })
}

async fn outcome_for(harness: &Harness, resource: &str) -> Vec<(String, String)> {
    harness
        .cx()
        .journal
        .entries(200)
        .await
        .expect("journal")
        .into_iter()
        .filter(|row| row.resource == resource)
        .map(|row| {
            (
                row.outcome.unwrap_or_default(),
                row.reason.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_organization_sink_deployment_heals_the_organization_its_folders_and_projects_in_scope()
{
    let harness = organization_deployment().await;

    for (resource, name) in [
        (format!("/v1/{ORGANIZATION}"), ORGANIZATION.to_string()),
        ("/v3/folders/10".to_string(), "folders/10".to_string()),
        (
            "/v1/projects/payments-prod".to_string(),
            "projects/payments-prod".to_string(),
        ),
    ] {
        grant(&harness, &resource, OUTSIDER).await;
        assert!(
            !holds(&harness, &resource, OUTSIDER).await,
            "{name}: the outsider is removed"
        );
        let rows = outcome_for(&harness, &name).await;
        assert!(
            rows.iter().any(|(outcome, _)| outcome == "remediated"),
            "{name}: {rows:?}"
        );
    }

    // Under the excluded folder: the folder itself and its project are left alone, and the journal says why.
    for (resource, name) in [
        ("/v3/folders/20".to_string(), "folders/20".to_string()),
        (
            "/v1/projects/playground-one".to_string(),
            "projects/playground-one".to_string(),
        ),
    ] {
        grant(&harness, &resource, OUTSIDER).await;
        assert!(
            holds(&harness, &resource, OUTSIDER).await,
            "{name} is out of scope"
        );
        let rows = outcome_for(&harness, &name).await;
        assert!(
            rows.iter()
                .any(|(outcome, reason)| outcome == "ignored" && reason.contains("folders/20")),
            "{name}: {rows:?}"
        );
    }

    // A project created now, under the allowed folder, is covered at once: its ancestry is read on first sight.
    let (status, created) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            "/v3/projects",
            Some(json!({"projectId": "fresh-project", "parent": "folders/10"})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["done"], true, "{created}");
    grant(&harness, "/v1/projects/fresh-project", OUTSIDER).await;
    assert!(
        !holds(&harness, "/v1/projects/fresh-project", OUTSIDER).await,
        "the new project is healed without a restart"
    );

    // antibody's own writes came back through the sink filter? They must not have: no row was made by them.
    let rows = harness.cx().journal.entries(200).await.expect("journal");
    assert!(
        rows.iter().all(|row| row.principal != ENGINE),
        "the sink filter leaves out antibody's own writes: {rows:?}"
    );

    // The sweep walks the same tree: the in-scope projects and containers, the excluded folder reported.
    let cx: &Arc<antibody::pipeline::Context> = harness.cx();
    grant(&harness, "/v3/folders/20", "user:another@gmail.com").await;
    let report =
        antibody::scan::sweep_organization(cx, ORGANIZATION, false, &antibody::scan::Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut projects = report.projects.clone();
    projects.sort();
    assert_eq!(projects, ["fresh-project", "payments-prod", PROJECT]);
    assert!(
        report
            .out_of_scope
            .iter()
            .any(|line| line.contains("folders/20")),
        "{:?}",
        report.out_of_scope
    );
    assert!(
        report
            .violations
            .iter()
            .all(|violation| violation.resource != "folders/20"),
        "the excluded folder's own policy is not swept: {:?}",
        report.violations
    );
}

#[tokio::test]
async fn scan_organization_fixes_the_organizations_and_folders_own_policies() {
    let harness = organization_deployment().await;
    // Granted while nobody listened: only the sweep can find these.
    harness.sandbox.remove_deliveries();
    grant(&harness, &format!("/v1/{ORGANIZATION}"), OUTSIDER).await;
    grant(&harness, "/v3/folders/10", OUTSIDER).await;
    grant(&harness, "/v1/projects/payments-prod", OUTSIDER).await;
    grant(&harness, "/v1/projects/playground-one", OUTSIDER).await;

    let cx = harness.cx();
    let report =
        antibody::scan::sweep_organization(cx, ORGANIZATION, true, &antibody::scan::Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let fixed: Vec<(&str, Option<&str>)> = report
        .violations
        .iter()
        .map(|violation| (violation.resource.as_str(), violation.outcome.as_deref()))
        .collect();
    for resource in [ORGANIZATION, "folders/10", "projects/payments-prod"] {
        assert!(
            fixed.contains(&(resource, Some("remediated"))),
            "{resource}: {fixed:?}"
        );
    }
    assert!(!holds(&harness, &format!("/v1/{ORGANIZATION}"), OUTSIDER).await);
    assert!(!holds(&harness, "/v3/folders/10", OUTSIDER).await);
    assert!(!holds(&harness, "/v1/projects/payments-prod", OUTSIDER).await);
    assert!(
        holds(&harness, "/v1/projects/playground-one", OUTSIDER).await,
        "under the excluded folder nothing is touched"
    );
}

/// A deployment that receives its own project's entries from Eventarc and the organization's from a sink sees its
/// own project's changes twice: the copy is recognised (the same log name and insertId) and nothing is done twice.
#[tokio::test]
async fn eventarc_and_an_organization_sink_together_do_no_double_work() {
    let harness = Harness::start().await;
    harness.sandbox.add_delivery(gcp_sandbox::Delivery {
        url: harness.engine.url(),
        mode: DeliveryMode::PubSubPush,
        identity: None,
        filter: None,
    });
    harness
        .user_inserts(crate::harness::open_ssh("twice"))
        .await;
    assert_eq!(harness.rule("twice").await["disabled"], true);
    let engine_writes = harness
        .sandbox
        .audit_entries()
        .iter()
        .filter(|entry| {
            entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ENGINE
                && entry["protoPayload"]["methodName"]
                    .as_str()
                    .is_some_and(|method| method.ends_with("firewalls.patch"))
        })
        .count();
    // A Compute write logs its first and last entries; one fix is one pair.
    assert_eq!(engine_writes, 2, "one fix, not two");
    assert_eq!(harness.count("remediated").await, 1);
}

// Issue 34: an organization's (or folder's) own sinks and exclusions were never judged — an exclusion there dropped
// the organization's Data Access audit logs, and a protected organization sink could be disabled, unseen. They
// arrive through the organization sink like the organization's IAM changes.
#[tokio::test]
async fn an_organization_exclusion_that_drops_audit_logs_is_disabled() {
    let harness = organization_deployment().await;
    let path = format!("/v2/{ORGANIZATION}/exclusions");
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &path,
            Some(json!({"name": "quiet", "filter": "logName:\"data_access\""})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, kept) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &path,
            Some(json!({"name": "noise", "filter": "resource.type=\"gce_instance\" AND severity<=DEBUG"})),
        )
        .await;
    assert_eq!(status, 200, "{kept}");
    harness.sandbox.settled().await;
    let read = |name: &'static str| {
        let harness = &harness;
        let path = format!("{path}/{name}");
        async move {
            let (status, read) = harness
                .google_as(USER_TOKEN, Method::GET, &path, None)
                .await;
            assert_eq!(status, 200, "{read}");
            read
        }
    };
    assert_eq!(
        read("quiet").await["disabled"],
        true,
        "disabled at the organization"
    );
    assert_ne!(
        read("noise").await["disabled"],
        true,
        "an exclusion that keeps every audit log stays"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.resource == format!("{ORGANIZATION}/exclusions/quiet"))
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(fixed.outcome.as_deref(), Some("remediated"), "{fixed:?}");
}

// A sweep of the organization reads the organization's own routing too: an exclusion made while the policy only
// reports is found by `scan --organization` and fixed by its fixing run.
#[tokio::test]
async fn scan_organization_finds_the_organizations_own_exclusion() {
    let harness =
        organization_deployment_with(|config| config.policies.log_tamper.dry_run = true).await;
    let path = format!("/v2/{ORGANIZATION}/exclusions");
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &path,
            Some(json!({"name": "quiet", "filter": "logName:\"data_access\""})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    harness.sandbox.settled().await;
    let report =
        antibody::scan::sweep_organization(harness.cx(), ORGANIZATION, false, &Quiet).await;
    let key = format!("{ORGANIZATION}/exclusions/quiet");
    assert!(
        report
            .violations
            .iter()
            .any(|violation| violation.resource == key),
        "{:?} {:?}",
        report.violations,
        report.errors
    );
}

struct Quiet;

impl antibody::scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}
