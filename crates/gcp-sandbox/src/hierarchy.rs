//! Resource Manager's hierarchy: one organization, its folders and each project's parent, for `projects:getAncestry`
//! (v1), `projects:search`, `projects.create` and `move` (v3), and folders `create`, `get`, `list` and `move` (v3).
//! A project without a seeded parent sits directly under the organization.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;

/// The organization's number unless `--organization` names another.
pub const DEFAULT_ORGANIZATION: &str = "123456789012";

/// Folders deeper than this are refused, as Google refuses an active hierarchy taller than ten.
const MAX_DEPTH: usize = 10;

struct Folder {
    parent: String,
    display_name: String,
    create_time: String,
}

/// The organization, folders by name (`folders/N`) and projects' parents by project id.
pub(crate) struct Hierarchy {
    organization: String,
    folders: BTreeMap<String, Folder>,
    projects: BTreeMap<String, String>,
    /// Projects created through `projects.create`: id → display name and labels.
    created: BTreeMap<String, Value>,
    next_folder: u64,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

impl Hierarchy {
    /// From the organization's number, the seed's `folders` (`folders/N` → parent) and `parents` (project id →
    /// parent).
    pub(crate) fn seeded(
        organization: &str,
        folders: &HashMap<String, String>,
        parents: &HashMap<String, String>,
    ) -> Hierarchy {
        let now = crate::time_fmt::logging_now();
        Hierarchy {
            organization: format!("organizations/{organization}"),
            folders: folders
                .iter()
                .map(|(name, parent)| {
                    let folder = Folder {
                        parent: parent.clone(),
                        display_name: name.replace('/', "-"),
                        create_time: now.clone(),
                    };
                    (name.clone(), folder)
                })
                .collect(),
            projects: parents.clone().into_iter().collect(),
            created: BTreeMap::new(),
            next_folder: 700_000_000_001,
        }
    }

    /// `organizations/N`.
    pub(crate) fn organization(&self) -> &str {
        &self.organization
    }

    pub(crate) fn parent_of(&self, project: &str) -> String {
        self.projects
            .get(project)
            .cloned()
            .unwrap_or_else(|| self.organization.clone())
    }

    /// Projects created through `projects.create`, with their display names and labels.
    pub(crate) fn created(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.created.iter()
    }

    /// Whether `name` is the organization or a known folder.
    fn is_container(&self, name: &str) -> bool {
        name == self.organization || self.folders.contains_key(name)
    }

    /// The containers above `name` (a folder or the organization), nearest first, `name` included.
    fn chain(&self, name: &str) -> Vec<String> {
        let mut chain = vec![name.to_string()];
        let mut next = name.to_string();
        while let Some(folder) = self.folders.get(&next) {
            if chain.len() > MAX_DEPTH + 2 {
                break;
            }
            next = folder.parent.clone();
            chain.push(next.clone());
        }
        chain
    }

    /// The folders and organization above `project`, nearest first.
    pub(crate) fn containers_above(&self, project: &str) -> Vec<String> {
        self.containers_from(&self.parent_of(project))
    }

    /// `container` (a folder or an organization) and those above it, up to its organization: a folder the sandbox
    /// was never told about hangs under the sandbox's organization; another organization is its own top.
    pub(crate) fn containers_from(&self, container: &str) -> Vec<String> {
        let mut chain = self.chain(container);
        if !chain
            .last()
            .is_some_and(|top| top.starts_with("organizations/"))
        {
            chain.push(self.organization.clone());
        }
        chain
    }

    /// `getAncestry`: the project, then each folder up to the organization, as `resourceId`s.
    pub(crate) fn ancestry(&self, project: &str) -> Value {
        let mut ancestors = vec![json!({"resourceId": {"type": "project", "id": project}})];
        // A folder the sandbox was never told about hangs under the organization.
        for container in self.containers_above(project) {
            let (kind, id) = match container.split_once('/') {
                Some(("folders", id)) => ("folder", id),
                Some((_, id)) => ("organization", id),
                None => ("organization", container.as_str()),
            };
            ancestors.push(json!({"resourceId": {"type": kind, "id": id}}));
        }
        json!({"ancestor": ancestors})
    }

