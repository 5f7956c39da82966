//! End to end: every way a bucket becomes public is closed, intended public buckets stay, concurrent edits survive.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ENGINE, Harness, Options, PROJECT};

fn public_members(policy: &Value) -> Vec<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|binding| binding["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|member| member.as_str().map(str::to_string))
        .filter(|member| member == "allUsers" || member == "allAuthenticatedUsers")
        .collect()
}

fn has_member(policy: &Value, role: &str, member: &str) -> bool {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|binding| {
            binding["role"] == role
                && binding["members"]
                    .as_array()
                    .is_some_and(|members| members.contains(&json!(member)))
        })
}

#[tokio::test]
async fn a_bucket_made_public_through_iam_is_closed() {
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "data"})],
        ..Options::default()
    })
    .await;
    assert_eq!(
        harness
            .user_grants_on_bucket("data", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    let policy = harness.bucket_policy("data").await;
    assert!(public_members(&policy).is_empty(), "{policy}");
    assert!(
        has_member(
            &policy,
            "roles/storage.legacyBucketOwner",
            &format!("projectOwner:{PROJECT}")
        ),
        "other grants stay"
    );
    let bucket = harness.bucket("data").await;
    assert_eq!(
        bucket["iamConfiguration"]["publicAccessPrevention"], "enforced",
        "prevention is switched on by default"
    );
    assert_eq!(harness.count("remediated").await, 1);
    // The next attempt now fails at Google, is logged with a non-OK status, and is recorded, not "remediated" again.
    assert_eq!(
        harness
            .user_grants_on_bucket("data", "roles/storage.objectViewer", "allUsers")
            .await,
        412
    );
    assert_eq!(harness.count("failed-call").await, 1);
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn a_bucket_made_public_through_acls_is_closed() {
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "legacy"})],
        ..Options::default()
    })
    .await;
    // One metadata update opens both the bucket ACL and the default ACL of new objects.
    let mut acl = harness.bucket("legacy").await["acl"]
        .as_array()
        .cloned()
        .expect("acl");
    acl.push(json!({"entity": "allUsers", "role": "READER"}));
    let (status, _) = harness.user_storage(Method::PATCH, "/b/legacy", Some(json!({"acl": acl, "defaultObjectAcl": [
        {"entity": "allAuthenticatedUsers", "role": "READER"}, {"entity": "project-owners-1", "role": "OWNER"}]}))).await;
    assert_eq!(status, 200);
    let bucket = harness.bucket("legacy").await;
    let entities = |field: &str| -> Vec<String> {
        bucket[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|control| control["entity"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        !entities("acl")
            .iter()
            .any(|entity| entity.starts_with("all")),
        "{bucket}"
    );
    assert_eq!(
        entities("defaultObjectAcl"),
        vec!["project-owners-1"],
        "only the public default entry goes"
    );
    assert!(
        entities("acl")
            .iter()
            .any(|entity| entity.starts_with("project-owners-"))
    );
    assert!(public_members(&harness.bucket_policy("legacy").await).is_empty());
    assert!(harness.count("remediated").await >= 1);
}

#[tokio::test]
async fn an_acl_api_edit_is_closed_and_then_refused_by_prevention() {
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "acl-api"})],
        ..Options::default()
    })
    .await;
    let (status, _) = harness
        .user_storage(
            Method::POST,
            "/b/acl-api/acl",
            Some(json!({"entity": "allUsers", "role": "READER"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, acl) = harness
        .user_storage(Method::GET, "/b/acl-api/acl", None)
        .await;
    assert_eq!(status, 200);
    assert!(!acl.to_string().contains("allUsers"), "{acl}");
    let (status, _) = harness
        .user_storage(
            Method::POST,
            "/b/acl-api/acl",
            Some(json!({"entity": "allUsers", "role": "READER"})),
        )
        .await;
    assert_eq!(status, 412, "public access prevention now refuses it");
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn a_bucket_created_public_is_closed() {
    let harness = Harness::start().await;
    let (status, _) = harness
        .user_storage(
            Method::POST,
            &format!("/b?project={PROJECT}&predefinedAcl=publicRead"),
            Some(json!({"name": "oops"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(public_members(&harness.bucket_policy("oops").await).is_empty());
    let entries = harness.cx().journal.entries(100).await.expect("journal");
    assert!(
        entries
            .iter()
            .any(|entry| entry.method_name == "storage.buckets.create"
                && entry.outcome.as_deref() == Some("remediated"))
    );
}

// Issue 17, item 1: the label that exempted a bucket was set by whoever made it public.
#[tokio::test]
async fn an_exempt_website_bucket_stays_public_and_the_exemption_is_journaled() {
    let web = "web-deploy@site-prod.iam.gserviceaccount.com";
    let labelled =
        |name: &str| json!({"name": name, "labels": {"antibody-exempt": "public-website"}});
    let harness = Harness::with(Options {
        buckets: vec![labelled("www-example"), labelled("self-labelled")],
        tweak: Box::new(move |config| {
            config.policies.bucket.exempt_label = "antibody-exempt".into();
            config.policies.bucket.marker_principals = vec![web.into()];
        }),
        ..Options::default()
    })
    .await;
    assert_eq!(
        harness
            .grants_on_bucket_as(web, "www-example", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    assert_eq!(
        public_members(&harness.bucket_policy("www-example").await),
        vec!["allUsers"]
    );
    let entries = harness.cx().journal.entries(10).await.expect("journal");
    assert_eq!(entries[0].outcome.as_deref(), Some("exempt"));
    assert_eq!(
        entries[0].reason.as_deref(),
        Some(
            format!(
                "label antibody-exempt=public-website, changed by {web} (marker_principals entry '{web}')"
            )
            .as_str()
        )
    );
    // The same label does not protect a bucket the careless user makes public.
    assert_eq!(
        harness
            .user_grants_on_bucket("self-labelled", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    assert!(public_members(&harness.bucket_policy("self-labelled").await).is_empty());
}

#[tokio::test]
async fn a_concurrent_edit_during_the_fix_survives_the_412_path() {
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "shared"})],
        ..Options::default()
    })
    .await;
    let race = json!({"bucket": "shared", "role": "roles/storage.objectViewer", "member": "group:analysts@example.com", "before_write_by": ENGINE});
    let url = format!(
        "{}/_sandbox/interleave-bucket-iam",
        harness.sandbox.base_url()
    );
    assert!(
        harness
            .http
            .post(url)
            .json(&race)
            .send()
            .await
            .expect("arm")
            .status()
            .is_success()
    );
    assert_eq!(
        harness
            .user_grants_on_bucket("shared", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    let policy = harness.bucket_policy("shared").await;
    assert!(public_members(&policy).is_empty(), "{policy}");
    assert!(
        has_member(
            &policy,
            "roles/storage.objectViewer",
            "group:analysts@example.com"
        ),
        "the other writer's grant survives: {policy}"
    );
    assert_eq!(harness.count("remediated").await, 1);
}

#[tokio::test]
async fn conditional_bucket_grants_survive_the_rewrite() {
    // Conditions need uniform bucket-level access, as on Google.
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "cond", "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}}})],
        ..Options::default()
    })
    .await;
    let conditional = json!({"role": "roles/storage.objectViewer", "members": ["user:temp@example.com"],
        "condition": {"title": "prefix", "expression": "resource.name.startsWith('projects/_/buckets/cond/objects/tmp/')"}});
    let mut policy = harness.bucket_policy("cond").await;
    policy["version"] = json!(3);
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(conditional.clone());
    policy["bindings"]
        .as_array_mut()
        .expect("bindings")
        .push(json!({"role": "roles/storage.objectAdmin", "members": ["allAuthenticatedUsers"]}));
    assert_eq!(
        harness
            .user_storage(Method::PUT, "/b/cond/iam", Some(policy))
            .await
            .0,
        200
    );
    let after = harness.bucket_policy("cond").await;
    assert!(public_members(&after).is_empty());
    assert!(
        after["bindings"]
            .as_array()
            .expect("bindings")
            .contains(&conditional),
        "{after}"
    );
    assert_eq!(after["version"], 3);
}

// Issue 34: only the public was judged on a bucket: a gmail.com account given `roles/storage.objectAdmin` kept it. An
// outsider's grant is removed by the project policy's rules; a colleague's stays, and public access prevention (which
// answers only the public) is left as it was.
#[tokio::test]
async fn an_outsider_granted_on_a_bucket_is_removed_and_a_colleague_kept() {
    let harness = Harness::with(Options {
        buckets: vec![json!({"name": "data"})],
        ..Options::default()
    })
    .await;
    for member in ["user:someone@gmail.com", "user:colleague@example.com"] {
        assert_eq!(
            harness
                .user_grants_on_bucket("data", "roles/storage.objectAdmin", member)
                .await,
            200
        );
    }
    harness.sandbox.settled().await;
    let policy = harness.bucket_policy("data").await;
    assert!(
        !has_member(
            &policy,
            "roles/storage.objectAdmin",
            "user:someone@gmail.com"
        ),
        "{policy}"
    );
    assert!(
        has_member(
            &policy,
            "roles/storage.objectAdmin",
            "user:colleague@example.com"
        ),
        "{policy}"
    );
    assert_ne!(
        harness.bucket("data").await["iamConfiguration"]["publicAccessPrevention"],
        "enforced",
        "an outsider is not the public"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows
        .iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    assert!(
        fixed
            .findings
            .iter()
            .any(|finding| finding.category == "EXTERNAL_MEMBER"),
        "{:?}",
        fixed.findings
    );
    assert!(
        fixed
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("removed outsiders user:someone@gmail.com"),
        "{:?}",
        fixed.reason
    );
}
