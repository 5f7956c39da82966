//! gcp-sandbox: a local, faithful copy of the Google Cloud REST APIs antibody uses, emitting real-format audit events.
//!
//! Everything is served under one base URL at Google's real paths (`/compute/v1/…`, `/storage/v1/…`, `/v1/projects/…`,
//! `/bigquery/v2/…`, `/sql/v1beta4/…` and the rest, one module per API), so that Google's own client libraries and
//! gcloud work against it with only the endpoint changed. Every successful write produces the Cloud Audit
//! Log entries Google would write, and those are delivered to subscribers the way Eventarc (or Pub/Sub push) does.

pub mod audit;
mod authz;
mod bigquery;
mod catalog;
pub mod cli;
mod compute;
mod containers;
mod created;
mod custom_roles;
pub mod deliver;
mod error;
pub mod faults;
mod firestore;
pub mod hierarchy;
mod history;
mod iam;
mod iam_admin;
mod logging_buckets;
mod logging_config;
pub use logquery;
mod metadata;
pub mod oauth;
pub mod oidc;
mod older_versions;
mod pubsub;
pub mod realism;
mod resource_iam;
mod resource_lists;
mod resourcemanager;
mod run_services;
mod service_usage;
mod sql;
mod storage;
mod time_fmt;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use deliver::{Delivery, DeliveryMode, RetryPolicy};
pub use error::ApiError;
pub use history::DEFAULT_HISTORY;

/// How a sandbox behaves; everything has a default that suits tests.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Bearer token → principal email. An unmapped token becomes a principal of its own name.
    pub principals: HashMap<String, String>,
    /// Where audit events go, and in which envelope.
    pub deliveries: Vec<Delivery>,
    /// How long a write's operation stays RUNNING before it is DONE (clients must poll meanwhile).
    pub operation_delay: Duration,
    /// Eventarc's redelivery schedule, scaled down so that tests see it in milliseconds.
    pub retry: RetryPolicy,
    /// Resources to start with.
    pub seed: Seed,
    /// The service account whose tokens the metadata server hands out.
    pub metadata_email: String,
    /// How long a metadata-server token lives.
    pub metadata_token_lifetime: Duration,
    /// How many audit entries, finished operations and delivery attempts are remembered (each), the oldest
    /// forgotten first: a sandbox left running stays within bounded memory.
    pub history: usize,
    /// Enforce IAM: a call without credentials is 401, and one whose principal's roles in the project (its IAM
    /// policy's unconditional bindings; predefined roles and custom roles created through IAM) lack the permission
    /// is 403. Off by default: then any token, or none, may do anything.
    pub enforce_iam: bool,
    /// Every API answer is delayed by this much (plus jitter): Google's latency, for benchmarks.
    pub latency: realism::Latency,
    /// At most this many requests per project per second; beyond it, Google's 429 `RESOURCE_EXHAUSTED`.
    pub quota_per_project_per_s: Option<u32>,
    /// The organization's number: every project and folder not seeded elsewhere sits under it.
    pub organization: String,
    /// Deliver over HTTP/2 cleartext (prior knowledge), as Cloud Run's front end speaks to a service deployed with
    /// `--use-http2`: concurrent deliveries share a connection.
    pub deliver_http2: bool,
    /// Every list answers at most this many items a page, whatever its API's default and whatever the request asks:
    /// paging exercised with a handful of resources. `None`: each API's own page sizes.
    pub page_size: Option<usize>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            principals: HashMap::new(),
            deliveries: Vec::new(),
            operation_delay: Duration::ZERO,
            retry: RetryPolicy::default(),
            seed: Seed::default(),
            metadata_email: "antibody@sandbox-project.iam.gserviceaccount.com".into(),
            metadata_token_lifetime: Duration::from_secs(3599),
            history: DEFAULT_HISTORY,
            enforce_iam: false,
            latency: realism::Latency::default(),
            organization: hierarchy::DEFAULT_ORGANIZATION.to_string(),
            quota_per_project_per_s: None,
            deliver_http2: false,
            page_size: None,
        }
    }
}

