//! A project's IAM-bearing resources for a sweep: flat collections, those listed under every location at once
//! (`locations/-`), and KMS and Artifact Registry location by location; each resource with its policy (and, for a
//! Cloud Run service, whether its invoker check is off).

use super::ResourcePolicy;
use crate::gcp::resource_iam::IamService;
use crate::gcp::{self, Client};
use crate::kinds::Swept;

pub(super) async fn sweep(gcp: &Client, project: &str) -> Swept<ResourcePolicy> {
    let mut swept = Swept {
        resources: Vec::new(),
        errors: Vec::new(),
    };
    let mut names: Vec<(IamService, String)> = Vec::new();
    let whole_project = format!("projects/{project}");
    // Collections listed in one call: flat ones, and those whose API takes `-` for every location.
    let every_location = format!("projects/{project}/locations/-");
    let direct = [
        (IamService::PubSub, &whole_project, "topics"),
        (IamService::PubSub, &whole_project, "subscriptions"),
        (IamService::SecretManager, &whole_project, "secrets"),
        (IamService::Run, &every_location, "services"),
        (IamService::Functions, &every_location, "functions"),
    ];
    for (service, parent, collection) in direct {
        match listed(gcp, service, parent, collection).await {
            Ok(found) => names.extend(found.into_iter().map(|name| (service, name))),
            Err(err) => swept.errors.push(format!("{project}: {err}")),
        }
    }
    // KMS and Artifact Registry list one location at a time.
    for service in [IamService::Kms, IamService::ArtifactRegistry] {
        let locations = match gcp.resource_locations(service, project).await {
            Ok(locations) => locations,
            Err(err) if not_enabled(&err) => continue,
            Err(err) => {
                swept.errors.push(format!(
                    "{project}: listing {}'s locations: {err}",
                    service.host()
                ));
                continue;
            }
        };
        let collection = match service {
            IamService::Kms => "keyRings",
            _ => "repositories",
        };
        for location in locations {
            let parent = format!("projects/{project}/locations/{location}");
            match listed(gcp, service, &parent, collection).await {
                Ok(found) => names.extend(found.into_iter().map(|name| (service, name))),
                Err(err) => swept.errors.push(format!("{project}: {err}")),
            }
        }
    }
    // Service accounts list under `accounts`, each named by its email.
    match gcp.list_service_accounts(project).await {
        Ok(accounts) => names.extend(accounts.into_iter().map(|account| {
            (
                IamService::ServiceAccount,
                format!("projects/{project}/serviceAccounts/{}", account.email),
            )
        })),
        Err(err) if not_enabled(&err) => {}
        Err(err) => swept
            .errors
            .push(format!("{project}: listing service accounts: {err}")),
    }
    // A key ring's crypto keys carry policies of their own.
    let rings: Vec<String> = names
        .iter()
        .filter(|(service, _)| *service == IamService::Kms)
        .map(|(_, name)| name.clone())
        .collect();
    for ring in rings {
        match listed(gcp, IamService::Kms, &ring, "cryptoKeys").await {
            Ok(found) => names.extend(found.into_iter().map(|name| (IamService::Kms, name))),
            Err(err) => swept.errors.push(format!("{project}: {err}")),
        }
    }
    for (service, resource) in names {
        let read = async {
            let policy = gcp.get_resource_policy(service, &resource).await?;
            let disabled = invoker_check_disabled(gcp, service, &resource).await?;
            Ok::<_, gcp::Error>((policy, disabled))
        };
        match read.await {
            Ok((policy, invoker_check_disabled)) => swept.resources.push(ResourcePolicy {
                service,
                resource,
                project: project.to_string(),
                policy,
                invoker_check_disabled,
            }),
            Err(gcp::Error::NotFound(_)) => {}
            Err(err) => swept
                .errors
                .push(format!("{project}: reading {resource}'s policy: {err}")),
        }
    }
    swept
}

/// Whether a Cloud Run service lets anyone invoke it without an IAM check (always `false` for other resources).
pub(super) async fn invoker_check_disabled(
    gcp: &Client,
    service: IamService,
    resource: &str,
) -> Result<bool, gcp::Error> {
    if service != IamService::Run {
        return Ok(false);
    }
    gcp.run_invoker_check_disabled(resource).await
}

/// The names in `collection` under `parent`; an API the project has not enabled has none.
async fn listed(
    gcp: &Client,
    service: IamService,
    parent: &str,
    collection: &str,
) -> Result<Vec<String>, String> {
    match gcp.list_names_under(service, parent, collection).await {
        Ok(names) => Ok(names),
        Err(err) if not_enabled(&err) => Ok(Vec::new()),
        Err(err) => Err(format!("listing {collection} under {parent}: {err}")),
    }
}

/// Google's answer for an API the project has not enabled (403 `SERVICE_DISABLED`), or a collection it lacks.
fn not_enabled(err: &gcp::Error) -> bool {
    match err {
        gcp::Error::NotFound(_) => true,
        gcp::Error::Permanent {
            status: 403,
            message,
        } => message.contains("SERVICE_DISABLED") || message.contains("has not been used"),
        _ => false,
    }
}