    fn folder_view(&self, name: &str, folder: &Folder) -> Value {
        json!({"name": name, "parent": folder.parent, "displayName": folder.display_name, "state": "ACTIVE",
            "createTime": folder.create_time, "updateTime": folder.create_time,
            "etag": format!("BwX{}", name.trim_start_matches("folders/"))})
    }

    /// `folders.get`: the folder with its parent, or Google's 404.
    pub(crate) fn folder(&self, name: &str) -> Result<Value, ApiError> {
        let folder = self
            .folders
            .get(name)
            .ok_or_else(|| not_found(format!("Folder '{name}' not found.")))?;
        Ok(self.folder_view(name, folder))
    }

    /// `folders.list`: the direct children of `parent`, ordered by display name as Google orders them.
    pub(crate) fn children(&self, parent: &str) -> Result<Vec<Value>, ApiError> {
        if !self.is_container(parent) {
            return Err(invalid(format!(
                "Invalid parent '{parent}': expected folders/N or the organization."
            )));
        }
        let mut children: Vec<(&String, &Folder)> = self
            .folders
            .iter()
            .filter(|(_, folder)| folder.parent == parent)
            .collect();
        children.sort_by(|a, b| a.1.display_name.cmp(&b.1.display_name));
        Ok(children
            .into_iter()
            .map(|(name, folder)| self.folder_view(name, folder))
            .collect())
    }

