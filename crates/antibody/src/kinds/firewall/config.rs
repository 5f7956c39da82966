//! The `[policies.open_firewall]` section: what the user writes, and its validation into `FirewallPolicy`.

use serde::Deserialize;

use super::policy::{FirewallPolicy, FixKind, PortRule};
use super::ports::{self, Protocol};
use crate::config::mode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirewallPolicy {
    /// Wait this long before enforcing (to let Terraform or a person finish), then decide again on the live state
    /// (default 0: at once).
    pub grace_seconds: Option<u32>,
    /// Turn the policy off entirely (default: on).
    pub enabled: Option<bool>,
    /// `enforce` (default) or `dry-run`.
    pub mode: Option<String>,
    /// `disable` (default), `narrow` (remove only the world-wide sources for the risky ports) or `delete`.
    pub fix: Option<String>,
    /// An IPv4 range with a prefix this short or shorter counts as "almost everyone" (default 8), unless private.
    pub broad_prefix_v4: Option<u8>,
    /// The same threshold for IPv6 (default 16).
    pub broad_prefix_v6: Option<u8>,
    /// Replace the default risky-port table (`[{name, protocol, ports}]`, ports like "22" or "27017-27019").
    pub ports: Option<Vec<RawPortRule>>,
    /// Add to the default table.
    #[serde(default)]
    pub extra_ports: Vec<RawPortRule>,
    /// Also flag HTTP (tcp/80), which is off by default because public web servers are normal.
    #[serde(default)]
    pub include_http: bool,
    /// Rule names left alone when a principal in `marker_principals` made the change; `*` matches any run
    /// (default: none; GKE's rules are recognised by GKE's service agent in `allow_principals`).
    pub allow_rules: Option<Vec<String>>,
    /// Principals whose changes are left alone; `*` matches any run of characters (default: GKE's service agents).
    pub allow_principals: Option<Vec<String>>,
    /// A rule whose description contains this marker is left alone when a principal in `marker_principals` made
    /// the change (firewall rules have no labels; default: none).
    pub exempt_marker: Option<String>,
    /// The principals trusted to exempt a rule by its name or description (globs). Whoever creates a rule writes
    /// both, so without this list `allow_rules` and `exempt_marker` would let anyone exempt their own rule.
    #[serde(default)]
    pub marker_principals: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortRule {
    /// A name for findings, e.g. `SSH`.
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// A port or an inclusive range: "22", "27017-27019".
    pub ports: String,
}

pub fn validate_firewall(raw: RawFirewallPolicy, problems: &mut Vec<String>) -> FirewallPolicy {
    let mut policy = FirewallPolicy::default();
    let key = "policies.open_firewall";
    policy.enabled = raw.enabled.unwrap_or(true);
    policy.dry_run = mode(key, raw.mode.as_deref(), problems);
    policy.grace_secs = raw.grace_seconds.unwrap_or(0);
    match raw.fix.as_deref() {
        None | Some("disable") => policy.fix = FixKind::Disable,
        Some("narrow") => policy.fix = FixKind::Narrow,
        Some("delete") => policy.fix = FixKind::Delete,
        Some(other) => problems.push(format!(
            "{key}.fix: '{other}' is not one of disable, narrow, delete"
        )),
    }
    if let Some(bits) = raw.broad_prefix_v4 {
        if bits > 32 {
            problems.push(format!("{key}.broad_prefix_v4: {bits} is more than 32"));
        }
        policy.broad_prefix_v4 = bits;
    }
    if let Some(bits) = raw.broad_prefix_v6 {
        if bits > 128 {
            problems.push(format!("{key}.broad_prefix_v6: {bits} is more than 128"));
        }
        policy.broad_prefix_v6 = bits;
    }
    let mut table = match raw.ports {
        Some(rules) => port_rules(&format!("{key}.ports"), rules, problems),
        None => ports::default_table(raw.include_http),
    };
    table.extend(port_rules(
        &format!("{key}.extra_ports"),
        raw.extra_ports,
        problems,
    ));
    policy.ports = table;
    if let Some(rules) = raw.allow_rules {
        policy.allow_rules = rules;
    }
    if let Some(principals) = raw.allow_principals {
        policy.allow_principals = principals;
    }
    if let Some(marker) = raw.exempt_marker {
        policy.exempt_marker = marker;
    }
    policy.marker_principals = raw.marker_principals;
    if (!policy.allow_rules.is_empty() || !policy.exempt_marker.is_empty())
        && policy.marker_principals.is_empty()
    {
        problems.push(format!(
            "{key}.marker_principals: allow_rules and exempt_marker need the principals trusted to set them; a \
             rule's name and description are written by whoever makes the rule"
        ));
    }
    policy
}

fn port_rules(key: &str, rules: Vec<RawPortRule>, problems: &mut Vec<String>) -> Vec<PortRule> {
    let mut table = Vec::new();
    for (index, rule) in rules.into_iter().enumerate() {
        let protocol = match Protocol::parse(&rule.protocol) {
            Some(protocol @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp)) => protocol,
            _ => {
                problems.push(format!(
                    "{key}[{index}].protocol: '{}' is not one of tcp, udp, sctp",
                    rule.protocol
                ));
                continue;
            }
        };
        match ports::PortRange::parse(&rule.ports) {
            Some(range) => table.push(PortRule {
                name: rule.name,
                protocol,
                range,
            }),
            None => problems.push(format!(
                "{key}[{index}].ports: '{}' is not a port or a range like 27017-27019",
                rule.ports
            )),
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::kinds::firewall::policy::FixKind;

    #[test]
    fn the_example_section_parses() {
        let text = include_str!("../../../../../antibody.example.toml");
        let config = Config::parse(text).expect("antibody.example.toml is valid");
        assert_eq!(config.policies.firewall.fix, FixKind::Disable);
        assert!(
            config
                .policies
                .firewall
                .ports
                .iter()
                .any(|rule| rule.name == "SSH")
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = Config::parse(
            "[policies.open_firewall]\nmode = \"sometimes\"\nfix = \"explode\"\nextra_ports = [{name = \"x\", protocol = \"icmp\", ports = \"1\"}]\n",
        )
        .expect_err("three problems");
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(err.problems[0].contains("policies.open_firewall.mode"));
        assert!(err.problems[2].contains("extra_ports[0].protocol"));
    }
}
