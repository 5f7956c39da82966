//! Firewall rules (Compute Engine): the open-firewall policy, its fixes (disable, narrow, delete) and their undo.

pub mod config;
pub mod policy;
pub mod ports;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::compute::Firewall;
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub use policy::{FirewallPolicy, FixKind, PortRule};

/// The firewall kind.
pub struct Firewalls;

/// A rule as it was just read, with the project it lives in.
#[derive(Debug, Clone, PartialEq)]
pub struct FirewallRule {
    pub project: String,
    pub firewall: Firewall,
}

/// The fixes of a firewall rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// `PATCH {"disabled": true}`: the rule stays, unenforced, and can be re-enabled.
    DisableFirewall { project: String, name: String },
    /// Keep the rule working for everything but the risky exposure: optionally create `split` (the world-wide
    /// sources with only safe ports) first, then merge-patch the original with `patch`.
    NarrowFirewall {
        project: String,
        name: String,
        patch: Value,
        split: Option<Box<Firewall>>,
    },
    /// Remove the rule (only when configured).
    DeleteFirewall { project: String, name: String },
}

/// Compute logs `v1.` or `beta.` by the API surface the caller used; Google's catalog lists no `alpha.` variants.
const WATCHES: &[Watch] = &[
    watch("v1.compute.firewalls.insert"),
    watch("v1.compute.firewalls.patch"),
    watch("v1.compute.firewalls.update"),
    watch("beta.compute.firewalls.insert"),
    watch("beta.compute.firewalls.patch"),
    watch("beta.compute.firewalls.update"),
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "compute.googleapis.com",
        method,
    }
}

/// `projects/P/global/firewalls/NAME` (or the same as a Compute URL), strictly.
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    let ["projects", project, "global", "firewalls", name] = parts.as_slice() else {
        return Err(format!(
            "'{}' is not a firewall rule (projects/PROJECT/global/firewalls/NAME)",
            names::printable(resource_name)
        ));
    };
    let project = names::project(project)?;
    let name = names::compute(name)?;
    Ok(target(project, name))
}

fn target(project: &str, name: &str) -> Target {
    Target::new(
        KindId::Firewall,
        project,
        name,
        format!("projects/{project}/global/firewalls/{name}"),
    )
}