    /// Google's checks on a folder under `parent` named `display_name` (`skip`: the folder being moved).
    fn check_placement(
        &self,
        parent: &str,
        display_name: &str,
        skip: Option<&str>,
    ) -> Result<(), ApiError> {
        if !self.is_container(parent) {
            return Err(invalid(format!("Invalid parent '{parent}'.")));
        }
        if self.chain(parent).len() > MAX_DEPTH {
            return Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                "The folder operation violates height constraints.",
            ));
        }
        let taken = self.folders.iter().any(|(name, folder)| {
            Some(name.as_str()) != skip
                && folder.parent == parent
                && folder.display_name == display_name
        });
        if taken {
            return Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                "The folder operation violates display name uniqueness within the parent.",
            ));
        }
        Ok(())
    }

    /// `folders.create`: a new folder under `parent`, as the `response` of a finished operation.
    pub(crate) fn create_folder(&mut self, request: &Value) -> Result<Value, ApiError> {
        let parent = request["parent"]
            .as_str()
            .ok_or_else(|| invalid("Field 'parent' is required."))?;
        let display_name = request["displayName"]
            .as_str()
            .ok_or_else(|| invalid("Field 'displayName' is required."))?;
        let valid_name = (3..=30).contains(&display_name.chars().count())
            && display_name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            && display_name
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
            && display_name
                .chars()
                .last()
                .is_some_and(char::is_alphanumeric);
        if !valid_name {
            return Err(invalid(format!(
                "Invalid display name '{display_name}': 3 to 30 letters, digits, spaces, hyphens and underscores, \
                 starting and ending with a letter or digit."
            )));
        }
        self.check_placement(parent, display_name, None)?;
        let name = format!("folders/{}", self.next_folder);
        self.next_folder += 1;
        let folder = Folder {
            parent: parent.to_string(),
            display_name: display_name.to_string(),
            create_time: crate::time_fmt::logging_now(),
        };
        let view = self.folder_view(&name, &folder);
        self.folders.insert(name.clone(), folder);
        Ok(operation(
            &format!("cf.{}", name.trim_start_matches("folders/")),
            json!({"@type": "type.googleapis.com/google.cloud.resourcemanager.v3.CreateFolderMetadata",
                "displayName": display_name, "parent": parent}),
            "Folder",
            view,
        ))
    }

    /// `folders.move`: refused when the destination is the folder itself or below it.
    pub(crate) fn move_folder(&mut self, name: &str, destination: &str) -> Result<Value, ApiError> {
        let display_name = match self.folders.get(name) {
            Some(folder) => folder.display_name.clone(),
            None => return Err(not_found(format!("Folder '{name}' not found."))),
        };
        if self.chain(destination).iter().any(|above| above == name) {
            return Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                "The folder operation violates the hierarchy: a folder cannot move below itself.",
            ));
        }
        self.check_placement(destination, &display_name, Some(name))?;
        let source = self.folders.get(name).map(|folder| folder.parent.clone());
        if let Some(folder) = self.folders.get_mut(name) {
            folder.parent = destination.to_string();
        }
        let view = self.folder(name)?;
        Ok(operation(
            &format!("mf.{}", name.trim_start_matches("folders/")),
            json!({"@type": "type.googleapis.com/google.cloud.resourcemanager.v3.MoveFolderMetadata",
                "displayName": display_name, "sourceParent": source, "destinationParent": destination}),
            "Folder",
            view,
        ))
    }

    /// `projects.create` (v3): a project under `parent`; `known` says whether the id is taken.
    pub(crate) fn create_project(
        &mut self,
        request: &Value,
        known: bool,
    ) -> Result<Value, ApiError> {
        let id = request["projectId"]
            .as_str()
            .ok_or_else(|| invalid("Field 'projectId' is required."))?;
        let valid_id = (6..=30).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && !id.ends_with('-')
            && id
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !valid_id {
            return Err(invalid(format!(
                "Invalid project id '{id}': 6 to 30 lowercase letters, digits or hyphens, starting with a letter \
                 and not ending with a hyphen."
            )));
        }
        if known || self.created.contains_key(id) {
            return Err(ApiError::esf(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                "Requested entity already exists",
            ));
        }
        let parent = request["parent"]
            .as_str()
            .unwrap_or(&self.organization)
            .to_string();
        if !self.is_container(&parent) {
            return Err(invalid(format!("Invalid parent '{parent}'.")));
        }
        let display_name = request["displayName"].as_str().unwrap_or(id);
        let labels = request.get("labels").cloned().unwrap_or(json!({}));
        self.projects.insert(id.to_string(), parent.clone());
        self.created.insert(
            id.to_string(),
            json!({"displayName": display_name, "labels": labels}),
        );
        let number = crate::project_number(id);
        Ok(operation(
            &format!("cp.{number}"),
            json!({"@type": "type.googleapis.com/google.cloud.resourcemanager.v3.CreateProjectMetadata",
                "createTime": crate::time_fmt::logging_now(), "gettable": true, "ready": true}),
            "Project",
            json!({"name": format!("projects/{number}"), "parent": parent, "projectId": id, "state": "ACTIVE",
                "displayName": display_name, "labels": labels}),
        ))
    }

    /// `projects.move` (v3): the project gets a new parent, which must be a known folder or the organization.
    pub(crate) fn move_project(
        &mut self,
        project: &str,
        destination: &str,
    ) -> Result<Value, ApiError> {
        if !self.is_container(destination) {
            return Err(invalid(format!(
                "Invalid destination parent '{destination}'."
            )));
        }
        self.projects
            .insert(project.to_string(), destination.to_string());
        Ok(operation(
            &format!("mv.{project}"),
            json!({"@type": "type.googleapis.com/google.cloud.resourcemanager.v3.MoveProjectMetadata"}),
            "Project",
            json!({"name": format!("projects/{}", crate::project_number(project)), "projectId": project,
                "parent": destination}),
        ))
    }
}

/// A Resource Manager operation that is already done, carrying `response` of type `kind`.
fn operation(id: &str, metadata: Value, kind: &str, mut response: Value) -> Value {
    response["@type"] = json!(format!(
        "type.googleapis.com/google.cloud.resourcemanager.v3.{kind}"
    ));
    json!({"name": format!("operations/{id}"), "metadata": metadata, "done": true, "response": response})
}
