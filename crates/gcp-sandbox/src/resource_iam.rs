//! Google's uniform IAM methods on resources that carry a policy of their own: Pub/Sub topics and subscriptions,
//! Secret Manager secrets, Cloud KMS key rings and crypto keys, Artifact Registry repositories, Cloud Run services
//! (v2) and Cloud Functions (v1)
//! (`RESOURCE:getIamPolicy`, `RESOURCE:setIamPolicy`), with the etag, version and condition rules every IAM policy
//! shares and each service's `SetIamPolicy` audit entry. A resource appears on its first `setIamPolicy`, or, for
//! Pub/Sub topics and subscriptions, when created (`pubsub.rs`).

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
use crate::audit::{self, IamWrite};
use crate::error::ApiError;
use crate::iam::{self, StoredPolicy};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v1/projects/{project}/{collection}",
            get(crate::resource_lists::list).post(crate::created::create_flat),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/{collection}",
            get(crate::resource_lists::list_located).post(crate::created::create_located),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/keyRings/{ring}/cryptoKeys",
            get(crate::resource_lists::list_crypto_keys).post(crate::created::create_crypto_key),
        )
        .route(
            "/v2/projects/{project}/locations/{location}/{collection}",
            get(crate::resource_lists::list_located_v2).post(create_v2),
        )
        .route(
            "/v1/projects/{project}/{collection}/{target}",
            get(flat).post(flat).put(flat).delete(flat),
        )
        .route(
            "/v1/projects/{project}/secrets/{secret}/versions",
            get(crate::created::secret_versions),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/{collection}/{target}",
            get(located).post(located).delete(located),
        )
        .route(
            "/v1/projects/{project}/locations/{location}/keyRings/{ring}/cryptoKeys/{target}",
            get(crypto_key).post(crypto_key),
        )
        .route(
            "/v2/projects/{project}/locations/{location}/{collection}/{target}",
            get(located_v2).post(located_v2).patch(located_v2),
        )
}

/// Policies by resource name.
#[derive(Default)]
pub(crate) struct ResourcePolicies {
    policies: BTreeMap<String, StoredPolicy>,
    /// Resources created through their own API (`created.rs`), as it returns them.
    pub(crate) bodies: BTreeMap<String, Value>,
}

impl ResourcePolicies {
    /// Every resource's name, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &String> {
        self.policies.keys()
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.policies.contains_key(name)
    }

    /// A resource created through its API starts with an empty policy.
    pub(crate) fn ensure(&mut self, name: &str) {
        self.policies
            .entry(name.to_string())
            .or_insert_with(|| StoredPolicy::new(Vec::new()));
    }

    /// A resource deleted through its API: its policy goes with it.
    pub(crate) fn remove(&mut self, name: &str) {
        self.policies.remove(name);
    }
}

/// One service's IAM surface: what its audit entries say.
struct Surface {
    service: &'static str,
    method: &'static str,
    resource_type: &'static str,
    permission: &'static str,
}

