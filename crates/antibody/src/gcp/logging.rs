//! Cloud Logging v2 routing configuration of a project, folder or organization: sinks and exclusions, read, listed, updated with an
//! `updateMask`, a sink created again.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Client, Error, segment};

/// An exclusion, standalone or inside a sink: log entries its filter matches are not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub filter: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A sink, as far as the policy reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sink {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub exclusions: Vec<Exclusion>,
    #[serde(default)]
    pub writer_identity: Option<String>,
}

fn shape<T: for<'de> Deserialize<'de>>(raw: &Value, what: &str) -> Result<T, Error> {
    T::deserialize(raw).map_err(|err| Error::Permanent {
        status: 200,
        message: format!("unexpected {what} shape: {err}"),
    })
}

impl Client {
    /// `project` is a project id, or a container (`organizations/N`, `folders/N`) whose own routing is meant.
    fn logging_url(&self, project: &str, collection: &str) -> String {
        let parent = match project.split_once('/') {
            Some((container @ ("organizations" | "folders"), id)) => {
                format!("{container}/{}", segment(id))
            }
            _ => format!("projects/{}", segment(project)),
        };
        format!("{}/v2/{parent}/{collection}", self.endpoints().logging)
    }

    pub async fn get_sink(&self, project: &str, name: &str) -> Result<(Sink, Value), Error> {
        let url = format!("{}/{}", self.logging_url(project, "sinks"), segment(name));
        let raw: Value = self.call(Method::GET, &url, None).await?;
        Ok((shape(&raw, "sink")?, raw))
    }

    pub async fn get_exclusion(
        &self,
        project: &str,
        name: &str,
    ) -> Result<(Exclusion, Value), Error> {
        let url = format!(
            "{}/{}",
            self.logging_url(project, "exclusions"),
            segment(name)
        );
        let raw: Value = self.call(Method::GET, &url, None).await?;
        Ok((shape(&raw, "exclusion")?, raw))
    }

    /// A project's sinks and its exclusions, following `nextPageToken`.
    pub async fn list_log_routing(
        &self,
        project: &str,
    ) -> Result<(Vec<Sink>, Vec<Exclusion>), Error> {
        let sinks = self.list_pages(project, "sinks").await?;
        let exclusions = self.list_pages(project, "exclusions").await?;
        Ok((
            sinks
                .iter()
                .map(|raw| shape(raw, "sink"))
                .collect::<Result<_, _>>()?,
            exclusions
                .iter()
                .map(|raw| shape(raw, "exclusion"))
                .collect::<Result<_, _>>()?,
        ))
    }

    async fn list_pages(&self, project: &str, collection: &str) -> Result<Vec<Value>, Error> {
        let url = format!("{}?pageSize=200", self.logging_url(project, collection));
        self.every_page(&url, |mut page| match page[collection].take() {
            Value::Array(items) => Ok(items),
            _ => Ok(Vec::new()),
        })
        .await
    }

    /// Updates the fields `mask` names (comma-separated) of a sink or an exclusion (`collection`).
    pub async fn update_log_routing(
        &self,
        project: &str,
        collection: &str,
        name: &str,
        body: &Value,
        mask: &str,
    ) -> Result<(), Error> {
        let url = format!(
            "{}/{}?updateMask={}",
            self.logging_url(project, collection),
            segment(name),
            segment(mask)
        );
        let _: Value = self.call(Method::PATCH, &url, Some(body)).await?;
        Ok(())
    }

    /// Creates a sink (with a writer identity of its own); its new identity is in the answer.
    pub async fn create_sink(&self, project: &str, body: &Value) -> Result<Value, Error> {
        let url = format!(
            "{}?uniqueWriterIdentity=true",
            self.logging_url(project, "sinks")
        );
        self.call(Method::POST, &url, Some(body)).await
    }

    pub async fn delete_sink(&self, project: &str, name: &str) -> Result<(), Error> {
        let url = format!("{}/{}", self.logging_url(project, "sinks"), segment(name));
        let _: Value = self.call(Method::DELETE, &url, None).await?;
        Ok(())
    }
}
