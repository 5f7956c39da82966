//! Cloud SQL Admin v1: an instance's IP configuration, read and patched (its authorised networks), the operation
//! polled to DONE.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Client, Error, segment};

/// One authorised network (`value` is a CIDR range).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An instance as far as the public-sql policy reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlInstance {
    pub name: String,
    pub ipv4_enabled: bool,
    pub networks: Vec<AclEntry>,
    pub require_ssl: bool,
    pub ssl_mode: String,
    pub settings_version: String,
}

impl SqlInstance {
    /// Reads the fields the policy needs out of an instance's JSON.
    pub fn from_raw(raw: &Value) -> Result<SqlInstance, Error> {
        let ip = &raw["settings"]["ipConfiguration"];
        let networks = serde_json::from_value(ip["authorizedNetworks"].clone()).unwrap_or_default();
        Ok(SqlInstance {
            name: raw["name"].as_str().unwrap_or_default().to_string(),
            ipv4_enabled: ip["ipv4Enabled"].as_bool().unwrap_or(false),
            networks,
            require_ssl: ip["requireSsl"].as_bool().unwrap_or(false),
            ssl_mode: ip["sslMode"].as_str().unwrap_or_default().to_string(),
            settings_version: raw["settings"]["settingsVersion"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    raw["settings"]["settingsVersion"]
                        .as_i64()
                        .map(|n| n.to_string())
                })
                .unwrap_or_default(),
        })
    }
}

impl Client {
    fn sql_url(&self, project: &str, rest: &str) -> String {
        format!(
            "{}/v1/projects/{}/{rest}",
            self.endpoints().sql,
            segment(project)
        )
    }

    pub async fn get_sql_instance(
        &self,
        project: &str,
        instance: &str,
    ) -> Result<(SqlInstance, Value), Error> {
        let url = self.sql_url(project, &format!("instances/{}", segment(instance)));
        let raw: Value = self.call(Method::GET, &url, None).await?;
        Ok((SqlInstance::from_raw(&raw)?, raw))
    }

    /// Every instance of a project, following `nextPageToken` (Google answers at most 500 a page unless asked for
    /// up to 1,000).
    pub async fn list_sql_instances(&self, project: &str) -> Result<Vec<SqlInstance>, Error> {
        let url = format!("{}?maxResults=1000", self.sql_url(project, "instances"));
        self.every_page(&url, |page| {
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(SqlInstance::from_raw)
                .collect()
        })
        .await
    }

    /// Replaces the authorised networks if the settings are still at `settings_version` (else `Conflict`, 412), and
    /// waits for the operation.
    pub async fn set_sql_networks(
        &self,
        project: &str,
        instance: &str,
        networks: &[AclEntry],
        settings_version: &str,
    ) -> Result<(), Error> {
        let url = self.sql_url(project, &format!("instances/{}", segment(instance)));
        let body = json!({"settings": {"settingsVersion": settings_version,
            "ipConfiguration": {"authorizedNetworks": networks}}});
        let mut operation: Value = self.call(Method::PATCH, &url, Some(&body)).await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        while operation["status"] != "DONE" {
            if Instant::now() >= deadline {
                return Err(Error::Retryable {
                    status: 0,
                    message: "the Cloud SQL operation did not finish within 10 minutes".into(),
                    after: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let name = operation["name"].as_str().unwrap_or_default();
            operation = self
                .call(
                    Method::GET,
                    &self.sql_url(project, &format!("operations/{}", segment(name))),
                    None,
                )
                .await?;
        }
        match operation["error"]["errors"][0]["message"].as_str() {
            Some(message) => Err(Error::Operation(message.to_string())),
            None => Ok(()),
        }
    }
}
