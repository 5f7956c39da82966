//! The captured Google payloads parse, route and decide as Google's real data demands.

use antibody::config::Config;
use antibody::event::{AuditEvent, Transport};
use antibody::gcp::compute::Firewall;
use antibody::kinds::firewall::FirewallRule;
use antibody::kinds::{self, Resource, Route};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// c7n recordings wrap the wire body as `{"headers", "body"}`.
fn recorded_firewall(name: &str) -> Firewall {
    serde_json::from_value(fixture(name)["body"].clone()).expect("a Compute firewall")
}

fn categories(firewall: Firewall) -> Vec<String> {
    let plan = kinds::evaluate(
        &Config::default(),
        &Resource::Firewall(FirewallRule {
            project: "my-project".into(),
            firewall,
        }),
    );
    plan.findings
        .into_iter()
        .map(|finding| finding.category)
        .collect()
}

#[test]
fn protocol_all_from_anywhere_is_critical() {
    let found = categories(recorded_firewall(
        "compute.firewalls.get.ingress-all-protocols.c7n.json",
    ));
    assert_eq!(found.first().map(String::as_str), Some("OPEN_FIREWALL"));
    assert!(found.contains(&"OPEN_SSH_PORT".to_string()));
}

#[test]
fn a_bare_source_address_is_one_host_not_the_world() {
    // Google writes a single address without its /32: "1.1.1.1".
    assert!(
        categories(recorded_firewall(
            "compute.firewalls.get.tcp22-single-ip.c7n.json"
        ))
        .is_empty()
    );
}

#[test]
fn listed_rules_with_port_ranges_parse() {
    let list = fixture("compute.firewalls.list.port-range.c7n.json");
    let items: Vec<Firewall> =
        serde_json::from_value(list["body"]["items"].clone()).expect("items");
    assert_eq!(items[0].allowed[0].ports, vec!["22", "21-25"]);
    let mut open = items[0].clone();
    open.source_ranges = vec!["0.0.0.0/0".into()];
    let found = categories(open);
    assert!(
        found.contains(&"OPEN_SSH_PORT".to_string())
            && found.contains(&"OPEN_SMTP_PORT".to_string()),
        "{found:?}"
    );
}

#[test]
fn the_proto_style_insert_entry_routes_to_its_rule() {
    // The log's request says `alloweds` and numbers as strings; antibody never reads it, it re-reads the rule.
    let entry = fixture("compute.firewalls.insert.first-sanitized.forseti.json");
    let event =
        AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an audit entry");
    assert_eq!(event.method_name, "v1.compute.firewalls.insert");
    assert_eq!(
        kinds::route(&event),
        Route::Check(
            kinds::target_of("projects/my-project/global/firewalls/test-firewall", "")
                .expect("a firewall rule")
        )
    );
    assert_eq!(
        event.operation.as_ref().map(|operation| operation.first),
        Some(true)
    );
}

#[test]
fn google_example_bodies_without_type_still_parse() {
    // A binary-mode body may lack protoPayload.@type.
    let entry = fixture("eventarc.binary-body.pubsub-create-topic.cloudevents.json");
    let event =
        AuditEvent::from_log_entry(&entry, Transport::EventarcBinary, Some("ce:x|1".into()))
            .expect("parses");
    assert_eq!(event.method_name, "google.pubsub.v1.Publisher.CreateTopic");
    assert!(matches!(kinds::route(&event), Route::Ignore(_)));
}

#[test]
fn captured_storage_and_iam_entries_route_to_their_resource() {
    let cases = [
        (
            "storage.setIamPermissions.add-allUsers.panther.json",
            kinds::target_of(
                "projects/_/buckets/jacks-test-bucket",
                "western-verve-123456",
            )
            .expect("a bucket"),
        ),
        (
            "resourcemanager.SetIamPolicy.add-gmail-viewer.panther.json",
            kinds::target_of("projects/western-verve-123456", "").expect("a project"),
        ),
    ];
    for (name, target) in cases {
        let event =
            AuditEvent::from_log_entry(&fixture(name), Transport::LogEntry, None).expect(name);
        assert_eq!(
            kinds::route(&event),
            Route::Check(target),
            "{name}: project from resource.labels"
        );
    }
}

#[test]
fn the_sandbox_error_shape_matches_computes() {
    let recorded = fixture("compute.firewalls.get.404.c7n.json")["body"].clone();
    let ours =
        gcp_sandbox::ApiError::not_found("projects/cloud-custodian/global/firewalls/test").body();
    assert_eq!(ours, recorded);
}

#[test]
fn the_sandbox_operation_shape_matches_computes() {
    let recorded = fixture("compute.firewalls.patch.operation-running.c7n.json")["body"].clone();
    let keys = |value: &Value| {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sandbox = gcp_sandbox::start(Default::default(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sandbox");
        let client = gcp_sandbox::http_client(std::time::Duration::from_secs(5));
        let base = format!(
            "{}/compute/v1/projects/p/global/firewalls",
            sandbox.base_url()
        );
        client
            .post(&base)
            .json(&serde_json::json!({"name": "test", "allowed": [{"IPProtocol": "tcp"}]}))
            .send()
            .await
            .expect("insert");
        let operation: Value = client
            .patch(format!("{base}/test"))
            .json(&serde_json::json!({"priority": 10}))
            .send()
            .await
            .expect("patch")
            .json()
            .await
            .expect("json");
        let mut ours = keys(&operation);
        ours.retain(|key| key != "user");
        assert_eq!(ours, keys(&recorded));
        assert_eq!(operation["status"], "RUNNING");
        assert!(
            operation["id"].is_string() && operation["targetId"].is_string(),
            "int64 as strings: {operation}"
        );
    });
}
