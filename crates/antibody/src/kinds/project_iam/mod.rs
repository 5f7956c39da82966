//! IAM policies of Resource Manager's projects, organizations and folders: the project-iam policy, exact grant
//! removal (never the last owner or administrator), the audit-config policy of the same policy's `auditConfigs`, and
//! their undo.

pub mod audit_config;
pub mod config;
pub mod policy;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply::{self, Attempt, raced, remove_grants, until_settled};
use crate::config::Config;
use crate::event::{AuditConfigDelta, AuditEvent};
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

use audit_config::AuditRepair;
pub use policy::ProjectIamPolicy;

/// The project-IAM kind.
pub struct ProjectIam;

/// A project's (or an organization's or folder's) IAM policy as it was just read at version 3.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPolicy {
    /// The project; empty for an organization or a folder.
    pub project: String,
    /// `organizations/N` or `folders/N` when the policy is one of those.
    pub container: Option<String>,
    pub policy: Policy,
    /// What the change that led here did to `auditConfigs`, as its audit entry reports it (none for a sweep).
    pub audit_deltas: Vec<AuditConfigDelta>,
}

/// The fixes of a project's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// Remove exactly these grants by a version-3, etag-checked read-modify-write of the project policy.
    RemoveProjectMembers {
        project: String,
        grants: Vec<Grant>,
        /// What to put back in `auditConfigs`, in the same write.
        #[serde(default, skip_serializing_if = "AuditRepair::is_empty")]
        audit: AuditRepair,
    },
    /// The same on an organization's or folder's policy (`organizations/N`, `folders/N`).
    RemoveContainerMembers {
        container: String,
        grants: Vec<Grant>,
        #[serde(default, skip_serializing_if = "AuditRepair::is_empty")]
        audit: AuditRepair,
    },
}

/// Whose policy a fix writes.
#[derive(Clone, Copy)]
enum Holder<'a> {
    Project(&'a str),
    Container(&'a str),
}

impl Fix {
    fn parts(&self) -> (Holder<'_>, &[Grant], &AuditRepair) {
        match self {
            Fix::RemoveProjectMembers {
                project,
                grants,
                audit,
            } => (Holder::Project(project), grants, audit),
            Fix::RemoveContainerMembers {
                container,
                grants,
                audit,
            } => (Holder::Container(container), grants, audit),
        }
    }
}

impl Holder<'_> {
    async fn read(self, gcp: &Client) -> Result<Policy, gcp::Error> {
        match self {
            Holder::Project(project) => gcp.get_project_policy(project).await,
            Holder::Container(container) => gcp.get_container_policy(container).await,
        }
    }

    async fn write(self, gcp: &Client, policy: &Policy) -> Result<Policy, gcp::Error> {
        match self {
            Holder::Project(project) => gcp.set_project_policy(project, policy).await,
            Holder::Container(container) => gcp.set_container_policy(container, policy).await,
        }
    }

    fn name(self) -> String {
        match self {
            Holder::Project(project) => format!("projects/{project}"),
            Holder::Container(container) => container.to_string(),
        }
    }

    /// Why `updated` must not be written: it would leave the project without an owner, or the organization or
    /// folder without an administrator it had.
    fn lockout(self, before: &Policy, updated: &Policy) -> Option<String> {
        let role = match self {
            Holder::Project(_) => {
                return (!updated.has_owner()).then(|| {
                    "removing these grants would leave the project without an owner".to_string()
                });
            }
            Holder::Container(container) if container.starts_with("organizations/") => {
                "roles/resourcemanager.organizationAdmin"
            }
            Holder::Container(_) => "roles/resourcemanager.folderAdmin",
        };
        (before.has_member_of(role) && !updated.has_member_of(role)).then(|| {
            format!(
                "removing these grants would leave {} without a member of {role}",
                self.name()
            )
        })
    }
}

const SERVICE: &str = "cloudresourcemanager.googleapis.com";

/// Resource Manager logs `SetIamPolicy` for v1 (and v2 folders) and the full RPC name for v3 (the catalog in the
/// fixtures lists `Projects`; `Folders` and `Organizations` follow the same form).
const WATCHES: &[Watch] = &[
    Watch {
        service: SERVICE,
        method: "SetIamPolicy",
    },
    Watch {
        service: SERVICE,
        method: "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
    },
    Watch {
        service: SERVICE,
        method: "google.cloud.resourcemanager.v3.Folders.SetIamPolicy",
    },
    Watch {
        service: SERVICE,
        method: "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy",
    },
];

/// `projects/P`, strictly; the project comes from the name alone, never from the entry's labels.
fn parse(resource_name: &str) -> Result<Target, names::NameError> {
    let Some(project) = resource_name.strip_prefix("projects/") else {
        return Err(format!(
            "'{}' is not a project (projects/PROJECT)",
            names::printable(resource_name)
        ));
    };
    Ok(target(names::project(project)?))
}

/// An organization's or folder's policy: no project; its name is the resource.
fn container_target(container: &str) -> Target {
    Target::new(KindId::ProjectIam, "", container, container.to_string())
}

