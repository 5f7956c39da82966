//! Tests of the Cloud SQL kind: authorised networks judged like firewall sources, SSL reported, names.

use serde_json::json;

use super::*;
use crate::event::Transport;

fn instance(networks: &[&str], ipv4: bool, ssl: bool) -> SqlInstance {
    SqlInstance {
        name: "orders-db".into(),
        ipv4_enabled: ipv4,
        networks: networks
            .iter()
            .map(|value| AclEntry {
                value: value.to_string(),
                name: None,
                kind: None,
            })
            .collect(),
        require_ssl: ssl,
        ssl_mode: String::new(),
        settings_version: "3".into(),
    }
}

#[test]
fn broad_networks_are_removed_one_by_one_or_all_public_ones_when_only_their_union_is_broad() {
    let policy = SqlPolicy::default();
    let cases: [(&[&str], &[&str]); 6] = [
        (&["203.0.113.10/32"], &[]),
        (&["0.0.0.0/0", "203.0.113.10/32"], &["0.0.0.0/0"]),
        (&["::/0"], &["::/0"]),
        (
            &["0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/8"],
            &["0.0.0.0/1", "128.0.0.0/1"],
        ),
        (&["10.0.0.0/8", "192.168.0.0/16"], &[]),
        (&["1.0.0.0/8"], &["1.0.0.0/8"]),
    ];
    for (networks, removed) in cases {
        let (findings, remove) = policy.evaluate(&instance(networks, true, true));
        let values: Vec<&str> = remove
            .iter()
            .map(|network| network.value.as_str())
            .collect();
        assert_eq!(values, removed, "{networks:?}");
        assert_eq!(
            findings.iter().any(|finding| finding.category == PUBLIC),
            !removed.is_empty(),
            "{networks:?}"
        );
    }
    assert!(
        policy
            .evaluate(&instance(&["0.0.0.0/0"], false, true))
            .1
            .is_empty(),
        "no public IP, nothing reachable"
    );
    let (findings, remove) = policy.evaluate(&instance(&[], true, false));
    assert_eq!(
        (findings[0].category.as_str(), remove.len()),
        (SSL, 0),
        "SSL is reported, never changed"
    );
}

#[test]
fn instance_writes_route_and_forged_names_are_refused() {
    let route_of = |method: &str, resource: &str| {
        let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "cloudsql.googleapis.com",
            "methodName": method, "resourceName": resource}});
        crate::kinds::route(
            &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
        )
    };
    assert_eq!(
        route_of(
            "cloudsql.instances.update",
            "projects/my-project/instances/orders-db"
        ),
        Route::Check(target("my-project", "orders-db"))
    );
    assert!(matches!(
        route_of(
            "cloudsql.instances.restart",
            "projects/my-project/instances/orders-db"
        ),
        Route::Ignore(_)
    ));
    for forged in [
        "projects/my-project/instances/Orders",
        "projects/my-project/instances/a/b",
        "projects/my-project/instances/..",
    ] {
        assert!(
            matches!(
                route_of("cloudsql.instances.update", forged),
                Route::Refuse(_)
            ),
            "{forged}"
        );
    }
}
