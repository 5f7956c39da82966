//! Cloud SQL Admin instances, under v1 (`/v1/projects/P/instances[/I]`) and v1beta4 (`/sql/v1beta4/…`, what gcloud
//! and Cloud Custodian speak): create, get, list, patch (settings merged, the authorised networks replaced as a whole,
//! `settingsVersion` as the optimistic-concurrency check), each write an operation (`…/operations/OP`) that is
//! PENDING, then RUNNING, until the sandbox's operation delay has passed, with the audit entries Cloud SQL writes.

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
use crate::time_fmt::logging_pair;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for version in ["/v1", "/sql/v1beta4"] {
        router = router
            .route(
                &format!("{version}/projects/{{project}}/instances"),
                get(list).post(create),
            )
            .route(
                &format!("{version}/projects/{{project}}/instances/{{instance}}"),
                get(read).patch(patch),
            )
            .route(
                &format!("{version}/projects/{{project}}/operations/{{operation}}"),
                get(operation),
            );
    }
    router
}

#[derive(Default)]
pub(crate) struct Sql {
    instances: BTreeMap<(String, String), Value>,
    /// Operations by (project, name), with the moment each is DONE.
    operations: BTreeMap<(String, String), (Value, std::time::Instant)>,
    counter: u64,
}

/// An operation as it stands now: PENDING for the first half of its delay, RUNNING for the rest, then DONE.
fn as_of(operation: &Value, done_at: std::time::Instant, delay: std::time::Duration) -> Value {
    let now = std::time::Instant::now();
    let mut operation = operation.clone();
    if now < done_at {
        let running = done_at
            .checked_sub(delay / 2)
            .is_some_and(|half| now >= half);
        operation["status"] = json!(if running { "RUNNING" } else { "PENDING" });
        if let Some(fields) = operation.as_object_mut() {
            fields.remove("endTime");
            if !running {
                fields.remove("startTime");
            }
        }
    }
    operation
}

fn error(status: StatusCode, reason: &'static str, message: String) -> ApiError {
    ApiError {
        status,
        reason,
        message,
        grpc_status: None,
    }
}

fn not_found(project: &str, instance: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "instanceDoesNotExist",
        format!("The Cloud SQL instance does not exist: {project}:{instance}."),
    )
}

impl Sql {
    /// An operation about `instance` that is DONE after `delay`, remembered for `operations.get`; as it stands now.
    fn operation(
        &mut self,
        project: &str,
        instance: &str,
        kind: &str,
        user: &str,
        delay: std::time::Duration,
    ) -> Value {
        self.counter += 1;
        let name = format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            self.counter * 7919,
            self.counter,
            self.counter * 104_729
        );
        let (now, _) = logging_pair();
        let operation = json!({
            "kind": "sql#operation",
            "name": name,
            "operationType": kind,
            "status": "DONE",
            "user": user,
            "insertTime": now,
            "startTime": now,
            "endTime": now,
            "targetId": instance,
            "targetProject": project,
            "targetLink": format!("https://sqladmin.googleapis.com/v1/projects/{project}/instances/{instance}"),
            "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{project}/operations/{name}"),
        });
        let done_at = std::time::Instant::now() + delay;
        self.operations
            .insert((project.to_string(), name), (operation.clone(), done_at));
        as_of(&operation, done_at, delay)
    }
}

