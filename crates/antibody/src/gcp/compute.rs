//! Compute Engine v1: firewall rules, and global and zonal operations.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Client, Error, segment};

/// A firewall rule in Compute's REST shape. Unknown fields are ignored; empty ones are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firewall {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_ranges: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destination_ranges: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_tags: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub target_tags: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_service_accounts: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub target_service_accounts: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed: Vec<Rule>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub denied: Vec<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_config: Option<Value>,
}

/// One `allowed`/`denied` entry; no ports means every port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(rename = "IPProtocol", default)]
    pub ip_protocol: String,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<String>,
}

/// A `compute#operation`; only what completion checks need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub http_error_status_code: Option<u16>,
    #[serde(default)]
    pub http_error_message: Option<String>,
    #[serde(default)]
    pub error: Option<Value>,
}

impl Operation {
    /// A DONE operation can still have failed: its `error` says so, not the HTTP status of the write.
    fn failure(&self) -> Option<String> {
        let error = self.error.as_ref()?;
        let messages: Vec<&str> = error["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| error["message"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        Some(if messages.is_empty() {
            self.http_error_message
                .clone()
                .unwrap_or_else(|| error.to_string())
        } else {
            messages.join("; ")
        })
    }
}

impl Client {
    fn firewalls_url(&self, project: &str) -> String {
        format!(
            "{}/compute/v1/projects/{}/global/firewalls",
            self.endpoints().compute,
            segment(project)
        )
    }

    /// Reads a rule: typed for policies, raw for the journal's before-state.
    pub async fn get_firewall(
        &self,
        project: &str,
        name: &str,
    ) -> Result<(Firewall, Value), Error> {
        let url = format!("{}/{}", self.firewalls_url(project), segment(name));
        let raw: Value = self.call(Method::GET, &url, None).await?;
        let firewall = Firewall::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected firewall shape: {err}"),
        })?;
        Ok((firewall, raw))
    }

    /// Every rule of a project, following `nextPageToken`.
    pub async fn list_firewalls(&self, project: &str) -> Result<Vec<Firewall>, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            items: Vec<Firewall>,
        }
        let url = format!("{}?maxResults=500", self.firewalls_url(project));
        self.every_page(&url, |page| Ok(crate::gcp::decode::<Page>(page)?.items))
            .await
    }

    /// JSON merge-patches a rule and waits for the operation to finish.
    pub async fn patch_firewall(
        &self,
        project: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), Error> {
        self.firewall_write(project, Method::PATCH, Some(name), Some(patch))
            .await
    }

    pub async fn insert_firewall(&self, project: &str, firewall: &Firewall) -> Result<(), Error> {
        let body = serde_json::to_value(firewall).expect("a firewall serialises");
        self.firewall_write(project, Method::POST, None, Some(&body))
            .await
    }

    pub async fn delete_firewall(&self, project: &str, name: &str) -> Result<(), Error> {
        self.firewall_write(project, Method::DELETE, Some(name), None)
            .await
    }

    /// One write to a project's firewalls (`name`: the rule, or the collection for an insert): idempotent under a
    /// fresh `requestId`, waited on until its operation is DONE.
    async fn firewall_write(
        &self,
        project: &str,
        method: Method,
        name: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(), Error> {
        let target = match name {
            Some(name) => format!("{}/{}", self.firewalls_url(project), segment(name)),
            None => self.firewalls_url(project),
        };
        let url = format!("{target}?requestId={}", uuid::Uuid::new_v4());
        let operation: Operation = self.call(method, &url, body).await?;
        self.wait(project, operation).await
    }

    /// Polls a global operation until DONE (bounded), then checks whether it failed.
    async fn wait(&self, project: &str, operation: Operation) -> Result<(), Error> {
        self.wait_in(project, None, operation).await
    }

    /// Polls a global (`zone: None`) or zonal operation until DONE (bounded), then checks whether it failed.
    pub(super) async fn wait_in(
        &self,
        project: &str,
        zone: Option<&str>,
        operation: Operation,
    ) -> Result<(), Error> {
        let scope = match zone {
            Some(zone) => format!("zones/{}", segment(zone)),
            None => "global".to_string(),
        };
        self.wait_scoped(project, &scope, operation).await
    }

    /// Polls an operation of `scope` (`global`, `zones/Z` or `regions/R`, its segments encoded) until DONE
    /// (bounded), then checks whether it failed.
    pub(super) async fn wait_scoped(
        &self,
        project: &str,
        scope: &str,
        mut operation: Operation,
    ) -> Result<(), Error> {
        self.remember_operation(&operation.name);
        let deadline = Instant::now() + Duration::from_secs(300);
        while operation.status != "DONE" {
            if Instant::now() >= deadline {
                return Err(Error::Retryable {
                    status: 0,
                    message: format!(
                        "operation {} still {} after 5 minutes",
                        operation.name, operation.status
                    ),
                    after: None,
                });
            }
            let url = format!(
                "{}/compute/v1/projects/{}/{scope}/operations/{}/wait",
                self.endpoints().compute,
                segment(project),
                segment(&operation.name)
            );
            operation = self
                .call(Method::POST, &url, Some(&Value::Object(Default::default())))
                .await?;
        }
        match operation.failure() {
            Some(message) => Err(Error::Operation(message)),
            None => Ok(()),
        }
    }
}

impl Client {
    /// A Compute resource's URL from its relative name (`projects/P/global/…`, `projects/P/regions/R/…`), every
    /// segment encoded.
    pub(super) fn compute_url(&self, relative: &str) -> String {
        let path: Vec<String> = relative
            .split('/')
            .map(|part| segment(part).into_owned())
            .collect();
        format!("{}/compute/v1/{}", self.endpoints().compute, path.join("/"))
    }

    /// Every item of a project's `aggregatedList` of `collection` (each scope's items under the collection's
    /// name), following `nextPageToken`.
    pub(super) async fn aggregated<T: serde::de::DeserializeOwned>(
        &self,
        project: &str,
        collection: &str,
    ) -> Result<Vec<T>, Error> {
        let url = format!(
            "{}?maxResults=500",
            self.compute_url(&format!("projects/{project}/aggregated/{collection}"))
        );
        self.every_page(&url, |page| {
            let mut items = Vec::new();
            if let Some(scopes) = page["items"].as_object() {
                for scoped in scopes.values() {
                    if let Some(list) = scoped[collection].as_array() {
                        for item in list {
                            items.push(crate::gcp::decode(item.clone())?);
                        }
                    }
                }
            }
            Ok(items)
        })
        .await
    }
}

impl Client {
    /// Replaces a rule wholesale (PUT), as undo does to restore a recorded before-state.
    pub async fn update_firewall(
        &self,
        project: &str,
        name: &str,
        body: &Value,
    ) -> Result<(), Error> {
        self.firewall_write(project, Method::PUT, Some(name), Some(body))
            .await
    }

    /// Creates a rule from its REST JSON (undo of a delete).
    pub async fn insert_firewall_json(&self, project: &str, body: &Value) -> Result<(), Error> {
        self.firewall_write(project, Method::POST, None, Some(body))
            .await
    }
}
