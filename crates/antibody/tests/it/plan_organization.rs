//! The organization deployment's plan: the log sink's filter (checked with the Logging query language against the
//! sandbox's audit log), the gcloud script and the Terraform for one aggregated sink and an organization role.

use antibody::config::Config;
use antibody::event::{AuditEvent, Transport};
use antibody::kinds::{self, Route};
use antibody::plan;
use serde_json::json;

use crate::harness::{ENGINE, Harness, Options};
use crate::plan::{assert_bash_parses, golden};

/// The organization sink's filter selects every entry antibody's real router would re-read a resource for, none it
/// ignores, and none antibody itself wrote: checked with the sandbox's Logging query language over the sandbox's audit
/// log after a mix of changes and fixes, plus entries captured from Google.
#[tokio::test]
async fn the_sink_filter_selects_what_antibody_checks_and_not_its_own_writes() {
    let options = Options {
        buckets: vec![json!({"name": "sink-bucket"})],
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    harness
        .user_inserts(crate::harness::open_ssh("sink-rule"))
        .await;
    harness
        .user_inserts(
            json!({"name": "sink-quiet", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
            "sourceRanges": ["10.0.0.0/8"]}),
        )
        .await;
    harness
        .user_grants_on_bucket("sink-bucket", "roles/storage.objectViewer", "allUsers")
        .await;
    harness
        .user_edits_project_policy("v1", |policy| {
            policy["bindings"]
                .as_array_mut()
                .expect("bindings")
                .push(json!({"role": "roles/editor", "members": ["user:x@gmail.com"]}));
        })
        .await;
    harness.sandbox.settled().await;
    assert!(harness.count("remediated").await >= 3);

    let mut entries = harness.sandbox.audit_entries();
    for captured in [
        "eventarc.binary-body.pubsub-create-topic.cloudevents.json",
        "resourcemanager.SetIamPolicy.add-gmail-viewer.panther.json",
        "storage.setIamPermissions.add-allUsers.panther.json",
    ] {
        let path = format!("{}/tests/fixtures/{captured}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
        entries.push(serde_json::from_str(&text).expect("a LogEntry"));
    }
    // Organizations and folders log the same bare SetIamPolicy as projects, and the project-iam policy watches them.
    let project_grant = entries[entries.len() - 2].clone();
    for container in ["organizations/123456789", "folders/42"] {
        let mut entry = project_grant.clone();
        entry["protoPayload"]["resourceName"] = json!(container);
        entry["insertId"] = json!(format!("{container}-1"));
        entries.push(entry);
    }
    let text = plan::sink_filter(&Config::default(), &[ENGINE.to_string()]);
    assert!(
        text.len() <= plan::SINK_FILTER_LIMIT,
        "{} characters",
        text.len()
    );
    let filter = gcp_sandbox::logquery::Query::parse(&text).expect("Logging reads the filter");
    let (mut checked, mut own, mut ignored) = (0, 0, 0);
    for entry in &entries {
        let event =
            AuditEvent::from_log_entry(entry, Transport::LogEntry, None).expect("an audit entry");
        let selected = filter.matches(entry);
        let about = format!(
            "{} {} {} by {}",
            event.service_name, event.method_name, event.resource_name, event.principal
        );
        if event.principal == ENGINE {
            assert!(!selected, "antibody's own write is selected: {about}");
            own += 1;
            continue;
        }
        match kinds::route(&event) {
            Route::Check(_) => {
                assert!(
                    selected,
                    "a change antibody checks is not selected: {about}"
                );
                checked += 1;
            }
            Route::Ignore(_) => {
                assert!(!selected, "an ignored entry is selected: {about}");
                ignored += 1;
            }
            Route::Deleted(_) | Route::Refuse(_) => {}
        }
    }
    assert!(
        checked >= 8 && own >= 3 && ignored >= 1,
        "the mix has every case: {checked} checked, {own} antibody's own, {ignored} ignored"
    );
}

/// `plan --format sink-filter` prints a filter Logging reads, which leaves out the deployment's own account.
#[test]
fn the_printed_sink_filter_leaves_out_the_deployments_own_writes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "plan",
            "--project",
            "acme",
            "--region",
            "r",
            "--format",
            "sink-filter",
        ])
        .output()
        .expect("antibody runs");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let filter = gcp_sandbox::logquery::Query::parse(&text).expect("Logging reads the filter");
    let entry = |principal: &str| {
        json!({
            "logName": "projects/acme/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
                "resourceName": "projects/acme/global/firewalls/r1",
                "authenticationInfo": {"principalEmail": principal}}
        })
    };
    assert!(filter.matches(&entry("alice@example.com")));
    assert!(!filter.matches(&entry("antibody@acme.iam.gserviceaccount.com")));
}

