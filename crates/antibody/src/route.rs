//! Routing: which resource an audit event points at, by (serviceName, normalised verb) and resourceName.

use crate::event::AuditEvent;

/// A resource antibody knows how to re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Firewall { project: String, name: String },
    ProjectIam { project: String },
    Bucket { project: String, name: String },
}

impl Target {
    /// The project the resource belongs to (for per-project caps).
    pub fn project(&self) -> &str {
        match self {
            Target::Firewall { project, .. }
            | Target::ProjectIam { project }
            | Target::Bucket { project, .. } => project,
        }
    }

    /// The resource's name as audit logs write it; one string per resource for locks, counters and exemptions.
    pub fn key(&self) -> String {
        match self {
            Target::Firewall { project, name } => {
                format!("projects/{project}/global/firewalls/{name}")
            }
            Target::ProjectIam { project } => format!("projects/{project}"),
            Target::Bucket { name, .. } => format!("projects/_/buckets/{name}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Re-read this resource and decide.
    Check(Target),
    /// The event deleted the resource: nothing to fix.
    Deleted(Target),
    /// No policy cares about this event.
    Ignore(String),
}

/// The audit-log method names whose events can open a firewall, for triggers (`plan`) and documentation.
/// Compute logs `v1.` or `beta.` by the API surface the caller used; Google's catalog lists no `alpha.` variants.
pub const FIREWALL_METHODS: &[&str] = &[
    "v1.compute.firewalls.insert",
    "v1.compute.firewalls.patch",
    "v1.compute.firewalls.update",
    "beta.compute.firewalls.insert",
    "beta.compute.firewalls.patch",
    "beta.compute.firewalls.update",
];

/// Resource Manager logs `SetIamPolicy` for v1 and the full RPC name for v3.
pub const PROJECT_IAM_METHODS: &[&str] = &[
    "SetIamPolicy",
    "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
];

/// The target a resource name denotes, as a sweep names resources: `projects/P/global/firewalls/N`,
/// `projects/_/buckets/B`, `projects/P`.
pub fn target_of(resource_name: &str, project: &str) -> Option<Target> {
    if let Some(name) = resource_name.strip_prefix("projects/_/buckets/") {
        return (!name.is_empty() && !name.contains('/')).then(|| Target::Bucket {
            project: project.to_string(),
            name: name.to_string(),
        });
    }
    if let Some(target) = firewall_target(resource_name, project) {
        return Some(target);
    }
    let id = resource_name.strip_prefix("projects/")?;
    (!id.is_empty() && !id.contains('/')).then(|| Target::ProjectIam {
        project: id.to_string(),
    })
}

pub fn route(event: &AuditEvent) -> Route {
    if matches!(
        event.transport,
        crate::event::Transport::Scan | crate::event::Transport::Recheck
    ) {
        return match target_of(&event.resource_name, &event.project) {
            Some(target) => Route::Check(target),
            None => Route::Ignore(format!(
                "'{}' is not a resource antibody sweeps",
                event.resource_name
            )),
        };
    }
    if event.service_name == "cloudresourcemanager.googleapis.com" {
        return route_resource_manager(event);
    }
    if event.service_name == "storage.googleapis.com" {
        return route_storage(event);
    }
    if event.service_name != "compute.googleapis.com" {
        return Route::Ignore(format!("no policy watches {}", event.service_name));
    }
    let mut segments = event.method_name.split('.');
    let (_version, service, collection) = (segments.next(), segments.next(), segments.next());
    if service != Some("compute") || collection != Some("firewalls") {
        return Route::Ignore(format!("no policy watches {}", event.method_name));
    }
    let Some(target) = firewall_target(&event.resource_name, &event.project) else {
        return Route::Ignore(format!(
            "resource name '{}' is not a firewall rule",
            event.resource_name
        ));
    };
    match event.verb() {
        "insert" | "patch" | "update" => Route::Check(target),
        "delete" => Route::Deleted(target),
        verb => Route::Ignore(format!("firewall method '{verb}' changes nothing")),
    }
}

/// The bucket methods that can make a bucket public. Any other write on a bucket (an ACL edit's method was never
/// captured live) is routed too: the bucket and its IAM policy are re-read either way.
pub const BUCKET_METHODS: &[&str] = &[
    "storage.setIamPermissions",
    "storage.buckets.update",
    "storage.buckets.create",
];

/// Bucket reads are logged as data access and change nothing.
const BUCKET_READS: &[&str] = &[
    "get",
    "list",
    "getIamPermissions",
    "getIamPolicy",
    "testIamPermissions",
];

fn route_storage(event: &AuditEvent) -> Route {
    let Some(name) = event.resource_name.strip_prefix("projects/_/buckets/") else {
        return Route::Ignore(format!(
            "resource name '{}' is not a bucket",
            event.resource_name
        ));
    };
    if name.is_empty() || name.contains('/') {
        return Route::Ignore("object-level changes are not watched".to_string());
    }
    let target = Target::Bucket {
        project: event.project.clone(),
        name: name.to_string(),
    };
    match event.verb() {
        "delete" => Route::Deleted(target),
        verb if BUCKET_READS.contains(&verb) => {
            Route::Ignore(format!("{} changes nothing", event.method_name))
        }
        _ => Route::Check(target),
    }
}

fn route_resource_manager(event: &AuditEvent) -> Route {
    if !PROJECT_IAM_METHODS.contains(&event.method_name.as_str()) {
        return Route::Ignore(format!("no policy watches {}", event.method_name));
    }
    match event.resource_name.strip_prefix("projects/") {
        Some(project) if !project.is_empty() && !project.contains('/') => {
            // The audit entry may name the project by number; the project id in the labels is what the API takes.
            let project = if event.project.is_empty() {
                project
            } else {
                event.project.as_str()
            };
            Route::Check(Target::ProjectIam {
                project: project.to_string(),
            })
        }
        _ => Route::Ignore(format!(
            "resource name '{}' is not a project",
            event.resource_name
        )),
    }
}

/// `projects/P/global/firewalls/NAME` (possibly as a full URL) → the firewall it names.
fn firewall_target(resource_name: &str, fallback_project: &str) -> Option<Target> {
    let relative = resource_name
        .split_once("projects/")
        .map(|(_, rest)| rest)?;
    let parts: Vec<&str> = relative.split('/').collect();
    match parts.as_slice() {
        [project, "global", "firewalls", name] if !name.is_empty() => Some(Target::Firewall {
            project: if project.is_empty() {
                fallback_project
            } else {
                project
            }
            .to_string(),
            name: (*name).to_string(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Transport;
    use serde_json::json;

    fn route_of(method: &str, resource: &str) -> Route {
        let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "compute.googleapis.com",
            "methodName": method, "resourceName": resource}, "resource": {"labels": {"project_id": "p"}}});
        route(&AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry"))
    }

    fn firewall(name: &str) -> Target {
        Target::Firewall {
            project: "p".into(),
            name: name.into(),
        }
    }

    #[test]
    fn every_firewall_write_variant_routes() {
        for method in FIREWALL_METHODS {
            assert_eq!(
                route_of(method, "projects/p/global/firewalls/fw"),
                Route::Check(firewall("fw")),
                "{method}"
            );
        }
        assert_eq!(
            route_of(
                "v1.compute.firewalls.delete",
                "projects/p/global/firewalls/fw"
            ),
            Route::Deleted(firewall("fw"))
        );
    }

    #[test]
    fn names_that_public_code_gets_wrong_do_not_route() {
        // Pitfall 1: unversioned names are never logged; reading them as firewall writes would hide real bugs.
        assert!(matches!(
            route_of("compute.firewalls.patch", "projects/p/global/firewalls/fw"),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route_of("v1.compute.firewalls.get", "projects/p/global/firewalls/fw"),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route_of(
                "v1.compute.instances.insert",
                "projects/p/zones/z/instances/i"
            ),
            Route::Ignore(_)
        ));
    }

    #[test]
    fn both_project_iam_method_names_route() {
        for method in PROJECT_IAM_METHODS {
            let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "cloudresourcemanager.googleapis.com",
                "methodName": method, "resourceName": "projects/p"}, "resource": {"labels": {"project_id": "p"}}});
            let event =
                AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("valid entry");
            assert_eq!(
                route(&event),
                Route::Check(Target::ProjectIam {
                    project: "p".into()
                }),
                "{method}"
            );
        }
    }

    #[test]
    fn bucket_writes_route_and_objects_do_not() {
        let route_storage = |method: &str, resource: &str| {
            let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "storage.googleapis.com",
                "methodName": method, "resourceName": resource}, "resource": {"labels": {"project_id": "p"}}});
            route(
                &AuditEvent::from_log_entry(&entry, Transport::LogEntry, None)
                    .expect("valid entry"),
            )
        };
        let bucket = Target::Bucket {
            project: "p".into(),
            name: "b".into(),
        };
        for method in BUCKET_METHODS {
            assert_eq!(
                route_storage(method, "projects/_/buckets/b"),
                Route::Check(bucket.clone()),
                "{method}"
            );
        }
        assert_eq!(
            route_storage("storage.buckets.delete", "projects/_/buckets/b"),
            Route::Deleted(bucket)
        );
        assert!(matches!(
            route_storage("storage.objects.update", "projects/_/buckets/b/objects/o"),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route_storage("storage.buckets.get", "projects/_/buckets/b"),
            Route::Ignore(_)
        ));
    }

    #[test]
    fn full_url_resource_names_route() {
        assert_eq!(
            route_of(
                "v1.compute.firewalls.patch",
                "https://www.googleapis.com/compute/v1/projects/p/global/firewalls/fw"
            ),
            Route::Check(firewall("fw"))
        );
    }
}