/// Initial state, as JSON: `{"firewalls": {"PROJECT": [Firewall, ...]}}` in Compute's REST shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub firewalls: HashMap<String, Vec<Value>>,
    /// Project id → buckets in the JSON API's shape (`name`, `labels`, `iamConfiguration`, `acl`, ...).
    #[serde(default)]
    pub buckets: HashMap<String, Vec<Value>>,
    /// Project id → IAM policy (`bindings`, `auditConfigs`) in Resource Manager's shape.
    #[serde(default)]
    pub project_policies: HashMap<String, Value>,
    /// Project id → Compute instances (`name`, `zone`, `machineType`, `metadata.items`, `serviceAccounts`, ...).
    #[serde(default)]
    pub instances: HashMap<String, Vec<Value>>,
    /// Project id → the project's common instance metadata items (`[{key, value}]`).
    #[serde(default)]
    pub common_metadata: HashMap<String, Value>,
    /// `folders/N` → its parent (`organizations/…` or another folder).
    #[serde(default)]
    pub folders: HashMap<String, String>,
    /// `organizations/N` or `folders/N` → its IAM policy (`bindings`) in Resource Manager's shape.
    #[serde(default)]
    pub container_policies: HashMap<String, Value>,
    /// Project id → its parent (`folders/N`); unlisted projects sit under the sandbox's organization.
    #[serde(default)]
    pub parents: HashMap<String, String>,
    /// Bearer token → principal email, merged into the configured map.
    #[serde(default)]
    pub principals: HashMap<String, String>,
}

/// State shared by every handler.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) compute: Mutex<compute::ComputeState>,
    pub(crate) resource_manager: Mutex<resourcemanager::ResourceManagerState>,
    /// Organization and folder IAM policies.
    pub(crate) containers: Mutex<containers::Containers>,
    /// IAM's service accounts and keys.
    pub(crate) iam_admin: Mutex<iam_admin::IamAdmin>,
    /// Cloud Logging's sinks and exclusions.
    pub(crate) logging: Mutex<logging_config::LoggingConfig>,
    pub(crate) log_buckets: Mutex<logging_buckets::LogBuckets>,
    /// IAM policies of topics, subscriptions, secrets, key rings, crypto keys and repositories.
    pub(crate) resource_policies: Mutex<resource_iam::ResourcePolicies>,
    /// BigQuery datasets.
    pub(crate) bigquery: Mutex<bigquery::BigQuery>,
    /// Cloud SQL instances and their operations.
    pub(crate) sql: Mutex<sql::Sql>,
    /// Folders and each project's parent.
    pub(crate) run_services: Mutex<run_services::RunServices>,
    /// The APIs each project has enabled (Service Usage).
    pub(crate) service_usage: Mutex<service_usage::ServiceUsage>,
    pub(crate) firestore: Mutex<firestore::Firestore>,
    pub(crate) hierarchy: Mutex<hierarchy::Hierarchy>,
    pub(crate) storage: Mutex<storage::StorageState>,
    pub(crate) audit: audit::AuditLog,
    pub(crate) outbox: deliver::Outbox,
    pub(crate) ledger: authz::Ledger,
    /// Tokens minted by the metadata server → their principal.
    pub(crate) issued: Mutex<HashMap<String, String>>,
    pub(crate) tokens_issued: std::sync::atomic::AtomicU64,
    pub(crate) faults: faults::Faults,
    /// The next write's operation ends DONE with this error (an injected fault).
    pub(crate) next_operation_error: Mutex<Option<String>>,
    /// Custom roles created through IAM (`projects/P/roles/ID`) → their permissions.
    pub(crate) custom_roles: Mutex<HashMap<String, std::collections::BTreeSet<String>>>,
    /// Requests per project in the current second (`quota_per_project_per_s`).
    pub(crate) quotas: realism::Quotas,
}

/// The caller-supplied user agent, as audit entries log it (empty when absent or not text).
pub(crate) fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string()
}

impl Shared {
    /// The principal a request acts as, from its bearer token.
    pub(crate) fn principal(&self, headers: &HeaderMap) -> String {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim);
        match token {
            Some(token) => self
                .config
                .principals
                .get(token)
                .cloned()
                .or_else(|| {
                    self.issued
                        .lock()
                        .expect("token map poisoned")
                        .get(token)
                        .cloned()
                })
                .or_else(|| oauth::self_signed_principal(token))
                .unwrap_or_else(|| token.to_string()),
            None => "anonymous".to_string(),
        }
    }

    /// Records an audit entry and hands it to every subscriber.
    pub(crate) fn emit(&self, entry: Value) {
        // Shared by the audit log and the delivery queue: an entry is built once and never copied.
        let entry = Arc::new(entry);
        self.audit.push(entry.clone());
        self.outbox.send(entry);
    }
}

/// A sandbox listening on a socket.
pub struct Running {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Running {
    /// The base URL to give a client instead of `https://compute.googleapis.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every audit entry emitted so far, oldest first.
    pub fn audit_entries(&self) -> Vec<Value> {
        self.audit_log().entries()
    }

    /// The audit log, to watch from another task.
    pub fn audit_log(&self) -> &audit::AuditLog {
        &self.shared.audit
    }

