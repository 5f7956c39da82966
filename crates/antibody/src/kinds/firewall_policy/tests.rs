//! Network firewall policies: Google's names, and a rule judged as the VPC rule that would allow the same traffic.

use serde_json::json;

use super::*;

fn read(rules: Value) -> PolicyRead {
    PolicyRead {
        project: "acme-prod".into(),
        path: "projects/acme-prod/global/firewallPolicies/edge".into(),
        policy: serde_json::from_value(json!({"name": "edge", "rules": rules})).expect("a policy"),
    }
}

#[test]
fn an_allowing_rule_open_to_everyone_on_ssh_is_disabled_and_the_others_kept() {
    let policy = read(json!([
        {"priority": 100, "action": "allow", "direction": "INGRESS",
         "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "tcp", "ports": ["22"]}]}},
        {"priority": 200, "action": "deny", "direction": "INGRESS",
         "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}},
        {"priority": 300, "action": "allow", "direction": "INGRESS",
         "match": {"srcIpRanges": ["10.0.0.0/8"], "layer4Configs": [{"ipProtocol": "tcp", "ports": ["22"]}]}},
        {"priority": 400, "action": "allow", "direction": "INGRESS",
         "match": {"srcIpRanges": ["0.0.0.0/0"], "srcNetworkType": "INTRA_VPC",
             "layer4Configs": [{"ipProtocol": "tcp", "ports": ["3389"]}]}},
        {"priority": 500, "action": "allow", "direction": "EGRESS",
         "match": {"destIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}},
        {"priority": 600, "action": "apply_security_profile_group", "direction": "INGRESS",
         "match": {"srcIpRanges": ["::/0"], "layer4Configs": [{"ipProtocol": "tcp", "ports": ["3389"]}]}},
        {"priority": 2147483647, "action": "goto_next", "direction": "INGRESS",
         "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}}
    ]));
    let (findings, fix) = NetworkPolicies::evaluate(&Config::default(), &policy);
    let Some(Fix::DisablePolicyRules { priorities, .. }) = fix else {
        panic!("a fix: {findings:?}");
    };
    assert_eq!(priorities, [100, 600]);
    assert!(
        findings[0].message.starts_with(
            "rule at priority 100 of projects/acme-prod/global/firewallPolicies/edge:"
        )
    );
}

#[test]
fn a_disabled_rule_and_a_policy_in_alert_mode_change_nothing() {
    let open = json!([{"priority": 100, "action": "allow", "direction": "INGRESS", "disabled": true,
        "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}}]);
    assert!(
        NetworkPolicies::evaluate(&Config::default(), &read(open))
            .0
            .is_empty()
    );
    let mut config = Config::default();
    config.policies.firewall_policy.disable = false;
    let open = json!([{"priority": 100, "action": "allow", "direction": "INGRESS",
        "match": {"srcIpRanges": ["0.0.0.0/0"], "layer4Configs": [{"ipProtocol": "all"}]}}]);
    let (findings, fix) = NetworkPolicies::evaluate(&config, &read(open));
    assert!(!findings.is_empty() && fix.is_none());
}

#[test]
fn policies_route_by_google_names_and_strange_ones_are_refused() {
    let event = |method: &str, name: &str| {
        let entry = json!({"insertId": "p-1", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": method, "resourceName": name},
            "resource": {"type": "gce_network_firewall_policy", "labels": {"project_id": "acme-prod"}}});
        crate::kinds::route(
            &AuditEvent::from_log_entry(&entry, crate::event::Transport::LogEntry, None)
                .expect("an entry"),
        )
    };
    for (method, name) in [
        (
            "v1.compute.networkFirewallPolicies.addRule",
            "projects/acme-prod/global/firewallPolicies/edge",
        ),
        (
            "beta.compute.regionNetworkFirewallPolicies.patchRule",
            "projects/acme-prod/regions/europe-north1/firewallPolicies/edge",
        ),
    ] {
        let Route::Check(target) = event(method, name) else {
            panic!("{method}");
        };
        assert_eq!((target.kind, target.key()), (KindId::FirewallPolicy, name));
    }
    assert!(matches!(
        event(
            "v1.compute.networkFirewallPolicies.removeRule",
            "projects/acme-prod/global/firewallPolicies/edge"
        ),
        Route::Ignore(_)
    ));
    assert!(matches!(
        event(
            "v1.compute.networkFirewallPolicies.addRule",
            "projects/acme-prod/global/firewallPolicies/Edge"
        ),
        Route::Refuse(_)
    ));
}