/// The fields of a `DatabaseInstance`, its `Settings`, their `IpConfiguration` and an `AclEntry` (Cloud SQL Admin's
/// discovery document): a request naming another is 400, as Google answers.
const INSTANCE_SCHEMA: &[&str] = &[
    "availableMaintenanceVersions",
    "backendType",
    "connectionName",
    "createTime",
    "currentDiskSize",
    "databaseInstalledVersion",
    "databaseVersion",
    "diskEncryptionConfiguration",
    "diskEncryptionStatus",
    "dnsName",
    "dnsNames",
    "etag",
    "failoverReplica",
    "gceZone",
    "geminiConfig",
    "includeReplicasForMajorVersionUpgrade",
    "installedVersion",
    "instanceType",
    "ipAddresses",
    "ipv6Address",
    "kind",
    "maintenanceVersion",
    "majorVersionUpgradeIncludesReplicas",
    "masterInstanceName",
    "maxDiskSize",
    "name",
    "nodeCount",
    "nodes",
    "onPremisesConfiguration",
    "outOfDiskReport",
    "primaryDnsName",
    "project",
    "pscServiceAttachmentLink",
    "region",
    "replicaConfiguration",
    "replicaNames",
    "replicationCluster",
    "rootPassword",
    "satisfiesPzi",
    "satisfiesPzs",
    "scheduledMaintenance",
    "secondaryGceZone",
    "selfLink",
    "serverCaCert",
    "serviceAccountEmailAddress",
    "settings",
    "sourceInstanceNames",
    "sqlNetworkArchitecture",
    "state",
    "suspensionReason",
    "switchTransactionLogsToCloudStorageEnabled",
    "tags",
    "upgradableDatabaseVersions",
    "writeEndpoint",
];
const SETTINGS_SCHEMA: &[&str] = &[
    "activationPolicy",
    "activeDirectoryConfig",
    "advancedMachineFeatures",
    "authorizedGaeApplications",
    "availabilityType",
    "backupConfiguration",
    "collation",
    "connectionPoolConfig",
    "connectorEnforcement",
    "crashSafeReplicationEnabled",
    "dataCacheConfig",
    "dataDiskProvisionedIops",
    "dataDiskProvisionedThroughput",
    "dataDiskSizeGb",
    "dataDiskType",
    "databaseFlags",
    "databaseReplicationEnabled",
    "dbAlignedAtomicWritesConfig",
    "deletionProtectionEnabled",
    "denyMaintenancePeriods",
    "edition",
    "enableDataplexIntegration",
    "enableGoogleMlIntegration",
    "finalBackupConfig",
    "insightsConfig",
    "instanceVersion",
    "ipConfiguration",
    "kind",
    "locationPreference",
    "maintenanceVersion",
    "maintenanceWindow",
    "passwordValidationPolicy",
    "pricingPlan",
    "readPoolAutoScaleConfig",
    "recreateReplicasOnPrimaryCrash",
    "replicationLagMaxSeconds",
    "replicationType",
    "retainBackupsOnDelete",
    "settingsVersion",
    "sqlServerAuditConfig",
    "storageAutoResize",
    "storageAutoResizeLimit",
    "tier",
    "timeZone",
    "userLabels",
];
const IP_CONFIGURATION_SCHEMA: &[&str] = &[
    "allocatedIpRange",
    "authorizedNetworks",
    "customSubjectAlternativeNames",
    "enablePrivatePathForGoogleCloudServices",
    "ipv4Enabled",
    "privateNetwork",
    "pscConfig",
    "requireSsl",
    "reservedIpRange",
    "serverCaMode",
    "serverCaPool",
    "sslMode",
];
const ACL_ENTRY_SCHEMA: &[&str] = &["expirationTime", "kind", "name", "value"];

/// Refuses a request naming a field Cloud SQL does not have, where antibody and its users write.
fn check_schema(request: &Value) -> Result<(), ApiError> {
    ApiError::unknown_fields(request, INSTANCE_SCHEMA)?;
    let settings = &request["settings"];
    ApiError::unknown_fields_at(settings, "settings", SETTINGS_SCHEMA)?;
    let ip = &settings["ipConfiguration"];
    ApiError::unknown_fields_at(ip, "settings.ip_configuration", IP_CONFIGURATION_SCHEMA)?;
    for (index, entry) in ip["authorizedNetworks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        ApiError::unknown_fields_at(
            entry,
            &format!("settings.ip_configuration.authorized_networks[{index}]"),
            ACL_ENTRY_SCHEMA,
        )?;
    }
    Ok(())
}

/// An instance's etag: a digest of what it holds, new with every change.
fn etag(instance: &Value) -> String {
    let mut held = instance.clone();
    if let Some(fields) = held.as_object_mut() {
        fields.remove("etag");
    }
    let digest = crate::digest(&held.to_string());
    format!(
        "{digest:016x}{:016x}",
        digest.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15
    )
}

/// Deep merge for `settings` (objects merge, anything else replaces; lists such as `authorizedNetworks` whole).
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        _ => *target = patch.clone(),
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    check_schema(&request)?;
    let name = request["name"].as_str().unwrap_or_default().to_string();
    let valid = (1..=98).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ApiError::invalid(format!(
            "Invalid instance name '{name}'."
        )));
    }
    let principal = shared.principal(&headers);
    let operation = {
        let mut state = shared.sql.lock().expect("sql lock poisoned");
        let key = (project.clone(), name.clone());
        if state.instances.contains_key(&key) {
            return Err(error(
                StatusCode::CONFLICT,
                "instanceAlreadyExists",
                "The Cloud SQL instance already exists.".into(),
            ));
        }
        let mut instance = json!({"kind": "sql#instance", "name": name, "project": project, "state": "RUNNABLE",
            "databaseVersion": "POSTGRES_15", "region": "us-central1", "connectionName": format!("{project}:us-central1:{name}"),
            "settings": {"tier": "db-f1-micro", "ipConfiguration": {"ipv4Enabled": true}}});
        merge(&mut instance, &request);
        instance["settings"]["settingsVersion"] = json!("1");
        let (now, _) = logging_pair();
        let ordinal = state.instances.len() + 2;
        let region = instance["region"]
            .as_str()
            .unwrap_or("us-central1")
            .to_string();
        for (field, value) in [
            ("backendType", json!("SECOND_GEN")),
            ("instanceType", json!("CLOUD_SQL_INSTANCE")),
            ("gceZone", json!(format!("{region}-a"))),
            (
                "connectionName",
                json!(format!("{project}:{region}:{name}")),
            ),
            (
                "selfLink",
                json!(format!(
                    "https://sqladmin.googleapis.com/sql/v1beta4/projects/{project}/instances/{name}"
                )),
            ),
            (
                "ipAddresses",
                json!([{"type": "PRIMARY", "ipAddress": format!("34.66.{}.{}", ordinal / 250 % 250, ordinal % 250)}]),
            ),
            (
                "serviceAccountEmailAddress",
                json!(format!(
                    "p{}-sql@gcp-sa-cloud-sql.iam.gserviceaccount.com",
                    crate::project_number(&project)
                )),
            ),
            (
                "serverCaCert",
                json!({"kind": "sql#sslCert", "instance": name, "certSerialNumber": "0",
                "commonName": "C=US,O=Google\\, Inc,CN=Google Cloud SQL Server CA,dnQualifier=sandbox",
                "sha1Fingerprint": format!("{:040x}", crate::project_number(&name)),
                "createTime": now, "expirationTime": "2034-01-01T00:00:00.000Z",
                "cert": "-----BEGIN CERTIFICATE-----\nsandbox\n-----END CERTIFICATE-----"}),
            ),
        ] {
            instance[field] = value;
        }
        instance["etag"] = json!(etag(&instance));
        state.instances.insert(key, instance);
        state.operation(
            &project,
            &name,
            "CREATE",
            &principal,
            shared.config.operation_delay,
        )
    };
    shared.emit(entry(&shared, &headers, &project, &name, "create", request));
    Ok(crate::json_response(&operation))
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let items: Vec<Value> = {
        let state = shared.sql.lock().expect("sql lock poisoned");
        state
            .instances
            .iter()
            .filter(|((p, _), _)| *p == project)
            .map(|(_, instance)| instance.clone())
            .collect()
    };
    let mut body = crate::paged(
        &shared,
        items,
        "items",
        &query,
        crate::Paging::SQL_INSTANCES,
    )?;
    body["kind"] = json!("sql#instancesList");
    Ok(crate::json_response(&body))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((project, instance)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.sql.lock().expect("sql lock poisoned");
    state
        .instances
        .get(&(project.clone(), instance.clone()))
        .map(crate::json_response)
        .ok_or_else(|| not_found(&project, &instance))
}

