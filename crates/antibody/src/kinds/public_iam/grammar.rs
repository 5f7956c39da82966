//! The names of the IAM-bearing resources this kind reads, by each service's grammar: topics, subscriptions,
//! secrets, key rings and crypto keys, repositories, Cloud Run services (v2's and v1's `namespaces/P/services/S`),
//! functions and service accounts; each resource's key and how findings call it.

use super::{KindId, Target, names};
use crate::gcp::resource_iam::IamService;

/// A resource id within its collection: 1 to 255 of `[A-Za-z0-9_.~+-]`, not `.` or `..`.
pub(super) fn id(text: &str) -> Result<&str, names::NameError> {
    let valid = (1..=255).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '~' | '+' | '-'))
        && text != "."
        && text != "..";
    if valid {
        Ok(text)
    } else {
        Err(format!("'{}' is not a resource id", names::printable(text)))
    }
}

/// The service a resource name belongs to and the project it is in (an all-digit project is the project's number,
/// as Secret Manager writes it: then the event's own project stands for it).
/// Run Admin v1's `namespaces/PROJECT/services/SERVICE`, placed in its region (`resource.labels.location`) as v2's
/// `projects/PROJECT/locations/REGION/services/SERVICE`; `None` for any other name.
pub(super) fn knative_service(
    resource_name: &str,
    location: &str,
) -> Option<Result<String, names::NameError>> {
    let parts: Vec<&str> = names::relative(resource_name).split('/').collect();
    let ["namespaces", project, "services", service] = parts.as_slice() else {
        return None;
    };
    if location.is_empty() || id(location).is_err() {
        return Some(Err(format!(
            "'{}' names a Cloud Run service, but the entry does not say its region",
            names::printable(resource_name)
        )));
    }
    Some(Ok(format!(
        "projects/{project}/locations/{location}/services/{service}"
    )))
}

pub(super) fn parse(
    resource_name: &str,
    event_project: &str,
) -> Result<(IamService, String, String), names::NameError> {
    let relative = names::relative(resource_name);
    let parts: Vec<&str> = relative.split('/').collect();
    let (service, named) = match parts.as_slice() {
        ["projects", project, "topics" | "subscriptions", name] => {
            id(name)?;
            (IamService::PubSub, *project)
        }
        ["projects", project, "secrets", name] => {
            id(name)?;
            (IamService::SecretManager, *project)
        }
        ["projects", project, "locations", location, "keyRings", ring] => {
            id(location)?;
            id(ring)?;
            (IamService::Kms, *project)
        }
        [
            "projects",
            project,
            "locations",
            location,
            "keyRings",
            ring,
            "cryptoKeys",
            key,
        ] => {
            id(location)?;
            id(ring)?;
            id(key)?;
            (IamService::Kms, *project)
        }
        [
            "projects",
            project,
            "locations",
            location,
            "repositories",
            name,
        ] => {
            id(location)?;
            id(name)?;
            (IamService::ArtifactRegistry, *project)
        }
        ["projects", project, "locations", location, "services", name] => {
            id(location)?;
            id(name)?;
            (IamService::Run, *project)
        }
        [
            "projects",
            project,
            "locations",
            location,
            "functions",
            name,
        ] => {
            id(location)?;
            id(name)?;
            (IamService::Functions, *project)
        }
        ["projects", project, "serviceAccounts", account]
        | [
            "projects",
            project,
            "serviceAccounts",
            account,
            ACCOUNT_POLICY,
        ] => {
            names::service_account(account)?;
            // IAM names an account under `projects/-` as often as under its project.
            let project = if *project == "-" {
                names::project(event_project)?
            } else {
                names::project(project)?
            };
            return Ok((
                IamService::ServiceAccount,
                project.to_string(),
                format!("projects/{project}/serviceAccounts/{account}"),
            ));
        }
        ["projects", project, "zones", zone, "instances", instance]
        | [
            "projects",
            project,
            "zones",
            zone,
            "instances",
            instance,
            ACCOUNT_POLICY,
        ] => {
            let project = names::project(project)?;
            let zone = names::zone(zone)?;
            let instance = names::compute(instance)?;
            return Ok((
                IamService::ComputeInstance,
                project.to_string(),
                format!("projects/{project}/zones/{zone}/instances/{instance}"),
            ));
        }
        _ => {
            return Err(format!(
                "'{}' is not a topic, subscription, secret, key ring, crypto key, repository, Cloud Run service, \
                 function, service account or instance",
                names::printable(resource_name)
            ));
        }
    };
    let numbered =
        !named.is_empty() && named.len() <= 20 && named.bytes().all(|byte| byte.is_ascii_digit());
    let project = if numbered {
        names::project(event_project)?
    } else {
        names::project(named)?
    };
    Ok((service, project.to_string(), relative.to_string()))
}

/// A service account's key is its keys' (the `sa-key` kind's), an instance's the `vm` kind's; the policy's key says
/// which of the two it is.
pub(super) const ACCOUNT_POLICY: &str = "iamPolicy";

pub(super) fn target(project: &str, resource: &str) -> Target {
    let key = if resource.contains("/serviceAccounts/") || resource.contains("/instances/") {
        format!("{resource}/{ACCOUNT_POLICY}")
    } else {
        resource.to_string()
    };
    Target::new(KindId::PublicIam, project, resource, key)
}

/// What a resource is called in findings: its collection's noun and id.
pub(super) fn describe_resource(resource: &str) -> String {
    let parts: Vec<&str> = resource.split('/').collect();
    let noun = match parts.get(parts.len().saturating_sub(2)).copied() {
        Some("topics") => "topic",
        Some("subscriptions") => "subscription",
        Some("secrets") => "secret",
        Some("keyRings") => "key ring",
        Some("cryptoKeys") => "crypto key",
        Some("repositories") => "repository",
        Some("services") => "Cloud Run service",
        Some("functions") => "function",
        Some("serviceAccounts") => "service account",
        Some("instances") => "instance",
        _ => "resource",
    };
    format!("{noun} {}", parts.last().copied().unwrap_or_default())
}
