//! Cloud Logging's routing (sinks and exclusions): the `log-tamper` policy, its restoring fixes and their undo.

pub mod config;
pub mod policy;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::logging::{Exclusion, Sink};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

pub use policy::LogTamperPolicy;
use policy::Planned;

/// The log-routing kind.
pub struct LogRoutes;

/// A sink or an exclusion as just read (`None`: it does not exist).
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    Sink {
        project: String,
        name: String,
        sink: Option<Sink>,
    },
    Exclusion {
        project: String,
        name: String,
        exclusion: Option<Exclusion>,
    },
}

/// The fixes of a sink or an exclusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// Update the fields `mask` names (`sinks` or `exclusions`) to the values in `body`.
    UpdateRouting {
        project: String,
        collection: String,
        name: String,
        body: Value,
        mask: Vec<String>,
    },
    /// Create a deleted protected sink again.
    CreateSink { project: String, sink: Value },
}

const WATCHES: &[Watch] = &[
    watch("google.logging.v2.ConfigServiceV2.CreateSink"),
    watch("google.logging.v2.ConfigServiceV2.UpdateSink"),
    watch("google.logging.v2.ConfigServiceV2.DeleteSink"),
    watch("google.logging.v2.ConfigServiceV2.CreateExclusion"),
    watch("google.logging.v2.ConfigServiceV2.UpdateExclusion"),
];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "logging.googleapis.com",
        method,
    }
}

/// `project` is a project id, or the folder or organization (`folders/N`, `organizations/N`) whose own routing it is.
fn target(project: &str, collection: &str, name: &str) -> Target {
    Target::new(
        KindId::LogRouting,
        project,
        &format!("{collection}/{name}"),
        format!("{}/{collection}/{name}", policy::parent(project)),
    )
}

/// Logging's sink and exclusion ids: up to 100 letters, digits, `_`, `-` and `.`.
fn routing_name(text: &str) -> Result<&str, names::NameError> {
    let valid = (1..=100).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && text != "."
        && text != "..";
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a sink or exclusion id",
            names::printable(text)
        ))
    }
}

/// `projects/P/sinks/NAME` or `projects/P/exclusions/NAME`, or a folder's or an organization's
/// (`folders/N/sinks/NAME`, `organizations/N/exclusions/NAME`).
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    match parts.as_slice() {
        [
            "projects",
            project,
            collection @ ("sinks" | "exclusions"),
            name,
        ] => Ok(target(
            names::project(project)?,
            collection,
            routing_name(name)?,
        )),
        [
            container @ ("organizations" | "folders"),
            id,
            collection @ ("sinks" | "exclusions"),
            name,
        ] => {
            let parent = format!("{container}/{id}");
            let parent = names::organization_or_folder(&parent).ok_or_else(|| {
                format!(
                    "'{}' is not a folder or an organization",
                    names::printable(&parent)
                )
            })?;
            Ok(target(parent, collection, routing_name(name)?))
        }
        _ => Err(format!(
            "'{}' is not a project's, folder's or organization's sink or exclusion",
            names::printable(resource_name)
        )),
    }
}

fn split(target: &Target) -> (&str, &str) {
    target.name.split_once('/').unwrap_or(("", ""))
}

fn fix_of(project: &str, collection: &str, name: &str, planned: Planned) -> Fix {
    match planned {
        Planned::Update { body, mask } => Fix::UpdateRouting {
            project: project.to_string(),
            collection: collection.to_string(),
            name: name.to_string(),
            body,
            mask,
        },
        Planned::Create(sink) => Fix::CreateSink {
            project: project.to_string(),
            sink,
        },
    }
}

fn evaluate_routing(policy: &LogTamperPolicy, read: &Routing) -> (Vec<Finding>, Option<Fix>) {
    match read {
        Routing::Sink {
            project,
            name,
            sink,
        } => {
            let (findings, planned) = policy.evaluate_sink(project, name, sink.as_ref());
            (
                findings,
                planned.map(|planned| fix_of(project, "sinks", name, planned)),
            )
        }
        Routing::Exclusion {
            project,
            name,
            exclusion,
        } => match exclusion {
            Some(exclusion) => {
                let (findings, planned) = policy.evaluate_exclusion(project, exclusion);
                (
                    findings,
                    planned.map(|planned| fix_of(project, "exclusions", name, planned)),
                )
            }
            None => (Vec::new(), None),
        },
    }
}

