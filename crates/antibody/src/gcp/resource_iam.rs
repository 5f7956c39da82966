//! The uniform IAM methods of resources that carry a policy of their own (`RESOURCE:getIamPolicy`,
//! `RESOURCE:setIamPolicy`): Pub/Sub, Secret Manager, Cloud KMS, Artifact Registry, Cloud Run, Cloud Functions.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::iam::Policy;
use super::{Client, Error, segment};

/// An API whose resources carry their own IAM policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IamService {
    PubSub,
    SecretManager,
    Kms,
    ArtifactRegistry,
    /// Cloud Run services (API v2).
    Run,
    /// Cloud Functions (API v1).
    Functions,
    /// A service account as a resource: who may act as it (IAM API v1).
    ServiceAccount,
    /// A Compute Engine instance (`roles/compute.osAdminLogin` on it is root): Compute's own IAM verbs.
    ComputeInstance,
}

impl IamService {
    /// The service name audit logs carry, which is also the API's host.
    pub fn host(self) -> &'static str {
        match self {
            IamService::PubSub => "pubsub.googleapis.com",
            IamService::SecretManager => "secretmanager.googleapis.com",
            IamService::Kms => "cloudkms.googleapis.com",
            IamService::ArtifactRegistry => "artifactregistry.googleapis.com",
            IamService::Run => "run.googleapis.com",
            IamService::Functions => "cloudfunctions.googleapis.com",
            IamService::ServiceAccount => "iam.googleapis.com",
            IamService::ComputeInstance => "compute.googleapis.com",
        }
    }

    /// The API version whose paths carry the uniform IAM methods.
    fn version(self) -> &'static str {
        match self {
            IamService::Run => "v2",
            _ => "v1",
        }
    }

    /// Whether a public grant of this service's invoker role is usually a public website (reported by default).
    pub fn invoker_role(self) -> Option<&'static str> {
        match self {
            IamService::Run => Some("roles/run.invoker"),
            IamService::Functions => Some("roles/cloudfunctions.invoker"),
            _ => None,
        }
    }
}

impl Client {
    /// `https://HOST/v1/RESOURCE:VERB`, every segment of the resource name encoded on its own.
    fn resource_url(&self, service: IamService, resource: &str, verb: &str) -> String {
        let base = match &self.endpoints().base {
            Some(base) => base.clone(),
            None => format!("https://{}", service.host()),
        };
        let path: Vec<String> = resource
            .split('/')
            .map(|part| segment(part).into_owned())
            .collect();
        format!("{base}/{}/{}:{verb}", service.version(), path.join("/"))
    }

    /// `…/compute/v1/projects/P/zones/Z/instances/I/VERB`.
    fn compute_iam_url(&self, resource: &str, verb: &str) -> String {
        format!("{}/{verb}", self.compute_url(resource))
    }

    /// The names of a project's resources in `collection` (`topics`, `subscriptions` or `secrets`), following
    /// `nextPageToken`.
    pub async fn list_resource_names(
        &self,
        service: IamService,
        project: &str,
        collection: &str,
    ) -> Result<Vec<String>, Error> {
        self.list_names_under(service, &format!("projects/{project}"), collection)
            .await
    }

    /// The locations a project's resources of `service` may live in (`locations.list`: KMS, Artifact Registry), by
    /// id.
    pub async fn resource_locations(
        &self,
        service: IamService,
        project: &str,
    ) -> Result<Vec<String>, Error> {
        let names = self
            .list_names_under(service, &format!("projects/{project}"), "locations")
            .await?;
        Ok(names
            .into_iter()
            .filter_map(|name| name.rsplit('/').next().map(str::to_string))
            // Only a plain location id goes on into URLs.
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= 63
                    && id.bytes().all(|byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
                    })
            })
            .collect())
    }

    /// The names of the resources in `collection` under `parent` (`projects/P`, `projects/P/locations/L`, a key
    /// ring, …; `-` as a location where the API allows it), following `nextPageToken`.
    pub async fn list_names_under(
        &self,
        service: IamService,
        parent: &str,
        collection: &str,
    ) -> Result<Vec<String>, Error> {
        let base = match &self.endpoints().base {
            Some(base) => base.clone(),
            None => format!("https://{}", service.host()),
        };
        let parent: Vec<String> = parent
            .split('/')
            .map(|part| segment(part).into_owned())
            .collect();
        let parent = parent.join("/");
        let url = format!(
            "{base}/{}/{parent}/{}?pageSize=1000",
            service.version(),
            segment(collection)
        );
        self.every_page(&url, |page| {
            Ok(page[collection]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item["name"].as_str().map(str::to_string))
                .collect())
        })
        .await
    }

    /// Whether a Cloud Run service (`projects/P/locations/L/services/S`, API v2) has `invokerIamDisabled`.
    pub async fn run_invoker_check_disabled(&self, service: &str) -> Result<bool, Error> {
        let base = match &self.endpoints().base {
            Some(base) => base.clone(),
            None => format!("https://{}", IamService::Run.host()),
        };
        let path: Vec<String> = service
            .split('/')
            .map(|part| segment(part).into_owned())
            .collect();
        let read: serde_json::Value = self
            .call(Method::GET, &format!("{base}/v2/{}", path.join("/")), None)
            .await?;
        Ok(read["invokerIamDisabled"].as_bool() == Some(true))
    }

    /// The resource's policy, read at version 3.
    pub async fn get_resource_policy(
        &self,
        service: IamService,
        resource: &str,
    ) -> Result<Policy, Error> {
        if service == IamService::ComputeInstance {
            // Compute's spelling: `…/instances/I/getIamPolicy`, a GET with its options in the query.
            let url = format!(
                "{}?optionsRequestedPolicyVersion=3",
                self.compute_iam_url(resource, "getIamPolicy")
            );
            return self.call(Method::GET, &url, None).await;
        }
        if service == IamService::ServiceAccount {
            // IAM's own `getIamPolicy` is a POST with the options in its body.
            let body = json!({"options": {"requestedPolicyVersion": 3}});
            return self
                .call(
                    Method::POST,
                    &self.resource_url(service, resource, "getIamPolicy"),
                    Some(&body),
                )
                .await;
        }
        let url = format!(
            "{}?options.requestedPolicyVersion=3",
            self.resource_url(service, resource, "getIamPolicy")
        );
        self.call(Method::GET, &url, None).await
    }

    /// Writes the policy; its etag makes a concurrent change fail with `Conflict` (409).
    pub async fn set_resource_policy(
        &self,
        service: IamService,
        resource: &str,
        policy: &Policy,
    ) -> Result<Policy, Error> {
        let body = json!({"policy": policy});
        let url = match service {
            IamService::ComputeInstance => self.compute_iam_url(resource, "setIamPolicy"),
            _ => self.resource_url(service, resource, "setIamPolicy"),
        };
        self.call(Method::POST, &url, Some(&body)).await
    }
}
