//! Compute Engine v1 network firewall policies, global and regional: reads, a project's policies by
//! `aggregatedList`, and `patchRule`, waited on in the policy's scope.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::compute::Operation;
use super::{Client, Error, segment};

/// A network firewall policy as read: its name, region (when regional) and rules.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub rules: Vec<PolicyRule>,
}

/// One rule of a policy; the fields judged, and the rest kept as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub direction: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    #[serde(rename = "match", default)]
    pub matcher: Matcher,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A rule's match: its sources and layer-4 configs; the rest kept as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub src_ip_ranges: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_network_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub layer4_configs: Vec<Layer4>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer4 {
    #[serde(default)]
    pub ip_protocol: String,
    #[serde(
        default,
        deserialize_with = "crate::gcp::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<String>,
}

impl Client {
    /// Reads a policy by its relative name (`projects/P/global/firewallPolicies/N` or
    /// `projects/P/regions/R/firewallPolicies/N`): typed, and raw for the journal.
    pub async fn get_network_policy(
        &self,
        relative: &str,
    ) -> Result<(NetworkPolicy, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.compute_url(relative), None)
            .await?;
        let policy = NetworkPolicy::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected firewall policy shape: {err}"),
        })?;
        Ok((policy, raw))
    }

    /// Every network firewall policy of a project, global and regional (`aggregatedList`, following
    /// `nextPageToken`).
    pub async fn list_network_policies(&self, project: &str) -> Result<Vec<NetworkPolicy>, Error> {
        self.aggregated(project, "firewallPolicies").await
    }

    /// `patchRule`: merges `patch` into the policy's rule at `priority`, idempotent under a fresh `requestId`, and
    /// waits for the operation in the policy's scope.
    pub async fn patch_policy_rule(
        &self,
        project: &str,
        relative: &str,
        priority: i64,
        patch: &Value,
    ) -> Result<(), Error> {
        let url = format!(
            "{}/patchRule?priority={priority}&requestId={}",
            self.compute_url(relative),
            uuid::Uuid::new_v4()
        );
        let operation: Operation = self.call(Method::POST, &url, Some(patch)).await?;
        let scope = match relative.split('/').collect::<Vec<_>>().as_slice() {
            [_, _, "regions", region, ..] => format!("regions/{}", segment(region)),
            _ => "global".to_string(),
        };
        self.wait_scoped(project, &scope, operation).await
    }
}
