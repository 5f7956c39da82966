//! BigQuery datasets (`/bigquery/v2/projects/P/datasets[/D]`): insert, get, list, patch guarded by `If-Match` (412 on a
//! stale etag), delete, the dataset's `access` list as BigQuery keeps it, and the audit entries BigQuery writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::Shared;
use crate::audit;
use crate::error::ApiError;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/bigquery/v2/projects/{project}/datasets",
            get(list).post(insert),
        )
        .route(
            "/bigquery/v2/projects/{project}/datasets/{dataset}",
            get(read).patch(patch).put(patch).delete(delete),
        )
}

/// Datasets by (project, dataset id), with the counter behind their etags.
#[derive(Default)]
pub(crate) struct BigQuery {
    datasets: BTreeMap<(String, String), Value>,
    revision: u64,
}

fn error(status: StatusCode, reason: &'static str, message: String) -> ApiError {
    ApiError {
        status,
        reason,
        message,
        grpc_status: None,
    }
}

fn not_found(project: &str, dataset: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("Not found: Dataset {project}:{dataset}"),
    )
}

/// Dataset ids: letters, digits and underscores, up to 1024.
fn valid_id(id: &str) -> bool {
    (1..=1024).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl BigQuery {
    fn stamp(&mut self, dataset: &mut Value) {
        self.revision += 1;
        let etag = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            self.revision.to_be_bytes(),
        );
        dataset["etag"] = json!(etag);
        dataset["lastModifiedTime"] = json!(format!("{}", 1_764_000_000_000u64 + self.revision));
    }
}

/// The fields of a `Dataset` (BigQuery v2's discovery document): a request naming another is 400, as Google answers.
const DATASET_SCHEMA: &[&str] = &[
    "access",
    "creationTime",
    "datasetReference",
    "defaultCollation",
    "defaultEncryptionConfiguration",
    "defaultPartitionExpirationMs",
    "defaultRoundingMode",
    "defaultTableExpirationMs",
    "description",
    "etag",
    "externalCatalogDatasetOptions",
    "externalDatasetReference",
    "friendlyName",
    "id",
    "isCaseInsensitive",
    "kind",
    "labels",
    "lastModifiedTime",
    "linkedDatasetMetadata",
    "linkedDatasetSource",
    "location",
    "maxTimeTravelHours",
    "resourceTags",
    "restrictions",
    "satisfiesPzi",
    "satisfiesPzs",
    "selfLink",
    "storageBillingModel",
    "tags",
    "type",
];

async fn insert(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, DATASET_SCHEMA)?;
    let id = request["datasetReference"]["datasetId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !valid_id(&id) {
        return Err(ApiError::invalid(format!(
            "Invalid dataset ID \"{id}\". Dataset IDs must be alphanumeric (plus underscores) and must be at most 1024 characters long."
        )));
    }
    let dataset = {
        let mut state = shared.bigquery.lock().expect("bigquery lock poisoned");
        let key = (project.clone(), id.clone());
        if state.datasets.contains_key(&key) {
            return Err(error(
                StatusCode::CONFLICT,
                "duplicate",
                format!("Already Exists: Dataset {project}:{id}"),
            ));
        }
        let mut dataset = request.clone();
        dataset["kind"] = json!("bigquery#dataset");
        dataset["id"] = json!(format!("{project}:{id}"));
        dataset["datasetReference"] = json!({"datasetId": id, "projectId": project});
        dataset["selfLink"] = json!(format!(
            "https://bigquery.googleapis.com/bigquery/v2/projects/{project}/datasets/{id}"
        ));
        dataset["creationTime"] = json!("1764000000000");
        if dataset["location"].is_null() {
            dataset["location"] = json!("US");
        }
        if dataset["access"].is_null() {
            // BigQuery gives a new dataset its project's roles.
            dataset["access"] = json!([
                {"role": "WRITER", "specialGroup": "projectWriters"},
                {"role": "OWNER", "specialGroup": "projectOwners"},
                {"role": "READER", "specialGroup": "projectReaders"},
            ]);
        }
        state.stamp(&mut dataset);
        state.datasets.insert(key, dataset.clone());
        dataset
    };
    shared.emit(entry(
        &shared,
        &headers,
        &project,
        &id,
        "InsertDataset",
        request,
        &dataset,
    ));
    Ok(crate::json_response(&dataset))
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let datasets: Vec<Value> = {
        let state = shared.bigquery.lock().expect("bigquery lock poisoned");
        state
            .datasets
            .iter()
            .filter(|((p, _), _)| *p == project)
            .map(|(_, dataset)| json!({"kind": "bigquery#dataset", "id": dataset["id"], "datasetReference": dataset["datasetReference"], "location": dataset["location"]}))
            .collect()
    };
    let mut body = crate::paged(
        &shared,
        datasets,
        "datasets",
        &query,
        crate::Paging::DATASETS,
    )?;
    body["kind"] = json!("bigquery#datasetList");
    body["etag"] = json!("list");
    Ok(crate::json_response(&body))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((project, dataset)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.bigquery.lock().expect("bigquery lock poisoned");
    state
        .datasets
        .get(&(project.clone(), dataset.clone()))
        .map(crate::json_response)
        .ok_or_else(|| not_found(&project, &dataset))
}