fn target(project: &str) -> Target {
    Target::new(
        KindId::ProjectIam,
        project,
        "",
        format!("projects/{project}"),
    )
}

impl Kind for ProjectIam {
    type Resource = ProjectPolicy;
    type Fix = Fix;
    const NAME: &'static str = "project-iam";
    const NOUN: &'static str = "project policies";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^(projects/[^/]+|organizations/[0-9]+|folders/[0-9]+)$";
    const INPUTS: &'static [&'static str] = &["project-iam"];
    type RawPolicy = config::RawProjectIamPolicy;
    type Policy = policy::ProjectIamPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_project_iam(raw, problems)
    }

    fn common(config: &Config) -> Common {
        Common {
            enabled: config.policies.project_iam.enabled,
            dry_run: config.policies.project_iam.dry_run,
            grace_secs: config.policies.project_iam.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        if event.service_name != SERVICE {
            return None;
        }
        if !WATCHES
            .iter()
            .any(|watch| watch.method == event.method_name)
        {
            return Some(Route::Ignore(format!(
                "no policy watches {}",
                names::printable(&event.method_name)
            )));
        }
        // What the write did to the audit-log configuration travels with the target: the re-read cannot tell.
        let hinted = |target: Target| match event.audit_config_deltas.is_empty() {
            true => target,
            false => target.with_hint(
                serde_json::to_string(&event.audit_config_deltas).expect("deltas serialise"),
            ),
        };
        if let Some(container) = names::organization_or_folder(&event.resource_name) {
            return Some(Route::Check(hinted(container_target(container))));
        }
        Some(match parse(&event.resource_name) {
            Ok(target) => Route::Check(hinted(target)),
            Err(reason) => Route::Refuse(reason),
        })
    }

    fn target(resource_name: &str, _project: &str) -> Option<Target> {
        match names::organization_or_folder(resource_name) {
            Some(container) => Some(container_target(container)),
            None => parse(resource_name).ok(),
        }
    }

    fn permissions(_config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec!["resourcemanager.projects.getIamPolicy"];
        if enforcing {
            permissions.push("resourcemanager.projects.setIamPolicy");
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(ProjectPolicy, Value), gcp::Error> {
        let container = (!target.name.is_empty()).then(|| target.name.clone());
        let policy = match &container {
            Some(container) => gcp.get_container_policy(container).await?,
            None => gcp.get_project_policy(&target.project).await?,
        };
        let raw = serde_json::to_value(&policy).expect("a policy serialises");
        Ok((
            ProjectPolicy {
                project: target.project.clone(),
                container,
                policy,
                audit_deltas: target
                    .hint()
                    .and_then(|hint| serde_json::from_str(hint).ok())
                    .unwrap_or_default(),
            },
            raw,
        ))
    }

    fn evaluate(config: &Config, read: &ProjectPolicy) -> (Vec<Finding>, Option<Fix>) {
        let policy = &config.policies.project_iam;
        let (mut findings, grants): (Vec<Finding>, Vec<Grant>) =
            policy.evaluate(&read.policy).into_iter().unzip();
        let (audit_findings, audit) = policy.audit.evaluate(&read.policy, &read.audit_deltas);
        findings.extend(audit_findings);
        let fix = (!grants.is_empty() || !audit.is_empty()).then(|| match &read.container {
            Some(container) => Fix::RemoveContainerMembers {
                container: container.clone(),
                grants,
                audit,
            },
            None => policy.plan_fix(&read.project, grants, audit),
        });
        (findings, fix)
    }

    /// Member allow-lists are applied inside the policy, grant by grant.
    fn exemption(_config: &Config, _read: &ProjectPolicy, _principal: &str) -> Option<String> {
        None
    }

    fn target_of(read: &ProjectPolicy) -> Target {
        match &read.container {
            Some(container) => container_target(container),
            None => target(&read.project),
        }
    }

    fn describe(fix: &Fix) -> String {
        let (_, grants, audit) = fix.parts();
        let mut steps = Vec::new();
        if !grants.is_empty() {
            steps.push(format!(
                "removed {}",
                grants
                    .iter()
                    .map(|grant| format!("{} from {}", grant.member, grant.role))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !audit.restore.is_empty() {
            let logs: Vec<String> = audit
                .restore
                .iter()
                .map(|(service, log_type)| format!("{log_type} of {service}"))
                .collect();
            steps.push(format!("turned audit logs back on: {}", logs.join(", ")));
        }
        if !audit.unexempt.is_empty() {
            let members: Vec<&str> = audit
                .unexempt
                .iter()
                .map(|(_, _, member)| member.as_str())
                .collect();
            steps.push(format!(
                "removed audit-log exemptions of {}",
                members.join(", ")
            ));
        }
        steps.join("; ")
    }

    /// Read-modify-write at version 3 with the etag; on a concurrent change (409) re-read and redo.
    /// Never writes a downgraded read, never removes the last owner (or organization or folder administrator).
    async fn apply(
        _config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let (holder, grants, audit) = fix.parts();
        until_settled("the IAM policy", move || async move {
            let policy = holder.read(gcp).await?;
            let removed = if grants.is_empty() {
                None
            } else {
                remove_grants(&policy, grants)?
            };
            let mut updated = removed.clone().unwrap_or_else(|| policy.clone());
            let repaired = audit.apply_to(&mut updated);
            if removed.is_none() && !repaired {
                return Ok(Attempt::Done(()));
            }
            updated.version = 3;
            if let Some(reason) = holder.lockout(&policy, &updated) {
                return Err(apply::Error::Refused(reason));
            }
            raced(holder.write(gcp, &updated).await.map(|_| ()))
        })
        .await?;
        let after = holder.read(gcp).await?;
        if let Some(grant) = after.grants().find(|grant| grants.contains(grant)) {
            return Err(apply::Error::NotFixed(format!(
                "{} still holds {}",
                grant.member, grant.role
            )));
        }
        if audit.apply_to(&mut after.clone()) {
            return Err(apply::Error::NotFixed(
                "the audit-log configuration is still not restored".to_string(),
            ));
        }
        Ok(Some(
            serde_json::to_value(&after).expect("a policy serialises"),
        ))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let (holder, grants, audit) = fix.parts();
        let resource = holder.name();
        let current = holder.read(gcp).await?;
        let recorded: Policy = serde_json::from_value(after.clone()).unwrap_or_default();
        if !force && undo::bindings_set(&current) != undo::bindings_set(&recorded) {
            return Err(undo::Error::Changed(resource));
        }
        let mut restored = undo::with_grants(&current, grants);
        if !audit.is_empty() {
            // The audit-log configuration as it was before the fix.
            let before: Policy = serde_json::from_value(before.clone()).unwrap_or_default();
            restored.audit_configs = before.audit_configs;
        }
        holder.write(gcp, &restored).await?;
        Ok(Restored {
            resource,
            what: format!("{} grant(s)", grants.len()),
            overwritten: serde_json::to_value(&current).unwrap_or_default(),
        })
    }

    async fn sweep(gcp: &Client, project: &str) -> Swept<ProjectPolicy> {
        match gcp.get_project_policy(project).await {
            Ok(policy) => Swept {
                resources: vec![ProjectPolicy {
                    project: project.to_string(),
                    container: None,
                    policy,
                    audit_deltas: Vec::new(),
                }],
                errors: Vec::new(),
            },
            Err(err) => Swept {
                resources: Vec::new(),
                errors: vec![format!("{project}: reading the IAM policy: {err}")],
            },
        }
    }

    fn console_url(target: &Target) -> String {
        if let Some(id) = target.name.strip_prefix("organizations/") {
            return format!("https://console.cloud.google.com/iam-admin/iam?organizationId={id}");
        }
        if let Some(id) = target.name.strip_prefix("folders/") {
            return format!("https://console.cloud.google.com/iam-admin/iam?folder={id}");
        }
        format!(
            "https://console.cloud.google.com/iam-admin/iam?project={}",
            target.project
        )
    }

    fn parse_input(_input: &str, text: &str) -> Result<ProjectPolicy, String> {
        Ok(ProjectPolicy {
            project: "-".into(),
            container: None,
            policy: crate::gcp::iam::parse_policy(text)?,
            audit_deltas: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Transport;
    use serde_json::json;

    fn route_of(method: &str, resource: &str, label: &str) -> Route {
        let entry = json!({"insertId": "i", "protoPayload": {"serviceName": SERVICE,
            "methodName": method, "resourceName": resource}, "resource": {"labels": {"project_id": label}}});
        crate::kinds::route(
            &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"),
        )
    }

    #[test]
    fn both_project_iam_method_names_route() {
        for watch in WATCHES {
            assert_eq!(
                route_of(watch.method, "projects/my-project", "my-project"),
                Route::Check(target("my-project")),
                "{}",
                watch.method
            );
        }
    }

    #[test]
    fn organization_and_folder_policies_are_checked_by_name() {
        for container in ["organizations/123456789", "folders/42"] {
            assert_eq!(
                route_of("SetIamPolicy", container, ""),
                Route::Check(container_target(container))
            );
        }
        for wrong in ["organizations/acme", "folders/", "organizations/1/x"] {
            assert!(
                matches!(route_of("SetIamPolicy", wrong, ""), Route::Refuse(_)),
                "{wrong}"
            );
        }
    }

    // Issue 17: the entry's project label overrode the project in the resource name, and `../` in it traversed
    // paths.
    #[test]
    fn the_project_comes_from_the_resource_name_alone() {
        assert_eq!(
            route_of("SetIamPolicy", "projects/my-project", "other-project"),
            Route::Check(target("my-project"))
        );
        for resource in [
            "projects/../x",
            "projects/my-project/..",
            "projects/",
            "projects/p",
        ] {
            assert!(
                matches!(
                    route_of("SetIamPolicy", resource, "my-project"),
                    Route::Refuse(_)
                ),
                "{resource}"
            );
        }
    }
}