    /// How many tokens the metadata server has handed out.
    pub fn tokens_issued(&self) -> u64 {
        self.shared
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Arms a fault for the next matching requests (the same as `POST /_sandbox/faults`).
    pub fn inject(&self, fault: faults::Fault) {
        self.shared.faults.add(fault);
    }

    /// The IAM permissions the calls of `principal` needed so far.
    pub fn permissions_used_by(&self, principal: &str) -> std::collections::BTreeSet<String> {
        self.shared.ledger.used_by(principal)
    }

    /// Waits until every delivery has been acknowledged or abandoned.
    pub async fn settled(&self) {
        self.shared.outbox.settled().await;
    }

    /// Adds a subscriber after start (for a receiver whose address is known only later).
    pub fn add_delivery(&self, delivery: Delivery) {
        self.shared.outbox.add(delivery);
    }

    /// Stops every delivery (a subscriber that went away): later changes reach no one.
    pub fn remove_deliveries(&self) {
        self.shared.outbox.unsubscribe_all();
    }

    /// Deliveries made so far, with their HTTP status (for observing redelivery).
    pub fn delivery_attempts(&self) -> Vec<deliver::Attempt> {
        self.shared.outbox.attempts()
    }

    pub fn shutdown(self) {
        self.server.abort();
    }
}

/// Binds `addr` and serves the sandbox until the returned handle is dropped or shut down.
pub async fn start(mut config: SandboxConfig, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    for (token, principal) in std::mem::take(&mut config.seed.principals) {
        config.principals.entry(token).or_insert(principal);
    }
    let compute = compute::ComputeState::seeded(&config.seed, config.history).map_err(|err| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("seed: {}", err.message),
        )
    })?;
    let resource_manager =
        resourcemanager::ResourceManagerState::seeded(&config.seed).map_err(|err| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("seed: {}", err.message),
            )
        })?;
    let containers =
        containers::Containers::seeded(&config.seed.container_policies).map_err(|err| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("seed: {}", err.message),
            )
        })?;
    let storage = storage::StorageState::seeded(&config.seed).map_err(|err| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("seed: {}", err.message),
        )
    })?;
    let outbox = deliver::Outbox::start(
        config.deliveries.clone(),
        config.retry.clone(),
        config.history,
        config.deliver_http2,
    );
    let audit = audit::AuditLog::new(config.history);
    let hierarchy = hierarchy::Hierarchy::seeded(
        &config.organization,
        &config.seed.folders,
        &config.seed.parents,
    );
    let shared = Arc::new(Shared {
        config,
        compute: Mutex::new(compute),
        resource_manager: Mutex::new(resource_manager),
        containers: Mutex::new(containers),
        iam_admin: Mutex::new(iam_admin::IamAdmin::default()),
        logging: Mutex::new(logging_config::LoggingConfig::default()),
        log_buckets: Mutex::new(logging_buckets::LogBuckets::default()),
        resource_policies: Mutex::new(resource_iam::ResourcePolicies::default()),
        bigquery: Mutex::new(bigquery::BigQuery::default()),
        sql: Mutex::new(sql::Sql::default()),
        firestore: Mutex::new(firestore::Firestore::default()),
        run_services: Mutex::new(run_services::RunServices::default()),
        service_usage: Mutex::new(service_usage::ServiceUsage::default()),
        hierarchy: Mutex::new(hierarchy),
        storage: Mutex::new(storage),
        audit,
        outbox,
        ledger: authz::Ledger::default(),
        issued: Mutex::new(HashMap::new()),
        tokens_issued: std::sync::atomic::AtomicU64::new(0),
        faults: faults::Faults::default(),
        next_operation_error: Mutex::new(None),
        custom_roles: Mutex::new(HashMap::new()),
        quotas: realism::Quotas::default(),
    });
    let app = router(shared.clone());
    let server = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "sandbox server stopped");
        }
    });
    Ok(Running {
        addr,
        shared,
        server,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(compute::routes())
        .merge(resourcemanager::routes())
        .merge(catalog::routes())
        .merge(containers::routes())
        .merge(older_versions::routes())
        .merge(service_usage::routes())
        .merge(iam_admin::routes())
        .merge(logging_config::routes())
        .merge(logging_buckets::routes())
        .merge(resource_iam::routes())
        .merge(bigquery::routes())
        .merge(sql::routes())
        .merge(firestore::routes())
        .merge(metadata::routes())
        .merge(oidc::routes())
        .merge(oauth::routes())
        .merge(faults::routes())
        .merge(storage::routes())
        .merge(audit::routes())
        .merge(custom_roles::routes())
        .merge(realism::routes())
        // Google answers an unknown path or method with its error JSON, never an empty page.
        .fallback(|uri: axum::http::Uri| async move {
            error::ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                reason: "notFound",
                message: format!(
                    "The requested URL {} was not found on this server.",
                    uri.path()
                ),
                grpc_status: Some("NOT_FOUND"),
            }
        })
        .method_not_allowed_fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                error::ApiError {
                    status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                    reason: "methodNotAllowed",
                    message: format!("Method {method} is not allowed on {}.", uri.path()),
                    grpc_status: Some("UNIMPLEMENTED"),
                }
            },
        )
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            realism::apply,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            authz::authorize,
        ))
        .with_state(shared)
}

