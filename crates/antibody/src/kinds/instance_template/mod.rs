//! Instance templates (global and regional) and the managed instance groups that build instances from them: judged
//! by the `vm-instance` policy as every instance made from them would be, and reported. The instances a group makes
//! are inserted by Google's service agent, which the instance kind leaves alone; what the agent builds from is what
//! a person wrote, and it is judged here, by whoever wrote it.

pub mod config;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply;
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::instances::{Instance, Metadata};
use crate::gcp::templates::Template;
use crate::gcp::{self, Client};
use crate::policy::{Finding, glob_match};
use crate::undo;

pub use config::TemplatePolicy;

/// The template kind.
pub struct Templates;

/// What was just read: a template, or a group with every template it builds from; each with the project's common
/// instance metadata its instances inherit.
#[derive(Debug, Clone, PartialEq)]
pub enum Built {
    Template {
        project: String,
        /// `projects/P/global/instanceTemplates/T` or `projects/P/regions/R/instanceTemplates/T`.
        path: String,
        properties: Box<Instance>,
        common: Metadata,
    },
    Group {
        project: String,
        /// `projects/P/zones/Z/instanceGroupManagers/G` or `projects/P/regions/R/instanceGroupManagers/G`.
        path: String,
        /// (template path, its properties).
        templates: Vec<(String, Instance)>,
        common: Metadata,
    },
}

/// Templates are never changed: every finding is reported, and nothing is fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fix {}

/// The template and group writes that set what a group builds, by every spelling Google's audit-log catalog lists.
/// A resize or recreate builds from the template the group already had, judged when it was given it.
const WATCHES: &[Watch] = &[
    watch("v1.compute.instanceTemplates.insert"),
    watch("beta.compute.instanceTemplates.insert"),
    watch("beta.compute.regionInstanceTemplates.insert"),
    // Regional templates are in Compute v1 (its discovery document has `regionInstanceTemplates.insert`); the
    // catalog lists only the beta spelling.
    watch("v1.compute.regionInstanceTemplates.insert"),
    watch("v1.compute.instanceGroupManagers.insert"),
    watch("beta.compute.instanceGroupManagers.insert"),
    watch("compute.instanceGroupManagers.insert"),
    watch("v1.compute.instanceGroupManagers.patch"),
    watch("beta.compute.instanceGroupManagers.patch"),
    watch("beta.compute.instanceGroupManagers.update"),
    watch("compute.instanceGroupManagers.update"),
    watch("v1.compute.instanceGroupManagers.setInstanceTemplate"),
    watch("beta.compute.instanceGroupManagers.setInstanceTemplate"),
    watch("v1.compute.regionInstanceGroupManagers.insert"),
    watch("beta.compute.regionInstanceGroupManagers.insert"),
    watch("v1.compute.regionInstanceGroupManagers.patch"),
    watch("beta.compute.regionInstanceGroupManagers.patch"),
    watch("beta.compute.regionInstanceGroupManagers.update"),
    watch("v1.compute.regionInstanceGroupManagers.setInstanceTemplate"),
    watch("beta.compute.regionInstanceGroupManagers.setInstanceTemplate"),
];

/// The verbs of a group that give it a template.
const GROUP_VERBS: &[&str] = &["insert", "patch", "update", "setInstanceTemplate"];

const fn watch(method: &'static str) -> Watch {
    Watch {
        service: "compute.googleapis.com",
        method,
    }
}

/// A template's or group's relative name, validated by Google's grammar (a Compute URL is read as its path).
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let relative = names::relative(resource_name);
    let parts: Vec<&str> = relative.split('/').collect();
    let (project, path) = match parts.as_slice() {
        ["projects", project, "global", "instanceTemplates", name] => {
            let project = names::project(project)?;
            let name = names::compute(name)?;
            (
                project,
                format!("projects/{project}/global/instanceTemplates/{name}"),
            )
        }
        [
            "projects",
            project,
            "regions",
            region,
            collection @ ("instanceTemplates" | "instanceGroupManagers"),
            name,
        ] => {
            let project = names::project(project)?;
            let region = names::region(region)?;
            let name = names::compute(name)?;
            (
                project,
                format!("projects/{project}/regions/{region}/{collection}/{name}"),
            )
        }
        [
            "projects",
            project,
            "zones",
            zone,
            "instanceGroupManagers",
            name,
        ] => {
            let project = names::project(project)?;
            let zone = names::zone(zone)?;
            let name = names::compute(name)?;
            (
                project,
                format!("projects/{project}/zones/{zone}/instanceGroupManagers/{name}"),
            )
        }
        _ => {
            return Err(format!(
                "'{}' is not an instance template or a managed instance group",
                names::printable(resource_name)
            ));
        }
    };
    Ok(Target::new(
        KindId::InstanceTemplate,
        project,
        &path,
        path.clone(),
    ))
}

