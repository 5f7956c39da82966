//! IAM-bearing resources end to end: a topic, a secret (named under the project number) and a crypto key made public
//! are closed, other members kept; undo puts a grant back.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, PROJECT, USER_TOKEN};

async fn policy_of(harness: &Harness, resource: &str) -> Value {
    let (status, policy) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("/v1/{resource}:getIamPolicy?options.requestedPolicyVersion=3"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{policy}");
    policy
}

fn members(policy: &Value) -> Vec<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|binding| binding["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|member| member.as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn public_grants_on_topics_secrets_and_keys_are_removed_and_the_rest_kept() {
    let harness = Harness::start().await;
    // Secret Manager writes the project's number; the sandbox derives it as Resource Manager does.
    let number = project_number(&harness).await;
    for (written, read) in [
        (
            format!("projects/{PROJECT}/topics/orders"),
            format!("projects/{PROJECT}/topics/orders"),
        ),
        (
            format!("projects/{PROJECT}/secrets/db-password"),
            format!("projects/{number}/secrets/db-password"),
        ),
        (
            format!("projects/{PROJECT}/locations/global/keyRings/ring/cryptoKeys/key"),
            format!("projects/{PROJECT}/locations/global/keyRings/ring/cryptoKeys/key"),
        ),
    ] {
        let public = json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["allUsers", "user:colleague@example.com"]},
            {"role": "roles/editor", "members": ["allAuthenticatedUsers"]}]}});
        let (status, body) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/v1/{written}:setIamPolicy"),
                Some(public),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let policy = policy_of(&harness, &read).await;
        assert_eq!(
            members(&policy),
            ["user:colleague@example.com"],
            "{read}: {policy}"
        );
    }
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let secret_row = rows
        .iter()
        .find(|row| {
            row.resource.ends_with("/secrets/db-password")
                && row.outcome.as_deref() == Some("remediated")
        })
        .expect("the secret was fixed");
    assert_eq!(
        secret_row.project, PROJECT,
        "the project's id, not its number, counts for caps and scope"
    );

    let topic = rows
        .iter()
        .find(|row| {
            row.resource.ends_with("/topics/orders") && row.outcome.as_deref() == Some("remediated")
        })
        .expect("the topic was fixed");
    harness.undo(topic.id).await;
    let mut restored =
        members(&policy_of(&harness, &format!("projects/{PROJECT}/topics/orders")).await);
    restored.sort();
    assert_eq!(
        restored,
        [
            "allAuthenticatedUsers",
            "allUsers",
            "user:colleague@example.com"
        ]
    );
}

