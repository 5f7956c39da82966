//! Table tests of the vm-instance policy: each finding from the REST shape Google returns, with the oracle written
//! out by hand.

use serde_json::{Value, json};

use super::*;
use crate::gcp::instances::{Instance, Metadata};

fn instance(body: Value) -> Instance {
    let mut base = json!({"name": "vm", "status": "RUNNING", "zone": "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a",
        "shieldedInstanceConfig": {"enableSecureBoot": true},
        "metadata": {"items": [{"key": "block-project-ssh-keys", "value": "true"}]},
        "networkInterfaces": [{"name": "nic0"}]});
    for (key, value) in body.as_object().expect("an object") {
        base[key] = value.clone();
    }
    serde_json::from_value(base).expect("an instance")
}

fn metadata(items: Value) -> Metadata {
    serde_json::from_value(json!({"items": items})).expect("metadata")
}

fn categories(policy: &InstancePolicy, vm: &Instance, common: &Metadata) -> Vec<String> {
    let (findings, _) = policy.evaluate_instance(vm, common);
    findings
        .into_iter()
        .map(|finding| finding.category)
        .collect()
}

#[test]
fn a_hardened_instance_has_no_findings() {
    let policy = InstancePolicy::default();
    assert_eq!(
        categories(&policy, &instance(json!({})), &Metadata::default()),
        Vec::<String>::new()
    );
}

#[test]
fn serial_ports_follow_the_instance_over_the_project_in_googles_spellings() {
    let policy = InstancePolicy::default();
    let own = |value: &str| {
        instance(
            json!({"metadata": {"items": [{"key": "block-project-ssh-keys", "value": "true"},
            {"key": "serial-port-enable", "value": value}]}}),
        )
    };
    for (instance_value, project_value, open) in [
        (Some("true"), None, true),
        (Some("TRUE"), None, true),
        (Some("1"), None, true),
        (Some("false"), Some("true"), false),
        (Some("0"), Some("1"), false),
        (None, Some("true"), true),
        (None, Some("nonsense"), false),
        (Some("nonsense"), Some("true"), true),
        (None, None, false),
    ] {
        let vm = match instance_value {
            Some(value) => own(value),
            None => instance(json!({})),
        };
        let common = match project_value {
            Some(value) => metadata(json!([{"key": "serial-port-enable", "value": value}])),
            None => Metadata::default(),
        };
        let (findings, planned) = policy.evaluate_instance(&vm, &common);
        let found = findings
            .iter()
            .any(|finding| finding.category == SERIAL_PORTS);
        assert_eq!(found, open, "{instance_value:?} over {project_value:?}");
        assert_eq!(
            planned
                .metadata
                .get("serial-port-enable")
                .map(String::as_str),
            open.then_some("false"),
            "the default fix closes it on the instance"
        );
    }
}

