//! gcloud, unchanged, builds what a managed instance group runs and writes a network firewall policy against the
//! sandbox: a template made with gcloud is judged, the group gcloud makes from it too, and an open rule gcloud adds to
//! a policy is disabled — as gcloud itself then reads it.

use crate::gcloud::gcloud_ok;
use crate::harness::{Harness, PROJECT};

// Issue 34: instance templates, managed instance groups and network firewall policies were neither served nor
// judged; gcloud's own commands now make them, and what they open is seen.
#[tokio::test]
async fn templates_groups_and_firewall_policies_made_with_gcloud_are_judged() {
    let harness = Harness::start().await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let gcloud = |args: &'static [&'static str]| gcloud_ok(&harness, config.path(), args);
    gcloud(&[
        "compute",
        "instance-templates",
        "create",
        "web",
        "--machine-type",
        "e2-medium",
        "--metadata",
        "serial-port-enable=true",
    ])
    .await;
    gcloud(&[
        "compute",
        "instance-groups",
        "managed",
        "create",
        "web",
        "--zone",
        "us-central1-a",
        "--template",
        "web",
        "--size",
        "1",
    ])
    .await;
    let described = gcloud(&[
        "compute",
        "instance-groups",
        "managed",
        "describe",
        "web",
        "--zone",
        "us-central1-a",
    ])
    .await;
    assert_eq!(described["targetSize"], 1, "{described}");
    gcloud(&[
        "compute",
        "network-firewall-policies",
        "create",
        "edge",
        "--global",
    ])
    .await;
    gcloud(&[
        "compute",
        "network-firewall-policies",
        "rules",
        "create",
        "1000",
        "--firewall-policy",
        "edge",
        "--global-firewall-policy",
        "--action",
        "allow",
        "--direction",
        "INGRESS",
        "--src-ip-ranges",
        "0.0.0.0/0",
        "--layer4-configs",
        "tcp:22",
    ])
    .await;
    harness.sandbox.settled().await;
    let rule = gcloud(&[
        "compute",
        "network-firewall-policies",
        "rules",
        "describe",
        "1000",
        "--firewall-policy",
        "edge",
        "--global-firewall-policy",
    ])
    .await;
    assert_eq!(rule[0]["disabled"], true, "antibody disabled it: {rule}");
    let rows = harness.cx().journal.entries(200).await.expect("journal");
    let outcome_of = |key: String| -> Vec<String> {
        rows.iter()
            .filter(|row| row.resource == key)
            .filter_map(|row| row.outcome.clone())
            .collect()
    };
    assert!(
        outcome_of(format!("projects/{PROJECT}/global/instanceTemplates/web"))
            .contains(&"detected".into()),
        "{rows:#?}"
    );
    assert!(
        outcome_of(format!(
            "projects/{PROJECT}/zones/us-central1-a/instanceGroupManagers/web"
        ))
        .contains(&"detected".into()),
        "{rows:#?}"
    );
    assert!(
        outcome_of(format!("projects/{PROJECT}/global/firewallPolicies/edge"))
            .contains(&"remediated".into()),
        "{rows:#?}"
    );
}
