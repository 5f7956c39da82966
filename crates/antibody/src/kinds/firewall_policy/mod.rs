//! Network firewall policies (global and regional): each allowing ingress rule judged by the open-firewall policy as
//! a VPC firewall rule with the same sources and ports would be, an open rule disabled in place (`patchRule`), and
//! the undo that enables it again.

pub mod config;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::compute::{Firewall, Rule};
use crate::gcp::firewall_policies::{NetworkPolicy, PolicyRule};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub use config::NetworkPolicyPolicy;

/// The network firewall policy kind.
pub struct NetworkPolicies;

/// A policy as just read, with its project and relative name.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRead {
    pub project: String,
    /// `projects/P/global/firewallPolicies/N` or `projects/P/regions/R/firewallPolicies/N`.
    pub path: String,
    pub policy: NetworkPolicy,
}

/// The fix of a policy: its open rules disabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    DisablePolicyRules {
        project: String,
        path: String,
        priorities: Vec<i64>,
    },
}

/// The writes that can add or widen an allowing rule, or put a policy in force. Compute names both collections'
/// methods `v1.` or `beta.` by the surface the caller used.
const WATCHES: &[Watch] = &[
    watch("v1.compute.networkFirewallPolicies.insert"),
    watch("v1.compute.networkFirewallPolicies.patch"),
    watch("v1.compute.networkFirewallPolicies.addRule"),
    watch("v1.compute.networkFirewallPolicies.patchRule"),
    watch("v1.compute.networkFirewallPolicies.cloneRules"),
    watch("v1.compute.networkFirewallPolicies.addAssociation"),
    watch("beta.compute.networkFirewallPolicies.insert"),
    watch("beta.compute.networkFirewallPolicies.patch"),
    watch("beta.compute.networkFirewallPolicies.addRule"),
    watch("beta.compute.networkFirewallPolicies.patchRule"),
    watch("beta.compute.networkFirewallPolicies.cloneRules"),
    watch("beta.compute.networkFirewallPolicies.addAssociation"),
    watch("v1.compute.regionNetworkFirewallPolicies.insert"),
    watch("v1.compute.regionNetworkFirewallPolicies.patch"),
    watch("v1.compute.regionNetworkFirewallPolicies.addRule"),
    watch("v1.compute.regionNetworkFirewallPolicies.patchRule"),
    watch("v1.compute.regionNetworkFirewallPolicies.cloneRules"),
    watch("v1.compute.regionNetworkFirewallPolicies.addAssociation"),
    watch("beta.compute.regionNetworkFirewallPolicies.insert"),
    watch("beta.compute.regionNetworkFirewallPolicies.patch"),
    watch("beta.compute.regionNetworkFirewallPolicies.addRule"),
    watch("beta.compute.regionNetworkFirewallPolicies.patchRule"),
    watch("beta.compute.regionNetworkFirewallPolicies.addAssociation"),
];

const CHECKED_VERBS: &[&str] = &[
    "insert",
    "patch",
    "addRule",
    "patchRule",
    "cloneRules",
    "addAssociation",
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "compute.googleapis.com",
        method,
    }
}

/// A policy's relative name, by Google's grammar (a Compute URL is read as its path).
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let relative = names::relative(resource_name);
    let parts: Vec<&str> = relative.split('/').collect();
    let (project, path) = match parts.as_slice() {
        ["projects", project, "global", "firewallPolicies", name] => {
            let project = names::project(project)?;
            let name = names::compute(name)?;
            (
                project,
                format!("projects/{project}/global/firewallPolicies/{name}"),
            )
        }
        [
            "projects",
            project,
            "regions",
            region,
            "firewallPolicies",
            name,
        ] => {
            let project = names::project(project)?;
            let region = names::region(region)?;
            let name = names::compute(name)?;
            (
                project,
                format!("projects/{project}/regions/{region}/firewallPolicies/{name}"),
            )
        }
        _ => {
            return Err(format!(
                "'{}' is not a network firewall policy (projects/PROJECT/global/firewallPolicies/NAME)",
                names::printable(resource_name)
            ));
        }
    };
    Ok(Target::new(
        KindId::FirewallPolicy,
        project,
        &path,
        path.clone(),
    ))
}

/// A policy's relative name from what a list gives.
fn path_of(project: &str, policy: &NetworkPolicy) -> String {
    match policy
        .region
        .as_deref()
        .and_then(|url| url.rsplit('/').next())
    {
        Some(region) => format!(
            "projects/{project}/regions/{region}/firewallPolicies/{}",
            policy.name
        ),
        None => format!("projects/{project}/global/firewallPolicies/{}", policy.name),
    }
}