/// With an organization, one deployment serves every project under it: the role is granted at the organization and
/// an aggregated sink with the plan's filter feeds an authenticated push subscription with a dead-letter topic;
/// there are no Eventarc triggers to deliver the host project's entries a second time.
#[test]
fn an_organization_deployment_is_one_aggregated_sink_and_an_organization_role() {
    let mut deployment = plan::deployment(
        &Config::default(),
        "acme-sec",
        "europe-west1",
        "europe-docker.pkg.dev/acme/antibody:1.0",
    );
    deployment.organization =
        Some(plan::organization_id("organizations/123456789").expect("an id"));
    let script = plan::gcloud(&deployment);
    golden("plan.organization.gcloud.sh", &script);
    assert_bash_parses(&script);
    assert!(!script.contains("gcloud eventarc triggers create"));
    assert!(
        script.contains("--organization 123456789 --include-children --log-filter \"$FILTER\"")
    );
    assert!(script.contains("--role \"organizations/123456789/roles/antibodyRemediator\""));
    assert!(script.contains("resourcemanager.organizations.setIamPolicy,"));
    assert!(script.contains("resourcemanager.folders.setIamPolicy,"));
    assert!(!script.contains("gcloud projects add-iam-policy-binding \"$PROJECT\" --member \"serviceAccount:$SA\" \\\n  --role \"projects/"));
    assert!(
        script
            .contains("--dead-letter-topic antibody-audit-dead-letter --max-delivery-attempts 10")
    );
    assert!(
        script.contains("--push-auth-service-account \"$SA\" --push-auth-token-audience \"$URL\"")
    );
    // The filter reaches gcloud byte for byte: a quoted heredoc expands nothing.
    let filter = script
        .split_once("<<'FILTER_END'\n")
        .and_then(|(_, rest)| rest.split_once("\nFILTER_END\n"))
        .map(|(filter, _)| filter)
        .expect("the filter heredoc");
    assert_eq!(filter, deployment.sink_filter);
    assert!(filter.contains("NOT protoPayload.authenticationInfo.principalEmail=\"antibody@acme-sec.iam.gserviceaccount.com\""));
}

#[test]
fn an_organization_is_its_numeric_id() {
    assert_eq!(
        plan::organization_id("organizations/42").as_deref(),
        Ok("42")
    );
    assert_eq!(plan::organization_id("42").as_deref(), Ok("42"));
    for wrong in [
        "",
        "organizations/",
        "folders/42",
        "organizations/42 --quiet",
        "org-42",
        "organizations/4$2",
    ] {
        assert!(plan::organization_id(wrong).is_err(), "{wrong}");
    }
}

/// The same organization deployment as Terraform: the organization's role and sink, the topic, the push
/// subscription and its dead-letter topic, no Eventarc trigger, and the sink filter intact inside its heredoc.
#[test]
fn an_organization_deployment_in_terraform() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "plan",
            "--project",
            "acme-sec",
            "--organization",
            "123456789",
            "--format",
            "terraform",
        ])
        .output()
        .expect("antibody runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hcl = String::from_utf8(output.stdout).expect("utf-8");
    golden("plan.organization.tf", &hcl);
    for expected in [
        "resource \"google_organization_iam_custom_role\" \"antibody\"",
        "resource \"google_organization_iam_member\" \"antibody_role\"",
        "resource \"google_logging_organization_sink\" \"antibody\"",
        "include_children = true",
        "member  = google_logging_organization_sink.antibody.writer_identity",
        "max_delivery_attempts = 10",
        "\"resourcemanager.organizations.setIamPolicy\",",
        "\"resourcemanager.folders.list\",",
    ] {
        assert!(hcl.contains(expected), "missing {expected}");
    }
    assert!(!hcl.contains("google_eventarc_trigger"));
    assert!(!hcl.contains("google_project_iam_custom_role"));
    assert_eq!(
        hcl.matches('{').count(),
        hcl.matches('}').count(),
        "balanced braces"
    );
    let mut config = Config::default();
    config.identities.clear();
    let deployment = plan::deployment(&config, "acme-sec", "us-central1", "x");
    let filter = hcl
        .split_once("<<-FILTER_END\n")
        .and_then(|(_, rest)| rest.split_once("\n  FILTER_END\n"))
        .map(|(filter, _)| filter)
        .expect("the filter heredoc");
    assert_eq!(filter, deployment.sink_filter);
}
