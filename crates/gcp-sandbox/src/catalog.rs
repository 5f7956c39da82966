//! Resource Manager's project catalog: v3 `projects.create`, `projects.list` (by parent) and `projects:search`
//! (Google's query syntax), and v1 `projects.list` (its `filter`), each paged.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Shared;
use crate::error::ApiError;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/projects:search", get(search))
        .route("/v3/projects", get(list_v3).post(create))
        .route("/v1/projects", get(list_v1).post(create_v1))
}

/// A v3 `Project`'s fields, output-only ones included.
const PROJECT_FIELDS: &[&str] = &[
    "name",
    "parent",
    "projectId",
    "state",
    "displayName",
    "createTime",
    "updateTime",
    "deleteTime",
    "etag",
    "labels",
    "tags",
    "configuredCapabilities",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// Every project the sandbox knows (seeded, created, or touched through Resource Manager) in v3's shape.
fn projects(shared: &Shared) -> Vec<Value> {
    let seed = &shared.config.seed;
    let mut ids: BTreeSet<String> = seed
        .firewalls
        .keys()
        .chain(seed.buckets.keys())
        .chain(seed.project_policies.keys())
        .chain(seed.instances.keys())
        .chain(seed.parents.keys())
        .cloned()
        .collect();
    ids.extend(
        shared
            .resource_manager
            .lock()
            .expect("resource manager lock poisoned")
            .ids()
            .cloned(),
    );
    let hierarchy = shared.hierarchy.lock().expect("hierarchy lock poisoned");
    let created: HashMap<&String, &Value> = hierarchy.created().collect();
    ids.extend(created.keys().map(|id| (*id).clone()));
    ids.iter()
        .map(|id| {
            let number = crate::project_number(id);
            let details = created.get(id);
            json!({"name": format!("projects/{number}"), "parent": hierarchy.parent_of(id), "projectId": id,
                "state": "ACTIVE",
                "displayName": details.and_then(|details| details["displayName"].as_str()).unwrap_or(id),
                "labels": details.map(|details| details["labels"].clone()).unwrap_or(json!({})),
                "createTime": "2024-01-01T00:00:00.000Z", "etag": format!("W/\"{number}\"")})
        })
        .collect()
}

/// One term of a search query: `field:value`, case-insensitive; `value*` matches a prefix and `*` any value.
struct Term {
    field: String,
    value: String,
}

impl Term {
    fn matches_text(&self, text: &str) -> bool {
        let text = text.to_ascii_lowercase();
        match self.value.strip_suffix('*') {
            Some(prefix) => text.starts_with(prefix),
            None => text == self.value,
        }
    }

    fn matches(&self, project: &Value) -> bool {
        let text = |field: &str| project[field].as_str().unwrap_or_default().to_string();
        let parent = text("parent");
        match self.field.as_str() {
            "displayname" | "name" => self.matches_text(&text("displayName")),
            "id" | "projectid" => self.matches_text(&text("projectId")),
            "state" | "lifecyclestate" => self.matches_text(&text("state")),
            "parent" => self.matches_text(&parent),
            "parent.type" => self.matches_text(match parent.starts_with("folders/") {
                true => "folder",
                false => "organization",
            }),
            "parent.id" => self.matches_text(parent.rsplit('/').next().unwrap_or_default()),
            "labels" => project["labels"].as_object().is_some_and(|labels| {
                labels.iter().any(|(key, value)| {
                    self.matches_text(key) || value.as_str().is_some_and(|v| self.matches_text(v))
                })
            }),
            field => {
                let key = field.trim_start_matches("labels.");
                project["labels"]
                    .as_object()
                    .and_then(|labels| {
                        labels
                            .iter()
                            .find(|(found, _)| found.eq_ignore_ascii_case(key))
                    })
                    .and_then(|(_, value)| value.as_str())
                    .is_some_and(|value| self.matches_text(value))
            }
        }
    }
}

/// Reads a search query; terms are joined by OR, as Google documents ("results that match any of the fields").
fn parse_query(query: &str) -> Result<Vec<Term>, ApiError> {
    let mut terms = Vec::new();
    for word in query
        .split_whitespace()
        .filter(|word| !matches!(*word, "OR" | "AND"))
    {
        let (field, value) = word
            .split_once(':')
            .or_else(|| word.split_once('='))
            .ok_or_else(|| invalid(format!("Invalid query term: {word}")))?;
        let field = field.to_ascii_lowercase();
        let known = matches!(
            field.as_str(),
            "displayname"
                | "name"
                | "id"
                | "projectid"
                | "state"
                | "lifecyclestate"
                | "parent"
                | "parent.type"
                | "parent.id"
                | "labels"
        ) || field
            .strip_prefix("labels.")
            .is_some_and(|key| !key.is_empty());
        if !known {
            return Err(invalid(format!("Unsupported query field: {field}")));
        }
        terms.push(Term {
            field,
            value: value.trim_matches('"').to_ascii_lowercase(),
        });
    }
    Ok(terms)
}

/// `GET /v3/projects:search?query=…`: projects matching any term (all of them without a query).
async fn search(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let terms = parse_query(query.get("query").map(String::as_str).unwrap_or(""))?;
    let found: Vec<Value> = projects(&shared)
        .into_iter()
        .filter(|project| terms.is_empty() || terms.iter().any(|term| term.matches(project)))
        .collect();
    Ok(Json(crate::paged(
        &shared,
        found,
        "projects",
        &query,
        crate::Paging::RESOURCE_MANAGER,
    )?))
}

/// `GET /v3/projects?parent=…`: the parent's direct children.
async fn list_v3(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let parent = query
        .get("parent")
        .ok_or_else(|| invalid("Field 'parent' is required."))?;
    let found: Vec<Value> = projects(&shared)
        .into_iter()
        .filter(|project| project["parent"] == parent.as_str())
        .collect();
    Ok(Json(crate::paged(
        &shared,
        found,
        "projects",
        &query,
        crate::Paging::RESOURCE_MANAGER,
    )?))
}

/// `POST /v3/projects`: a finished operation whose `response` is the new project.
async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, PROJECT_FIELDS)?;
    let id = request["projectId"].as_str().unwrap_or_default();
    let known = projects(&shared)
        .iter()
        .any(|project| project["projectId"] == id);
    let operation = shared
        .hierarchy
        .lock()
        .expect("hierarchy lock poisoned")
        .create_project(&request, known)?;
    shared
        .resource_manager
        .lock()
        .expect("resource manager lock poisoned")
        .register(id);
    Ok(Json(operation))
}

