//! IAM v1 service accounts and their keys: read an account (by email or unique id), list a project's accounts and an
//! account's user-managed keys, disable and enable a key.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Client, Error, segment};

/// A service account, as far as the key policy reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub unique_id: String,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A service-account key (never its private half: IAM returns that once, to its creator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    /// `projects/P/serviceAccounts/EMAIL/keys/ID`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key_type: String,
    #[serde(default)]
    pub key_origin: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub valid_after_time: Option<String>,
    #[serde(default)]
    pub valid_before_time: Option<String>,
}

impl Key {
    /// The key's id, the last segment of its name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }
}

impl Client {
    fn account_url(&self, project: &str, account: &str) -> String {
        format!(
            "{}/v1/projects/{}/serviceAccounts/{}",
            self.endpoints().iam,
            segment(project),
            segment(account)
        )
    }

    /// One account, named by email or unique id (`project` may be `-`).
    pub async fn get_service_account(
        &self,
        project: &str,
        account: &str,
    ) -> Result<ServiceAccount, Error> {
        let raw: Value = self
            .call(Method::GET, &self.account_url(project, account), None)
            .await?;
        ServiceAccount::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected service account shape: {err}"),
        })
    }

    /// Every account of a project, following `nextPageToken`.
    pub async fn list_service_accounts(&self, project: &str) -> Result<Vec<ServiceAccount>, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            accounts: Vec<ServiceAccount>,
        }
        let url = format!(
            "{}/v1/projects/{}/serviceAccounts?pageSize=100",
            self.endpoints().iam,
            segment(project)
        );
        self.every_page(&url, |page| Ok(crate::gcp::decode::<Page>(page)?.accounts))
            .await
    }

    /// The account's user-managed keys (typed, and the list as JSON for the journal).
    pub async fn list_user_keys(
        &self,
        project: &str,
        account: &str,
    ) -> Result<(Vec<Key>, Value), Error> {
        #[derive(Deserialize)]
        struct Keys {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            keys: Vec<Key>,
        }
        let url = format!(
            "{}/keys?keyTypes=USER_MANAGED",
            self.account_url(project, account)
        );
        let raw: Value = self.call(Method::GET, &url, None).await?;
        let keys = Keys::deserialize(&raw)
            .map_err(|err| Error::Permanent {
                status: 200,
                message: format!("unexpected key list shape: {err}"),
            })?
            .keys;
        Ok((keys, raw))
    }

    /// Deletes a user-managed key for good.
    pub async fn delete_key(&self, project: &str, account: &str, key: &str) -> Result<(), Error> {
        let url = format!(
            "{}/keys/{}",
            self.account_url(project, account),
            segment(key)
        );
        let _: Value = self.call(Method::DELETE, &url, None).await?;
        Ok(())
    }

    /// When a key was last disabled (seconds since the epoch), if the audit log's most recent disable-or-enable entry
    /// for it is a disable: Cloud Logging's `entries:list` over the project's Admin Activity log.
    pub async fn key_disabled_at(&self, project: &str, key: &str) -> Result<Option<i64>, Error> {
        if key.is_empty() || !key.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let filter = format!(
            "protoPayload.serviceName=\"iam.googleapis.com\" AND \
             (protoPayload.methodName=\"google.iam.admin.v1.DisableServiceAccountKey\" OR \
             protoPayload.methodName=\"google.iam.admin.v1.EnableServiceAccountKey\") AND \
             protoPayload.request.name:\"{key}\""
        );
        let body = json!({"resourceNames": [format!("projects/{project}")], "filter": filter,
            "orderBy": "timestamp desc", "pageSize": 1});
        let url = format!("{}/v2/entries:list", self.endpoints().logging);
        let page: Value = self.call(Method::POST, &url, Some(&body)).await?;
        let Some(latest) = page["entries"]
            .as_array()
            .and_then(|entries| entries.first())
        else {
            return Ok(None);
        };
        if latest["protoPayload"]["methodName"] != "google.iam.admin.v1.DisableServiceAccountKey" {
            return Ok(None);
        }
        Ok(latest["timestamp"]
            .as_str()
            .and_then(|text| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(|at| at.unix_timestamp()))
    }

    /// `keys/ID:disable` (`enable: false`) or `:enable`.
    pub async fn set_key_enabled(
        &self,
        project: &str,
        account: &str,
        key: &str,
        enable: bool,
    ) -> Result<(), Error> {
        let verb = if enable { "enable" } else { "disable" };
        let url = format!(
            "{}/keys/{}:{verb}",
            self.account_url(project, account),
            segment(key)
        );
        let _: Value = self.call(Method::POST, &url, Some(&json!({}))).await?;
        Ok(())
    }
}