/// A JSON answer serialised straight from a stored value, which is never copied for it.
pub(crate) fn json_response(value: &Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::to_vec(value).expect("a JSON value always serialises");
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// An HTTP client for plain-http deliveries on loopback and for TLS where a subscriber uses it.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    client_speaking(timeout, false)
}

/// `http_client`, speaking HTTP/2 with prior knowledge (cleartext) when `http2`.
pub(crate) fn client_speaking(timeout: Duration, http2: bool) -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; ring is the one provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder().timeout(timeout);
    match http2 {
        true => builder.http2_prior_knowledge(),
        false => builder,
    }
    .build()
    .expect("an HTTP client with a crypto provider installed")
}

/// A stable 64-bit digest of `text` (FNV-1a): the sandbox's ids, numbers, etags and fingerprints derive from it.
pub(crate) fn digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A stable project number for a project id, shared by every emulated API.
pub(crate) fn project_number(project: &str) -> u64 {
    100_000_000_000 + digest(project) % 900_000_000_000
}

/// How one of Google's list methods pages: the query parameter that sizes a page, the size when none is asked for,
/// and the most it gives (a larger ask is cut to it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    pub(crate) size: &'static str,
    pub(crate) default: usize,
    pub(crate) most: usize,
}

impl Paging {
    /// Resource Manager v1/v3 (`projects:search`, `folders.list`): 500.
    pub(crate) const RESOURCE_MANAGER: Paging = Paging::new("pageSize", 500, 500);
    /// IAM `serviceAccounts.list`: 20 unless asked, at most 100.
    pub(crate) const SERVICE_ACCOUNTS: Paging = Paging::new("pageSize", 20, 100);
    /// Cloud SQL `instances.list`: "at most 500 instances" unless asked, at most 1,000.
    pub(crate) const SQL_INSTANCES: Paging = Paging::new("maxResults", 500, 1000);
    /// BigQuery `datasets.list` (`maxResults`).
    pub(crate) const DATASETS: Paging = Paging::new("maxResults", 50, 1000);
    /// Cloud Logging sinks and exclusions.
    pub(crate) const LOGGING: Paging = Paging::new("pageSize", 100, 200);
    /// Service Usage `services.list`: 50 unless asked, at most 200.
    pub(crate) const SERVICES: Paging = Paging::new("pageSize", 50, 200);
    /// Firestore `listDocuments`.
    pub(crate) const FIRESTORE: Paging = Paging::new("pageSize", 500, 500);
    /// Pub/Sub, Secret Manager, KMS, Artifact Registry, Cloud Run and Cloud Functions lists (most 1,000).
    pub(crate) const RESOURCES: Paging = Paging::new("pageSize", 100, 1000);

    const fn new(size: &'static str, default: usize, most: usize) -> Paging {
        Paging {
            size,
            default,
            most,
        }
    }
}

/// One page of a list: `items` under `field`, from `pageToken` (an opaque token Google gives; here an offset), as
/// many as `paging` and the request allow — and never more than the sandbox's `page_size` —, with `nextPageToken`
/// while more remain. An empty list is `{}`: Google's JSON leaves an empty repeated field out.
pub(crate) fn paged(
    shared: &Shared,
    items: Vec<serde_json::Value>,
    field: &str,
    query: &HashMap<String, String>,
    paging: Paging,
) -> Result<serde_json::Value, ApiError> {
    let asked = match query.get(paging.size).filter(|size| !size.is_empty()) {
        None => paging.default,
        Some(size) => match size.parse::<i64>() {
            Ok(size) if size > 0 => usize::try_from(size).unwrap_or(usize::MAX),
            Ok(_) => paging.default,
            Err(_) => {
                return Err(ApiError::invalid(format!(
                    "Invalid value at '{}' (TYPE_INT32), \"{size}\"",
                    paging.size
                )));
            }
        },
    };
    let size = asked
        .min(paging.most)
        .min(shared.config.page_size.unwrap_or(usize::MAX))
        .max(1);
    let start = match query.get("pageToken").filter(|token| !token.is_empty()) {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|start| *start <= items.len())
            .ok_or_else(|| ApiError::invalid("The page token is not valid.".to_string()))?,
    };
    let total = items.len();
    let page: Vec<serde_json::Value> = items.into_iter().skip(start).take(size).collect();
    let mut answer = serde_json::json!({});
    if !page.is_empty() {
        answer[field] = serde_json::Value::Array(page);
    }
    if start + size < total {
        answer["nextPageToken"] = serde_json::json!((start + size).to_string());
    }
    Ok(answer)
}
