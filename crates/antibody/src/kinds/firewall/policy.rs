//! The open-firewall policy: an enabled INGRESS rule that lets (almost) everyone reach a risky port.

use serde::Serialize;
use serde_json::{Value, json};

use super::Fix;
pub use super::ports::PortRule;
use super::ports::{PortRange, Protocol};
use crate::gcp::compute::{Firewall, Rule};
use crate::policy::cidr::{is_broad, public_coverage, together_broad};
use crate::policy::{Finding, Severity, glob_match};

pub const POLICY_ID: &str = "open-firewall";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixKind {
    Disable,
    Narrow,
    Delete,
}

/// How a rule's sources reach (almost) everyone.
enum Exposure {
    /// Not at all.
    Narrow,
    /// These ranges are each wide enough on their own.
    Ranges(Vec<String>),
    /// No range is, but these cover as many public addresses together.
    Together(Vec<String>),
    /// An INGRESS rule with no source at all: Google fills in `0.0.0.0/0`.
    Implicit,
}

/// The validated settings of the policy (see `RawFirewallPolicy` for each field's meaning).
#[derive(Debug, Clone)]
pub struct FirewallPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    /// Seconds to wait before enforcing; the live state is decided again when they are up.
    pub grace_secs: u32,
    pub fix: FixKind,
    pub broad_prefix_v4: u8,
    pub broad_prefix_v6: u8,
    pub ports: Vec<PortRule>,
    pub allow_rules: Vec<String>,
    pub allow_principals: Vec<String>,
    pub exempt_marker: String,
    /// Whose changes may rely on `allow_rules` and `exempt_marker`: a name or a description is written by whoever
    /// makes the rule, so it counts only when that is someone trusted to grant exemptions.
    pub marker_principals: Vec<String>,
}

impl Default for FirewallPolicy {
    fn default() -> Self {
        FirewallPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            fix: FixKind::Disable,
            broad_prefix_v4: 8,
            broad_prefix_v6: 16,
            ports: super::ports::default_table(false),
            // GKE's own rules are made by GKE's service agent (`allow_principals`); a name anyone can type is no
            // exemption.
            allow_rules: Vec::new(),
            allow_principals: vec![
                "service-*@container-engine-robot.iam.gserviceaccount.com".into(),
                "*@cloudservices.gserviceaccount.com".into(),
            ],
            exempt_marker: String::new(),
            marker_principals: Vec::new(),
        }
    }
}

impl FirewallPolicy {
    /// Why this rule or change is left alone, if it is. A name or description exemption counts only for a change
    /// made by one of `marker_principals`: the person a rule protects against cannot exempt their own rule.
    pub fn exemption(&self, firewall: &Firewall, principal: &str) -> Option<String> {
        let trusted = self
            .marker_principals
            .iter()
            .find(|pattern| !principal.is_empty() && glob_match(pattern, principal));
        if let Some(trusted) = trusted
            && let Some(pattern) = self
                .allow_rules
                .iter()
                .find(|pattern| glob_match(pattern, &firewall.name))
        {
            return Some(format!(
                "rule name matches allow_rules entry '{pattern}', changed by {principal} (marker_principals \
                 entry '{trusted}')"
            ));
        }
        if let Some(pattern) = self
            .allow_principals
            .iter()
            .find(|pattern| glob_match(pattern, principal))
        {
            return Some(format!(
                "principal {principal} matches allow_principals entry '{pattern}'"
            ));
        }
        if let Some(trusted) = trusted
            && !self.exempt_marker.is_empty()
            && firewall
                .description
                .as_deref()
                .is_some_and(|description| description.contains(&self.exempt_marker))
        {
            return Some(format!(
                "description carries the exemption marker '{}', changed by {principal} (marker_principals \
                 entry '{trusted}')",
                self.exempt_marker
            ));
        }
        None
    }

    /// How the rule's sources reach (almost) everyone, if they do.
    fn exposure(&self, firewall: &Firewall) -> Exposure {
        if firewall.source_ranges.is_empty()
            && firewall.source_tags.is_empty()
            && firewall.source_service_accounts.is_empty()
        {
            return Exposure::Implicit;
        }
        let (v4, v6) = (self.broad_prefix_v4, self.broad_prefix_v6);
        let broad: Vec<String> = firewall
            .source_ranges
            .iter()
            .filter(|range| is_broad(range, v4, v6))
            .cloned()
            .collect();
        if !broad.is_empty() {
            return Exposure::Ranges(broad);
        }
        if together_broad(firewall.source_ranges.iter().map(String::as_str), v4, v6) {
            return Exposure::Together(firewall.source_ranges.clone());
        }
        Exposure::Narrow
    }

