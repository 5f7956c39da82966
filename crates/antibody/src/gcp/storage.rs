//! Cloud Storage JSON API v1: buckets (with ACLs) and bucket IAM policies, with metageneration and etag preconditions.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::iam::Policy;
use super::{Client, Error, segment};

/// A bucket as `projection=full` returns it; only what policies and fixes need is typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    #[serde(default)]
    pub name: String,
    /// An int64 sent as a string; kept as text, never parsed into a float.
    #[serde(default)]
    pub metageneration: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub iam_configuration: IamConfiguration,
    /// Absent when uniform bucket-level access is on.
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub acl: Vec<AccessControl>,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub default_object_acl: Vec<AccessControl>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamConfiguration {
    #[serde(default)]
    pub uniform_bucket_level_access: Toggle,
    /// `enforced`, `inherited`, or the legacy `unspecified`.
    #[serde(default)]
    pub public_access_prevention: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Toggle {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessControl {
    pub entity: String,
    pub role: String,
}

impl Client {
    fn bucket_url(&self, bucket: &str) -> String {
        format!(
            "{}/storage/v1/b/{}",
            self.endpoints().storage,
            segment(bucket)
        )
    }

    /// Reads a bucket with its ACLs: typed for policies, raw for the journal's before-state.
    pub async fn get_bucket(&self, bucket: &str) -> Result<(Bucket, Value), Error> {
        let raw: Value = self
            .call(
                Method::GET,
                &format!("{}?projection=full", self.bucket_url(bucket)),
                None,
            )
            .await?;
        let typed = Deserialize::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected bucket shape: {err}"),
        })?;
        Ok((typed, raw))
    }

    /// Every bucket of a project, following `nextPageToken`.
    pub async fn list_buckets(&self, project: &str) -> Result<Vec<Bucket>, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            items: Vec<Bucket>,
        }
        let url = format!(
            "{}/storage/v1/b?project={}&projection=full",
            self.endpoints().storage,
            segment(project)
        );
        self.every_page(&url, |page| Ok(crate::gcp::decode::<Page>(page)?.items))
            .await
    }

    /// A merge patch guarded by `ifMetagenerationMatch`, so a concurrent change fails with `Conflict` (412).
    pub async fn patch_bucket(
        &self,
        bucket: &str,
        metageneration: &str,
        patch: &Value,
    ) -> Result<Bucket, Error> {
        let url = format!(
            "{}?ifMetagenerationMatch={}&projection=full",
            self.bucket_url(bucket),
            segment(metageneration)
        );
        self.call(Method::PATCH, &url, Some(patch)).await
    }

    pub async fn get_bucket_policy(&self, bucket: &str) -> Result<Policy, Error> {
        let url = format!(
            "{}/iam?optionsRequestedPolicyVersion=3",
            self.bucket_url(bucket)
        );
        self.call(Method::GET, &url, None).await
    }

    /// Writes the policy; its etag makes a concurrent change fail with `Conflict` (412).
    pub async fn set_bucket_policy(&self, bucket: &str, policy: &Policy) -> Result<Policy, Error> {
        let body = serde_json::to_value(policy).expect("a policy serialises");
        self.call(
            Method::PUT,
            &format!("{}/iam", self.bucket_url(bucket)),
            Some(&body),
        )
        .await
    }
}
