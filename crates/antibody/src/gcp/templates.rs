//! Compute Engine v1 instance templates (global and regional) and managed instance groups (zonal and regional):
//! reads, and a project's templates by `aggregatedList`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::instances::Instance;
use super::{Client, Error};

/// A template as read: its name, and its `properties` — the instance every VM made from it starts as.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(default)]
    pub name: String,
    /// The region's URL, for a regional template.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub properties: Instance,
    #[serde(default)]
    pub self_link: String,
}

/// A managed instance group as read: the template it builds from, and each version's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub instance_template: Option<String>,
    #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
    pub versions: Vec<GroupVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupVersion {
    #[serde(default)]
    pub instance_template: Option<String>,
}

impl Group {
    /// Every template the group builds from (its own and its versions'), each once.
    pub fn templates(&self) -> Vec<String> {
        let mut urls: Vec<String> = self
            .instance_template
            .iter()
            .chain(
                self.versions
                    .iter()
                    .filter_map(|version| version.instance_template.as_ref()),
            )
            .cloned()
            .collect();
        urls.dedup();
        urls.sort();
        urls.dedup();
        urls
    }
}

impl Client {
    /// Reads a template by its relative name (`projects/P/global/instanceTemplates/T` or
    /// `projects/P/regions/R/instanceTemplates/T`): typed, and raw for the journal.
    pub async fn get_template(&self, relative: &str) -> Result<(Template, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.compute_url(relative), None)
            .await?;
        let template = Template::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected instance template shape: {err}"),
        })?;
        Ok((template, raw))
    }

    /// Reads a managed instance group by its relative name (`projects/P/zones/Z/instanceGroupManagers/G` or
    /// `…/regions/R/…`).
    pub async fn get_group(&self, relative: &str) -> Result<(Group, Value), Error> {
        let raw: Value = self
            .call(Method::GET, &self.compute_url(relative), None)
            .await?;
        let group = Group::deserialize(&raw).map_err(|err| Error::Permanent {
            status: 200,
            message: format!("unexpected instance group manager shape: {err}"),
        })?;
        Ok((group, raw))
    }

    /// Every template of a project, global and regional (`aggregatedList`, following `nextPageToken`).
    pub async fn list_templates(&self, project: &str) -> Result<Vec<Template>, Error> {
        self.aggregated(project, "instanceTemplates").await
    }
}