    /// The risky-port rows an allowed entry exposes.
    fn exposed<'a>(&'a self, rule: &Rule) -> Vec<&'a PortRule> {
        let Some(protocol) = Protocol::parse(&rule.ip_protocol) else {
            // An unknown protocol cannot be shown safe: treat it like `all`.
            return self.ports.iter().collect();
        };
        let ranges = rule_ranges(rule);
        self.ports
            .iter()
            .filter(|risky| protocol.covers(risky.protocol))
            .filter(|risky| {
                protocol == Protocol::All || ranges.iter().any(|range| range.overlaps(risky.range))
            })
            .collect()
    }

    pub fn evaluate(&self, firewall: &Firewall) -> Vec<Finding> {
        if firewall.disabled.unwrap_or(false)
            || firewall.direction.as_deref().unwrap_or("INGRESS") != "INGRESS"
        {
            return Vec::new();
        }
        let sources = match self.exposure(firewall) {
            Exposure::Narrow => return Vec::new(),
            Exposure::Ranges(broad) => broad.join(", "),
            Exposure::Implicit => {
                "0.0.0.0/0 (the rule names no source, so Google fills in 0.0.0.0/0)".to_string()
            }
            Exposure::Together(ranges) => {
                let coverage = public_coverage(ranges.iter().map(String::as_str));
                let shown: Vec<&str> = ranges.iter().take(4).map(String::as_str).collect();
                format!(
                    "{} ranges that together cover {} public IPv4 and {} public IPv6 addresses ({}{})",
                    ranges.len(),
                    coverage.v4,
                    coverage.v6,
                    shown.join(", "),
                    if ranges.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                )
            }
        };
        let mut findings: Vec<Finding> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for rule in &firewall.allowed {
            let everything = Protocol::parse(&rule.ip_protocol) == Some(Protocol::All)
                || (Protocol::parse(&rule.ip_protocol).is_some_and(Protocol::has_ports)
                    && rule.ports.is_empty());
            if everything && seen.insert("OPEN_FIREWALL".to_string()) {
                findings.push(Finding {
                    policy: POLICY_ID.into(),
                    category: "OPEN_FIREWALL".into(),
                    severity: Severity::Critical,
                    message: format!(
                        "rule {} allows {} on every port from {sources}",
                        firewall.name, rule.ip_protocol
                    ),
                });
            }
            for risky in self.exposed(rule) {
                let category = format!(
                    "OPEN_{}_PORT",
                    risky.name.to_ascii_uppercase().replace([' ', '/'], "_")
                );
                if seen.insert(format!(
                    "{category}/{}/{}",
                    risky.protocol.name(),
                    risky.range
                )) {
                    findings.push(Finding {
                        policy: POLICY_ID.into(),
                        category,
                        severity: Severity::High,
                        message: format!(
                            "rule {} opens {} ({}/{}) to {sources}",
                            firewall.name,
                            risky.name,
                            risky.protocol.name(),
                            risky.range
                        ),
                    });
                }
            }
        }
        findings
    }

    /// The configured fix for a violating rule. `narrow` falls back to `disable` when nothing safe would remain.
    pub fn plan_fix(&self, project: &str, firewall: &Firewall) -> Fix {
        let target = || (project.to_string(), firewall.name.clone());
        match self.fix {
            FixKind::Disable => {
                let (project, name) = target();
                Fix::DisableFirewall { project, name }
            }
            FixKind::Delete => {
                let (project, name) = target();
                Fix::DeleteFirewall { project, name }
            }
            FixKind::Narrow => self.plan_narrow(project, firewall).unwrap_or_else(|| {
                let (project, name) = target();
                Fix::DisableFirewall { project, name }
            }),
        }
    }

    fn plan_narrow(&self, project: &str, firewall: &Firewall) -> Option<Fix> {
        // Ranges that are wide only together leave no one range to remove: the rule is disabled instead.
        let broad: Vec<String> = match self.exposure(firewall) {
            Exposure::Ranges(broad) => broad,
            Exposure::Implicit => Vec::new(),
            Exposure::Together(_) | Exposure::Narrow => return None,
        };
        let safe_allowed = self.safe_allowed(&firewall.allowed);
        let narrow_sources: Vec<String> = firewall
            .source_ranges
            .iter()
            .filter(|range| !broad.contains(range))
            .cloned()
            .collect();
        let has_other_sources = !narrow_sources.is_empty()
            || !firewall.source_tags.is_empty()
            || !firewall.source_service_accounts.is_empty();
        if has_other_sources {
            // The original keeps serving its narrow sources on every port; the world keeps only safe ports.
            let sources = if narrow_sources.is_empty() {
                Value::Null
            } else {
                json!(narrow_sources)
            };
            let split = (!safe_allowed.is_empty()).then(|| {
                Box::new(Firewall {
                    name: split_name(&firewall.name),
                    description: Some(format!(
                        "Split from {} by antibody: world-wide sources, safe ports only",
                        firewall.name
                    )),
                    network: firewall.network.clone(),
                    priority: firewall.priority,
                    direction: Some("INGRESS".into()),
                    source_ranges: broad.iter().map(|range| range.to_string()).collect(),
                    target_tags: firewall.target_tags.clone(),
                    target_service_accounts: firewall.target_service_accounts.clone(),
                    allowed: safe_allowed,
                    log_config: firewall.log_config.clone(),
                    ..Firewall::default()
                })
            });
            return Some(Fix::NarrowFirewall {
                project: project.into(),
                name: firewall.name.clone(),
                patch: json!({ "sourceRanges": sources }),
                split,
            });
        }
        if safe_allowed.is_empty() {
            return None;
        }
        Some(Fix::NarrowFirewall {
            project: project.into(),
            name: firewall.name.clone(),
            patch: json!({ "allowed": safe_allowed }),
            split: None,
        })
    }

    /// The allowed entries with every risky port cut out. `all` becomes tcp/udp/sctp with the gaps, plus icmp.
    fn safe_allowed(&self, allowed: &[Rule]) -> Vec<Rule> {
        let mut safe = Vec::new();
        for rule in allowed {
            let protocol = Protocol::parse(&rule.ip_protocol);
            let expanded: Vec<(Protocol, Vec<PortRange>)> = match protocol {
                Some(Protocol::All) => vec![
                    (Protocol::Tcp, vec![PortRange::ALL]),
                    (Protocol::Udp, vec![PortRange::ALL]),
                    (Protocol::Sctp, vec![PortRange::ALL]),
                    (Protocol::Icmp, Vec::new()),
                ],
                Some(protocol) if protocol.has_ports() => vec![(protocol, rule_ranges(rule))],
                Some(_) => {
                    safe.push(rule.clone());
                    continue;
                }
                None => continue,
            };
            for (protocol, ranges) in expanded {
                if !protocol.has_ports() {
                    safe.push(Rule {
                        ip_protocol: protocol.name().into(),
                        ports: Vec::new(),
                    });
                    continue;
                }
                let holes: Vec<PortRange> = self
                    .ports
                    .iter()
                    .filter(|risky| risky.protocol == protocol)
                    .map(|risky| risky.range)
                    .collect();
                let ports: Vec<String> = ranges
                    .iter()
                    .flat_map(|range| range.subtract(&holes))
                    .map(|range| range.to_string())
                    .collect();
                if !ports.is_empty() {
                    safe.push(Rule {
                        ip_protocol: protocol.name().into(),
                        ports,
                    });
                }
            }
        }
        safe
    }
}

/// The port ranges of an allowed entry; none listed means every port.
fn rule_ranges(rule: &Rule) -> Vec<PortRange> {
    if rule.ports.is_empty() {
        return vec![PortRange::ALL];
    }
    // An unparseable port cannot be shown safe: treat it as every port.
    rule.ports
        .iter()
        .map(|port| PortRange::parse(port).unwrap_or(PortRange::ALL))
        .collect()
}

fn split_name(name: &str) -> String {
    const SUFFIX: &str = "-public";
    let stem: String = name.chars().take(63 - SUFFIX.len()).collect();
    format!("{}{SUFFIX}", stem.trim_end_matches('-'))
}

#[cfg(test)]
mod tests;