/// A template's relative name from the URL a group gives it (`https://…/compute/v1/projects/…`).
fn template_path(url: &str) -> Result<String, names::NameError> {
    let target = parse(url)?;
    if target.name.contains("/instanceGroupManagers/") {
        return Err(format!(
            "'{}' is not an instance template",
            names::printable(url)
        ));
    }
    Ok(target.name)
}

fn is_group(target: &Target) -> bool {
    target.name.contains("/instanceGroupManagers/")
}

/// The template's relative name as its self link gives it.
fn template_of(project: &str, template: &Template) -> String {
    match template
        .region
        .as_deref()
        .and_then(|url| url.rsplit('/').next())
    {
        Some(region) => format!(
            "projects/{project}/regions/{region}/instanceTemplates/{}",
            template.name
        ),
        None => format!(
            "projects/{project}/global/instanceTemplates/{}",
            template.name
        ),
    }
}

/// The instance policy's findings for instances made from `properties`, each saying where they come from. The
/// commands an instance's finding suggests are cut: a template is changed by making a new one.
fn judged(config: &Config, properties: &Instance, common: &Metadata, source: &str) -> Vec<Finding> {
    let (findings, _) = config.policies.vm.evaluate_instance(properties, common);
    findings
        .into_iter()
        .map(|mut finding| {
            let said = finding
                .message
                .split("; to rescope")
                .next()
                .unwrap_or_default();
            finding.message = format!("{source}: every instance made from it {said}");
            finding
        })
        .collect()
}

