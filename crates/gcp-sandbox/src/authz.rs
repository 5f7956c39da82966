//! Which IAM permission each emulated call needs, recorded per principal (tests compare what a caller really used
//! with the role it would be given), and, with `enforce_iam`, refused when the caller's roles lack it — roles held on
//! the project or inherited from the folders and organization above it. Custom roles come from `custom_roles.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::error::ApiError;

/// Principal → permissions its calls needed.
#[derive(Default)]
pub(crate) struct Ledger {
    used: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Ledger {
    pub(crate) fn used_by(&self, principal: &str) -> BTreeSet<String> {
        self.used
            .lock()
            .expect("ledger lock poisoned")
            .get(principal)
            .cloned()
            .unwrap_or_default()
    }

    fn record(&self, principal: String, permissions: Vec<&'static str>) {
        if permissions.is_empty() {
            return;
        }
        let mut used = self.used.lock().expect("ledger lock poisoned");
        let entry = used.entry(principal).or_default();
        entry.extend(permissions.into_iter().map(str::to_string));
    }
}

/// The permissions a request needs, as Google documents them per method.
fn permissions(method: &Method, path: &str, query: &str, body: &[u8]) -> Vec<&'static str> {
    let full = query.split('&').any(|pair| pair == "projection=full");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let writes_acl = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|body| body.get("acl").is_some() || body.get("defaultObjectAcl").is_some())
    };
    match (method, segments.as_slice()) {
        (&Method::GET, ["compute", _, "projects", _, "global", "firewalls"]) => {
            vec!["compute.firewalls.list"]
        }
        (&Method::POST, ["compute", _, "projects", _, "global", "firewalls"]) => {
            vec!["compute.firewalls.create", "compute.networks.updatePolicy"]
        }
        (&Method::GET, ["compute", _, "projects", _, "global", "firewalls", _]) => {
            vec!["compute.firewalls.get"]
        }
        (
            &Method::PATCH | &Method::PUT,
            ["compute", _, "projects", _, "global", "firewalls", _],
        ) => {
            vec!["compute.firewalls.update", "compute.networks.updatePolicy"]
        }
        (&Method::DELETE, ["compute", _, "projects", _, "global", "firewalls", _]) => {
            vec!["compute.firewalls.delete", "compute.networks.updatePolicy"]
        }
        (_, ["compute", _, "projects", _, "global", "operations", ..]) => {
            vec!["compute.globalOperations.get"]
        }
        (_, ["compute", _, "projects", _, "zones", _, "operations", ..]) => {
            vec!["compute.zoneOperations.get"]
        }
        (&Method::GET, ["compute", _, "projects", _, "zones", _, "instances"])
        | (&Method::GET, ["compute", _, "projects", _, "aggregated", "instances"]) => {
            vec!["compute.instances.list"]
        }
        (&Method::POST, ["compute", _, "projects", _, "zones", _, "instances"]) => {
            vec!["compute.instances.create"]
        }
        (&Method::GET, ["compute", _, "projects", _, "zones", _, "instances", _]) => {
            vec!["compute.instances.get"]
        }
        (&Method::DELETE, ["compute", _, "projects", _, "zones", _, "instances", _]) => {
            vec!["compute.instances.delete"]
        }
        (
            &Method::POST,
            [
                "compute",
                _,
                "projects",
                _,
                "zones",
                _,
                "instances",
                _,
                action,
            ],
        ) => match *action {
            "setMetadata" => vec!["compute.instances.setMetadata"],
            "stop" => vec!["compute.instances.stop"],
            "start" => vec!["compute.instances.start"],
            "deleteAccessConfig" => vec!["compute.instances.deleteAccessConfig"],
            "addAccessConfig" => vec!["compute.instances.addAccessConfig"],
            "setServiceAccount" => vec!["compute.instances.setServiceAccount"],
            "setTags" => vec!["compute.instances.setTags"],
            "setLabels" => vec!["compute.instances.setLabels"],
            _ => Vec::new(),
        },
        (&Method::GET, ["compute", _, "projects", _]) => vec!["compute.projects.get"],
        (&Method::POST, ["compute", _, "projects", _, "setCommonInstanceMetadata"]) => {
            vec!["compute.projects.setCommonInstanceMetadata"]
        }
        (&Method::GET, ["v1" | "v3", "projects", _]) => vec!["resourcemanager.projects.get"],
        (&Method::POST, ["v1" | "v3", "projects", target]) if target.ends_with(":getIamPolicy") => {
            vec!["resourcemanager.projects.getIamPolicy"]
        }
        (&Method::POST, ["v1" | "v3", "projects", target]) if target.ends_with(":setIamPolicy") => {
            vec!["resourcemanager.projects.setIamPolicy"]
        }
        (&Method::POST, ["v1", "projects", target]) if target.ends_with(":getAncestry") => {
            vec!["resourcemanager.projects.get"]
        }
        (&Method::POST, ["v3", "projects", target]) if target.ends_with(":move") => {
            vec!["resourcemanager.projects.move"]
        }
        (&Method::POST, [_, "organizations", target]) if target.ends_with(":getIamPolicy") => {
            vec!["resourcemanager.organizations.getIamPolicy"]
        }
        (&Method::POST, [_, "organizations", target]) if target.ends_with(":setIamPolicy") => {
            vec!["resourcemanager.organizations.setIamPolicy"]
        }
        (&Method::POST, [_, "folders", target]) if target.ends_with(":getIamPolicy") => {
            vec!["resourcemanager.folders.getIamPolicy"]
        }
        (&Method::POST, [_, "folders", target]) if target.ends_with(":setIamPolicy") => {
            vec!["resourcemanager.folders.setIamPolicy"]
        }
        (&Method::GET, ["v3", "folders", _]) => vec!["resourcemanager.folders.get"],
        (&Method::GET, ["v3", "folders"]) => vec!["resourcemanager.folders.list"],
        (&Method::GET, ["v3", "projects:search"]) => vec!["resourcemanager.projects.get"],
        (&Method::GET, ["storage", "v1", "b"]) if full => {
            vec!["storage.buckets.list", "storage.buckets.getIamPolicy"]
        }
        (&Method::GET, ["storage", "v1", "b"]) => vec!["storage.buckets.list"],
        (&Method::POST, ["storage", "v1", "b"]) => vec!["storage.buckets.create"],
        (&Method::GET, ["storage", "v1", "b", _]) if full => {
            vec!["storage.buckets.get", "storage.buckets.getIamPolicy"]
        }
        (&Method::GET, ["storage", "v1", "b", _]) => vec!["storage.buckets.get"],
        (&Method::PATCH | &Method::PUT, ["storage", "v1", "b", _]) if writes_acl() => {
            vec!["storage.buckets.update", "storage.buckets.setIamPolicy"]
        }
        (&Method::PATCH | &Method::PUT, ["storage", "v1", "b", _]) => {
            vec!["storage.buckets.update"]
        }
        (&Method::DELETE, ["storage", "v1", "b", _]) => vec!["storage.buckets.delete"],
        (&Method::GET, ["storage", "v1", "b", _, "iam" | "acl", ..]) => {
            vec!["storage.buckets.getIamPolicy"]
        }
        (_, ["storage", "v1", "b", _, "iam" | "acl", ..]) => vec!["storage.buckets.setIamPolicy"],
        (&Method::POST, ["v1", "projects", _, "roles"]) => vec!["iam.roles.create"],
        (_, ["v1" | "v2", "projects", .., collection, target])
            if target.contains(":getIamPolicy") || target.contains(":setIamPolicy") =>
        {
            resource_iam_permission(collection, target.ends_with(":setIamPolicy"))
        }
        (&Method::GET, ["v1", "projects", _, "instances"]) => vec!["cloudsql.instances.list"],
        (&Method::GET, ["v1", "projects", _, "topics"]) => vec!["pubsub.topics.list"],
        (&Method::GET, ["v1", "projects", _, "subscriptions"]) => vec!["pubsub.subscriptions.list"],
        (&Method::GET, ["v1", "projects", _, "secrets"]) => vec!["secretmanager.secrets.list"],
        (&Method::POST, ["v1", "projects", _, "instances"]) => vec!["cloudsql.instances.create"],
        (&Method::GET, ["v1", "projects", _, "instances", _]) => vec!["cloudsql.instances.get"],
        (&Method::PATCH, ["v1", "projects", _, "instances", _]) => {
            vec!["cloudsql.instances.update"]
        }
        (&Method::GET, ["v1", "projects", _, "operations", _]) => vec!["cloudsql.instances.get"],
        (&Method::GET, ["bigquery", "v2", "projects", _, "datasets"]) => {
            vec!["bigquery.datasets.get"]
        }
        (&Method::POST, ["bigquery", "v2", "projects", _, "datasets"]) => {
            vec!["bigquery.datasets.create"]
        }
        (&Method::GET, ["bigquery", "v2", "projects", _, "datasets", _]) => {
            vec!["bigquery.datasets.get"]
        }
        (&Method::PATCH | &Method::PUT, ["bigquery", "v2", "projects", _, "datasets", _]) => {
            vec!["bigquery.datasets.update"]
        }
        (&Method::DELETE, ["bigquery", "v2", "projects", _, "datasets", _]) => {
            vec!["bigquery.datasets.delete"]
        }
        (&Method::GET, ["v2", "projects", _, "sinks"]) => vec!["logging.sinks.list"],
        (&Method::POST, ["v2", "projects", _, "sinks"]) => vec!["logging.sinks.create"],
        (&Method::GET, ["v2", "projects", _, "sinks", _]) => vec!["logging.sinks.get"],
        (&Method::PUT | &Method::PATCH, ["v2", "projects", _, "sinks", _]) => {
            vec!["logging.sinks.update"]
        }
        (&Method::DELETE, ["v2", "projects", _, "sinks", _]) => vec!["logging.sinks.delete"],
        (&Method::GET, ["v2", "projects", _, "exclusions"]) => vec!["logging.exclusions.list"],
        (&Method::POST, ["v2", "projects", _, "exclusions"]) => vec!["logging.exclusions.create"],
        (&Method::GET, ["v2", "projects", _, "exclusions", _]) => vec!["logging.exclusions.get"],
        (&Method::PATCH, ["v2", "projects", _, "exclusions", _]) => {
            vec!["logging.exclusions.update"]
        }
        (&Method::DELETE, ["v2", "projects", _, "exclusions", _]) => {
            vec!["logging.exclusions.delete"]
        }
        (&Method::GET, ["v1", "projects", _, "serviceAccounts"]) => {
            vec!["iam.serviceAccounts.list"]
        }
        (&Method::POST, ["v1", "projects", _, "serviceAccounts"]) => {
            vec!["iam.serviceAccounts.create"]
        }
        (&Method::GET, ["v1", "projects", _, "serviceAccounts", _]) => {
            vec!["iam.serviceAccounts.get"]
        }
        (&Method::GET, ["v1", "projects", _, "serviceAccounts", _, "keys"]) => {
            vec!["iam.serviceAccountKeys.list"]
        }
        (
            &Method::POST,
            [
                "v1",
                "projects",
                _,
                "serviceAccounts",
                _,
                "keys" | "keys:upload",
            ],
        ) => {
            vec!["iam.serviceAccountKeys.create"]
        }
        (&Method::GET, ["v1", "projects", _, "serviceAccounts", _, "keys", _]) => {
            vec!["iam.serviceAccountKeys.get"]
        }
        (&Method::DELETE, ["v1", "projects", _, "serviceAccounts", _, "keys", _]) => {
            vec!["iam.serviceAccountKeys.delete"]
        }
        (&Method::POST, ["v1", "projects", _, "serviceAccounts", _, "keys", key]) => {
            match key.rsplit_once(':').map(|(_, verb)| verb) {
                Some("disable") => vec!["iam.serviceAccountKeys.disable"],
                Some("enable") => vec!["iam.serviceAccountKeys.enable"],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The permission a resource's `getIamPolicy` or `setIamPolicy` needs, by its collection.
fn resource_iam_permission(collection: &str, set: bool) -> Vec<&'static str> {
    let (get, put) = match collection {
        "topics" => ("pubsub.topics.getIamPolicy", "pubsub.topics.setIamPolicy"),
        "subscriptions" => (
            "pubsub.subscriptions.getIamPolicy",
            "pubsub.subscriptions.setIamPolicy",
        ),
        "secrets" => (
            "secretmanager.secrets.getIamPolicy",
            "secretmanager.secrets.setIamPolicy",
        ),
        "keyRings" => (
            "cloudkms.keyRings.getIamPolicy",
            "cloudkms.keyRings.setIamPolicy",
        ),
        "cryptoKeys" => (
            "cloudkms.cryptoKeys.getIamPolicy",
            "cloudkms.cryptoKeys.setIamPolicy",
        ),
        "repositories" => (
            "artifactregistry.repositories.getIamPolicy",
            "artifactregistry.repositories.setIamPolicy",
        ),
        "services" => ("run.services.getIamPolicy", "run.services.setIamPolicy"),
        "functions" => (
            "cloudfunctions.functions.getIamPolicy",
            "cloudfunctions.functions.setIamPolicy",
        ),
        _ => return Vec::new(),
    };
    vec![if set { put } else { get }]
}

/// The project a request is about, for the roles its caller holds there.
fn project_of(shared: &Shared, path: &str, query: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["compute", _, "projects", project, ..] | ["v1", "projects", project, "roles", ..] => {
            Some(project.to_string())
        }
        ["v1", "projects", "-", "serviceAccounts", account, ..] => shared
            .iam_admin
            .lock()
            .expect("iam lock poisoned")
            .project_of(account),
        ["v1", "projects", project, "serviceAccounts", ..]
        | [
            "v2",
            "projects",
            project,
            "sinks" | "exclusions" | "locations",
            ..,
        ] => Some(project.to_string()),
        [
            "v1",
            "projects",
            project,
            "topics" | "subscriptions" | "secrets" | "locations",
            ..,
        ] => Some(project.to_string()),
        ["bigquery", "v2", "projects", project, ..]
        | ["v1", "projects", project, "instances" | "operations", ..] => Some(project.to_string()),
        ["v1" | "v3", "projects", target] => {
            Some(target.split(':').next().unwrap_or(target).to_string())
        }
        [_, collection @ ("organizations" | "folders"), target] => Some(format!(
            "{collection}/{}",
            target.split(':').next().unwrap_or(target)
        )),
        // Listing folders or searching projects: the organization's grants decide.
        ["v3", "folders" | "projects:search"] => Some(
            shared
                .hierarchy
                .lock()
                .expect("hierarchy lock poisoned")
                .organization()
                .to_string(),
        ),
        ["storage", "v1", "b"] => query
            .split('&')
            .find_map(|pair| pair.strip_prefix("project="))
            .map(str::to_string),
        ["storage", "v1", "b", bucket, ..] => shared
            .storage
            .lock()
            .expect("storage lock poisoned")
            .project_of(bucket),
        _ => None,
    }
}

/// The (service, method, resource) an admin write would be audit-logged under, for logging a denied one.
fn audited_write(method: &Method, path: &str) -> Option<(&'static str, String, String)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (
            &Method::POST,
            [
                "compute",
                version,
                "projects",
                project,
                "global",
                "firewalls",
            ],
        ) => Some((
            "compute.googleapis.com",
            format!("{version}.compute.firewalls.insert"),
            format!("projects/{project}/global/firewalls"),
        )),
        (
            &Method::PATCH | &Method::PUT | &Method::DELETE,
            [
                "compute",
                version,
                "projects",
                project,
                "global",
                "firewalls",
                name,
            ],
        ) => {
            let verb = match *method {
                Method::PATCH => "patch",
                Method::PUT => "update",
                _ => "delete",
            };
            Some((
                "compute.googleapis.com",
                format!("{version}.compute.firewalls.{verb}"),
                format!("projects/{project}/global/firewalls/{name}"),
            ))
        }
        (&Method::POST, ["v1" | "v3", "projects", target]) if target.ends_with(":setIamPolicy") => {
            Some((
                "cloudresourcemanager.googleapis.com",
                "SetIamPolicy".to_string(),
                format!("projects/{}", target.trim_end_matches(":setIamPolicy")),
            ))
        }
        (&Method::PUT, ["storage", "v1", "b", bucket, "iam"]) => Some((
            "storage.googleapis.com",
            "storage.setIamPermissions".to_string(),
            format!("projects/_/buckets/{bucket}"),
        )),
        (&Method::PATCH | &Method::PUT, ["storage", "v1", "b", bucket]) => Some((
            "storage.googleapis.com",
            "storage.buckets.update".to_string(),
            format!("projects/_/buckets/{bucket}"),
        )),
        _ => None,
    }
}

