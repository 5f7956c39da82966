//! The instance kind end to end: a new team member's VM with the default account and the serial port on, the
//! project-wide serial port, opt-in fixes, service agents, the fingerprint race, and undo through the engine.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, Options, USER_TOKEN};

const ZONE: &str = "us-central1-a";

fn vm(name: &str, metadata: Value) -> Value {
    json!({
        "name": name,
        "machineType": "e2-medium",
        "metadata": {"items": metadata},
        "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
        "networkInterfaces": [{"accessConfigs": [{"name": "External NAT"}]}],
    })
}

async fn instance(harness: &Harness, name: &str) -> Value {
    let (status, body) = harness
        .compute_as(
            USER_TOKEN,
            Method::GET,
            &format!("/zones/{ZONE}/instances/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn item<'a>(instance: &'a Value, key: &str) -> Option<&'a str> {
    instance["metadata"]["items"]
        .as_array()?
        .iter()
        .find(|item| item["key"] == key)
        .and_then(|item| item["value"].as_str())
}

async fn create(harness: &Harness, token: &str, body: Value) {
    let (status, reply) = harness
        .compute_as(
            token,
            Method::POST,
            &format!("/zones/{ZONE}/instances"),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
}

fn rows_about<'a>(
    rows: &'a [antibody::journal::Entry],
    name: &str,
) -> Vec<&'a antibody::journal::Entry> {
    let key = format!("projects/test-project/zones/{ZONE}/instances/{name}");
    rows.iter().filter(|row| row.resource == key).collect()
}

#[tokio::test]
async fn a_new_vm_with_the_serial_port_on_is_closed_and_the_default_account_reported() {
    let harness = Harness::start().await;
    create(
        &harness,
        USER_TOKEN,
        vm(
            "new-hire",
            json!([{"key": "serial-port-enable", "value": "TRUE"}]),
        ),
    )
    .await;
    let read = instance(&harness, "new-hire").await;
    assert_eq!(item(&read, "serial-port-enable"), Some("false"), "{read}");
    assert_eq!(read["status"], "RUNNING", "nothing disruptive by default");
    assert!(
        read["networkInterfaces"][0]["accessConfigs"].is_array(),
        "the address stays by default"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows_about(&rows, "new-hire")
        .into_iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("a remediated row");
    let categories: Vec<&str> = fixed
        .findings
        .iter()
        .map(|finding| finding.category.as_str())
        .collect();
    for category in [
        "COMPUTE_SERIAL_PORTS_ENABLED",
        "FULL_API_ACCESS",
        "PUBLIC_IP_ADDRESS",
    ] {
        assert!(categories.contains(&category), "{categories:?}");
    }
    assert_eq!(
        item(fixed.before.as_ref().expect("before"), "serial-port-enable"),
        Some("TRUE")
    );

    // Undo restores the metadata as it was, through the same path as a fix.
    let undone = harness.undo(fixed.id).await;
    assert_eq!(
        undone.resource,
        format!("projects/test-project/zones/{ZONE}/instances/new-hire")
    );
    harness.sandbox.settled().await;
    assert_eq!(
        item(&instance(&harness, "new-hire").await, "serial-port-enable"),
        Some("TRUE")
    );
}

#[tokio::test]
async fn the_projects_serial_port_is_closed_project_wide_and_inherited_by_instances() {
    let harness = Harness::start().await;
    let (_, project) = harness.compute_as(USER_TOKEN, Method::GET, "", None).await;
    let fingerprint = project["commonInstanceMetadata"]["fingerprint"].clone();
    let (status, reply) = harness
        .compute_as(
            USER_TOKEN,
            Method::POST,
            "/setCommonInstanceMetadata",
            Some(json!({"fingerprint": fingerprint, "items": [{"key": "serial-port-enable", "value": "1"},
                {"key": "startup-script", "value": "echo hi"}]})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (_, project) = harness.compute_as(USER_TOKEN, Method::GET, "", None).await;
    let items = &project["commonInstanceMetadata"]["items"];
    assert_eq!(
        items,
        &json!([{"key": "serial-port-enable", "value": "false"}, {"key": "startup-script", "value": "echo hi"}]),
        "the key is turned off and everything else is kept"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(rows.iter().any(
        |row| row.resource == "projects/test-project/commonInstanceMetadata"
            && row.outcome.as_deref() == Some("remediated")
    ));
}

#[tokio::test]
async fn opt_in_fixes_remove_the_address_and_stop_a_full_access_vm() {
    let harness = Harness::with(Options {
        tweak: Box::new(|config| {
            let actions = &mut config.policies.vm.actions;
            actions.insert(
                "PUBLIC_IP_ADDRESS",
                antibody::kinds::vm::policy::Action::Fix,
            );
            actions.insert("FULL_API_ACCESS", antibody::kinds::vm::policy::Action::Fix);
        }),
        ..Options::default()
    })
    .await;
    create(&harness, USER_TOKEN, vm("exposed", json!([]))).await;
    let read = instance(&harness, "exposed").await;
    assert!(
        read["networkInterfaces"][0].get("accessConfigs").is_none(),
        "{read}"
    );
    assert_eq!(read["status"], "TERMINATED");
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows_about(&rows, "exposed")
        .into_iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    let undone = harness.undo(fixed.id).await;
    assert!(!undone.resource.is_empty());
    harness.sandbox.settled().await;
    let restored = instance(&harness, "exposed").await;
    assert_eq!(restored["status"], "RUNNING");
    assert_eq!(
        restored["networkInterfaces"][0]["accessConfigs"][0]["name"],
        "External NAT"
    );
}

#[tokio::test]
async fn rescope_runs_the_instance_as_the_configured_account_and_undo_restores_it() {
    use antibody::kinds::vm::policy::{Action, FullAccessFix, Rescope};
    let narrow = "vm-runner@test-project.iam.gserviceaccount.com";
    let harness = Harness::with(Options {
        tweak: Box::new(move |config| {
            let policy = &mut config.policies.vm;
            policy.actions.insert("FULL_API_ACCESS", Action::Fix);
            policy.full_access_fix = FullAccessFix::Rescope(Rescope {
                email: narrow.into(),
                scopes: vec!["https://www.googleapis.com/auth/cloud-platform".into()],
            });
        }),
        ..Options::default()
    })
    .await;
    create(&harness, USER_TOKEN, vm("rescoped", json!([]))).await;
    let read = instance(&harness, "rescoped").await;
    assert_eq!(read["serviceAccounts"][0]["email"], narrow, "{read}");
    assert_eq!(read["status"], "RUNNING", "started again: it was running");
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let fixed = rows_about(&rows, "rescoped")
        .into_iter()
        .find(|row| row.outcome.as_deref() == Some("remediated"))
        .expect("remediated");
    harness.undo(fixed.id).await;
    let restored = instance(&harness, "rescoped").await;
    let account = restored["serviceAccounts"][0]["email"]
        .as_str()
        .unwrap_or_default();
    assert!(
        account.ends_with("-compute@developer.gserviceaccount.com"),
        "{restored}"
    );
    assert_eq!(
        restored["serviceAccounts"][0]["scopes"][0],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(restored["status"], "RUNNING");
}

#[tokio::test]
async fn instances_a_service_agent_creates_are_left_alone_and_a_self_written_created_by_is_not() {
    let harness = Harness::start().await;
    let agent = "123456789@cloudservices.gserviceaccount.com";
    create(
        &harness,
        agent,
        vm(
            "mig-node",
            json!([{"key": "serial-port-enable", "value": "true"}]),
        ),
    )
    .await;
    assert_eq!(
        item(&instance(&harness, "mig-node").await, "serial-port-enable"),
        Some("true")
    );
    let forged = json!([{"key": "serial-port-enable", "value": "true"},
        {"key": "created-by", "value": "projects/1/zones/us-central1-a/instanceGroupManagers/web"}]);
    create(&harness, USER_TOKEN, vm("pretend-mig", forged)).await;
    assert_eq!(
        item(
            &instance(&harness, "pretend-mig").await,
            "serial-port-enable"
        ),
        Some("false")
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let exempt = rows_about(&rows, "mig-node")
        .into_iter()
        .find(|row| row.outcome.as_deref() == Some("exempt"))
        .expect("an exempt row");
    let reason = exempt.reason.clone().unwrap_or_default();
    assert!(reason.contains(agent), "{reason}");
}

#[tokio::test]
async fn a_stale_fingerprint_is_read_again_and_the_other_change_kept() {
    let harness = Harness::start().await;
    // Google refuses the engine's first setMetadata with 412 conditionNotMet, as when another change moved the
    // fingerprint between its read and its write: the fix reads again and writes with the new fingerprint.
    harness.sandbox.inject(gcp_sandbox::faults::Fault {
        method: Some("POST".into()),
        path_contains: "/instances/busy/setMetadata".into(),
        principal: Some(crate::harness::ENGINE.into()),
        times: 1,
        status: Some(412),
        retry_after: None,
        delay_ms: None,
        operation_error: None,
        delete_first: false,
        reset: None,
    });
    let metadata = json!([{"key": "serial-port-enable", "value": "yes"}, {"key": "team", "value": "payments"}]);
    create(&harness, USER_TOKEN, vm("busy", metadata)).await;
    let read = instance(&harness, "busy").await;
    assert_eq!(item(&read, "serial-port-enable"), Some("false"), "{read}");
    assert_eq!(
        item(&read, "team"),
        Some("payments"),
        "the rest of the metadata is kept"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(
        rows_about(&rows, "busy")
            .iter()
            .any(|row| row.outcome.as_deref() == Some("remediated")),
        "{rows:?}"
    );
}

struct Quiet;

impl antibody::scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}

/// What events cannot show, a sweep finds: a service agent's instance (left alone as an event) and the project's
/// metadata, listed through `aggregatedList` and `projects.get`, reported, then fixed with `--fix`.
#[tokio::test]
async fn a_sweep_lists_instances_and_the_projects_metadata() {
    let harness = Harness::start().await;
    let agent = "123456789@cloudservices.gserviceaccount.com";
    create(
        &harness,
        agent,
        vm(
            "from-template",
            json!([{"key": "serial-port-enable", "value": "true"}]),
        ),
    )
    .await;
    let projects = [crate::harness::PROJECT.to_string()];
    let report = antibody::scan::sweep(harness.cx(), &projects, false, &Quiet).await;
    assert_eq!(
        report.swept.get("vm"),
        Some(&2),
        "one instance and the project's metadata: {:?}",
        report.swept
    );
    let key = format!("projects/test-project/zones/{ZONE}/instances/from-template");
    let violation = report
        .violations
        .iter()
        .find(|violation| violation.resource == key)
        .expect("the instance is reported");
    assert!(
        violation
            .findings
            .iter()
            .any(|finding| finding.category == "COMPUTE_SERIAL_PORTS_ENABLED")
    );
    assert_eq!(
        item(
            &instance(&harness, "from-template").await,
            "serial-port-enable"
        ),
        Some("true"),
        "report only"
    );
    let report = antibody::scan::sweep(harness.cx(), &projects, true, &Quiet).await;
    let fixed = report
        .violations
        .iter()
        .find(|violation| violation.resource == key)
        .expect("swept again");
    assert_eq!(fixed.outcome.as_deref(), Some("remediated"), "{fixed:?}");
    assert_eq!(
        item(
            &instance(&harness, "from-template").await,
            "serial-port-enable"
        ),
        Some("false")
    );
}

// Issue 33: an instance created without `accessConfigs` came back from the sandbox with `"accessConfigs": null` (a
// shape Google never sends) and antibody then failed to read the instance at all. The sandbox now omits the field,
// as Google does, and antibody reads a `null` list as empty wherever Google might send one.
#[tokio::test]
async fn a_vm_without_an_external_address_is_read_and_fixed() {
    let harness = Harness::start().await;
    let mut body = vm(
        "private-only",
        json!([{"key": "serial-port-enable", "value": "true"}]),
    );
    body["networkInterfaces"] = json!([{"network": "global/networks/default"}]);
    create(&harness, USER_TOKEN, body).await;
    let read = instance(&harness, "private-only").await;
    let interface = read["networkInterfaces"][0]
        .as_object()
        .expect("an interface");
    assert!(
        !interface.contains_key("accessConfigs"),
        "absent, never null: {read}"
    );
    assert_eq!(item(&read, "serial-port-enable"), Some("false"), "{read}");

    let with_nulls = json!({
        "name": "i", "zone": "zones/us-central1-a",
        "networkInterfaces": [{"name": "nic0", "accessConfigs": null, "ipv6AccessConfigs": null}],
        "serviceAccounts": null,
        "metadata": {"items": null},
    });
    let instance: antibody::gcp::instances::Instance =
        serde_json::from_value(with_nulls).expect("null lists read as empty");
    assert!(instance.network_interfaces[0].access_configs.is_empty());
    let policy: antibody::gcp::iam::Policy = serde_json::from_value(
        json!({"bindings": [{"role": "roles/viewer", "members": null}], "auditConfigs": null}),
    )
    .expect("null lists read as empty");
    assert!(policy.bindings[0].members.is_empty());
}
