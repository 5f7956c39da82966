//! Instance templates and managed instance groups end to end: a template that would make every instance it builds
//! reachable on its serial console is reported; the group built from it makes instances as Google's service agent
//! (left alone by the instance policy), and the group itself is reported, by whoever gave it the template.

use antibody::scan;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Harness, PROJECT, USER_TOKEN};

const ZONE: &str = "us-central1-a";

fn template(name: &str) -> Value {
    json!({"name": name, "properties": {
        "machineType": "e2-medium",
        "metadata": {"items": [{"key": "serial-port-enable", "value": "true"}]},
        "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
        "networkInterfaces": [{"network": "global/networks/default",
            "accessConfigs": [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]}],
    }})
}

async fn write(harness: &Harness, method: Method, path: &str, body: Value) -> Value {
    let (status, reply) = harness
        .compute_as(USER_TOKEN, method, path, Some(body))
        .await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

fn categories(row: &antibody::journal::Entry) -> Vec<String> {
    row.findings
        .iter()
        .map(|finding| finding.category.clone())
        .collect()
}

// Issue 34: a VM built from an instance template by a managed instance group is created by Google's service agent,
// which the instance policy leaves alone, and neither the template nor the group was ever looked at: the side door
// stayed open however many instances the group made.
#[tokio::test]
async fn a_template_and_the_group_built_from_it_are_judged_and_the_agents_instances_left_alone() {
    let harness = Harness::start().await;
    write(
        &harness,
        Method::POST,
        "/global/instanceTemplates",
        template("web"),
    )
    .await;
    write(
        &harness,
        Method::POST,
        &format!("/zones/{ZONE}/instanceGroupManagers"),
        json!({"name": "web", "baseInstanceName": "web", "targetSize": 2,
            "instanceTemplate": format!("projects/{PROJECT}/global/instanceTemplates/web")}),
    )
    .await;
    harness.sandbox.settled().await;
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let about = |key: &str| -> Vec<&antibody::journal::Entry> {
        rows.iter().filter(|row| row.resource == key).collect()
    };
    let template_rows = about(&format!("projects/{PROJECT}/global/instanceTemplates/web"));
    let reported = template_rows
        .iter()
        .find(|row| !row.findings.is_empty())
        .unwrap_or_else(|| panic!("the template is judged: {rows:#?}"));
    for category in [
        "COMPUTE_SERIAL_PORTS_ENABLED",
        "PUBLIC_IP_ADDRESS",
        "FULL_API_ACCESS",
    ] {
        assert!(
            categories(reported).contains(&category.to_string()),
            "{reported:?}"
        );
    }
    assert_eq!(reported.principal, "user@example.com");
    assert_eq!(
        reported.outcome.as_deref(),
        Some("detected"),
        "{reported:?}"
    );
    // The insert's `first` and `last` entries are one operation: reported once, the second answered by the first.
    let outcomes: Vec<Option<&str>> = template_rows
        .iter()
        .map(|row| row.outcome.as_deref())
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| **outcome == Some("detected"))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&Some("duplicate")), "{outcomes:?}");
    let group_rows = about(&format!(
        "projects/{PROJECT}/zones/{ZONE}/instanceGroupManagers/web"
    ));
    let group = group_rows
        .iter()
        .find(|row| !row.findings.is_empty())
        .unwrap_or_else(|| panic!("the group is judged: {rows:#?}"));
    assert!(
        group.findings[0].message.contains(&format!(
            "group projects/{PROJECT}/zones/{ZONE}/instanceGroupManagers/web builds from template \
             projects/{PROJECT}/global/instanceTemplates/web"
        )),
        "{group:?}"
    );
    // The group's instances: inserted by the service agent and left alone as its changes.
    let built: Vec<_> = rows
        .iter()
        .filter(|row| {
            row.resource
                .starts_with(&format!("projects/{PROJECT}/zones/{ZONE}/instances/web-"))
        })
        .collect();
    let instances: std::collections::BTreeSet<&str> =
        built.iter().map(|row| row.resource.as_str()).collect();
    assert_eq!(instances.len(), 2, "{rows:#?}");
    for row in built {
        assert!(
            row.principal
                .ends_with("@cloudservices.gserviceaccount.com"),
            "{row:?}"
        );
        assert_eq!(row.outcome.as_deref(), Some("exempt"), "{row:?}");
    }
    // Nothing was changed: the template is as it was written.
    let (status, read) = harness
        .compute_as(
            USER_TOKEN,
            Method::GET,
            "/global/instanceTemplates/web",
            None,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["properties"]["metadata"]["items"][0]["value"], "true");
}

#[tokio::test]
async fn a_group_given_a_regional_template_later_is_judged_again() {
    let harness = Harness::start().await;
    let clean = json!({"name": "plain", "properties": {"machineType": "e2-medium",
        "metadata": {"items": [{"key": "block-project-ssh-keys", "value": "true"}]},
        "shieldedInstanceConfig": {"enableSecureBoot": true}}});
    write(&harness, Method::POST, "/global/instanceTemplates", clean).await;
    write(
        &harness,
        Method::POST,
        "/regions/us-central1/instanceGroupManagers",
        json!({"name": "api", "targetSize": 0,
            "instanceTemplate": format!("projects/{PROJECT}/global/instanceTemplates/plain")}),
    )
    .await;
    write(
        &harness,
        Method::POST,
        "/regions/us-central1/instanceTemplates",
        template("open"),
    )
    .await;
    write(
        &harness,
        Method::POST,
        "/regions/us-central1/instanceGroupManagers/api/setInstanceTemplate",
        json!({"instanceTemplate": format!("projects/{PROJECT}/regions/us-central1/instanceTemplates/open")}),
    )
    .await;
    harness.sandbox.settled().await;
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let group = format!("projects/{PROJECT}/regions/us-central1/instanceGroupManagers/api");
    let about_group: Vec<_> = rows.iter().filter(|row| row.resource == group).collect();
    let outcome = |row: &&antibody::journal::Entry| row.outcome.clone().unwrap_or_default();
    assert!(
        about_group.iter().any(|row| outcome(row) == "compliant"),
        "built from the clean template: {about_group:#?}"
    );
    let detected: Vec<_> = about_group
        .iter()
        .filter(|row| outcome(row) == "detected")
        .collect();
    assert_eq!(
        detected.len(),
        1,
        "given the open template, reported once: {about_group:#?}"
    );
    assert!(categories(detected[0]).contains(&"COMPUTE_SERIAL_PORTS_ENABLED".to_string()));
    // A sweep finds both templates, and reports the open one.
    let report = scan::sweep(harness.cx(), &[PROJECT.to_string()], false, &Quiet).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.swept["instance-template"], 2);
    let reported: Vec<&str> = report
        .violations
        .iter()
        .filter(|violation| violation.resource.contains("/instanceTemplates/"))
        .map(|violation| violation.resource.as_str())
        .collect();
    assert_eq!(
        reported,
        [format!(
            "projects/{PROJECT}/regions/us-central1/instanceTemplates/open"
        )]
    );
}

struct Quiet;

impl scan::Progress for Quiet {
    fn step(&self, _message: &str) {}
}
