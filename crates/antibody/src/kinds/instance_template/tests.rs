//! Templates and groups: Google's names, the methods that give a group a template, and a template judged as the
//! instances made from it would be.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn route_of(method: &str, resource_name: &str) -> Route {
    let entry = json!({"insertId": "t-1", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": method,
            "resourceName": resource_name},
        "resource": {"type": "gce_instance_template", "labels": {"project_id": "acme-prod"}}});
    crate::kinds::route(
        &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("an entry"),
    )
}

#[test]
fn templates_and_groups_route_by_google_names_and_strange_ones_are_refused() {
    for (method, name) in [
        (
            "v1.compute.instanceTemplates.insert",
            "projects/acme-prod/global/instanceTemplates/web",
        ),
        (
            "beta.compute.regionInstanceTemplates.insert",
            "projects/acme-prod/regions/europe-north1/instanceTemplates/web",
        ),
        (
            "compute.instanceGroupManagers.insert",
            "projects/acme-prod/zones/europe-north1-a/instanceGroupManagers/web",
        ),
        (
            "v1.compute.regionInstanceGroupManagers.setInstanceTemplate",
            "projects/acme-prod/regions/europe-north1/instanceGroupManagers/web",
        ),
    ] {
        let Route::Check(target) = route_of(method, name) else {
            panic!("{method} {name}");
        };
        assert_eq!(
            (target.kind, target.key()),
            (KindId::InstanceTemplate, name)
        );
    }
    assert!(matches!(
        route_of(
            "v1.compute.instanceGroupManagers.resize",
            "projects/acme-prod/zones/europe-north1-a/instanceGroupManagers/web"
        ),
        Route::Ignore(_)
    ));
    for strange in [
        "projects/acme-prod/global/instanceTemplates/Web",
        "projects/acme-prod/zones/europe-north1-a/instanceTemplates/web",
        "projects/acme-prod/regions/europe/instanceTemplates/web",
        "projects/acme-prod/zones/europe-north1-a/instanceGroupManagers/web/extra",
    ] {
        assert!(
            matches!(
                route_of("v1.compute.instanceTemplates.insert", strange),
                Route::Refuse(_)
            ),
            "{strange}"
        );
    }
}

#[test]
fn a_template_is_judged_as_its_instances_would_be_and_never_fixed() {
    let properties: Instance = serde_json::from_value(json!({
        "metadata": {"items": [{"key": "serial-port-enable", "value": "true"}]},
        "networkInterfaces": [{"network": "global/networks/default",
            "accessConfigs": [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]}],
        "serviceAccounts": [{"email": "123456789012-compute@developer.gserviceaccount.com",
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    }))
    .expect("template properties");
    let built = Built::Template {
        project: "acme-prod".into(),
        path: "projects/acme-prod/global/instanceTemplates/web".into(),
        properties: Box::new(properties),
        common: Metadata::default(),
    };
    let (findings, fix) = Templates::evaluate(&Config::default(), &built);
    assert!(fix.is_none());
    let categories: Vec<&str> = findings
        .iter()
        .map(|finding| finding.category.as_str())
        .collect();
    for expected in [
        "COMPUTE_SERIAL_PORTS_ENABLED",
        "PUBLIC_IP_ADDRESS",
        "FULL_API_ACCESS",
    ] {
        assert!(categories.contains(&expected), "{categories:?}");
    }
    assert!(
        findings.iter().all(|finding| finding.message.starts_with(
            "template projects/acme-prod/global/instanceTemplates/web: every instance made from it"
        ) && !finding.message.contains("gcloud")),
        "{findings:?}"
    );
}