/// Whether a predefined role grants `permission` (the roles the tests and the demo use).
fn predefined_grants(role: &str, permission: &str) -> bool {
    let reads = permission.ends_with(".get")
        || permission.ends_with(".list")
        || permission.ends_with(".getIamPolicy");
    match role {
        "roles/owner" => true,
        "roles/editor" => {
            !permission.ends_with(".setIamPolicy") && !permission.starts_with("iam.roles.")
        }
        "roles/viewer" => reads,
        "roles/compute.securityAdmin" => {
            permission.starts_with("compute.firewalls.")
                || permission.starts_with("compute.globalOperations.")
                || permission == "compute.networks.updatePolicy"
        }
        "roles/compute.instanceAdmin.v1" => {
            permission.starts_with("compute.instances.")
                || permission.starts_with("compute.zoneOperations.")
                || permission.starts_with("compute.globalOperations.")
                || permission.starts_with("compute.projects.")
        }
        "roles/storage.admin" => permission.starts_with("storage."),
        "roles/resourcemanager.projectIamAdmin" => {
            permission.starts_with("resourcemanager.projects.") && permission.contains("IamPolicy")
        }
        "roles/iam.roleAdmin" => permission.starts_with("iam.roles."),
        "roles/resourcemanager.organizationAdmin" => permission.starts_with("resourcemanager."),
        "roles/resourcemanager.folderAdmin" => {
            permission.starts_with("resourcemanager.folders.")
                || permission.starts_with("resourcemanager.projects.")
        }
        "roles/iam.serviceAccountKeyAdmin" => {
            permission.starts_with("iam.serviceAccountKeys.")
                || permission == "iam.serviceAccounts.get"
                || permission == "iam.serviceAccounts.list"
        }
        _ => false,
    }
}