/// `POST /v1/projects` (gcloud's `projects create`): v3's create, answered in v1's shape.
async fn create_v1(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?;
    let id = request["projectId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let known = projects(&shared)
        .iter()
        .any(|project| project["projectId"] == id.as_str());
    let operation = crate::older_versions::create_project_v1(&shared, &request, known)?;
    shared
        .resource_manager
        .lock()
        .expect("resource manager lock poisoned")
        .register(&id);
    Ok(Json(operation))
}

/// Resource Manager v1's `projects.list`: `filter` by `id`, `name`, `parent.type`, `parent.id` or `lifecycleState`
/// (`field:value` terms joined by spaces or AND, all of which must hold; anything else is 400).
async fn list_v1(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut terms = Vec::new();
    for word in query
        .get("filter")
        .map(String::as_str)
        .unwrap_or("")
        .split_whitespace()
        .filter(|word| *word != "AND")
    {
        let (field, value) = word
            .split_once(':')
            .or_else(|| word.split_once('='))
            .ok_or_else(|| invalid(format!("Invalid filter term: {word}")))?;
        let field = match field.to_ascii_lowercase().as_str() {
            "id" | "projectid" => "id",
            "name" => "name",
            "lifecyclestate" => "state",
            "parent.type" => "parent.type",
            "parent.id" => "parent.id",
            _ => return Err(invalid(format!("Unsupported filter field: {field}"))),
        };
        terms.push(Term {
            field: field.to_string(),
            value: value.trim_matches('"').to_ascii_lowercase(),
        });
    }
    let found: Vec<Value> = projects(&shared)
        .into_iter()
        .filter(|project| terms.iter().all(|term| term.matches(project)))
        .map(|project| crate::older_versions::project_v1(&project))
        .collect();
    Ok(Json(crate::paged(
        &shared,
        found,
        "projects",
        &query,
        crate::Paging::RESOURCE_MANAGER,
    )?))
}