impl Kind for Firewalls {
    type Resource = FirewallRule;
    type Fix = Fix;
    const NAME: &'static str = "firewall";
    const NOUN: &'static str = "firewall rules";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/[^/]+/global/firewalls/[^/]+$";
    const INPUTS: &'static [&'static str] = &["firewall"];
    type RawPolicy = config::RawFirewallPolicy;
    type Policy = policy::FirewallPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_firewall(raw, problems)
    }

    fn common(config: &Config) -> Common {
        Common {
            enabled: config.policies.firewall.enabled,
            dry_run: config.policies.firewall.dry_run,
            grace_secs: config.policies.firewall.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "compute.googleapis.com" {
            return None;
        }
        let mut segments = event.method_name.split('.');
        let (_version, service, collection) = (segments.next(), segments.next(), segments.next());
        if service != Some("compute") || collection != Some("firewalls") {
            return None;
        }
        let target = match parse(&event.resource_name) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match event.verb() {
            "insert" | "patch" | "update" => Route::Check(target),
            "delete" => Route::Deleted(target),
            verb => Route::Ignore(format!(
                "firewall method '{}' changes nothing",
                names::printable(verb)
            )),
        })
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec!["compute.firewalls.get", "compute.firewalls.list"];
        if enforcing {
            permissions.extend([
                "compute.globalOperations.get",
                "compute.networks.updatePolicy",
            ]);
            permissions.extend(match config.policies.firewall.fix {
                FixKind::Disable => &["compute.firewalls.update"][..],
                FixKind::Narrow => &["compute.firewalls.update", "compute.firewalls.create"][..],
                FixKind::Delete => &["compute.firewalls.delete"][..],
            });
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(FirewallRule, Value), gcp::Error> {
        let (firewall, raw) = gcp.get_firewall(&target.project, &target.name).await?;
        Ok((
            FirewallRule {
                project: target.project.clone(),
                firewall,
            },
            raw,
        ))
    }

    fn evaluate(config: &Config, rule: &FirewallRule) -> (Vec<Finding>, Option<Fix>) {
        let policy = &config.policies.firewall;
        let findings = policy.evaluate(&rule.firewall);
        let fix = (!findings.is_empty()).then(|| policy.plan_fix(&rule.project, &rule.firewall));
        (findings, fix)
    }

    fn exemption(config: &Config, rule: &FirewallRule, principal: &str) -> Option<String> {
        config
            .policies
            .firewall
            .exemption(&rule.firewall, principal)
    }

    fn target_of(rule: &FirewallRule) -> Target {
        target(&rule.project, &rule.firewall.name)
    }

    fn describe(fix: &Fix) -> String {
        match fix {
            Fix::DisableFirewall { .. } => "disabled the rule".to_string(),
            Fix::NarrowFirewall {
                split: Some(split), ..
            } => format!(
                "removed world-wide sources; safe ports moved to {}",
                split.name
            ),
            Fix::NarrowFirewall { .. } => {
                "removed the risky ports from the world-wide rule".to_string()
            }
            Fix::DeleteFirewall { .. } => "deleted the rule".to_string(),
        }
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        match fix {
            Fix::DisableFirewall { project, name } => {
                gcp.patch_firewall(project, name, &json!({"disabled": true}))
                    .await?;
            }
            Fix::NarrowFirewall {
                project,
                name,
                patch,
                split,
            } => {
                // The safe part goes up first, so legitimate traffic never loses its rule.
                if let Some(split) = split {
                    match gcp.insert_firewall(project, split).await {
                        Ok(()) | Err(gcp::Error::Conflict(_)) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                gcp.patch_firewall(project, name, patch).await?;
            }
            Fix::DeleteFirewall { project, name } => {
                return match gcp.delete_firewall(project, name).await {
                    Ok(()) | Err(gcp::Error::NotFound(_)) => Ok(None),
                    Err(err) => Err(err.into()),
                };
            }
        }
        let target = fix_target(fix);
        let (firewall, raw) = gcp.get_firewall(&target.project, &target.name).await?;
        if let Some(finding) = config.policies.firewall.evaluate(&firewall).first() {
            return Err(apply::Error::NotFixed(finding.message.clone()));
        }
        Ok(Some(raw))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let target = fix_target(fix);
        let (project, name) = (target.project.as_str(), target.name.as_str());
        let resource = target.key().to_string();
        if let Fix::DeleteFirewall { .. } = fix {
            match gcp.get_firewall(project, name).await {
                Err(gcp::Error::NotFound(_)) => {}
                Ok(_) if force => gcp.delete_firewall(project, name).await?,
                Ok(_) => return Err(undo::Error::Changed(resource)),
                Err(err) => return Err(err.into()),
            }
            gcp.insert_firewall_json(project, &writable(before)).await?;
            return Ok(Restored {
                resource,
                what: "the deleted rule".to_string(),
                overwritten: Value::Null,
            });
        }
        let (_, current) = gcp.get_firewall(project, name).await?;
        if !force && writable(&current) != writable(after) {
            return Err(undo::Error::Changed(resource));
        }
        gcp.update_firewall(project, name, &writable(before))
            .await?;
        if let Fix::NarrowFirewall {
            split: Some(split), ..
        } = fix
        {
            match gcp.delete_firewall(project, &split.name).await {
                Ok(()) | Err(gcp::Error::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Restored {
            resource,
            what: "the rule as it was before the fix".to_string(),
            overwritten: current,
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<FirewallRule> {
        match gcp.list_firewalls(project).await {
            Ok(firewalls) => Swept {
                resources: firewalls
                    .into_iter()
                    .map(|firewall| FirewallRule {
                        project: project.to_string(),
                        firewall,
                    })
                    .collect(),
                errors: Vec::new(),
            },
            Err(err) => Swept {
                resources: Vec::new(),
                errors: vec![format!("{project}: listing firewalls: {err}")],
            },
        }
    }

    fn console_url(target: &Target) -> String {
        format!(
            "https://console.cloud.google.com/net-security/firewall-manager/firewall-policies/details/{}?project={}",
            target.name, target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<FirewallRule, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        if !value.is_object() {
            return Err("the input must be a JSON object in Compute's firewall shape".into());
        }
        let firewall: Firewall = serde_json::from_value(value)
            .map_err(|err| format!("the input is not a Compute firewall rule: {err}"))?;
        if firewall.name.is_empty() {
            return Err("the firewall rule has no name".into());
        }
        // The project appears only in selfLink / network URLs; a bare rule has none.
        let project = [firewall.network.as_deref(), firewall.id.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|url| url.split("projects/").nth(1))
            .filter_map(|rest| rest.split('/').next())
            .next()
            .unwrap_or("-")
            .to_string();
        Ok(FirewallRule { project, firewall })
    }
}

/// The rule a fix changes.
fn fix_target(fix: &Fix) -> Target {
    match fix {
        Fix::DisableFirewall { project, name }
        | Fix::NarrowFirewall { project, name, .. }
        | Fix::DeleteFirewall { project, name } => target(project, name),
    }
}

const OUTPUT_ONLY: &[&str] = &["id", "creationTimestamp", "selfLink", "kind"];

/// A firewall body as it can be written back: output-only fields dropped.
fn writable(firewall: &Value) -> Value {
    let mut firewall = firewall.clone();
    if let Some(fields) = firewall.as_object_mut() {
        fields.retain(|key, _| !OUTPUT_ONLY.contains(&key.as_str()));
    }
    firewall
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Transport;

    fn route_of(method: &str, resource: &str) -> Route {
        let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "compute.googleapis.com",
            "methodName": method, "resourceName": resource}, "resource": {"labels": {"project_id": "my-project"}}});
        crate::kinds::route(
            &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
        )
    }

    #[test]
    fn every_firewall_write_variant_routes() {
        for watch in WATCHES {
            assert_eq!(
                route_of(watch.method, "projects/my-project/global/firewalls/fw"),
                Route::Check(target("my-project", "fw")),
                "{}",
                watch.method
            );
        }
        assert_eq!(
            route_of(
                "v1.compute.firewalls.delete",
                "projects/my-project/global/firewalls/fw"
            ),
            Route::Deleted(target("my-project", "fw"))
        );
    }

    #[test]
    fn names_that_public_code_gets_wrong_do_not_route() {
        // Unversioned names are never logged; reading them as firewall writes would hide real bugs.
        for (method, resource) in [
            (
                "compute.firewalls.patch",
                "projects/my-project/global/firewalls/fw",
            ),
            (
                "v1.compute.firewalls.get",
                "projects/my-project/global/firewalls/fw",
            ),
            (
                "v1.compute.networks.insert",
                "projects/my-project/global/networks/n",
            ),
        ] {
            assert!(
                matches!(route_of(method, resource), Route::Ignore(_)),
                "{method}"
            );
        }
    }

    #[test]
    fn full_url_resource_names_route() {
        assert_eq!(
            route_of(
                "v1.compute.firewalls.patch",
                "https://www.googleapis.com/compute/v1/projects/my-project/global/firewalls/fw"
            ),
            Route::Check(target("my-project", "fw"))
        );
    }

    // Issue 17: another spelling of a rule's name reached the real rule under another key, past a registry
    // exemption; a label overrode the project; an overlong name was retried for ever.
    #[test]
    fn forged_resource_names_are_refused_with_the_reason() {
        for resource in [
            "projects/my-project/global/firewalls/web-ssh#",
            "projects/my-project/global/firewalls/web-ssh?alt=json",
            "projects/my-project/global/firewalls/%77eb-ssh",
            "projects/my-project/global/firewalls/../firewalls/web-ssh",
            "projects/../global/firewalls/web-ssh",
            "projects//global/firewalls/web-ssh",
            "https://evil.example/compute/v1/projects/my-project/global/firewalls/web-ssh",
            &format!(
                "projects/my-project/global/firewalls/{}",
                "a".repeat(10_000)
            ),
        ] {
            let Route::Refuse(reason) = route_of("v1.compute.firewalls.patch", resource) else {
                panic!("{resource} was not refused")
            };
            assert!(reason.len() < 300, "{reason}");
        }
    }
}
