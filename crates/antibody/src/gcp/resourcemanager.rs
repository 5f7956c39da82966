//! Resource Manager: project, organization and folder IAM policies (always read and written at version 3) and the projects the credentials
//! can see (v3 `projects:search`).

use reqwest::Method;
use serde_json::json;

use super::iam::Policy;
use super::{Client, Error, segment};

impl Client {
    fn project_url(&self, project: &str, method: &str) -> String {
        format!(
            "{}/v1/projects/{}:{method}",
            self.endpoints().resource_manager,
            segment(project)
        )
    }

    /// Every active project the credentials can see (`resourcemanager.projects.get`), by id, following pages.
    pub async fn visible_projects(&self) -> Result<Vec<String>, Error> {
        self.search_projects("").await
    }

    /// The active projects whose parent is one of `parents` (`folders/N`, `organizations/N`; v3 `projects:search`,
    /// whose terms are joined by OR), by id, following pages.
    pub async fn projects_under(&self, parents: &[String]) -> Result<Vec<String>, Error> {
        let mut projects = Vec::new();
        // A query stays short: forty parents at a time.
        for chunk in parents.chunks(40) {
            let query = chunk
                .iter()
                .map(|parent| format!("parent:{parent}"))
                .collect::<Vec<_>>()
                .join(" ");
            projects.extend(self.search_projects(&query).await?);
        }
        projects.sort();
        projects.dedup();
        Ok(projects)
    }

    /// The folders directly under `parent` (v3 `folders.list`), by name, following pages.
    pub async fn folders_under(&self, parent: &str) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            folders: Vec<Folder>,
        }
        #[derive(serde::Deserialize)]
        struct Folder {
            name: String,
        }
        let url = format!(
            "{}/v3/folders?parent={}&pageSize=500",
            self.endpoints().resource_manager,
            segment(parent)
        );
        self.every_page(&url, |page| {
            Ok(crate::gcp::decode::<Page>(page)?
                .folders
                .into_iter()
                .map(|folder| folder.name)
                // Only a well-formed folder name goes on into URLs and queries.
                .filter(|name| {
                    name.strip_prefix("folders/").is_some_and(|id| {
                        !id.is_empty()
                            && id.len() <= 20
                            && id.bytes().all(|byte| byte.is_ascii_digit())
                    })
                })
                .collect())
        })
        .await
    }

    async fn search_projects(&self, query: &str) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default, deserialize_with = "crate::gcp::null_as_default")]
            projects: Vec<Project>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Project {
            project_id: String,
            #[serde(default)]
            state: String,
        }
        let url = format!(
            "{}/v3/projects:search?query={}&pageSize=500",
            self.endpoints().resource_manager,
            segment(query)
        );
        self.every_page(&url, |page| {
            Ok(crate::gcp::decode::<Page>(page)?
                .projects
                .into_iter()
                .filter(|project| project.state.is_empty() || project.state == "ACTIVE")
                .map(|project| project.project_id)
                .collect())
        })
        .await
    }

    /// The folders and the organization above a project, nearest first (`folders/N`, `organizations/N`;
    /// Resource Manager v1 `projects.getAncestry`).
    pub async fn ancestry(&self, project: &str) -> Result<Vec<String>, Error> {
        let url = self.project_url(project, "getAncestry");
        let read: serde_json::Value = self.call(Method::POST, &url, Some(&json!({}))).await?;
        Ok(read["ancestor"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ancestor| {
                let id = ancestor["resourceId"]["id"].as_str()?;
                match ancestor["resourceId"]["type"].as_str()? {
                    "folder" => Some(format!("folders/{id}")),
                    "organization" => Some(format!("organizations/{id}")),
                    _ => None,
                }
            })
            .collect())
    }

    /// A folder's parent (`folders/N` or `organizations/N`; Resource Manager v3 `folders.get`).
    pub async fn folder_parent(&self, folder: &str) -> Result<String, Error> {
        let id = folder.strip_prefix("folders/").unwrap_or(folder);
        let url = format!(
            "{}/v3/folders/{}",
            self.endpoints().resource_manager,
            segment(id)
        );
        let read: serde_json::Value = self.call(Method::GET, &url, None).await?;
        Ok(read["parent"].as_str().unwrap_or_default().to_string())
    }

    /// A project's id, from its id or its number (Resource Manager v1 `projects.get` takes either).
    pub async fn project_id(&self, project: &str) -> Result<String, Error> {
        let url = format!(
            "{}/v1/projects/{}",
            self.endpoints().resource_manager,
            segment(project)
        );
        let read: serde_json::Value = self.call(Method::GET, &url, None).await?;
        match read["projectId"].as_str() {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(Error::Permanent {
                status: 200,
                message: format!("project {project} was read without its projectId"),
            }),
        }
    }

    /// A project's number (Resource Manager v1 `projects.get`).
    pub async fn project_number(&self, project: &str) -> Result<String, Error> {
        let url = format!(
            "{}/v1/projects/{}",
            self.endpoints().resource_manager,
            segment(project)
        );
        let read: serde_json::Value = self.call(Method::GET, &url, None).await?;
        Ok(read["projectNumber"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                read["projectNumber"]
                    .as_i64()
                    .map(|number| number.to_string())
            })
            .unwrap_or_default())
    }

    /// Reads with `requestedPolicyVersion: 3`, so conditional bindings come back intact.
    pub async fn get_project_policy(&self, project: &str) -> Result<Policy, Error> {
        self.read_policy(&self.project_url(project, "getIamPolicy"))
            .await
    }

    /// Writes the whole bindings list; the policy's etag makes a concurrent change fail with `Conflict`.
    pub async fn set_project_policy(
        &self,
        project: &str,
        policy: &Policy,
    ) -> Result<Policy, Error> {
        self.write_policy(&self.project_url(project, "setIamPolicy"), policy)
            .await
    }

    /// An organization's (v1) or folder's (v3) policy, by name (`organizations/N`, `folders/N`), read like a project's.
    pub async fn get_container_policy(&self, container: &str) -> Result<Policy, Error> {
        self.read_policy(&self.container_url(container, "getIamPolicy"))
            .await
    }

    /// Writes an organization's or folder's policy like a project's: etag-checked, version 3.
    pub async fn set_container_policy(
        &self,
        container: &str,
        policy: &Policy,
    ) -> Result<Policy, Error> {
        self.write_policy(&self.container_url(container, "setIamPolicy"), policy)
            .await
    }

    /// `organizations/N` in v1 and `folders/N` in v3, the versions that serve each; the id is one encoded segment.
    fn container_url(&self, container: &str, method: &str) -> String {
        let (version, collection, id) = match container.split_once('/') {
            Some(("organizations", id)) => ("v1", "organizations", id),
            Some(("folders", id)) => ("v3", "folders", id),
            _ => ("v1", "projects", container),
        };
        format!(
            "{}/{version}/{collection}/{}:{method}",
            self.endpoints().resource_manager,
            segment(id)
        )
    }

    async fn read_policy(&self, url: &str) -> Result<Policy, Error> {
        let body = json!({"options": {"requestedPolicyVersion": 3}});
        self.call(Method::POST, url, Some(&body)).await
    }

    async fn write_policy(&self, url: &str, policy: &Policy) -> Result<Policy, Error> {
        let body = json!({"policy": policy, "updateMask": "bindings,etag,auditConfigs"});
        self.call(Method::POST, url, Some(&body)).await
    }
}
