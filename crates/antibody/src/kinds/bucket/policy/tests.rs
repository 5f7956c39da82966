//! Tests of the public-bucket policy: every way to be public, exemptions, and (property) exact removal.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::gcp::iam::Binding;

fn bucket(value: Value) -> Bucket {
    serde_json::from_value(value).expect("a bucket")
}

fn policy(bindings: Value) -> Policy {
    serde_json::from_value(json!({"version": 3, "etag": "CAE=", "bindings": bindings}))
        .expect("a policy")
}

fn categories(settings: &BucketPolicy, bucket_json: Value, bindings: Value) -> Vec<String> {
    settings
        .evaluate(&bucket(bucket_json), &policy(bindings))
        .into_iter()
        .map(|finding| finding.category)
        .collect()
}

#[test]
fn every_way_to_be_public_is_found() {
    let settings = BucketPolicy::default();
    let private_acl = json!([{"entity": "project-owners-1", "role": "OWNER"}]);
    let cases: Vec<(Value, Value, Vec<&str>)> = vec![
        (
            json!({"name": "b", "acl": private_acl}),
            json!([{"role": "roles/storage.objectViewer", "members": ["allUsers"]}]),
            vec!["PUBLIC_BUCKET_IAM"],
        ),
        (
            json!({"name": "b"}),
            json!([{"role": "projects/p/roles/custom", "members": ["allAuthenticatedUsers"]}]),
            vec!["PUBLIC_BUCKET_IAM"],
        ),
        (
            json!({"name": "b", "acl": [{"entity": "allUsers", "role": "READER"}]}),
            json!([{"role": "roles/storage.legacyBucketReader", "members": ["allUsers"]}]),
            vec!["PUBLIC_BUCKET_ACL"],
        ),
        (
            json!({"name": "b", "defaultObjectAcl": [{"entity": "allAuthenticatedUsers", "role": "READER"}]}),
            json!([]),
            vec!["PUBLIC_DEFAULT_OBJECT_ACL"],
        ),
        // Under uniform access the ACL is hidden and the legacy role is the only trace: it is reported as IAM.
        (
            json!({"name": "b", "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}}}),
            json!([{"role": "roles/storage.legacyBucketReader", "members": ["allUsers"]}]),
            vec!["PUBLIC_BUCKET_IAM"],
        ),
        (
            json!({"name": "b"}),
            json!([{"role": "roles/storage.objectViewer", "members": ["user:a@example.com"]}]),
            vec![],
        ),
    ];
    for (bucket_json, bindings, expected) in cases {
        assert_eq!(
            categories(&settings, bucket_json.clone(), bindings.clone()),
            expected,
            "{bucket_json} {bindings}"
        );
    }
}

#[test]
fn public_write_access_is_critical() {
    let settings = BucketPolicy::default();
    let findings = settings.evaluate(
        &bucket(json!({"name": "b"})),
        &policy(json!([{"role": "roles/storage.objectAdmin", "members": ["allUsers"]}])),
    );
    assert_eq!(findings[0].severity, Severity::Critical);
    let findings = settings.evaluate(
        &bucket(json!({"name": "b"})),
        &policy(json!([{"role": "roles/storage.objectViewer", "members": ["allUsers"]}])),
    );
    assert_eq!(findings[0].severity, Severity::High);
}

#[test]
fn guards_are_report_only_unless_configured() {
    let mut settings = BucketPolicy::default();
    assert!(categories(&settings, json!({"name": "b"}), json!([])).is_empty());
    settings.flag_public_access_prevention = Some(Severity::Low);
    settings.flag_uniform_access = Some(Severity::Medium);
    assert_eq!(
        categories(&settings, json!({"name": "b"}), json!([])),
        vec![
            "PUBLIC_ACCESS_PREVENTION_NOT_ENFORCED",
            "UNIFORM_ACCESS_DISABLED"
        ]
    );
    let findings = settings.evaluate(&bucket(json!({"name": "b"})), &policy(json!([])));
    assert_eq!(
        settings.plan_fix(&bucket(json!({"name": "b"})), &policy(json!([])), &findings),
        None,
        "reporting alone changes nothing"
    );
    settings.enforce_public_access_prevention = PreventionMode::Always;
    let fix = settings.plan_fix(&bucket(json!({"name": "b"})), &policy(json!([])), &findings);
    assert!(matches!(
        fix,
        Some(Fix::SecureBucket {
            enforce_public_access_prevention: true,
            ..
        })
    ));
}

#[test]
fn a_public_bucket_gets_prevention_by_default() {
    let settings = BucketPolicy::default();
    let public = bucket(json!({"name": "b", "acl": [{"entity": "allUsers", "role": "READER"}]}));
    let iam =
        policy(json!([{"role": "roles/storage.legacyBucketReader", "members": ["allUsers"]}]));
    let findings = settings.evaluate(&public, &iam);
    let Some(Fix::SecureBucket {
        remove_members,
        remove_acl,
        enforce_public_access_prevention,
        enable_uniform_access,
        ..
    }) = settings.plan_fix(&public, &iam, &findings)
    else {
        panic!("expected a bucket fix")
    };
    assert_eq!(remove_acl, vec!["allUsers"]);
    assert_eq!(remove_members.len(), 1, "the legacy mirror goes too");
    assert!(enforce_public_access_prevention);
    assert!(!enable_uniform_access);
}

// Issue 17, item 1: whoever made a bucket public could exempt it with a label.
#[test]
fn exemptions_by_label_and_name_count_only_for_trusted_principals() {
    let web = "web-deploy@acme-prod.iam.gserviceaccount.com";
    let settings = BucketPolicy {
        exempt_label: "antibody-exempt".into(),
        allow_buckets: vec!["public-assets-*".into()],
        marker_principals: vec!["web-deploy@*".into()],
        ..BucketPolicy::default()
    };
    let labelled = bucket(json!({"name": "site", "labels": {"antibody-exempt": "public-website"}}));
    assert_eq!(
        settings.exemption(&labelled, web),
        Some(format!(
            "label antibody-exempt=public-website, changed by {web} (marker_principals entry 'web-deploy@*')"
        ))
    );
    assert_eq!(settings.exemption(&labelled, "careless@example.com"), None);
    assert_eq!(
        settings.exemption(&labelled, ""),
        None,
        "a sweep cannot tell who set it"
    );
    let assets = bucket(json!({"name": "public-assets-eu"}));
    assert!(settings.exemption(&assets, web).is_some());
    assert!(
        settings
            .exemption(&assets, "careless@example.com")
            .is_none()
    );
    assert!(
        settings
            .exemption(&bucket(json!({"name": "private-data"})), web)
            .is_none()
    );
    // The defaults honour no label at all.
    assert_eq!(BucketPolicy::default().exemption(&labelled, web), None);
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("allUsers".to_string()),
        Just("allAuthenticatedUsers".to_string()),
        "[a-c]{1,2}@example\\.com".prop_map(|email| format!("user:{email}")),
        Just("projectViewer:p".to_string()),
        "[a-c]{1,2}@p\\.iam\\.gserviceaccount\\.com"
            .prop_map(|email| format!("serviceAccount:{email}")),
    ]
}

fn binding() -> impl Strategy<Value = Binding> {
    let role = prop_oneof![
        Just("roles/storage.objectViewer"),
        Just("roles/storage.objectAdmin"),
        Just("roles/storage.legacyBucketReader"),
        Just("roles/storage.legacyObjectReader"),
        Just("projects/p/roles/reader"),
    ];
    let condition = prop_oneof![
        Just(None),
        "[a-z]{1,5}".prop_map(|title| Some(json!({"title": title, "expression": "true"})))
    ];
    (role, proptest::collection::vec(member(), 1..4), condition).prop_map(
        |(role, mut members, condition)| {
            members.sort();
            members.dedup();
            Binding {
                role: role.to_string(),
                members,
                condition,
                extra: Default::default(),
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    /// The fix removes exactly the public members: every other member, binding condition and field stays.
    #[test]
    fn the_fix_removes_exactly_the_public_members(bindings in proptest::collection::vec(binding(), 0..7)) {
        let iam = Policy { version: 3, bindings, audit_configs: Vec::new(), etag: Some("CAQ=".into()), extra: Default::default() };
        let settings = BucketPolicy::default();
        let empty = bucket(json!({"name": "b"}));
        let findings = settings.evaluate(&empty, &iam);
        let fix = settings.plan_fix(&empty, &iam, &findings);
        let remove = match fix {
            Some(Fix::SecureBucket { remove_members, .. }) => remove_members,
            _ => Vec::new(),
        };
        let (after, _) = iam.without(&remove);
        for grant in iam.grants() {
            // The oracle is Google's two public members, not the policy's own `is_public`.
            let public = matches!(grant.member.as_str(), "allUsers" | "allAuthenticatedUsers");
            prop_assert_eq!(after.grants().any(|kept| kept == grant), !public, "{:?}", grant);
        }
        prop_assert!(settings.evaluate(&empty, &after).is_empty());
        prop_assert_eq!(&after.etag, &iam.etag);
        for binding in &after.bindings {
            prop_assert!(iam.bindings.iter().any(|original| original.role == binding.role && original.condition == binding.condition));
        }
    }
}
