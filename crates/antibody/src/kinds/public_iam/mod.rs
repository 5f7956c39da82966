//! Resources with an IAM policy of their own — Pub/Sub topics and subscriptions, Secret Manager secrets, Cloud KMS
//! key rings and crypto keys, Artifact Registry repositories: the `public-iam` policy, the removal of public grants
//! through the IAM remover every kind shares, and its undo.

pub mod config;
mod grammar;
pub mod policy;
mod sweep;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, Kind, KindId, Restored, Route, Swept, Target, Watch, names};
use crate::apply::{self, Attempt, raced, remove_grants, until_settled};
use crate::config::Config;
use crate::event::AuditEvent;
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::resource_iam::IamService;
use crate::gcp::{self, Client};
use crate::policy::Finding;
use crate::undo;

use grammar::{describe_resource, knative_service, parse, target};
pub use policy::PublicIamPolicy;

/// The kind of IAM-bearing resources.
pub struct PublicIam;

/// A resource's policy as just read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePolicy {
    pub service: IamService,
    /// The resource's name as its API writes it (`projects/P/topics/T`, `projects/NUMBER/secrets/S`, …).
    pub resource: String,
    pub project: String,
    pub policy: Policy,
    /// A Cloud Run service whose invoker IAM check is off (`invokerIamDisabled`): anyone may call it, whatever
    /// its policy says.
    pub invoker_check_disabled: bool,
}

/// The fix of a resource's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// Remove exactly these grants by a version-3, etag-checked read-modify-write.
    RemovePublicGrants {
        service: IamService,
        resource: String,
        grants: Vec<Grant>,
    },
}

/// The `SetIamPolicy` methods each service logs (Google's audit-log method catalog).
const WATCHES: &[Watch] = &[
    watch(
        "pubsub.googleapis.com",
        "google.iam.v1.IAMPolicy.SetIamPolicy",
    ),
    watch(
        "secretmanager.googleapis.com",
        "google.cloud.secretmanager.v1.SecretManagerService.SetIamPolicy",
    ),
    watch(
        "secretmanager.googleapis.com",
        "google.cloud.secrets.v1beta1.SecretManagerService.SetIamPolicy",
    ),
    watch("cloudkms.googleapis.com", "SetIamPolicy"),
    watch(
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1.ArtifactRegistry.SetIamPolicy",
    ),
    watch(
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta2.ArtifactRegistry.SetIamPolicy",
    ),
    watch(
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta1.ArtifactRegistry.SetIamPolicy",
    ),
    watch(
        "run.googleapis.com",
        "google.cloud.run.v2.Services.SetIamPolicy",
    ),
    watch(
        "run.googleapis.com",
        "google.cloud.run.v1.Services.SetIamPolicy",
    ),
    // Creating or changing a service can turn its invoker IAM check off.
    watch(
        "run.googleapis.com",
        "google.cloud.run.v2.Services.CreateService",
    ),
    watch(
        "run.googleapis.com",
        "google.cloud.run.v2.Services.UpdateService",
    ),
    // `gcloud run deploy` and `gcloud run services update` speak Run Admin v1 (Knative): its entries name the
    // service `namespaces/PROJECT/services/SERVICE`, the region in `resource.labels.location`.
    watch(
        "run.googleapis.com",
        "google.cloud.run.v1.Services.CreateService",
    ),
    watch(
        "run.googleapis.com",
        "google.cloud.run.v1.Services.ReplaceService",
    ),
    watch(
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.SetIamPolicy",
    ),
    watch("cloudfunctions.googleapis.com", "SetIamPolicy"),
    // Who may act as a service account (token creator, user, key admin) is the account's own policy.
    watch("iam.googleapis.com", "google.iam.admin.v1.SetIAMPolicy"),
    // Who may log in to an instance as root (`roles/compute.osAdminLogin`) can be granted on the instance itself.
    watch(
        "compute.googleapis.com",
        "v1.compute.instances.setIamPolicy",
    ),
    watch(
        "compute.googleapis.com",
        "beta.compute.instances.setIamPolicy",
    ),
];

