//! BigQuery v2 datasets: read, list a project's, and patch the `access` list under the dataset's etag (`If-Match`).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Client, Error, segment};

/// A dataset as far as the public-dataset policy reads it: its etag and its access entries, kept as BigQuery writes
/// them (`role` with one of `userByEmail`, `groupByEmail`, `domain`, `specialGroup`, `iamMember`, `view`, …).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    #[serde(default)]
    pub etag: String,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub access: Vec<Value>,
}

impl Client {
    fn dataset_url(&self, project: &str, dataset: &str) -> String {
        format!(
            "{}/bigquery/v2/projects/{}/datasets/{}",
            self.endpoints().bigquery,
            segment(project),
            segment(dataset)
        )
    }

    pub async fn get_dataset(
        &self,
        project: &str,
        dataset: &str,
    ) -> Result<(Dataset, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.dataset_url(project, dataset), None)
            .await?;
        let read = Dataset::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected dataset shape: {err}"),
        })?;
        Ok((read, raw))
    }

    /// The ids of a project's datasets, following `nextPageToken`.
    pub async fn list_datasets(&self, project: &str) -> Result<Vec<String>, Error> {
        let url = format!(
            "{}/bigquery/v2/projects/{}/datasets?maxResults=1000&all=true",
            self.endpoints().bigquery,
            segment(project)
        );
        self.every_page(&url, |page| {
            Ok(page["datasets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|dataset| dataset["datasetReference"]["datasetId"].as_str())
                .map(str::to_string)
                .collect())
        })
        .await
    }

    /// Replaces the dataset's access list if its etag is still `etag` (else `Conflict`, 412).
    pub async fn patch_dataset_access(
        &self,
        project: &str,
        dataset: &str,
        access: &[Value],
        etag: &str,
    ) -> Result<(), Error> {
        let _: Value = self
            .call_if_match(
                Method::PATCH,
                &self.dataset_url(project, dataset),
                Some(&json!({"access": access})),
                Some(etag),
            )
            .await?;
        Ok(())
    }
}
