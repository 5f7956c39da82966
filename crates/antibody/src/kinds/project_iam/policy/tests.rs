//! Tests of the project-IAM policy: domains, categories, service agents, and (property) exact removal.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::gcp::iam::Binding;

fn policy(bindings: Value) -> Policy {
    serde_json::from_value(json!({"version": 3, "etag": "BwX=", "bindings": bindings}))
        .expect("a policy")
}

fn categories(settings: &ProjectIamPolicy, bindings: Value) -> Vec<String> {
    settings
        .evaluate(&policy(bindings))
        .into_iter()
        .map(|(finding, _)| finding.category)
        .collect()
}

#[test]
fn domains_are_compared_as_domains() {
    let cases = [
        ("eng.example.com", "example.com", true),
        ("example.com", "example.com", true),
        ("example.com", "Example.COM", true),
        ("badexample.com", "example.com", false),
        ("example.com.evil.io", "example.com", false),
        ("com", "example.com", false),
    ];
    for (domain, allowed, expected) in cases {
        assert_eq!(
            domain_within(domain, allowed),
            expected,
            "{domain} within {allowed}"
        );
    }
    assert_eq!(
        member_domain("user:Alice@Example.com"),
        Some("example.com".into())
    );
    assert_eq!(
        member_domain("domain:partner.io"),
        Some("partner.io".into())
    );
    assert_eq!(
        member_domain("serviceAccount:x@p.iam.gserviceaccount.com"),
        None
    );
    assert_eq!(member_domain("allUsers"), None);
}

#[test]
fn without_allowed_domains_only_consumer_accounts_are_outsiders() {
    let settings = ProjectIamPolicy::default();
    let found = categories(
        &settings,
        json!([
            {"role": "roles/owner", "members": ["user:boss@example.com"]},
            {"role": "roles/editor", "members": ["user:someone@gmail.com", "user:partner@partner.io"]},
            {"role": "roles/viewer", "members": ["user:friend@googlemail.com"]},
            {"role": "roles/pubsub.admin", "members": ["group:fans@yahoo.com"]},
        ]),
    );
    assert_eq!(
        found,
        vec![
            "PRIMITIVE_ROLE_OUTSIDER",
            "EXTERNAL_MEMBER",
            "HIGH_RISK_ROLE_OUTSIDER"
        ]
    );
}

#[test]
fn with_allowed_domains_everyone_else_is_an_outsider() {
    let settings = ProjectIamPolicy {
        allowed_domains: vec!["example.com".into()],
        ..ProjectIamPolicy::default()
    };
    let found = categories(
        &settings,
        json!([
            {"role": "roles/viewer", "members": ["user:a@eng.example.com", "user:b@partner.io", "domain:example.com"]},
            {"role": "roles/iam.serviceAccountTokenCreator", "members": ["group:ext@contractor.dev"]},
        ]),
    );
    assert_eq!(found, vec!["EXTERNAL_MEMBER", "HIGH_RISK_ROLE_OUTSIDER"]);
}

#[test]
fn service_agents_and_allowlisted_members_are_never_touched() {
    let settings = ProjectIamPolicy {
        primitive_roles_for_service_accounts: true,
        allow_members: vec!["user:auditor@gmail.com".into()],
        ..ProjectIamPolicy::default()
    };
    let found = categories(
        &settings,
        json!([
            {"role": "roles/editor", "members": [
                "serviceAccount:service-123@container-engine-robot.iam.gserviceaccount.com",
                "serviceAccount:123@cloudservices.gserviceaccount.com",
                "serviceAccount:deployer@p.iam.gserviceaccount.com",
                "user:auditor@gmail.com"]},
        ]),
    );
    assert_eq!(found, vec!["PRIMITIVE_ROLE_SERVICE_ACCOUNT"]);
}