fn surface(collection: &str) -> Option<Surface> {
    let (service, method, resource_type, permission) = match collection {
        "topics" => (
            "pubsub.googleapis.com",
            "google.iam.v1.IAMPolicy.SetIamPolicy",
            "pubsub_topic",
            "pubsub.topics.setIamPolicy",
        ),
        "subscriptions" => (
            "pubsub.googleapis.com",
            "google.iam.v1.IAMPolicy.SetIamPolicy",
            "pubsub_subscription",
            "pubsub.subscriptions.setIamPolicy",
        ),
        "secrets" => (
            "secretmanager.googleapis.com",
            "google.cloud.secretmanager.v1.SecretManagerService.SetIamPolicy",
            "audited_resource",
            "secretmanager.secrets.setIamPolicy",
        ),
        "keyRings" => (
            "cloudkms.googleapis.com",
            "SetIamPolicy",
            "cloudkms_keyring",
            "cloudkms.keyRings.setIamPolicy",
        ),
        "cryptoKeys" => (
            "cloudkms.googleapis.com",
            "SetIamPolicy",
            "cloudkms_cryptokey",
            "cloudkms.cryptoKeys.setIamPolicy",
        ),
        "repositories" => (
            "artifactregistry.googleapis.com",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.SetIamPolicy",
            "audited_resource",
            "artifactregistry.repositories.setIamPolicy",
        ),
        "services" => (
            "run.googleapis.com",
            "google.cloud.run.v2.Services.SetIamPolicy",
            "cloud_run_revision",
            "run.services.setIamPolicy",
        ),
        "serviceAccounts" => (
            "iam.googleapis.com",
            "google.iam.admin.v1.SetIAMPolicy",
            "service_account",
            "iam.serviceAccounts.setIamPolicy",
        ),
        "instances" => (
            "compute.googleapis.com",
            "v1.compute.instances.setIamPolicy",
            "gce_instance",
            "compute.instances.setIamPolicy",
        ),
        "functions" => (
            "cloudfunctions.googleapis.com",
            "google.cloud.functions.v1.CloudFunctionsService.SetIamPolicy",
            "cloud_function",
            "cloudfunctions.functions.setIamPolicy",
        ),
        _ => return None,
    };
    Some(Surface {
        service,
        method,
        resource_type,
        permission,
    })
}