/// `PATCH`: `settings` merged; a `settings.settingsVersion` that is not the current one is 412.
async fn patch(
    State(shared): State<Arc<Shared>>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_json(format!("Invalid JSON payload received. {err}")))?;
    check_schema(&request)?;
    let principal = shared.principal(&headers);
    let operation = {
        let mut state = shared.sql.lock().expect("sql lock poisoned");
        let key = (project.clone(), name.clone());
        let instance = state
            .instances
            .get_mut(&key)
            .ok_or_else(|| not_found(&project, &name))?;
        let current = instance["settings"]["settingsVersion"]
            .as_str()
            .unwrap_or("1")
            .to_string();
        let asked = &request["settings"]["settingsVersion"];
        let asked = asked
            .as_str()
            .map(str::to_string)
            .or_else(|| asked.as_i64().map(|n| n.to_string()));
        if asked.is_some_and(|asked| asked != current) {
            return Err(error(
                StatusCode::PRECONDITION_FAILED,
                "conditionNotMet",
                "Precondition check failed.".into(),
            ));
        }
        if let Some(settings) = request.get("settings") {
            let mut settings = settings.clone();
            if let Some(fields) = settings.as_object_mut() {
                fields.remove("settingsVersion");
            }
            merge(&mut instance["settings"], &settings);
        }
        let next = current.parse::<u64>().unwrap_or(1) + 1;
        instance["settings"]["settingsVersion"] = json!(next.to_string());
        instance["etag"] = json!(etag(instance));
        state.operation(
            &project,
            &name,
            "UPDATE",
            &principal,
            shared.config.operation_delay,
        )
    };
    shared.emit(entry(&shared, &headers, &project, &name, "update", request));
    Ok(crate::json_response(&operation))
}

async fn operation(
    State(shared): State<Arc<Shared>>,
    Path((project, operation)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let state = shared.sql.lock().expect("sql lock poisoned");
    state
        .operations
        .get(&(project, operation.clone()))
        .map(|(found, done_at)| {
            crate::json_response(&as_of(found, *done_at, shared.config.operation_delay))
        })
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "operationDoesNotExist",
                format!("The operation {operation} does not exist."),
            )
        })
}

/// The audit entry Cloud SQL writes for an instance change.
fn entry(
    shared: &Shared,
    headers: &HeaderMap,
    project: &str,
    instance: &str,
    verb: &str,
    request: Value,
) -> Value {
    audit::admin_entry(audit::AdminWrite {
        service_name: "cloudsql.googleapis.com",
        method_name: &format!("cloudsql.instances.{verb}"),
        // As Cloud SQL writes it: the instance alone, its project in the resource's labels.
        resource_name: &format!("instances/{instance}"),
        resource: json!({"type": "cloudsql_database", "labels": {"project_id": project,
            "database_id": format!("{project}:{instance}"), "region": "us-central1"}}),
        permission: &format!("cloudsql.instances.{verb}"),
        project,
        principal: &shared.principal(headers),
        user_agent: &crate::user_agent(headers),
        request: json!({"@type": "type.googleapis.com/google.cloud.sql.v1.SqlInstancesUpdateRequest", "body": request}),
        response: json!({}),
    })
}