#[test]
fn each_rule_can_be_switched_off() {
    let bindings = json!([{"role": "roles/viewer", "members": ["user:x@gmail.com"]}]);
    let off = ProjectIamPolicy {
        external_members: false,
        ..ProjectIamPolicy::default()
    };
    assert!(categories(&off, bindings).is_empty());
    let owner = json!([{"role": "roles/owner", "members": ["user:x@gmail.com"]}]);
    let off = ProjectIamPolicy {
        primitive_roles: false,
        ..ProjectIamPolicy::default()
    };
    assert_eq!(categories(&off, owner), vec!["EXTERNAL_MEMBER"]);
}

#[test]
fn conditional_grants_are_matched_with_their_condition() {
    let condition = json!({"title": "until 2030", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"});
    let policy = policy(json!([
        {"role": "roles/editor", "members": ["user:x@gmail.com"]},
        {"role": "roles/editor", "members": ["user:x@gmail.com", "user:y@example.com"], "condition": condition},
    ]));
    let grant = Grant {
        role: "roles/editor".into(),
        member: "user:x@gmail.com".into(),
        condition: None,
    };
    let (after, removed) = policy.without(&[grant]);
    assert_eq!(removed, 1);
    assert_eq!(after.bindings.len(), 1);
    assert_eq!(after.bindings[0].condition, Some(condition));
    assert_eq!(
        after.bindings[0].members,
        vec!["user:x@gmail.com", "user:y@example.com"]
    );
}

#[test]
fn a_downgraded_read_is_recognised() {
    assert!(policy(json!([{"role": "roles/editor_withcond_2b17cc25d2cd9e2c54d8", "members": ["user:a@x.com"]}])).downgraded());
    assert!(!policy(json!([{"role": "roles/editor", "members": ["user:a@x.com"]}])).downgraded());
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]{1,2}@(example\\.com|gmail\\.com|partner\\.io)"
            .prop_map(|email| format!("user:{email}")),
        "[a-c]{1,2}@(example\\.com|yahoo\\.com)".prop_map(|email| format!("group:{email}")),
        "[a-c]{1,2}@p\\.iam\\.gserviceaccount\\.com"
            .prop_map(|email| format!("serviceAccount:{email}")),
        Just("serviceAccount:service-1@compute-system.iam.gserviceaccount.com".to_string()),
        Just("domain:gmail.com".to_string()),
    ]
}