/// A Cloud Run service or a function with a public invoker is usually a public site: reported, kept; any other public
/// role on it is removed.
#[tokio::test]
async fn a_public_invoker_is_reported_and_kept_and_other_public_roles_removed() {
    let harness = Harness::start().await;
    for (api, resource, invoker) in [
        (
            "v2",
            format!("projects/{PROJECT}/locations/europe-west1/services/web"),
            "roles/run.invoker",
        ),
        (
            "v1",
            format!("projects/{PROJECT}/locations/europe-west1/functions/hook"),
            "roles/cloudfunctions.invoker",
        ),
    ] {
        let policy = json!({"policy": {"bindings": [{"role": invoker, "members": ["allUsers"]},
            {"role": "roles/viewer", "members": ["allAuthenticatedUsers"]}]}});
        let (status, body) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/{api}/{resource}:setIamPolicy"),
                Some(policy),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, read) = harness
            .google_as(
                USER_TOKEN,
                Method::GET,
                &format!("/{api}/{resource}:getIamPolicy"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(members(&read), ["allUsers"], "{resource}: {read}");
        let rows = harness.cx().journal.entries(100).await.expect("journal");
        let row = rows
            .iter()
            .find(|row| row.resource == resource && row.outcome.as_deref() == Some("remediated"))
            .expect("the other public role was removed");
        assert!(
            row.findings
                .iter()
                .any(|finding| finding.category == "PUBLIC_INVOKER"),
            "{:?}",
            row.findings
        );
    }
}

/// A secret named under another project's number, in an event about this project, is not acted on: the project
/// the event names is the one caps and scope count.
#[tokio::test]
async fn a_secret_under_another_projects_number_is_refused() {
    let harness = Harness::start().await;
    let entry = json!({"insertId": "forged-1", "logName": format!("projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"),
        "protoPayload": {"serviceName": "secretmanager.googleapis.com",
            "methodName": "google.cloud.secretmanager.v1.SecretManagerService.SetIamPolicy",
            "resourceName": "projects/999999999999/secrets/elsewhere",
            "authenticationInfo": {"principalEmail": "user@example.com"}},
        "resource": {"type": "audited_resource", "labels": {"project_id": PROJECT}}});
    let (status, body) = harness
        .post(&[("content-type", "application/json")], entry.to_string())
        .await;
    assert!(status == 200 || status >= 500, "{status} {body}");
    let rows = harness.cx().journal.entries(10).await.expect("journal");
    assert_ne!(rows[0].outcome.as_deref(), Some("remediated"), "{rows:?}");
    assert!(
        rows[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("is not in project"),
        "{rows:?}"
    );
}

struct Quiet;

impl antibody::scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}

/// A sweep lists topics, subscriptions and secrets, KMS key rings and keys and Artifact Registry repositories in
/// every location (`locations.list`), Cloud Run services and Cloud Functions everywhere (`locations/-`), and reads
/// their policies.
#[tokio::test]
async fn a_sweep_finds_public_resources_in_every_location() {
    let harness = Harness::with(crate::harness::Options {
        tweak: Box::new(|config| config.policies.public_iam.remove = false),
        ..crate::harness::Options::default()
    })
    .await;
    let located = |rest: &str| format!("projects/{PROJECT}/locations/{rest}");
    for (version, resource) in [
        ("v1", format!("projects/{PROJECT}/topics/open")),
        ("v1", format!("projects/{PROJECT}/secrets/token")),
        ("v1", located("europe-west1/keyRings/ring")),
        ("v1", located("europe-west1/keyRings/ring/cryptoKeys/key")),
        ("v1", located("us/repositories/images")),
        ("v2", located("us-central1/services/site")),
        ("v1", located("asia-east1/functions/hook")),
    ] {
        let public =
            json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["allUsers"]}]}});
        let (status, body) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/{version}/{resource}:setIamPolicy"),
                Some(public),
            )
            .await;
        assert_eq!(status, 200, "{resource}: {body}");
    }
    let report = antibody::scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.swept.get("resource-iam"),
        Some(&7),
        "{:?} {:?}",
        report.swept,
        report.errors
    );
    let resources: Vec<&str> = report
        .violations
        .iter()
        .map(|violation| violation.resource.as_str())
        .collect();
    assert_eq!(resources.len(), 7, "{resources:?}");
    for suffix in [
        "/keyRings/ring",
        "/cryptoKeys/key",
        "/repositories/images",
        "/services/site",
        "/functions/hook",
    ] {
        assert!(
            resources.iter().any(|resource| resource.ends_with(suffix)),
            "{suffix}: {resources:?}"
        );
    }
    assert!(
        resources
            .iter()
            .any(|resource| resource.ends_with("/topics/open"))
    );
    assert!(
        resources
            .iter()
            .any(|resource| resource.ends_with("/secrets/token"))
    );
}

