//! End to end: project IAM grants that must never exist are removed, and nothing else changes.

use serde_json::{Value, json};

use crate::harness::{ENGINE, Harness, Options, PROJECT};

fn members_of(policy: &Value, role: &str) -> Vec<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|binding| binding["role"] == role && binding.get("condition").is_none())
        .flat_map(|binding| binding["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|member| member.as_str().map(str::to_string))
        .collect()
}

fn grant(policy: &mut Value, role: &str, member: &str) {
    let bindings = policy["bindings"].as_array_mut().expect("bindings");
    match bindings
        .iter_mut()
        .find(|binding| binding["role"] == role && binding.get("condition").is_none())
    {
        Some(binding) => binding["members"]
            .as_array_mut()
            .expect("members")
            .push(json!(member)),
        None => bindings.push(json!({"role": role, "members": [member]})),
    }
}

fn conditional() -> Value {
    json!({"role": "roles/iam.serviceAccountAdmin", "members": ["user:temp@example.com"],
        "condition": {"title": "expires 2030", "description": "break-glass", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}})
}

fn seeded() -> Options {
    Options {
        project_policy: Some(json!({
            "bindings": [{"role": "roles/owner", "members": ["user:owner@example.com"]}, conditional()],
            "auditConfigs": [{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}],
        })),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_gmail_editor_is_removed_and_everything_else_survives() {
    let harness = Harness::with(seeded()).await;
    harness
        .user_edits_project_policy("v1", |policy| {
            grant(policy, "roles/editor", "user:someone@gmail.com");
            grant(policy, "roles/viewer", "user:colleague@example.com");
        })
        .await;
    let policy = harness.project_policy().await;
    assert!(members_of(&policy, "roles/editor").is_empty(), "{policy}");
    assert_eq!(
        members_of(&policy, "roles/viewer"),
        vec!["user:colleague@example.com"]
    );
    assert_eq!(
        members_of(&policy, "roles/owner"),
        vec!["user:owner@example.com"]
    );
    let kept = policy["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .find(|binding| binding.get("condition").is_some())
        .cloned();
    assert_eq!(
        kept,
        Some(conditional()),
        "the conditional binding survives byte for byte"
    );
    assert_eq!(
        policy["auditConfigs"],
        json!([{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}])
    );
    assert_eq!(policy["version"], 3);
    assert_eq!(harness.count("remediated").await, 1);
    let entries = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = entries
        .iter()
        .find(|entry| entry.outcome.as_deref() == Some("remediated"))
        .expect("fix");
    assert_eq!(fixed.findings[0].category, "PRIMITIVE_ROLE_OUTSIDER");
    assert!(
        fixed
            .before
            .as_ref()
            .is_some_and(|before| before.to_string().contains("someone@gmail.com"))
    );
    // antibody's own write was logged under its identity and recognised as such.
    assert_eq!(harness.count("own-write").await, 1);
    let lines = harness.cx().log.lines();
    let alert = lines
        .iter()
        .find(|line| line["logging.googleapis.com/labels"]["outcome"] == "remediated")
        .expect("a fix line");
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|message| message.contains("user:someone@gmail.com")),
        "{alert}"
    );
    assert_eq!(alert["principal"], "user@example.com");
}

#[tokio::test]
async fn the_v3_method_is_watched_too_and_high_risk_roles_for_external_groups_go() {
    let options = Options {
        tweak: Box::new(|config| {
            config.policies.project_iam.allowed_domains = vec!["example.com".into()]
        }),
        ..seeded()
    };
    let harness = Harness::with(options).await;
    harness
        .user_edits_project_policy("v3", |policy| {
            grant(
                policy,
                "roles/iam.serviceAccountTokenCreator",
                "group:contractors@vendor.io",
            );
            grant(policy, "roles/logging.viewer", "group:sre@eng.example.com");
        })
        .await;
    let policy = harness.project_policy().await;
    assert!(members_of(&policy, "roles/iam.serviceAccountTokenCreator").is_empty());
    assert_eq!(
        members_of(&policy, "roles/logging.viewer"),
        vec!["group:sre@eng.example.com"]
    );
    let audit = harness.sandbox.audit_entries();
    assert_eq!(
        audit[0]["protoPayload"]["methodName"],
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy"
    );
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn a_concurrent_edit_during_the_fix_survives_the_409_path() {
    let harness = Harness::with(seeded()).await;
    // Another writer adds carol just before antibody's write lands, so antibody's etag is stale: 409, re-read, redo.
    let race = json!({"project": PROJECT, "role": "roles/viewer", "member": "user:carol@example.com", "before_write_by": ENGINE});
    let url = format!("{}/_sandbox/interleave-iam", harness.sandbox.base_url());
    assert!(
        harness
            .http
            .post(url)
            .json(&race)
            .send()
            .await
            .expect("arm the race")
            .status()
            .is_success()
    );
    harness
        .user_edits_project_policy("v1", |policy| {
            grant(policy, "roles/editor", "user:intruder@gmail.com");
            grant(policy, "roles/viewer", "user:bob@example.com");
        })
        .await;
    let policy = harness.project_policy().await;
    assert!(members_of(&policy, "roles/editor").is_empty(), "{policy}");
    for member in ["user:bob@example.com", "user:carol@example.com"] {
        assert!(
            members_of(&policy, "roles/viewer").contains(&member.to_string()),
            "{member} lost: {policy}"
        );
    }
    assert!(
        policy["bindings"]
            .as_array()
            .expect("bindings")
            .contains(&conditional())
    );
    // The racer's change arrived as an event of its own, and was compliant.
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn removing_the_last_owner_is_refused() {
    let options = Options {
        project_policy: Some(
            json!({"bindings": [{"role": "roles/owner", "members": ["user:founder@gmail.com"]}]}),
        ),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    harness
        .user_edits_project_policy("v1", |policy| {
            grant(policy, "roles/viewer", "user:new@example.com")
        })
        .await;
    let policy = harness.project_policy().await;
    assert_eq!(
        members_of(&policy, "roles/owner"),
        vec!["user:founder@gmail.com"]
    );
    assert_eq!(harness.count("refused").await, 1);
    let entries = harness.cx().journal.entries(10).await.expect("journal");
    assert!(entries.iter().any(|entry| {
        entry
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("without an owner"))
    }));
}

/// The worst grant of all: an outsider on the organization. Its entry logs the same bare `SetIamPolicy` as a
/// project's; delivered to antibody (as an organization sink would), the grant is removed from the organization's
/// policy by an etag-checked write, and the administrator stays.
#[tokio::test]
async fn an_outsider_granted_on_the_organization_is_removed() {
    let harness = Harness::start().await;
    let mut policy = harness.organization_policy("123456789").await;
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(json!({"role": "roles/editor", "members": ["user:x@gmail.com"]}));
    assert_eq!(
        harness
            .user_sets_organization_policy("123456789", policy)
            .await,
        200
    );
    let after = harness.organization_policy("123456789").await;
    assert!(members_of(&after, "roles/editor").is_empty(), "{after}");
    assert_eq!(
        members_of(&after, "roles/resourcemanager.organizationAdmin"),
        ["user:owner@example.com"]
    );
    let rows = harness.cx().journal.entries(10).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("a fix is journaled");
    assert_eq!(fixed.resource, "organizations/123456789", "{fixed:?}");
    assert!(
        harness
            .sandbox
            .delivery_attempts()
            .iter()
            .all(|attempt| (200..300).contains(&attempt.status)),
        "every delivery acknowledged"
    );
}

/// An outsider who is the organization's only administrator is not removed: the organization would be locked.
#[tokio::test]
async fn the_last_organization_administrator_is_never_removed() {
    let harness = Harness::start().await;
    let only_admin = json!({"bindings": [
        {"role": "roles/resourcemanager.organizationAdmin", "members": ["user:x@gmail.com"]}]});
    assert_eq!(
        harness
            .user_sets_organization_policy("77", only_admin)
            .await,
        200
    );
    let rows = harness.cx().journal.entries(10).await.expect("journal");
    let row = rows
        .iter()
        .find(|row| row.resource == "organizations/77" && row.findings.len() == 1)
        .expect("the finding is journaled");
    assert_ne!(row.outcome.as_deref(), Some("remediated"), "{row:?}");
    assert!(
        row.reason
            .as_deref()
            .is_some_and(|reason| reason
                .contains("without a member of roles/resourcemanager.organizationAdmin")),
        "{row:?}"
    );
}

// Issue 34: a service account of a project outside the organization given roles/editor, and a federated principal of
// a pool the insider controls given token-creator rights, were kept even with the organization's domains set.
#[tokio::test]
async fn a_foreign_service_account_and_a_federated_principal_are_outsiders() {
    const FOREIGN: &str = "serviceAccount:backdoor@attacker-sandbox.iam.gserviceaccount.com";
    const FEDERATED: &str = "principalSet://iam.googleapis.com/projects/999/locations/global/workloadIdentityPools/mine/*";
    const OURS: &str = "serviceAccount:deployer@test-project.iam.gserviceaccount.com";
    let mut options = seeded();
    options.tweak = Box::new(|config| {
        let policy = &mut config.policies.project_iam;
        policy.allowed_domains = vec!["example.com".into()];
        policy.allowed_projects = vec!["test-*".into()];
    });
    let harness = Harness::with(options).await;
    harness
        .user_edits_project_policy("v1", |policy| {
            grant(policy, "roles/editor", FOREIGN);
            grant(policy, "roles/editor", OURS);
            grant(policy, "roles/iam.serviceAccountTokenCreator", FEDERATED);
        })
        .await;
    let policy = harness.project_policy().await;
    assert_eq!(members_of(&policy, "roles/editor"), vec![OURS], "{policy}");
    assert!(
        members_of(&policy, "roles/iam.serviceAccountTokenCreator").is_empty(),
        "{policy}"
    );
}

// Issue 35: `[scope]` globs compared against a project *number* when an entry named the project by it, so a project
// excluded by id was acted on. A number is read for its id first, and the globs judge the id.
#[tokio::test]
async fn scope_globs_judge_a_project_named_by_its_number() {
    let mut options = seeded();
    options.project_policy = Some(json!({"bindings": [
        {"role": "roles/owner", "members": ["user:owner@example.com"]},
        {"role": "roles/editor", "members": ["user:someone@gmail.com"]},
    ]}));
    options.tweak = Box::new(|config| config.scope.exclude_projects = vec!["test-*".into()]);
    let harness = Harness::with(options).await;
    let project: Value = harness
        .http
        .get(format!(
            "{}/v1/projects/{PROJECT}",
            harness.sandbox.base_url()
        ))
        .bearer_auth(crate::harness::USER_TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let number = project["projectNumber"]
        .as_str()
        .expect("a number")
        .to_string();
    let entry = json!({"insertId": "by-number", "logName": format!("projects/{number}/logs/cloudaudit.googleapis.com%2Factivity"),
        "protoPayload": {"serviceName": "cloudresourcemanager.googleapis.com",
            "methodName": "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
            "resourceName": format!("projects/{number}"),
            "authenticationInfo": {"principalEmail": "user@example.com"}},
        "resource": {"type": "project", "labels": {}}});
    let (status, answer) = harness.post(&[], entry.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("exclude_projects") && reason.contains(&number)),
        "{answer}"
    );
    assert_eq!(
        members_of(&harness.project_policy().await, "roles/editor"),
        vec!["user:someone@gmail.com"],
        "left alone: the project is excluded"
    );
}