/// Whether `principal` holds `permission` in `project`: through the project's policy, or inherited from the folders
/// and organization above it, as Google's IAM inherits.
fn granted(shared: &Shared, project: &str, principal: &str, permission: &str) -> bool {
    let members: Vec<String> = ["user", "serviceAccount", "group"]
        .iter()
        .map(|kind| format!("{kind}:{principal}"))
        .collect();
    let container = project.starts_with("organizations/") || project.starts_with("folders/");
    let mut roles: Vec<String> = Vec::new();
    if !container {
        for member in &members {
            roles.extend(
                shared
                    .resource_manager
                    .lock()
                    .expect("resource manager lock poisoned")
                    .roles_of(project, member),
            );
        }
    }
    let hierarchy = shared.hierarchy.lock().expect("hierarchy lock poisoned");
    let above = match container {
        true => hierarchy.containers_from(project),
        false => hierarchy.containers_above(project),
    };
    drop(hierarchy);
    let containers = shared.containers.lock().expect("containers lock poisoned");
    for container in above {
        for member in &members {
            roles.extend(containers.roles_of(&container, member));
        }
    }
    drop(containers);
    let custom = shared
        .custom_roles
        .lock()
        .expect("custom roles lock poisoned");
    roles.iter().any(|role| {
        predefined_grants(role, permission)
            || custom
                .get(role)
                .is_some_and(|permissions| permissions.contains(permission))
    })
}