impl Kind for Templates {
    type Resource = Built;
    type Fix = Fix;
    const NAME: &'static str = "instance-template";
    const NOUN: &'static str = "instance templates";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^projects/[^/]+/(global/instanceTemplates|regions/[^/]+/(instanceTemplates|instanceGroupManagers)|zones/[^/]+/instanceGroupManagers)/[^/]+$";
    const INPUTS: &'static [&'static str] = &["instance-template"];
    type RawPolicy = config::RawTemplatePolicy;
    type Policy = TemplatePolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_template(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.instance_template;
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
        let group = match collection {
            "instanceTemplates" | "regionInstanceTemplates" => false,
            "instanceGroupManagers" | "regionInstanceGroupManagers" => true,
            _ => return None,
        };
        let target = match parse(&event.resource_name) {
            Ok(target) if is_group(&target) == group => target,
            Ok(_) => {
                return Some(Route::Refuse(format!(
                    "'{}' is not of the collection {collection}",
                    names::printable(&event.resource_name)
                )));
            }
            Err(reason) => return Some(Route::Refuse(reason)),
        };
        Some(match verb {
            "delete" => Route::Deleted(target),
            "insert" => Route::Check(target),
            verb if group && GROUP_VERBS.contains(&verb) => Route::Check(target),
            verb => Route::Ignore(format!(
                "'{}' builds from the template judged when the group was given it",
                names::printable(verb)
            )),
        })
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        parse(resource_name).ok()
    }

    fn permissions(_config: &Config, _enforcing: bool) -> Vec<&'static str> {
        vec![
            "compute.instanceGroupManagers.get",
            "compute.instanceTemplates.get",
            "compute.instanceTemplates.list",
            "compute.projects.get",
        ]
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(Built, Value), gcp::Error> {
        let (project, _) = gcp.get_compute_project(&target.project).await?;
        let common = project.common_instance_metadata;
        if !is_group(target) {
            let (template, raw) = gcp.get_template(&target.name).await?;
            let built = Built::Template {
                project: target.project.clone(),
                path: target.name.clone(),
                properties: Box::new(template.properties),
                common,
            };
            return Ok((built, raw));
        }
        let (group, mut raw) = gcp.get_group(&target.name).await?;
        let mut templates = Vec::new();
        for url in group.templates() {
            let path = template_path(&url).map_err(|message| gcp::Error::Permanent {
                status: 200,
                message,
            })?;
            let (template, read) = gcp.get_template(&path).await?;
            raw["templatesRead"][&path] = read;
            templates.push((path, template.properties));
        }
        let built = Built::Group {
            project: target.project.clone(),
            path: target.name.clone(),
            templates,
            common,
        };
        Ok((built, raw))
    }

    fn evaluate(config: &Config, built: &Built) -> (Vec<Finding>, Option<Fix>) {
        let findings = match built {
            Built::Template {
                path,
                properties,
                common,
                ..
            } => judged(config, properties, common, &format!("template {path}")),
            Built::Group {
                path,
                templates,
                common,
                ..
            } => templates
                .iter()
                .flat_map(|(template, properties)| {
                    judged(
                        config,
                        properties,
                        common,
                        &format!("group {path} builds from template {template}"),
                    )
                })
                .collect(),
        };
        (findings, None)
    }

    fn exemption(config: &Config, _built: &Built, principal: &str) -> Option<String> {
        config
            .policies
            .instance_template
            .allow_principals
            .iter()
            .find(|pattern| glob_match(pattern, principal))
            .map(|pattern| format!("changed by {principal}, allowed by '{pattern}'"))
    }

    fn target_of(built: &Built) -> Target {
        let (Built::Template { project, path, .. } | Built::Group { project, path, .. }) = built;
        Target::new(KindId::InstanceTemplate, project, path, path.clone())
    }

    fn describe(fix: &Fix) -> String {
        match *fix {}
    }

    async fn apply(
        _config: &Config,
        _gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        match *fix {}
    }

    async fn undo(
        _gcp: &Client,
        fix: &Fix,
        _before: &Value,
        _after: &Value,
        _force: bool,
    ) -> Result<Restored, undo::Error> {
        match *fix {}
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<Built> {
        let mut swept = Swept {
            resources: Vec::new(),
            errors: Vec::new(),
        };
        let common = match gcp.get_compute_project(project).await {
            Ok((read, _)) => read.common_instance_metadata,
            Err(err) => {
                swept
                    .errors
                    .push(format!("{project}: reading Compute's project: {err}"));
                return swept;
            }
        };
        match gcp.list_templates(project).await {
            Ok(templates) => {
                for template in templates {
                    let path = template_of(project, &template);
                    // The project is the operator's; the name and region are checked as Google spells them.
                    let region_ok = template
                        .region
                        .as_deref()
                        .and_then(|url| url.rsplit('/').next())
                        .is_none_or(|region| names::region(region).is_ok());
                    if names::compute(&template.name).is_err() || !region_ok {
                        swept.errors.push(format!(
                            "{project}: a template named '{}'",
                            names::printable(&path)
                        ));
                        continue;
                    }
                    swept.resources.push(Built::Template {
                        project: project.to_string(),
                        path,
                        properties: Box::new(template.properties),
                        common: common.clone(),
                    });
                }
            }
            Err(err) => swept
                .errors
                .push(format!("{project}: listing instance templates: {err}")),
        }
        swept
    }

    fn console_url(target: &Target) -> String {
        let parts: Vec<&str> = target.name.split('/').collect();
        match parts.as_slice() {
            [
                _,
                _,
                "zones" | "regions",
                place,
                "instanceGroupManagers",
                name,
            ] => format!(
                "https://console.cloud.google.com/compute/instanceGroups/details/{place}/{name}?project={}",
                target.project
            ),
            _ => format!(
                "https://console.cloud.google.com/compute/instanceTemplates/details/{}?project={}",
                parts.last().copied().unwrap_or_default(),
                target.project
            ),
        }
    }

    fn parse_input(_input: &str, text: &str) -> Result<Built, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| format!("the input is not valid JSON: {err}"))?;
        if !value.is_object() {
            return Err(
                "the input must be a JSON object in Compute's instance template shape".into(),
            );
        }
        let template: Template = serde_json::from_value(value)
            .map_err(|err| format!("the input is not an instance template: {err}"))?;
        let name = names::compute(&template.name)
            .map_err(|_| "the template has no valid name".to_string())?;
        Ok(Built::Template {
            project: "-".into(),
            path: format!("projects/-/global/instanceTemplates/{name}"),
            properties: Box::new(template.properties),
            common: Metadata::default(),
        })
    }
}