/// `PATCH` (and `PUT`): the fields given replace the dataset's; `If-Match` must name the current etag.
async fn patch(
    State(shared): State<Arc<Shared>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    ApiError::unknown_fields(&request, DATASET_SCHEMA)?;
    let if_match = headers
        .get(axum::http::header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim_matches('"').to_string());
    let dataset = {
        let mut state = shared.bigquery.lock().expect("bigquery lock poisoned");
        let key = (project.clone(), id.clone());
        let mut dataset = state
            .datasets
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(&project, &id))?;
        if let Some(etag) = if_match.filter(|etag| etag != "*")
            && dataset["etag"] != etag.as_str()
        {
            return Err(error(
                StatusCode::PRECONDITION_FAILED,
                "conditionNotMet",
                "Precondition check failed.".into(),
            ));
        }
        for (field, value) in request.as_object().into_iter().flatten() {
            if [
                "access",
                "description",
                "friendlyName",
                "labels",
                "defaultTableExpirationMs",
            ]
            .contains(&field.as_str())
            {
                dataset[field.as_str()] = value.clone();
            }
        }
        state.stamp(&mut dataset);
        state.datasets.insert(key, dataset.clone());
        dataset
    };
    shared.emit(entry(
        &shared,
        &headers,
        &project,
        &id,
        "PatchDataset",
        request,
        &dataset,
    ));
    Ok(crate::json_response(&dataset))
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let removed = shared
        .bigquery
        .lock()
        .expect("bigquery lock poisoned")
        .datasets
        .remove(&(project.clone(), id.clone()))
        .ok_or_else(|| not_found(&project, &id))?;
    shared.emit(entry(
        &shared,
        &headers,
        &project,
        &id,
        "DeleteDataset",
        json!({}),
        &removed,
    ));
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// The audit entry BigQuery writes for a dataset change.
fn entry(
    shared: &Shared,
    headers: &HeaderMap,
    project: &str,
    dataset: &str,
    method: &str,
    mut request: Value,
    response: &Value,
) -> Value {
    request["@type"] = json!(format!(
        "type.googleapis.com/google.cloud.bigquery.v2.{method}Request"
    ));
    let permission = match method {
        "InsertDataset" => "bigquery.datasets.create",
        "DeleteDataset" => "bigquery.datasets.delete",
        _ => "bigquery.datasets.update",
    };
    audit::admin_entry(audit::AdminWrite {
        service_name: "bigquery.googleapis.com",
        method_name: &format!("google.cloud.bigquery.v2.DatasetService.{method}"),
        resource_name: &format!("projects/{project}/datasets/{dataset}"),
        resource: json!({"type": "bigquery_dataset", "labels": {"project_id": project, "dataset_id": dataset}}),
        permission,
        project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request,
        response: json!({"@type": "type.googleapis.com/google.cloud.bigquery.v2.Dataset", "access": response["access"]}),
    })
}