const fn watch(service: &'static str, method: &'static str) -> Watch {
    Watch { service, method }
}

impl Kind for PublicIam {
    type Resource = ResourcePolicy;
    type Fix = Fix;
    const NAME: &'static str = "resource-iam";
    const NOUN: &'static str = "IAM-bearing resources";
    const WATCHES: &'static [Watch] = WATCHES;
    const RESOURCE_PATTERN: &'static str = "^(projects/[^/]+/((topics|subscriptions|secrets)/[^/]+|locations/[^/]+/(keyRings/[^/]+(/cryptoKeys/[^/]+)?|repositories/[^/]+|services/[^/]+|functions/[^/]+)|serviceAccounts/[^/]+(/iamPolicy)?|zones/[^/]+/instances/[^/]+/iamPolicy)|namespaces/[^/]+/services/[^/]+)$";
    const INPUTS: &'static [&'static str] = &["resource-iam"];
    type RawPolicy = config::RawPublicIamPolicy;
    type Policy = PublicIamPolicy;

    fn validate_policy(raw: Self::RawPolicy, problems: &mut Vec<String>) -> Self::Policy {
        config::validate_public_iam(raw, problems)
    }

    fn common(config: &Config) -> Common {
        let policy = &config.policies.public_iam;
        Common {
            enabled: policy.enabled,
            dry_run: policy.dry_run,
            grace_secs: policy.grace_secs,
        }
    }

    fn route(event: &AuditEvent) -> Option<Route> {
        let service_watched = WATCHES
            .iter()
            .any(|watch| watch.service == event.service_name);
        let run_service_write = event.service_name == "run.googleapis.com"
            && (event.method_name.ends_with(".CreateService")
                || event.method_name.ends_with(".UpdateService")
                || event.method_name.ends_with(".ReplaceService"));
        let sets_policy = event.method_name.ends_with("SetIamPolicy")
            || event.method_name == "google.iam.admin.v1.SetIAMPolicy"
            || (event.service_name == "compute.googleapis.com"
                && names::compute_method(&event.method_name)
                    == Some(("instances", "setIamPolicy")));
        if !service_watched || !(sets_policy || run_service_write) {
            return None;
        }
        let compute_instance = event.service_name == "compute.googleapis.com";
        if !compute_instance
            && !WATCHES.iter().any(|watch| {
                watch.service == event.service_name && watch.method == event.method_name
            })
        {
            return None;
        }
        // A regional secret is served by its region's own endpoint, which antibody does not call yet: acknowledged,
        // never refused (Pub/Sub would redeliver a 400 until it gives up).
        if let ["projects", _, "locations", _, "secrets", _] = names::relative(&event.resource_name)
            .split('/')
            .collect::<Vec<_>>()
            .as_slice()
        {
            return Some(Route::Ignore(
                "a regional secret's policy is not read (its region's endpoint is not called)"
                    .into(),
            ));
        }
        let resource_name = match knative_service(&event.resource_name, &event.location) {
            Some(Ok(name)) => name,
            Some(Err(reason)) => return Some(Route::Refuse(reason)),
            None => event.resource_name.clone(),
        };
        Some(match parse(&resource_name, &event.project) {
            Ok((_, project, resource)) => Route::Check(target(&project, &resource)),
            Err(reason) => Route::Refuse(reason),
        })
    }

    fn target(resource_name: &str, project: &str) -> Option<Target> {
        parse(resource_name, project)
            .ok()
            .map(|(_, project, resource)| target(&project, &resource))
    }

    fn permissions(config: &Config, enforcing: bool) -> Vec<&'static str> {
        let mut permissions = vec![
            "artifactregistry.repositories.getIamPolicy",
            "cloudfunctions.functions.getIamPolicy",
            "run.services.getIamPolicy",
            "run.services.get",
            "cloudkms.cryptoKeys.getIamPolicy",
            "cloudkms.keyRings.getIamPolicy",
            "pubsub.subscriptions.getIamPolicy",
            "pubsub.topics.getIamPolicy",
            "pubsub.topics.list",
            "pubsub.subscriptions.list",
            "secretmanager.secrets.list",
            // A sweep lists the resources in every location.
            "artifactregistry.locations.list",
            "artifactregistry.repositories.list",
            "cloudfunctions.functions.list",
            "cloudkms.cryptoKeys.list",
            "cloudkms.keyRings.list",
            "cloudkms.locations.list",
            "run.services.list",
            "resourcemanager.projects.get",
            "secretmanager.secrets.getIamPolicy",
            "iam.serviceAccounts.getIamPolicy",
            "iam.serviceAccounts.list",
            "compute.instances.getIamPolicy",
        ];
        if enforcing && config.policies.public_iam.remove {
            permissions.extend([
                "artifactregistry.repositories.setIamPolicy",
                "cloudfunctions.functions.setIamPolicy",
                "run.services.setIamPolicy",
                "cloudkms.cryptoKeys.setIamPolicy",
                "cloudkms.keyRings.setIamPolicy",
                "pubsub.subscriptions.setIamPolicy",
                "pubsub.topics.setIamPolicy",
                "secretmanager.secrets.setIamPolicy",
                "iam.serviceAccounts.setIamPolicy",
                "compute.instances.setIamPolicy",
            ]);
        }
        permissions
    }

    async fn fetch(gcp: &Client, target: &Target) -> Result<(ResourcePolicy, Value), gcp::Error> {
        let (service, project, resource) =
            parse(&target.name, &target.project).map_err(|reason| gcp::Error::Permanent {
                status: 0,
                message: reason,
            })?;
        // A name under a project number (Secret Manager's) must be the number of the project the event is about:
        // otherwise the event's project, which caps and scope count, would not be the resource's.
        let named = resource.split('/').nth(1).unwrap_or_default();
        if named.bytes().all(|byte| byte.is_ascii_digit()) {
            let number = gcp.project_number(&project).await?;
            if number != named {
                return Err(gcp::Error::Permanent {
                    status: 0,
                    message: format!("{resource} is not in project {project} (number {number})"),
                });
            }
        }
        let policy = gcp.get_resource_policy(service, &resource).await?;
        let invoker_check_disabled = sweep::invoker_check_disabled(gcp, service, &resource).await?;
        let mut raw = serde_json::to_value(&policy).expect("a policy serialises");
        if invoker_check_disabled {
            raw["invokerIamDisabled"] = Value::Bool(true);
        }
        Ok((
            ResourcePolicy {
                service,
                resource,
                project,
                policy,
                invoker_check_disabled,
            },
            raw,
        ))
    }

    fn evaluate(config: &Config, read: &ResourcePolicy) -> (Vec<Finding>, Option<Fix>) {
        let (mut findings, grants) = config.policies.public_iam.evaluate(
            &describe_resource(&read.resource),
            &read.policy,
            read.service.invoker_role(),
            &|member| config.policies.project_iam.outsider(member),
        );
        if read.invoker_check_disabled {
            findings.push(policy::invoker_check_disabled(&describe_resource(
                &read.resource,
            )));
        }
        let fix = (!grants.is_empty()).then(|| Fix::RemovePublicGrants {
            service: read.service,
            resource: read.resource.clone(),
            grants,
        });
        (findings, fix)
    }

    fn exemption(_config: &Config, _read: &ResourcePolicy, _principal: &str) -> Option<String> {
        None
    }

    fn target_of(read: &ResourcePolicy) -> Target {
        target(&read.project, &read.resource)
    }

    fn describe(fix: &Fix) -> String {
        let Fix::RemovePublicGrants {
            resource, grants, ..
        } = fix;
        let members: Vec<String> = grants
            .iter()
            .map(|grant| format!("{} ({})", grant.member, grant.role))
            .collect();
        format!(
            "removed {} from {}",
            members.join(", "),
            describe_resource(resource)
        )
    }

    async fn apply(
        config: &Config,
        gcp: &Client,
        fix: &Fix,
    ) -> Result<Option<Value>, apply::Error> {
        let Fix::RemovePublicGrants {
            service,
            resource,
            grants,
        } = fix;
        until_settled("the resource's IAM policy", || async {
            let policy = gcp.get_resource_policy(*service, resource).await?;
            let Some(updated) = remove_grants(&policy, grants)? else {
                return Ok(Attempt::Done(()));
            };
            raced(
                gcp.set_resource_policy(*service, resource, &updated)
                    .await
                    .map(|_| ()),
            )
        })
        .await?;
        let after = gcp.get_resource_policy(*service, resource).await?;
        let (findings, still) = config.policies.public_iam.evaluate(
            &describe_resource(resource),
            &after,
            service.invoker_role(),
            &|member| config.policies.project_iam.outsider(member),
        );
        if still.iter().any(|grant| grants.contains(grant)) {
            let message = findings
                .first()
                .map(|finding| finding.message.clone())
                .unwrap_or_default();
            return Err(apply::Error::NotFixed(message));
        }
        Ok(Some(
            serde_json::to_value(&after).expect("a policy serialises"),
        ))
    }

    async fn undo(
        gcp: &Client,
        fix: &Fix,
        _before: &Value,
        after: &Value,
        force: bool,
    ) -> Result<Restored, undo::Error> {
        let Fix::RemovePublicGrants {
            service,
            resource,
            grants,
        } = fix;
        let current = gcp.get_resource_policy(*service, resource).await?;
        let recorded: Policy = serde_json::from_value(after.clone()).unwrap_or_default();
        if !force && undo::bindings_set(&current) != undo::bindings_set(&recorded) {
            return Err(undo::Error::Changed(resource.clone()));
        }
        let restored = undo::with_grants(&current, grants);
        gcp.set_resource_policy(*service, resource, &restored)
            .await?;
        Ok(Restored {
            resource: resource.clone(),
            what: "the public grants as they were".to_string(),
            overwritten: serde_json::to_value(&current).expect("a policy serialises"),
        })
    }

    /// Topics, subscriptions and secrets are listed and read; key rings, crypto keys, repositories, Cloud Run services
    /// and functions live under locations and are checked as their policies change, not swept.
    async fn sweep(gcp: &Client, project: &str) -> Swept<ResourcePolicy> {
        sweep::sweep(gcp, project).await
    }

    fn console_url(target: &Target) -> String {
        let parts: Vec<&str> = target.name.split('/').collect();
        let project = &target.project;
        match parts.as_slice() {
            ["projects", _, "topics", name] => format!(
                "https://console.cloud.google.com/cloudpubsub/topic/detail/{name}?project={project}"
            ),
            ["projects", _, "subscriptions", name] => format!(
                "https://console.cloud.google.com/cloudpubsub/subscription/detail/{name}?project={project}"
            ),
            ["projects", _, "secrets", name] => format!(
                "https://console.cloud.google.com/security/secret-manager/secret/{name}/permissions?project={project}"
            ),
            ["projects", _, "locations", location, "services", name] => format!(
                "https://console.cloud.google.com/run/detail/{location}/{name}/security?project={project}"
            ),
            ["projects", _, "locations", location, "functions", name] => format!(
                "https://console.cloud.google.com/functions/details/{location}/{name}?project={project}"
            ),
            ["projects", _, "locations", location, "repositories", name] => {
                format!(
                    "https://console.cloud.google.com/artifacts/docker/{project}/{location}/{name}?project={project}"
                )
            }
            _ => {
                format!("https://console.cloud.google.com/security/kms/keyrings?project={project}")
            }
        }
    }

    fn parse_input(_input: &str, text: &str) -> Result<ResourcePolicy, String> {
        let policy: Policy = serde_json::from_str(text)
            .map_err(|err| format!("the input is not an IAM policy: {err}"))?;
        Ok(ResourcePolicy {
            service: IamService::PubSub,
            resource: "projects/-/topics/-".into(),
            project: "-".into(),
            policy,
            invoker_check_disabled: false,
        })
    }
}

#[cfg(test)]
mod tests;
