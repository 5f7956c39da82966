//! Resource Manager v1: project IAM policies, always read and written at version 3.

use reqwest::Method;
use serde_json::json;

use super::iam::Policy;
use super::{Client, Error};

impl Client {
    fn project_url(&self, project: &str, method: &str) -> String {
        format!(
            "{}/v1/projects/{project}:{method}",
            self.endpoints().resource_manager
        )
    }

    /// Reads with `requestedPolicyVersion: 3`, so conditional bindings come back intact.
    pub async fn get_project_policy(&self, project: &str) -> Result<Policy, Error> {
        let body = json!({"options": {"requestedPolicyVersion": 3}});
        self.call(
            Method::POST,
            &self.project_url(project, "getIamPolicy"),
            Some(&body),
        )
        .await
    }

    /// Writes the whole bindings list; the policy's etag makes a concurrent change fail with `Conflict`.
    pub async fn set_project_policy(
        &self,
        project: &str,
        policy: &Policy,
    ) -> Result<Policy, Error> {
        let body = json!({"policy": policy, "updateMask": "bindings,etag"});
        self.call(
            Method::POST,
            &self.project_url(project, "setIamPolicy"),
            Some(&body),
        )
        .await
    }
}
