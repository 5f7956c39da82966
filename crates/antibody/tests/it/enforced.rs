//! With the sandbox enforcing IAM, antibody heals with exactly the custom role `antibody plan` prints, and a role
//! missing one permission makes the matching fix fail with a 403 that antibody reports clearly.

use antibody::config::Config;
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options, PROJECT, USER, USER_TOKEN, open_ssh};

const ROLE: &str = "antibodyRemediator";

/// A sandbox that enforces IAM, where the user owns the project and antibody holds only the custom role made of
/// `permissions`.
async fn enforced(permissions: Vec<String>) -> Harness {
    let policy = json!({"bindings": [
        {"role": "roles/owner", "members": [format!("user:{USER}")]},
        {"role": format!("projects/{PROJECT}/roles/{ROLE}"), "members": [format!("serviceAccount:{ENGINE}")]},
    ]});
    let harness = Harness::with(Options {
        enforce_iam: true,
        project_policy: Some(policy),
        seed: vec![open_ssh("seeded-open")],
        buckets: vec![json!({"name": "exports-bucket"})],
        tweak: Box::new(|config| {
            config.policies.project_iam.allowed_domains = vec!["example.com".into()]
        }),
        ..Options::default()
    })
    .await;
    let created = harness
        .http
        .post(format!("{}/v1/projects/{PROJECT}/roles", harness.sandbox.base_url()))
        .bearer_auth(USER_TOKEN)
        .json(&json!({"roleId": ROLE, "role": {"title": "antibody", "includedPermissions": permissions}}))
        .send()
        .await
        .expect("create the role");
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap_or_default()
    );
    harness
}

fn planned() -> Vec<String> {
    antibody::plan::deployment(&Config::default(), PROJECT, "europe-west1", "image")
        .permissions
        .into_iter()
        .map(str::to_string)
        .collect()
}

// Issue 18, item 9: the plan's role was proven only by recording calls; now the sandbox refuses what it lacks.
#[tokio::test]
async fn the_planned_role_is_enough_for_every_fix_and_a_sweep() {
    let harness = enforced(planned()).await;
    // Without credentials, nothing.
    let anonymous = harness
        .http
        .get(harness.firewalls_url())
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status().as_u16(), 401);
    harness.user_inserts(open_ssh("debug-ssh")).await;
    assert_eq!(harness.rule("debug-ssh").await["disabled"], true);
    assert_eq!(
        harness
            .user_grants_on_bucket("exports-bucket", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    let policy = harness.bucket_policy("exports-bucket").await;
    assert!(!policy.to_string().contains("allUsers"), "{policy}");
    harness
        .user_edits_project_policy("v1", |policy| {
            policy["bindings"]
                .as_array_mut()
                .expect("bindings")
                .push(json!({"role": "roles/viewer", "members": ["user:someone@gmail.com"]}));
        })
        .await;
    assert!(
        !harness
            .project_policy()
            .await
            .to_string()
            .contains("gmail.com")
    );
    let report = antibody::scan::sweep(
        harness.cx(),
        &[PROJECT.to_string()],
        true,
        &antibody::scan::Quiet,
    )
    .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(harness.rule("seeded-open").await["disabled"], true);
    let rows = harness.cx().journal.entries(1000).await.expect("journal");
    assert!(
        rows.iter()
            .all(|row| row.outcome.as_deref() != Some("failed")),
        "{:?}",
        rows.iter()
            .filter(|row| row.outcome.as_deref() == Some("failed"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_role_missing_one_permission_fails_that_fix_with_a_clear_403() {
    let permissions = planned()
        .into_iter()
        .filter(|permission| permission != "compute.firewalls.update")
        .collect();
    let harness = enforced(permissions).await;
    harness.user_inserts(open_ssh("still-open")).await;
    assert_eq!(harness.rule("still-open").await["disabled"], false);
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let failed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("failed"))
        .expect("a failed fix");
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("compute.firewalls.update")),
        "the journal names the missing permission: {failed:?}"
    );
}