fn binding() -> impl Strategy<Value = Binding> {
    let role = prop_oneof![
        Just("roles/owner"),
        Just("roles/editor"),
        Just("roles/viewer"),
        Just("roles/pubsub.admin"),
        Just("roles/iam.serviceAccountUser"),
        Just("projects/p/roles/custom"),
    ];
    let condition = prop_oneof![
        Just(None),
        "[a-z]{1,6}".prop_map(|title| Some(
            json!({"title": title, "expression": format!("resource.name.startsWith('{title}')")})
        )),
    ];
    (role, proptest::collection::vec(member(), 1..5), condition).prop_map(
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

fn any_policy() -> impl Strategy<Value = Policy> {
    (proptest::collection::vec(binding(), 0..8), any::<bool>()).prop_map(|(bindings, audited)| Policy {
        version: 3,
        bindings,
        audit_configs: if audited { vec![json!({"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]})] } else { Vec::new() },
        etag: Some("BwWP6/SoJ90=".into()),
        extra: Default::default(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    /// The fix removes exactly the flagged grants: every other grant, every condition, the auditConfigs and the etag stay.
    #[test]
    fn the_fix_removes_exactly_the_flagged_grants(policy in any_policy()) {
        let settings = ProjectIamPolicy::default();
        let flagged: Vec<Grant> = settings.evaluate(&policy).into_iter().map(|(_, grant)| grant).collect();
        let (after, removed) = policy.without(&flagged);
        let before: Vec<Grant> = policy.grants().collect();
        let kept: Vec<Grant> = after.grants().collect();
        prop_assert_eq!(removed, before.iter().filter(|grant| flagged.contains(grant)).count());
        for grant in &before {
            prop_assert_eq!(kept.contains(grant), !flagged.contains(grant), "{:?}", grant);
        }
        prop_assert!(kept.iter().all(|grant| before.contains(grant)), "nothing new appears");
        prop_assert!(settings.evaluate(&after).is_empty(), "the result is compliant");
        prop_assert_eq!(&after.audit_configs, &policy.audit_configs);
        prop_assert_eq!(&after.etag, &policy.etag);
        let conditions = |policy: &Policy| policy.bindings.iter().filter_map(|binding| binding.condition.clone())
            .map(|condition| condition.to_string()).collect::<std::collections::BTreeSet<_>>();
        prop_assert!(conditions(&after).is_subset(&conditions(&policy)));
        for binding in &after.bindings {
            prop_assert!(policy.bindings.iter().any(|original| original.role == binding.role && original.condition == binding.condition));
        }
    }
}

// Issue 34: only `user:`, `group:` and `domain:` members could be outsiders — a service account of a project outside
// the organization and a federated principal of a pool the insider controls were kept even with allowed domains set;
// and the consumer list missed Google Groups' public domain and national webmail.
#[test]
fn outsiders_of_every_kind() {
    let settings = ProjectIamPolicy {
        allowed_domains: vec!["example.com".into()],
        allowed_projects: vec!["acme-*".into()],
        allowed_pools: vec![
            "projects/111/locations/global/workloadIdentityPools/github-acme".into(),
        ],
        ..ProjectIamPolicy::default()
    };
    for (member, outsider) in [
        (
            "serviceAccount:deployer@acme-prod.iam.gserviceaccount.com",
            false,
        ),
        (
            "serviceAccount:backdoor@attacker-sandbox.iam.gserviceaccount.com",
            true,
        ),
        (
            "serviceAccount:123-compute@developer.gserviceaccount.com",
            false,
        ),
        (
            "principalSet://iam.googleapis.com/projects/111/locations/global/workloadIdentityPools/github-acme/attribute.repository/acme/infra",
            false,
        ),
        (
            "principalSet://iam.googleapis.com/projects/999/locations/global/workloadIdentityPools/mine/*",
            true,
        ),
        (
            "principal://iam.googleapis.com/locations/global/workforcePools/contractors/subject/bob",
            true,
        ),
        (
            "principal://iam.googleapis.com/projects/111/locations/global/workloadIdentityPools",
            true,
        ),
        ("user:alice@example.com", false),
    ] {
        assert_eq!(settings.outsider(member), outsider, "{member}");
    }
    assert_eq!(
        federation_pool(
            "principal://iam.googleapis.com/locations/global/workforcePools/contractors/subject/bob"
        ),
        Some("locations/global/workforcePools/contractors")
    );
    // Without allowed projects, a service account is judged by the other rules only.
    assert!(
        !ProjectIamPolicy::default().outsider("serviceAccount:x@elsewhere.iam.gserviceaccount.com")
    );
    let consumer = ProjectIamPolicy::default();
    for member in [
        "group:anyone-can-join@googlegroups.com",
        "user:a@yahoo.co.uk",
        "user:b@hotmail.fr",
    ] {
        assert!(consumer.outsider(member), "{member}");
    }
    let found = categories(
        &settings,
        json!([
            {"role": "roles/editor", "members": ["serviceAccount:backdoor@attacker-sandbox.iam.gserviceaccount.com"]},
            {"role": "roles/iam.serviceAccountTokenCreator", "members": ["principalSet://iam.googleapis.com/projects/999/locations/global/workloadIdentityPools/mine/*"]},
        ]),
    );
    assert_eq!(
        found,
        vec!["PRIMITIVE_ROLE_OUTSIDER", "HIGH_RISK_ROLE_OUTSIDER"]
    );
}
