//! Cloud Logging v2 log buckets of a project: read, listed in every location, and their retention updated with an
//! `updateMask`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::{Client, Error, segment};

/// A log bucket, as far as the retention policy reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBucket {
    /// `projects/P/locations/L/buckets/B`.
    #[serde(default)]
    pub name: String,
    /// Days entries are kept; Logging answers 30 for a bucket created without it.
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub locked: bool,
}

impl Client {
    fn log_bucket_url(&self, relative: &str) -> String {
        let path: Vec<String> = relative
            .split('/')
            .map(|part| segment(part).into_owned())
            .collect();
        format!("{}/v2/{}", self.endpoints().logging, path.join("/"))
    }

    /// Reads a bucket by its relative name: typed, and raw for the journal.
    pub async fn get_log_bucket(&self, relative: &str) -> Result<(LogBucket, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.log_bucket_url(relative), None)
            .await?;
        let bucket = LogBucket::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected log bucket shape: {err}"),
        })?;
        Ok((bucket, raw))
    }

    /// Every bucket of a project, in every location (`locations/-`), following `nextPageToken`.
    pub async fn list_log_buckets(&self, project: &str) -> Result<Vec<LogBucket>, Error> {
        let url = format!(
            "{}?pageSize=200",
            self.log_bucket_url(&format!("projects/{project}/locations/-/buckets"))
        );
        self.every_page(&url, |page| match page.get("buckets") {
            Some(buckets) => crate::gcp::decode(buckets.clone()),
            None => Ok(Vec::new()),
        })
        .await
    }

    /// Sets a bucket's retention (`updateMask=retentionDays`).
    pub async fn set_log_retention(&self, relative: &str, days: u32) -> Result<(), Error> {
        let url = format!("{}?updateMask=retentionDays", self.log_bucket_url(relative));
        let body = serde_json::json!({"retentionDays": days});
        let _: Value = self.call(Method::PATCH, &url, Some(&body)).await?;
        Ok(())
    }
}