/// Middleware: notes the permissions every request needs and, when IAM is enforced, refuses a caller without
/// credentials (401) or without the permission (403, as Google words it).
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return next.run(Request::from_parts(parts, Body::empty())).await,
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let needed = permissions(&parts.method, &path, &query, &bytes);
    let principal = shared.principal(&parts.headers);
    if shared.config.enforce_iam && !needed.is_empty() {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return ApiError::unauthenticated().into_response();
        }
        let project = project_of(&shared, &path, &query).unwrap_or_default();
        if let Some(missing) = needed
            .iter()
            .find(|permission| !granted(&shared, &project, &principal, permission))
        {
            let denied = ApiError {
                status: StatusCode::FORBIDDEN,
                reason: "forbidden",
                message: format!(
                    "Required '{missing}' permission for '{}'",
                    path.trim_start_matches('/')
                ),
                grpc_status: Some("PERMISSION_DENIED"),
            };
            // A denied admin write is audit-logged with its status, as Google does.
            if let Some((service_name, method_name, resource_name)) =
                audited_write(&parts.method, &path)
            {
                shared.emit(crate::audit::refused_entry(crate::audit::Refused {
                    service_name,
                    method_name: &method_name,
                    resource_name: &resource_name,
                    project: &project,
                    principal: &principal,
                    status: &denied,
                }));
            }
            return denied.into_response();
        }
    }
    shared.ledger.record(principal, needed);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
