//! Table-driven tests of the open-firewall policy: CIDR and port edge cases, and the fix plans.

use serde_json::{Value, json};

use super::*;
use crate::gcp::compute::Firewall;

fn firewall(value: Value) -> Firewall {
    let mut value = value;
    if value.get("name").is_none() {
        value["name"] = json!("fw");
    }
    serde_json::from_value(value).expect("a firewall")
}

fn categories(policy: &FirewallPolicy, value: Value) -> Vec<String> {
    policy
        .evaluate(&firewall(value))
        .into_iter()
        .map(|finding| finding.category)
        .collect()
}

/// (rule, expected categories); every case uses the default table.
#[test]
fn open_port_detection() {
    let policy = FirewallPolicy::default();
    let world = json!(["0.0.0.0/0"]);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec!["OPEN_SSH_PORT"],
        ),
        // A port range containing 22 is SSH.
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "tcp", "ports": ["20-23"]}]}),
            vec!["OPEN_SSH_PORT", "OPEN_FTP_PORT", "OPEN_TELNET_PORT"],
        ),
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}]}),
            vec![],
        ),
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}]}),
            vec![],
        ),
        // Protocols given by number (6 is TCP, 17 UDP) are the protocols they name.
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "6", "ports": ["3389"]}]}),
            vec!["OPEN_RDP_PORT"],
        ),
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "17", "ports": ["3389"]}]}),
            vec!["OPEN_RDP_PORT"],
        ),
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "sctp", "ports": ["22"]}]}),
            vec!["OPEN_SSH_PORT"],
        ),
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "udp", "ports": ["22"]}]}),
            vec![],
        ),
        (
            json!({"sourceRanges": world, "allowed": [{"IPProtocol": "icmp"}]}),
            vec![],
        ),
        // IPv6's everyone, and "almost everyone" written as wide ranges.
        (
            json!({"sourceRanges": ["::/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["6379"]}]}),
            vec!["OPEN_REDIS_PORT"],
        ),
        (
            json!({"sourceRanges": ["0.0.0.0/1", "128.0.0.0/1"], "allowed": [{"IPProtocol": "tcp", "ports": ["5432"]}]}),
            vec!["OPEN_POSTGRESQL_PORT"],
        ),
        (
            json!({"sourceRanges": ["10.0.0.0/8"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
        (
            json!({"sourceRanges": ["1.1.1.1"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
        (
            json!({"sourceRanges": ["35.235.240.0/20"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
        // Denied, disabled and egress rules open nothing.
        (
            json!({"sourceRanges": world, "denied": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
        (
            json!({"sourceRanges": world, "disabled": true, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
        (
            json!({"direction": "EGRESS", "destinationRanges": world, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
        (
            json!({"sourceTags": ["web"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            vec![],
        ),
    ];
    for (rule, expected) in cases {
        let mut got = categories(&policy, rule.clone());
        got.dedup();
        assert_eq!(got, expected, "{rule}");
    }
}

#[test]
fn every_port_rules_are_critical() {
    let policy = FirewallPolicy::default();
    for rule in [
        json!({"sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "all"}]}),
        json!({"sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp"}]}),
        json!({"sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["0-65535"]}]}),
    ] {
        let findings = policy.evaluate(&firewall(rule.clone()));
        assert!(
            findings
                .iter()
                .any(|finding| finding.category == "OPEN_SSH_PORT"),
            "{rule}"
        );
        if rule["allowed"][0].get("ports").is_none() {
            assert_eq!(findings[0].category, "OPEN_FIREWALL", "{rule}");
            assert_eq!(findings[0].severity, Severity::Critical);
        }
    }
}

#[test]
fn http_is_flagged_only_when_asked() {
    let mut policy = FirewallPolicy::default();
    let rule =
        json!({"sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}]});
    assert!(categories(&policy, rule.clone()).is_empty());
    policy.ports = crate::kinds::firewall::ports::default_table(true);
    assert_eq!(categories(&policy, rule), vec!["OPEN_HTTP_PORT"]);
}

#[test]
fn the_broad_prefix_threshold_is_configurable() {
    let mut policy = FirewallPolicy::default();
    let rule =
        json!({"sourceRanges": ["0.0.0.0/1"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]});
    assert_eq!(categories(&policy, rule.clone()), vec!["OPEN_SSH_PORT"]);
    policy.broad_prefix_v4 = 0;
    assert!(categories(&policy, rule).is_empty());
}

// Issue 17, item 1: anyone who could create a rule left SSH open by naming it gke-… or writing antibody:exempt in
// its description.
#[test]
fn names_and_markers_exempt_only_changes_by_trusted_principals() {
    let gke = firewall(
        json!({"name": "gke-cluster-1-all", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "all"}]}),
    );
    let marked = firewall(
        json!({"name": "bastion", "description": "jump host [antibody:exempt] until Friday", "allowed": [{"IPProtocol": "all"}]}),
    );
    let defaults = FirewallPolicy::default();
    assert_eq!(defaults.exemption(&gke, "someone@example.com"), None);
    assert_eq!(defaults.exemption(&marked, "someone@example.com"), None);
    let agent = "service-123@container-engine-robot.iam.gserviceaccount.com";
    let plain = firewall(json!({"name": "ssh", "allowed": [{"IPProtocol": "all"}]}));
    assert!(
        defaults.exemption(&plain, agent).is_some(),
        "GKE's service agent is recognised by who it is"
    );
    assert!(defaults.exemption(&plain, "user@example.com").is_none());
    let platform = "terraform@platform-prod.iam.gserviceaccount.com";
    let configured = FirewallPolicy {
        allow_rules: vec!["gke-*".into()],
        exempt_marker: "antibody:exempt".into(),
        marker_principals: vec!["terraform@platform-prod.iam.gserviceaccount.com".into()],
        ..FirewallPolicy::default()
    };
    assert!(
        configured
            .exemption(&gke, platform)
            .is_some_and(|reason| reason.contains("gke-*") && reason.contains(platform))
    );
    assert!(configured.exemption(&gke, "someone@example.com").is_none());
    assert!(configured.exemption(&marked, platform).is_some());
    assert!(
        configured
            .exemption(&marked, "someone@example.com")
            .is_none()
    );
    assert!(
        configured.exemption(&marked, "").is_none(),
        "a sweep cannot tell who wrote it"
    );
}

#[test]
fn globs_match_prefixes_suffixes_and_middles() {
    let cases = [
        ("gke-*", "gke-x", true),
        ("gke-*", "xgke-", false),
        ("*@x.com", "a@x.com", true),
        ("service-*@robot.com", "service-12@robot.com", true),
        ("service-*@robot.com", "service-12@evil.com", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
    }
}

fn narrow_policy() -> FirewallPolicy {
    FirewallPolicy {
        fix: FixKind::Narrow,
        ..FirewallPolicy::default()
    }
}

#[test]
fn narrowing_a_world_only_rule_keeps_its_safe_ports() {
    let rule = firewall(json!({"name": "web", "sourceRanges": ["0.0.0.0/0"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["22", "80", "443"]}, {"IPProtocol": "icmp"}]}));
    let fix = narrow_policy().plan_fix("p", &rule);
    assert_eq!(
        fix,
        Fix::NarrowFirewall {
            project: "p".into(),
            name: "web".into(),
            patch: json!({"allowed": [{"IPProtocol": "tcp", "ports": ["80", "443"]}, {"IPProtocol": "icmp"}]}),
            split: None,
        }
    );
}

#[test]
fn narrowing_a_mixed_rule_splits_the_world_off() {
    let rule = firewall(
        json!({"name": "mixed", "sourceRanges": ["0.0.0.0/0", "10.0.0.0/8"], "priority": 900,
        "targetTags": ["db"], "allowed": [{"IPProtocol": "tcp", "ports": ["20-30"]}]}),
    );
    let Fix::NarrowFirewall {
        patch,
        split: Some(split),
        ..
    } = narrow_policy().plan_fix("p", &rule)
    else {
        panic!("expected a split");
    };
    assert_eq!(patch, json!({"sourceRanges": ["10.0.0.0/8"]}));
    assert_eq!(split.name, "mixed-public");
    assert_eq!(split.source_ranges, vec!["0.0.0.0/0"]);
    assert_eq!(split.priority, Some(900));
    assert_eq!(split.target_tags, vec!["db"]);
    let ports: Vec<&str> = split.allowed[0].ports.iter().map(String::as_str).collect();
    assert_eq!(ports, vec!["24", "26-30"]);
    assert!(
        FirewallPolicy::default().evaluate(&split).is_empty(),
        "the split must itself be compliant"
    );
}

#[test]
fn narrowing_protocol_all_keeps_everything_but_the_risky_ports() {
    let rule = firewall(
        json!({"name": "everything", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "all"}]}),
    );
    let Fix::NarrowFirewall { patch, .. } = narrow_policy().plan_fix("p", &rule) else {
        panic!("expected narrow")
    };
    let narrowed = firewall(
        json!({"name": "everything", "sourceRanges": ["0.0.0.0/0"], "allowed": patch["allowed"]}),
    );
    assert!(
        FirewallPolicy::default().evaluate(&narrowed).is_empty(),
        "{patch}"
    );
    let protocols: Vec<&str> = narrowed
        .allowed
        .iter()
        .map(|rule| rule.ip_protocol.as_str())
        .collect();
    assert_eq!(protocols, vec!["tcp", "udp", "sctp", "icmp"]);
}

#[test]
fn narrowing_falls_back_to_disable_when_nothing_safe_remains() {
    let rule = firewall(
        json!({"name": "ssh", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
    );
    assert_eq!(
        narrow_policy().plan_fix("p", &rule),
        Fix::DisableFirewall {
            project: "p".into(),
            name: "ssh".into()
        }
    );
}

#[test]
fn split_names_stay_within_googles_limit() {
    let long = "a".repeat(63);
    assert!(split_name(&long).len() <= 63);
    assert!(split_name("x-").ends_with("x-public"));
}

// Issue 17, item 2: each source range was judged alone, so 512 /9s (all of IPv4) on tcp/22 were "compliant".
#[test]
fn ranges_that_cover_everyone_together_open_the_rule() {
    let policy = FirewallPolicy::default();
    let nines: Vec<String> = (0..512u32)
        .map(|index| format!("{}.{}.0.0/9", index / 2, (index % 2) * 128))
        .collect();
    let ssh = json!([{"IPProtocol": "tcp", "ports": ["22"]}]);
    let findings = policy.evaluate(&firewall(json!({"sourceRanges": nines, "allowed": ssh})));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]
            .message
            .contains("512 ranges that together cover"),
        "{}",
        findings[0].message
    );
    let sixteens: Vec<String> = (0..256).map(|index| format!("11.{index}.0.0/16")).collect();
    assert_eq!(
        categories(&policy, json!({"sourceRanges": sixteens, "allowed": ssh})),
        vec!["OPEN_SSH_PORT"]
    );
    // A handful of offices is not everyone.
    assert!(
        categories(
            &policy,
            json!({"sourceRanges": ["203.0.113.0/24", "198.51.100.0/24"], "allowed": ssh})
        )
        .is_empty()
    );
    // Narrowing cannot tell which of many ranges to drop: the rule is disabled instead.
    let narrow = narrow_policy();
    let rule = firewall(
        json!({"sourceRanges": (0..256).map(|index| format!("11.{index}.0.0/16")).collect::<Vec<_>>(),
        "allowed": [{"IPProtocol": "tcp", "ports": ["22", "443"]}]}),
    );
    assert!(matches!(
        narrow.plan_fix("my-project", &rule),
        Fix::DisableFirewall { .. }
    ));
}

// Issue 17, item 2: an INGRESS rule with no source is open to 0.0.0.0/0 on Google (the API fills it in).
#[test]
fn an_ingress_rule_without_a_source_is_open_to_the_world() {
    let policy = FirewallPolicy::default();
    let ssh = json!([{"IPProtocol": "tcp", "ports": ["22"]}]);
    let findings = policy.evaluate(&firewall(json!({"allowed": ssh})));
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].message.contains("names no source"),
        "{}",
        findings[0].message
    );
    // A source tag or service account is a source: no implicit world.
    assert!(categories(&policy, json!({"sourceTags": ["web"], "allowed": ssh})).is_empty());
    assert!(
        categories(
            &policy,
            json!({"sourceServiceAccounts": ["sa@p.iam.gserviceaccount.com"], "allowed": ssh})
        )
        .is_empty()
    );
    assert!(categories(&policy, json!({"direction": "EGRESS", "allowed": ssh})).is_empty());
    // Narrowing keeps the safe ports open to the world the rule already served.
    let narrow = narrow_policy();
    let rule = firewall(json!({"allowed": [{"IPProtocol": "tcp", "ports": ["22", "443"]}]}));
    let Fix::NarrowFirewall { patch, split, .. } = narrow.plan_fix("my-project", &rule) else {
        panic!("expected a narrowing")
    };
    assert_eq!(
        patch,
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["443"]}]})
    );
    assert!(split.is_none());
}