fn not_found(message: String) -> ApiError {
    ApiError::esf(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::esf(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

async fn flat(
    State(shared): State<Arc<Shared>>,
    method_of: axum::http::Method,
    Path((project, collection, target)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !matches!(collection.as_str(), "topics" | "subscriptions" | "secrets") {
        return Err(not_found(format!(
            "projects/{project}/{collection}/{target} not found"
        )));
    }
    // A topic or subscription itself (not one of its `:methods`).
    if !target.contains(':') && collection != "secrets" {
        return crate::pubsub::resource(
            &shared,
            &method_of,
            &project,
            &collection,
            &target,
            &headers,
            &body,
        );
    }
    // Secret Manager names a secret under its project's number, as its responses and audit entries do.
    let parent = if collection == "secrets" && !project.bytes().all(|byte| byte.is_ascii_digit()) {
        format!("projects/{}", crate::project_number(&project))
    } else {
        format!("projects/{project}")
    };
    if !target.contains(':') {
        return crate::created::itself(
            &shared,
            &method_of,
            crate::created::SECRET,
            &project,
            &format!("{parent}/secrets/{target}"),
            &headers,
        );
    }
    method(
        &shared,
        &project,
        &parent,
        &collection,
        &target,
        &query,
        &headers,
        &body,
    )
}

async fn located(
    State(shared): State<Arc<Shared>>,
    method_of: axum::http::Method,
    Path((project, location, collection, target)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !matches!(
        collection.as_str(),
        "keyRings" | "repositories" | "functions"
    ) {
        return Err(not_found(format!("{collection} not found")));
    }
    let parent = format!("projects/{project}/locations/{location}");
    if let Some(kind) = crate::created::kind(&collection)
        && !target.contains(':')
    {
        return crate::created::itself(
            &shared,
            &method_of,
            kind,
            &project,
            &format!("{parent}/{collection}/{target}"),
            &headers,
        );
    }
    method(
        &shared,
        &project,
        &parent,
        &collection,
        &target,
        &query,
        &headers,
        &body,
    )
}

/// `POST /v2/projects/P/locations/L/services?serviceId=S`: a Cloud Run service.
async fn create_v2(
    State(shared): State<Arc<Shared>>,
    Path((project, location, collection)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if collection != "services" {
        return Err(not_found(format!("{collection} not found")));
    }
    crate::run_services::create(
        &shared,
        &project,
        &location,
        query.get("serviceId"),
        &headers,
        &body,
    )
}

/// Cloud Run's v2 services: the service itself (`GET`, `PATCH`), or its IAM methods.
async fn located_v2(
    State(shared): State<Arc<Shared>>,
    method_of: axum::http::Method,
    Path((project, location, collection, target)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if collection != "services" {
        return Err(not_found(format!("{collection} not found")));
    }
    let parent = format!("projects/{project}/locations/{location}");
    if !target.contains(':') {
        let name = format!("{parent}/services/{target}");
        return match method_of {
            axum::http::Method::GET => crate::run_services::get(&shared, &name),
            axum::http::Method::PATCH => {
                crate::run_services::patch(&shared, &project, &name, &headers, &body)
            }
            _ => Err(not_found(format!("{name}: method not found"))),
        };
    }
    method(
        &shared,
        &project,
        &parent,
        &collection,
        &target,
        &query,
        &headers,
        &body,
    )
}

async fn crypto_key(
    State(shared): State<Arc<Shared>>,
    method_of: axum::http::Method,
    Path((project, location, ring, target)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parent = format!("projects/{project}/locations/{location}/keyRings/{ring}");
    if !target.contains(':') {
        return crate::created::itself(
            &shared,
            &method_of,
            crate::created::CRYPTO_KEY,
            &project,
            &format!("{parent}/cryptoKeys/{target}"),
            &headers,
        );
    }
    method(
        &shared,
        &project,
        &parent,
        "cryptoKeys",
        &target,
        &query,
        &headers,
        &body,
    )
}

/// `NAME:getIamPolicy` and `NAME:setIamPolicy` for every resource with an IAM surface.
#[allow(clippy::too_many_arguments)]
pub(crate) fn method(
    shared: &Shared,
    project: &str,
    parent: &str,
    collection: &str,
    target: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let (id, verb) = target
        .split_once(':')
        .ok_or_else(|| not_found(format!("{parent}/{collection}/{target}: method not found")))?;
    let surface =
        surface(collection).ok_or_else(|| not_found(format!("{collection} not found")))?;
    let name = format!("{parent}/{collection}/{id}");
    let mut request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|err| invalid(format!("Invalid JSON payload received. {err}")))?
    };
    if let Some(version) = query.get("options.requestedPolicyVersion") {
        request["options"]["requestedPolicyVersion"] = json!(version);
    }
    match verb {
        "getIamPolicy" => {
            let requested = iam::requested_version(&request).map_err(invalid)?;
            let policies = shared
                .resource_policies
                .lock()
                .expect("resource policies lock poisoned");
            let stored = policies
                .policies
                .get(&name)
                .ok_or_else(|| not_found(format!("Resource not found (resource={id}).")))?;
            Ok(crate::json_response(&stored.view(requested)))
        }
        "setIamPolicy" => {
            let write = iam::PolicyWrite::read_allowing_public(&request).map_err(invalid)?;
            let principal = shared.principal(headers);
            let mut policies = shared
                .resource_policies
                .lock()
                .expect("resource policies lock poisoned");
            let stored = policies
                .policies
                .entry(name.clone())
                .or_insert_with(|| StoredPolicy::new(Vec::new()));
            write.check_against(stored)?;
            let before = write.apply(stored);
            let response = stored.view(3);
            let deltas = iam::delta(&before, &stored.bindings);
            drop(policies);
            let (logged_request, logged_response) =
                audit::set_iam_policy_bodies(&request, &response, &name);
            shared.emit(audit::iam_entry(IamWrite {
                service_name: surface.service,
                method_name: surface.method,
                resource_name: &name,
                resource: match surface.resource_type {
                    // As Google writes it for services without a resource type of their own.
                    "audited_resource" => {
                        json!({"type": "audited_resource", "labels": {"project_id": project,
                        "service": surface.service, "method": surface.method}})
                    }
                    other => json!({"type": other, "labels": {"project_id": project}}),
                },
                log_parent: &format!("projects/{project}"),
                permission: surface.permission,
                principal: &principal,
                user_agent: &crate::user_agent(headers),
                request: logged_request,
                response: logged_response,
                deltas,
                audit_deltas: Vec::new(),
            }));
            Ok(crate::json_response(&response))
        }
        _ => Err(not_found(format!("Method {verb} not found."))),
    }
}
