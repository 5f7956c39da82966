//! Resource Manager's hierarchy: the organization, folders and each project's parent, for `projects:getAncestry` (v1)
//! and `projects:move` (v3). A project without a seeded parent sits directly under the sandbox's organization.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;

/// The organization every project of the sandbox belongs to unless seeded otherwise.
pub const ORGANIZATION: &str = "organizations/123456789012";

/// Folders and projects by name (`folders/N`, a project id), each with its parent.
#[derive(Default)]
pub(crate) struct Hierarchy {
    folders: BTreeMap<String, String>,
    projects: BTreeMap<String, String>,
}

impl Hierarchy {
    /// From the seed's `folders` (`folders/N` → parent) and `parents` (project id → parent).
    pub(crate) fn seeded(
        folders: &HashMap<String, String>,
        parents: &HashMap<String, String>,
    ) -> Hierarchy {
        Hierarchy {
            folders: folders.clone().into_iter().collect(),
            projects: parents.clone().into_iter().collect(),
        }
    }

    fn parent_of(&self, project: &str) -> String {
        self.projects
            .get(project)
            .cloned()
            .unwrap_or_else(|| ORGANIZATION.to_string())
    }

    /// `getAncestry`: the project, then each folder up to the organization, as `resourceId`s.
    pub(crate) fn ancestry(&self, project: &str) -> Value {
        let mut ancestors = vec![json!({"resourceId": {"type": "project", "id": project}})];
        let mut next = self.parent_of(project);
        for _ in 0..16 {
            let (kind, id) = next
                .split_once('/')
                .unwrap_or(("organizations", next.as_str()));
            let kind = if kind == "folders" {
                "folder"
            } else {
                "organization"
            };
            ancestors.push(json!({"resourceId": {"type": kind, "id": id}}));
            match self.folders.get(&next) {
                Some(parent) if kind == "folder" => next = parent.clone(),
                _ if kind == "folder" => {
                    ancestors.push(json!({"resourceId": {"type": "organization", "id": ORGANIZATION.trim_start_matches("organizations/")}}));
                    break;
                }
                _ => break,
            }
        }
        json!({"ancestor": ancestors})
    }

    /// `folders.get` (v3): the folder with its parent, or Google's 404.
    pub(crate) fn folder(&self, name: &str) -> Result<Value, ApiError> {
        let parent = self.folders.get(name).ok_or_else(|| {
            ApiError::esf(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Folder '{name}' not found."),
            )
        })?;
        Ok(
            json!({"name": name, "parent": parent, "displayName": name.replace('/', "-"), "state": "ACTIVE"}),
        )
    }

    /// `move`: the project gets a new parent, which must be a known folder or the organization.
    pub(crate) fn move_project(
        &mut self,
        project: &str,
        destination: &str,
    ) -> Result<Value, ApiError> {
        if destination != ORGANIZATION && !self.folders.contains_key(destination) {
            return Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("Invalid destination parent '{destination}'."),
            ));
        }
        self.projects
            .insert(project.to_string(), destination.to_string());
        Ok(
            json!({"name": format!("operations/mv.{project}"), "done": true,
            "response": {"@type": "type.googleapis.com/google.cloud.resourcemanager.v3.Project",
                "name": format!("projects/{}", crate::project_number(project)), "projectId": project, "parent": destination}}),
        )
    }
}