/// A Cloud Run service created or changed with its invoker IAM check off is public without any binding: reported
/// with its own finding, and left as it is; a service with the check on is compliant.
#[tokio::test]
async fn a_run_service_without_its_invoker_check_is_reported_and_left_alone() {
    let harness = Harness::start().await;
    let services = format!("/v2/projects/{PROJECT}/locations/europe-west1/services");
    for (id, disabled) in [("checked", false), ("open-site", true)] {
        let (status, body) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("{services}?serviceId={id}"),
                Some(json!({"invokerIamDisabled": disabled, "template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]}})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["done"], true, "{body}");
    }
    let rows = harness.cx().journal.entries(50).await.expect("journal");
    let row = |id: &str| {
        rows.iter()
            .find(|row| row.resource.ends_with(&format!("/services/{id}")))
            .unwrap_or_else(|| panic!("no row for {id}: {rows:?}"))
    };
    let open = row("open-site");
    assert!(
        open.findings
            .iter()
            .any(|finding| finding.category == "RUN_INVOKER_IAM_CHECK_DISABLED"),
        "{open:?}"
    );
    assert_ne!(open.outcome.as_deref(), Some("remediated"), "{open:?}");
    assert_eq!(row("checked").outcome.as_deref(), Some("compliant"));
    let (_, service) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("{services}/open-site"),
            None,
        )
        .await;
    assert_eq!(service["invokerIamDisabled"], true, "nothing is changed");

    // Turning the check off later is seen too.
    let (status, _) = harness
        .google_as(
            USER_TOKEN,
            Method::PATCH,
            &format!("{services}/checked"),
            Some(json!({"invokerIamDisabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let rows = harness.cx().journal.entries(50).await.expect("journal");
    assert!(
        rows.iter()
            .filter(|row| row.resource.ends_with("/services/checked"))
            .any(|row| row
                .findings
                .iter()
                .any(|finding| finding.category == "RUN_INVOKER_IAM_CHECK_DISABLED")),
        "{rows:?}"
    );
}

// Issue 34: only `allUsers` and `allAuthenticatedUsers` were judged on a resource: a gmail.com account given
// `secretAccessor` on a secret, a foreign project's service account on a topic or an untrusted identity pool on a
// key were kept. Outsiders are judged on resources by the project policy's own rules; colleagues and this
// organisation's accounts stay.
#[tokio::test]
async fn outsiders_granted_on_a_resource_are_removed_and_colleagues_kept() {
    let harness = Harness::with(crate::harness::Options {
        tweak: Box::new(|config| {
            config.policies.project_iam.allowed_projects = vec!["test-*".into()];
        }),
        ..crate::harness::Options::default()
    })
    .await;
    let grants = [
        (
            format!("projects/{PROJECT}/secrets/api-key"),
            "roles/secretmanager.secretAccessor",
            "user:someone@gmail.com",
        ),
        (
            format!("projects/{PROJECT}/topics/orders"),
            "roles/pubsub.publisher",
            "serviceAccount:bot@attacker-project.iam.gserviceaccount.com",
        ),
        (
            format!("projects/{PROJECT}/locations/global/keyRings/ring/cryptoKeys/key"),
            "roles/cloudkms.cryptoKeyDecrypter",
            "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/evil/*",
        ),
    ];
    for (resource, role, outsider) in &grants {
        let policy = json!({"policy": {"bindings": [
            {"role": role, "members": [outsider, "user:colleague@example.com",
                "serviceAccount:app@test-project.iam.gserviceaccount.com"]}]}});
        let (status, body) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/v1/{resource}:setIamPolicy"),
                Some(policy),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    harness.sandbox.settled().await;
    for (resource, _, outsider) in &grants {
        let read = match resource.contains("/secrets/") {
            // Secret Manager names a secret under the project's number.
            true => resource.replace(PROJECT, &project_number(&harness).await),
            false => resource.clone(),
        };
        let mut kept = members(&policy_of(&harness, &read).await);
        kept.sort();
        assert_eq!(
            kept,
            [
                "serviceAccount:app@test-project.iam.gserviceaccount.com",
                "user:colleague@example.com"
            ],
            "{outsider} removed from {resource}"
        );
    }
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert_eq!(
        rows.iter()
            .filter(|row| row.outcome.as_deref() == Some("remediated")
                && row
                    .findings
                    .iter()
                    .any(|finding| finding.category == "EXTERNAL_MEMBER"))
            .count(),
        3,
        "{rows:?}"
    );
}

/// The project's number, as Resource Manager gives it.
async fn project_number(harness: &Harness) -> String {
    let (_, project) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            &format!("/v1/projects/{PROJECT}"),
            None,
        )
        .await;
    project["projectNumber"]
        .as_str()
        .expect("projectNumber")
        .to_string()
}

// Issue 34: a service account's own policy (who may act as it) was never read: a gmail.com account made token
// creator on the deploy account could mint its tokens. IAM logs the change as `google.iam.admin.v1.SetIAMPolicy`.
#[tokio::test]
async fn an_outsider_who_may_act_as_a_service_account_is_removed() {
    let harness = Harness::start().await;
    let (status, account) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/projects/{PROJECT}/serviceAccounts"),
            Some(json!({"accountId": "deployer"})),
        )
        .await;
    assert_eq!(status, 200, "{account}");
    let resource = format!(
        "projects/{PROJECT}/serviceAccounts/{}",
        account["email"].as_str().expect("an email")
    );
    let policy = json!({"policy": {"bindings": [
        {"role": "roles/iam.serviceAccountTokenCreator",
         "members": ["user:someone@gmail.com", "user:colleague@example.com"]}]}});
    let (status, body) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/{resource}:setIamPolicy"),
            Some(policy),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    harness.sandbox.settled().await;
    let (status, read) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v1/{resource}:getIamPolicy"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(members(&read), ["user:colleague@example.com"], "{read}");
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(fixed.resource, format!("{resource}/iamPolicy"));
    assert!(
        fixed
            .findings
            .iter()
            .any(|finding| finding.category == "EXTERNAL_MEMBER"),
        "{fixed:?}"
    );
}