/// The source network types that keep the internet out whatever the ranges say.
const NOT_THE_INTERNET: &[&str] = &["NON_INTERNET", "INTRA_VPC", "VPC_NETWORKS"];

/// A rule as the VPC firewall rule that would allow the same traffic: its source ranges (none when its network type
/// keeps the internet out), other sources as a stand-in tag, and its layer-4 configs when it allows.
pub(crate) fn as_vpc_rule(policy: &str, rule: &PolicyRule) -> Firewall {
    let matcher = &rule.matcher;
    let internet_kept_out = matcher
        .src_network_type
        .as_deref()
        .is_some_and(|kind| NOT_THE_INTERNET.contains(&kind));
    let other_sources = matcher.rest.iter().any(|(field, value)| {
        field.starts_with("src") && value.as_array().is_some_and(|list| !list.is_empty())
    });
    let allows = matches!(
        rule.action.as_str(),
        "allow" | "apply_security_profile_group"
    );
    Firewall {
        name: format!("{policy} priority {}", rule.priority),
        description: rule.description.clone(),
        direction: Some(if rule.direction.is_empty() {
            "INGRESS".into()
        } else {
            rule.direction.clone()
        }),
        disabled: rule.disabled,
        source_ranges: if internet_kept_out {
            Vec::new()
        } else {
            matcher.src_ip_ranges.clone()
        },
        source_tags: if internet_kept_out || other_sources {
            vec!["(the rule's other sources)".to_string()]
        } else {
            Vec::new()
        },
        allowed: if allows {
            matcher
                .layer4_configs
                .iter()
                .map(|config| Rule {
                    ip_protocol: config.ip_protocol.clone(),
                    ports: config.ports.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        ..Firewall::default()
    }
}

/// Each open rule's findings (by the open-firewall policy), and their priorities.
fn judged(config: &Config, read: &PolicyRead) -> (Vec<Finding>, Vec<i64>) {
    let mut findings = Vec::new();
    let mut open = Vec::new();
    for rule in &read.policy.rules {
        let found = config
            .policies
            .firewall
            .evaluate(&as_vpc_rule(&read.path, rule));
        if found.is_empty() {
            continue;
        }
        open.push(rule.priority);
        findings.extend(found.into_iter().map(|mut finding| {
            finding.message = format!(
                "rule at priority {} of {}: {}",
                rule.priority, read.path, finding.message
            );
            finding
        }));
    }
    (findings, open)
}

/// Whether the rule at `priority` is disabled in a policy as read (raw JSON).
fn disabled_in(raw: &Value, priority: i64) -> Option<bool> {
    raw["rules"]
        .as_array()?
        .iter()
        .find(|rule| rule["priority"] == priority)
        .map(|rule| rule["disabled"].as_bool().unwrap_or(false))
}

impl Kind for NetworkPolicies {
    type Resource = PolicyRead;
    type Fix = Fix;
    const NAME: &'static str = "firewall-policy";
    const NOUN: &'static str = "network firewall policies";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str =
        "^projects/[^/]+/(global|regions/[^/]+)/firewallPolicies/[^/]+$";
    const INPUTS: &'static [&'static str] = &["firewall-policy"];
    type RawPolicy = config::RawNetworkPolicyPolicy;
    type Policy = NetworkPolicyPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_network_policy(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.firewall_policy;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "compute.googleapis.com" {
            return None;
        }
        let (collection, verb) = names::compute_method(&event.method_name)?;
        if !matches!(
            collection,
            "networkFirewallPolicies" | "regionNetworkFirewallPolicies"
        ) {
            return None;
        }
        let target = match parse(&event.resource_name) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match verb {
            "delete" => Route::Deleted(target),
            verb if CHECKED_VERBS.contains(&verb) => Route::Check(target),
            verb => Route::Ignore(format!(
                "'{}' can only narrow what the policy allows",
                names::printable(verb)
            )),
        })
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec![
            "compute.firewallPolicies.get",
            "compute.firewallPolicies.list",
            "compute.regionFirewallPolicies.get",
            "compute.regionFirewallPolicies.list",
        ];
        if enforcing && config.policies.firewall_policy.disable {
            permissions.extend([
                "compute.firewallPolicies.update",
                "compute.regionFirewallPolicies.update",
                "compute.globalOperations.get",
                "compute.regionOperations.get",
            ]);
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(PolicyRead, Value), gcp::Error> {
        let (policy, raw) = gcp.get_network_policy(&target.name).await?;
        let read = PolicyRead {
            project: target.project.clone(),
            path: target.name.clone(),
            policy,
        };
        Ok((read, raw))
    }

    fn evaluate(config: &Config, read: &PolicyRead) -> (Vec<Finding>, Option<Fix>) {
        let (findings, open) = judged(config, read);
        let fix = (!open.is_empty() && config.policies.firewall_policy.disable).then(|| {
            Fix::DisablePolicyRules {
                project: read.project.clone(),
                path: read.path.clone(),
                priorities: open,
            }
        });
        (findings, fix)
    }

    fn exemption(config: &Config, read: &PolicyRead, principal: &str) -> Option<String> {
        // The open-firewall policy's allowed principals, and its `allow_rules` naming the policy's path (for a
        // change by one of its marker principals); a rule's own description exempts nothing here.
        let policy = Firewall {
            name: read.path.clone(),
            ..Firewall::default()
        };
        config.policies.firewall.exemption(&policy, principal)
    }

    fn target_of(read: &PolicyRead) -> Target {
        Target::new(
            KindId::FirewallPolicy,
            &read.project,
            &read.path,
            read.path.clone(),
        )
    }

    fn describe(fix: &Fix) -> String {
        let Fix::DisablePolicyRules { priorities, .. } = fix;
        let listed: Vec<String> = priorities.iter().map(i64::to_string).collect();
        format!("disabled the rule(s) at priority {}", listed.join(", "))
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::DisablePolicyRules {
            project,
            path,
            priorities,
        } = fix;
        for priority in priorities {
            gcp.patch_policy_rule(project, path, *priority, &json!({"disabled": true}))
                .await?;
        }
        let (policy, after) = gcp.get_network_policy(path).await?;
        let read = PolicyRead {
            project: project.clone(),
            path: path.clone(),
            policy,
        };
        let (_, still_open) = judged(config, &read);
        if let Some(priority) = priorities
            .iter()
            .find(|priority| still_open.contains(priority))
        {
            return Err(apply::Error::NotFixed(format!(
                "the rule at priority {priority} of {path} is still open"
            )));
        }
        Ok(Some(after))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        _before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let Fix::DisablePolicyRules {
            project,
            path,
            priorities,
        } = fix;
        let (_, current) = gcp.get_network_policy(path).await?;
        // Each rule antibody disabled must still be as antibody left it.
        let unchanged = priorities.iter().all(|priority| {
            let rule = |policy: &Value| {
                policy["rules"].as_array().and_then(|rules| {
                    rules
                        .iter()
                        .find(|rule| rule["priority"] == *priority)
                        .cloned()
                })
            };
            rule(&current) == rule(after) && disabled_in(&current, *priority) == Some(true)
        });
        if !unchanged && !force {
            return Err(undo::Error::Changed(path.clone()));
        }
        for priority in priorities {
            gcp.patch_policy_rule(project, path, *priority, &json!({"disabled": false}))
                .await?;
        }
        let listed: Vec<String> = priorities.iter().map(i64::to_string).collect();
        Ok(Restored {
            resource: path.clone(),
            what: format!(
                "the rule(s) at priority {} enabled again",
                listed.join(", ")
            ),
            overwritten: current,
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<PolicyRead> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        match gcp.list_network_policies(project).await {
            Ok(policies) => {
                for policy in policies {
                    let path = path_of(project, &policy);
                    // The project is the operator's; the name and region are checked as Google spells them.
                    let region_ok = policy
                        .region
                        .as_deref()
                        .and_then(|url| url.rsplit('/').next())
                        .is_none_or(|region| names::region(region).is_ok());
                    if names::compute(&policy.name).is_err() || !region_ok {
                        swept.errors.push(format!(
                            "{project}: a firewall policy named '{}'",
                            names::printable(&path)
                        ));
                        continue;
                    }
                    swept.resources.push(PolicyRead {
                        project: project.to_string(),
                        path,
                        policy,
                    });
                }
            }
            Err(err) => swept.errors.push(format!(
                "{project}: listing network firewall policies: {err}"
            )),
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        let name = target.name.rsplit('/').next().unwrap_or_default();
        format!(
            "https://console.cloud.google.com/net-security/firewall-manager/firewall-policies/details/{name}?project={}",
            target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<PolicyRead, String> {
        let policy: NetworkPolicy = serde_json::from_str(text)
            .map_err(|err| format!("the input is not a network firewall policy: {err}"))?;
        let name = names::compute(&policy.name)
            .map_err(|_| "the policy has no valid name".to_string())?
            .to_string();
        Ok(PolicyRead {
            project: "-".into(),
            path: format!("projects/-/global/firewallPolicies/{name}"),
            policy,
        })
    }
}