#[test]
fn each_finding_from_the_shape_google_returns() {
    let policy = InstancePolicy::default();
    let common = Metadata::default();
    let cases = [
        (json!({"metadata": {"items": []}}), PROJECT_SSH_KEYS),
        (
            json!({"metadata": {"items": [{"key": "block-project-ssh-keys", "value": "true"},
            {"key": "enable-oslogin", "value": "FALSE"}]}}),
            OS_LOGIN,
        ),
        (
            json!({"networkInterfaces": [{"name": "nic0", "accessConfigs": [{"name": "External NAT", "type": "ONE_TO_ONE_NAT", "natIP": "34.1.2.3"}]}]}),
            PUBLIC_IP,
        ),
        (
            json!({"networkInterfaces": [{"name": "nic0", "ipv6AccessConfigs": [{"name": "External IPv6", "type": "DIRECT_IPV6"}]}]}),
            PUBLIC_IP,
        ),
        (
            json!({"serviceAccounts": [{"email": "123456789012-compute@developer.gserviceaccount.com",
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]}),
            FULL_API_ACCESS,
        ),
        (
            json!({"serviceAccounts": [{"email": "123456789012-compute@developer.gserviceaccount.com",
            "scopes": ["https://www.googleapis.com/auth/devstorage.read_only"]}]}),
            DEFAULT_ACCOUNT,
        ),
        (json!({"canIpForward": true}), IP_FORWARDING),
        (
            json!({"shieldedInstanceConfig": {"enableSecureBoot": false}}),
            SHIELDED_VM,
        ),
    ];
    for (body, category) in cases {
        assert_eq!(
            categories(&policy, &instance(body.clone()), &common),
            vec![category.to_string()],
            "{body}"
        );
    }
}

#[test]
fn a_user_managed_account_with_full_scope_is_not_the_default_account() {
    let policy = InstancePolicy::default();
    let vm = instance(
        json!({"serviceAccounts": [{"email": "web@p.iam.gserviceaccount.com",
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]}),
    );
    assert!(categories(&policy, &vm, &Metadata::default()).is_empty());
    for email in [
        "-compute@developer.gserviceaccount.com",
        "12a-compute@developer.gserviceaccount.com",
        "123-compute@developer.gserviceaccount.com.evil.example",
    ] {
        assert!(!is_default_account(email), "{email}");
    }
}

#[test]
fn only_the_configured_findings_are_fixed_and_the_rest_reported() {
    let vm = instance(json!({
        "metadata": {"items": [{"key": "serial-port-enable", "value": "true"}, {"key": "enable-oslogin", "value": "false"}]},
        "networkInterfaces": [{"name": "nic0", "accessConfigs": [{"name": "External NAT", "natIP": "34.1.2.3"}]}],
        "serviceAccounts": [{"email": "1-compute@developer.gserviceaccount.com", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
    }));
    let common = Metadata::default();
    let (findings, planned) = InstancePolicy::default().evaluate_instance(&vm, &common);
    assert_eq!(findings.len(), 5, "{findings:?}");
    assert_eq!(
        planned,
        Planned {
            metadata: [("serial-port-enable".to_string(), "false".to_string())].into(),
            access_configs: vec![],
            stop: false,
            rescope: None,
        }
    );
    let mut everything = InstancePolicy::default();
    for category in [PROJECT_SSH_KEYS, OS_LOGIN, PUBLIC_IP, FULL_API_ACCESS] {
        everything.actions.insert(category, Action::Fix);
    }
    everything.actions.insert(SHIELDED_VM, Action::Off);
    let (findings, planned) = everything.evaluate_instance(&vm, &common);
    assert_eq!(findings.len(), 5);
    assert_eq!(
        planned,
        Planned {
            metadata: [
                ("block-project-ssh-keys".to_string(), "true".to_string()),
                ("enable-oslogin".to_string(), "TRUE".to_string()),
                ("serial-port-enable".to_string(), "false".to_string()),
            ]
            .into(),
            access_configs: vec![("nic0".to_string(), "External NAT".to_string())],
            stop: true,
            rescope: None,
        }
    );
    let stopped = instance(json!({"status": "TERMINATED",
        "serviceAccounts": [{"email": "1-compute@developer.gserviceaccount.com", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]}));
    let (findings, planned) = everything.evaluate_instance(&stopped, &common);
    assert_eq!(findings.len(), 1, "still reported while stopped");
    assert!(!planned.stop, "a stopped instance is not stopped again");
}

#[test]
fn the_projects_metadata_alone() {
    let policy = InstancePolicy::default();
    let (findings, planned) = policy.evaluate_project(&metadata(json!([
        {"key": "serial-port-enable", "value": "True"}, {"key": "enable-oslogin", "value": "0"}])));
    let categories: Vec<&str> = findings
        .iter()
        .map(|finding| finding.category.as_str())
        .collect();
    assert_eq!(categories, [SERIAL_PORTS, OS_LOGIN]);
    assert_eq!(
        planned.metadata,
        [("serial-port-enable".to_string(), "false".to_string())].into()
    );
    assert!(policy.evaluate_project(&Metadata::default()).0.is_empty());
}

#[test]
fn only_service_agents_are_exempt_by_default() {
    let policy = InstancePolicy::default();
    assert!(
        policy
            .exemption("123456789@cloudservices.gserviceaccount.com")
            .is_some()
    );
    assert!(
        policy
            .exemption("service-42@container-engine-robot.iam.gserviceaccount.com")
            .is_some()
    );
    assert!(policy.exemption("alice@example.com").is_none());
    assert!(
        policy
            .exemption("cloudservices.gserviceaccount.com@evil.example")
            .is_none()
    );
}

#[test]
fn rescope_needs_an_account_other_than_the_default_one() {
    use crate::kinds::vm::config::{RawInstancePolicy, validate_instance};
    for account in [
        None,
        Some("1-compute@developer.gserviceaccount.com"),
        Some("someone@example.com"),
    ] {
        let raw = RawInstancePolicy {
            full_api_access: Some("rescope".into()),
            rescope_account: account.map(str::to_string),
            ..RawInstancePolicy::default()
        };
        let mut problems = Vec::new();
        validate_instance(raw, &mut problems);
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains("rescope_account")),
            "{account:?}: {problems:?}"
        );
    }
    let raw = RawInstancePolicy {
        full_api_access: Some("rescope".into()),
        rescope_account: Some("vm-runner@p.iam.gserviceaccount.com".into()),
        ..RawInstancePolicy::default()
    };
    let mut problems = Vec::new();
    let policy = validate_instance(raw, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let vm = instance(
        json!({"serviceAccounts": [{"email": "1-compute@developer.gserviceaccount.com",
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]}),
    );
    let (_, planned) = policy.evaluate_instance(&vm, &Metadata::default());
    assert_eq!(
        planned.rescope,
        Some(Rescope {
            email: "vm-runner@p.iam.gserviceaccount.com".into(),
            scopes: vec![CLOUD_PLATFORM.to_string()]
        })
    );
    assert!(
        !planned.stop,
        "rescoping starts it again; it is not a plain stop"
    );
}