/// Reads a sink or an exclusion; one that does not exist is `None`, not an error.
async fn read(gcp: &Client, target: &Target) -> Result<(Routing, Value), gcp::Error> {
    let (collection, name) = split(target);
    let project = target.project.clone();
    let name = name.to_string();
    if collection == "sinks" {
        return match gcp.get_sink(&project, &name).await {
            Ok((sink, raw)) => Ok((
                Routing::Sink {
                    project,
                    name,
                    sink: Some(sink),
                },
                raw,
            )),
            Err(gcp::Error::NotFound(_)) => Ok((
                Routing::Sink {
                    project,
                    name,
                    sink: None,
                },
                Value::Null,
            )),
            Err(err) => Err(err),
        };
    }
    match gcp.get_exclusion(&project, &name).await {
        Ok((exclusion, raw)) => Ok((
            Routing::Exclusion {
                project,
                name,
                exclusion: Some(exclusion),
            },
            raw,
        )),
        Err(gcp::Error::NotFound(_)) => Ok((
            Routing::Exclusion {
                project,
                name,
                exclusion: None,
            },
            Value::Null,
        )),
        Err(err) => Err(err),
    }
}

/// The fields `mask` names, out of a sink or exclusion's JSON (absent ones as `null`, which clears them).
fn masked(raw: &Value, mask: &[String]) -> Value {
    let mut body = serde_json::Map::new();
    for field in mask {
        body.insert(
            field.clone(),
            raw.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(body)
}

impl Kind for LogRoutes {
    type Resource = Routing;
    type Fix = Fix;
    const NAME: &'static str = "log-routing";
    const NOUN: &'static str = "log sinks and exclusions";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str =
        "^(projects|organizations|folders)/[^/]+/(sinks|exclusions)/[^/]+$";
    const INPUTS: &'static [&'static str] = &["log-exclusion"];
    const CONTAINERS: bool = true;
    type RawPolicy = config::RawLogTamperPolicy;
    type Policy = LogTamperPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_log_tamper(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.log_tamper;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != "logging.googleapis.com" {
            return None;
        }
        let verb = event
            .method_name
            .strip_prefix("google.logging.v2.ConfigServiceV2.")?;
        if !verb.ends_with("Sink") && !verb.ends_with("Exclusion") {
            return None;
        }
        let target = match parse(&event.resource_name) {
            Ok(target) => target,
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(
            if WATCHES
                .iter()
                .any(|watch| watch.method == event.method_name)
            {
                Route::Check(target)
            } else {
                Route::Ignore(format!(
                    "'{}' hides no logs",
                    names::printable(&event.method_name)
                ))
            },
        )
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec![
            "logging.exclusions.get",
            "logging.exclusions.list",
            "logging.sinks.get",
            "logging.sinks.list",
        ];
        let policy = &config.policies.log_tamper;
        if enforcing && policy.restore {
            permissions.extend(["logging.exclusions.update", "logging.sinks.update"]);
            if !policy.protected_sinks.is_empty() {
                permissions.push("logging.sinks.create");
            }
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(Routing, Value), gcp::Error> {
        read(gcp, target).await
    }

    fn evaluate(config: &Config, read: &Routing) -> (Vec<Finding>, Option<Fix>) {
        evaluate_routing(&config.policies.log_tamper, read)
    }

    fn exemption(_config: &Config, _read: &Routing, _principal: &str) -> Option<String> {
        None
    }

    fn target_of(read: &Routing) -> Target {
        match read {
            Routing::Sink { project, name, .. } => target(project, "sinks", name),
            Routing::Exclusion { project, name, .. } => target(project, "exclusions", name),
        }
    }

    fn describe(fix: &Fix) -> String {
        match fix {
            Fix::UpdateRouting {
                collection,
                name,
                body,
                ..
            } => {
                if collection == "exclusions" {
                    format!("disabled the exclusion {name}")
                } else if body.get("exclusions").is_some()
                    && body.as_object().is_some_and(|fields| fields.len() == 1)
                {
                    format!("disabled the audit-log exclusion in sink {name}")
                } else {
                    format!("restored sink {name}")
                }
            }
            Fix::CreateSink { sink, .. } => format!(
                "recreated sink {}; grant its new writer identity access to {}",
                sink["name"].as_str().unwrap_or_default(),
                sink["destination"].as_str().unwrap_or_default()
            ),
        }
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let target = match fix {
            Fix::UpdateRouting {
                project,
                collection,
                name,
                body,
                mask,
            } => {
                gcp.update_log_routing(project, collection, name, body, &mask.join(","))
                    .await?;
                target(project, collection, name)
            }
            Fix::CreateSink { project, sink } => {
                let name = sink["name"].as_str().unwrap_or_default();
                match gcp.create_sink(project, sink).await {
                    Ok(_) | Err(gcp::Error::Conflict(_)) => {}
                    Err(err) => return Err(err.into()),
                }
                target(project, "sinks", name)
            }
        };
        let (after, raw) = read(gcp, &target).await?;
        let (findings, still) = evaluate_routing(&config.policies.log_tamper, &after);
        if still.is_some() {
            let message = findings
                .first()
                .map(|finding| finding.message.clone())
                .unwrap_or_default();
            return Err(apply::Error::NotFixed(message));
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
        match fix {
            Fix::UpdateRouting {
                project,
                collection,
                name,
                mask,
                ..
            } => {
                let target = target(project, collection, name);
                let (_, current) = read(gcp, &target).await?;
                if !force && masked(&current, mask) != masked(after, mask) {
                    return Err(undo::Error::Changed(target.key().to_string()));
                }
                gcp.update_log_routing(
                    project,
                    collection,
                    name,
                    &masked(before, mask),
                    &mask.join(","),
                )
                .await?;
                Ok(Restored {
                    resource: target.key().to_string(),
                    what: format!("{} of {name} as they were", mask.join(", ")),
                    overwritten: current,
                })
            }
            Fix::CreateSink { project, sink } => {
                let name = sink["name"].as_str().unwrap_or_default();
                let target = target(project, "sinks", name);
                let (_, current) = read(gcp, &target).await?;
                if !force && current.get("destination") != after.get("destination") {
                    return Err(undo::Error::Changed(target.key().to_string()));
                }
                match gcp.delete_sink(project, name).await {
                    Ok(()) | Err(gcp::Error::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
                Ok(Restored {
                    resource: target.key().to_string(),
                    what: format!("sink {name} deleted again"),
                    overwritten: current,
                })
            }
        }
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<Routing> {
        match gcp.list_log_routing(project).await {
            Ok((sinks, exclusions)) => {
                let mut resources: Vec<Routing> = Vec::new();
                resources.extend(exclusions.into_iter().map(|exclusion| Routing::Exclusion {
                    project: project.to_string(),
                    name: exclusion.name.clone(),
                    exclusion: Some(exclusion),
                }));
                resources.extend(sinks.into_iter().map(|sink| Routing::Sink {
                    project: project.to_string(),
                    name: sink.name.clone(),
                    sink: Some(sink),
                }));
                Swept {
                    resources,
                    errors: Vec::new(),
                }
            }
            Err(err) => Swept {
                resources: Vec::new(),
                errors: vec![format!(
                    "{project}: listing log sinks and exclusions: {err}"
                )],
            },
        }
    }

    fn console_url(target: &Target) -> String {
        match target.project.split_once('/') {
            Some(("organizations", id)) => {
                format!("https://console.cloud.google.com/logs/router?organizationId={id}")
            }
            Some(("folders", id)) => {
                format!("https://console.cloud.google.com/logs/router?folder={id}")
            }
            _ => format!(
                "https://console.cloud.google.com/logs/router?project={}",
                target.project
            ),
        }
    }

    fn parse_input(_input: &str, text: &str) -> Result<Routing, String> {
        let exclusion: Exclusion = serde_json::from_str(text)
            .map_err(|err| format!("the input is not a Logging exclusion: {err}"))?;
        if exclusion.name.is_empty() || exclusion.filter.is_empty() {
            return Err("an exclusion needs a name and a filter".into());
        }
        Ok(Routing::Exclusion {
            project: "-".into(),
            name: exclusion.name.clone(),
            exclusion: Some(exclusion),
        })
    }
}

#[cfg(test)]
mod tests;
