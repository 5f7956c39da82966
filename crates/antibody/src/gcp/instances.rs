//! Compute Engine v1 instances and the project's common instance metadata: reads, `setMetadata` and
//! `setCommonInstanceMetadata` (guarded by the metadata fingerprint), power, access configs, zonal operations.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::compute::Operation;
use super::{Client, Error, segment};

/// Instance or project metadata: the items and the fingerprint a write must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub items: Vec<MetadataItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataItem {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|item| item.key == key)
            .map(|item| item.value.as_deref().unwrap_or(""))
    }

    /// The same metadata with `key` set to `value` (added when absent), fingerprint kept for the write.
    pub fn with(&self, key: &str, value: &str) -> Metadata {
        let mut updated = self.clone();
        match updated.items.iter_mut().find(|item| item.key == key) {
            Some(item) => item.value = Some(value.to_string()),
            None => updated.items.push(MetadataItem {
                key: key.to_string(),
                value: Some(value.to_string()),
            }),
        }
        updated
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    #[serde(default)]
    pub email: String,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessConfig {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "natIP", default, skip_serializing_if = "Option::is_none")]
    pub nat_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_tier: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub access_configs: Vec<AccessConfig>,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub ipv6_access_configs: Vec<AccessConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShieldedInstanceConfig {
    #[serde(default)]
    pub enable_secure_boot: Option<bool>,
}

/// An instance in Compute's REST shape, as far as the policy reads it. Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    /// The zone's URL.
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub service_accounts: Vec<ServiceAccount>,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default)]
    pub can_ip_forward: Option<bool>,
    #[serde(default)]
    pub shielded_instance_config: Option<ShieldedInstanceConfig>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Compute's view of a project: its common instance metadata and default service account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeProject {
    #[serde(default)]
    pub common_instance_metadata: Metadata,
    #[serde(default)]
    pub default_service_account: Option<String>,
}

fn shape<T: for<'de> Deserialize<'de>>(raw: &Value, what: &str) -> Result<T, Error> {
    T::deserialize(raw).map_err(|err| Error::Permanent {
        status: 200,
        message: format!("unexpected {what} shape: {err}"),
    })
}

impl Client {
    fn instance_url(&self, project: &str, zone: &str, name: &str) -> String {
        format!(
            "{}/compute/v1/projects/{}/zones/{}/instances/{}",
            self.endpoints().compute,
            segment(project),
            segment(zone),
            segment(name)
        )
    }

    fn compute_project_url(&self, project: &str) -> String {
        format!(
            "{}/compute/v1/projects/{}",
            self.endpoints().compute,
            segment(project)
        )
    }

    /// Reads an instance: typed for the policy, raw for the journal.
    pub async fn get_instance(
        &self,
        project: &str,
        zone: &str,
        name: &str,
    ) -> Result<(Instance, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.instance_url(project, zone, name), None)
            .await?;
        Ok((shape(&raw, "instance")?, raw))
    }

    /// Every instance of a project (`aggregatedList`, following `nextPageToken`).
    pub async fn list_instances(&self, project: &str) -> Result<Vec<Instance>, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            items: BTreeMap<String, Scoped>,
        }
        #[derive(Deserialize)]
        struct Scoped {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            instances: Vec<Instance>,
        }
        let url = format!(
            "{}/aggregated/instances?maxResults=500",
            self.compute_project_url(project)
        );
        self.every_page(&url, |page| {
            let page: Page = crate::gcp::decode(page)?;
            Ok(page
                .items
                .into_values()
                .flat_map(|scoped| scoped.instances)
                .collect())
        })
        .await
    }

    /// Compute's project: common instance metadata (typed and raw).
    pub async fn get_compute_project(
        &self,
        project: &str,
    ) -> Result<(ComputeProject, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.compute_project_url(project), None)
            .await?;
        Ok((shape(&raw, "project")?, raw))
    }

    /// Replaces an instance's metadata; `metadata.fingerprint` must be the current one (else `Conflict`, 412).
    pub async fn set_instance_metadata(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        metadata: &Metadata,
    ) -> Result<(), Error> {
        let body = serde_json::to_value(metadata).expect("metadata serialises");
        self.instance_action(project, zone, name, "setMetadata", "", Some(&body))
            .await
    }

    /// Replaces the project's common instance metadata (a global operation), guarded like `set_instance_metadata`.
    pub async fn set_common_metadata(
        &self,
        project: &str,
        metadata: &Metadata,
    ) -> Result<(), Error> {
        let url = format!(
            "{}/setCommonInstanceMetadata?requestId={}",
            self.compute_project_url(project),
            uuid::Uuid::new_v4()
        );
        let body = serde_json::to_value(metadata).expect("metadata serialises");
        let operation: Operation = self.call(Method::POST, &url, Some(&body)).await?;
        self.wait_in(project, None, operation).await
    }

    pub async fn stop_instance(&self, project: &str, zone: &str, name: &str) -> Result<(), Error> {
        self.instance_action(project, zone, name, "stop", "", None)
            .await
    }

    pub async fn start_instance(&self, project: &str, zone: &str, name: &str) -> Result<(), Error> {
        self.instance_action(project, zone, name, "start", "", None)
            .await
    }

    /// Runs a TERMINATED instance as `email` with `scopes` (no account when `email` is empty).
    pub async fn set_service_account(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        email: &str,
        scopes: &[String],
    ) -> Result<(), Error> {
        let body = json!({"email": email, "scopes": scopes});
        self.instance_action(project, zone, name, "setServiceAccount", "", Some(&body))
            .await
    }

    /// Removes an external address (`accessConfig` by name) from a network interface.
    pub async fn delete_access_config(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        interface: &str,
        config: &str,
    ) -> Result<(), Error> {
        let query = format!(
            "&networkInterface={}&accessConfig={}",
            segment(interface),
            segment(config)
        );
        self.instance_action(project, zone, name, "deleteAccessConfig", &query, None)
            .await
    }

    /// Gives a network interface an external address again (undo of `delete_access_config`).
    pub async fn add_access_config(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        interface: &str,
        config: &AccessConfig,
    ) -> Result<(), Error> {
        let query = format!("&networkInterface={}", segment(interface));
        let mut body = json!({"name": config.name, "type": config.kind.as_deref().unwrap_or("ONE_TO_ONE_NAT")});
        if let Some(address) = &config.nat_ip {
            body["natIP"] = json!(address);
        }
        if let Some(tier) = &config.network_tier {
            body["networkTier"] = json!(tier);
        }
        self.instance_action(project, zone, name, "addAccessConfig", &query, Some(&body))
            .await
    }

    /// `POST …/instances/NAME/ACTION?requestId=…QUERY`, then waits for the zonal operation.
    async fn instance_action(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        action: &str,
        query: &str,
        body: Option<&Value>,
    ) -> Result<(), Error> {
        let url = format!(
            "{}/{action}?requestId={}{query}",
            self.instance_url(project, zone, name),
            uuid::Uuid::new_v4()
        );
        let empty = json!({});
        let operation: Operation = self
            .call(Method::POST, &url, Some(body.unwrap_or(&empty)))
            .await?;
        self.wait_in(project, Some(zone), operation).await
    }
}
