//! Every road to a watched hole: each write method Google's audit-log catalog lists for a watched resource routes to
//! the kind that judges it, or the table says why it cannot open the hole; and real captured entries route as
//! Google wrote them.

use std::collections::{BTreeMap, BTreeSet};

use antibody::config::Config;
use antibody::event::{AuditEvent, Transport};
use antibody::kinds::{self, Route};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// What happens to an entry of one method.
enum Fate {
    /// Re-read and judged by this kind, for each of these resource names (as Google writes them).
    Routes(&'static str, &'static [&'static str]),
    /// Names no single resource (answered, never refused): the kind's scheduled sweep reads what it made.
    Swept(&'static str, &'static [&'static str]),
    /// The method cannot create or widen the kind's violation: why.
    Harmless(&'static str),
    /// The method can open a hole no kind judges yet: what the README's list of gaps says about it.
    NotJudged(&'static str),
}
use Fate::*;

const P: &str = "acme-prod";
const INSTANCE: &[&str] = &["projects/acme-prod/zones/europe-north1-a/instances/web-1"];
const FIREWALL: &[&str] = &["projects/acme-prod/global/firewalls/allow-ssh"];
const TEMPLATE: &[&str] = &["projects/acme-prod/global/instanceTemplates/web"];
const REGION_TEMPLATE: &[&str] =
    &["projects/acme-prod/regions/europe-north1/instanceTemplates/web"];
const MIG: &[&str] = &["projects/acme-prod/zones/europe-north1-a/instanceGroupManagers/web"];
const REGION_MIG: &[&str] = &["projects/acme-prod/regions/europe-north1/instanceGroupManagers/web"];
const SQL: &[&str] = &[
    "instances/orders-db",
    "projects/acme-prod/instances/orders-db",
];
const STATE_ONLY: &str =
    "changes the instance's run state or hardware, none of its judged settings";

/// The catalog's compute methods, without the API surface (`v1.`, `beta.`, none) Compute puts first.
const COMPUTE: &[(&str, Fate)] = &[
    ("firewalls.insert", Routes("firewall", FIREWALL)),
    ("firewalls.patch", Routes("firewall", FIREWALL)),
    ("firewalls.update", Routes("firewall", FIREWALL)),
    (
        "firewalls.delete",
        Harmless("a deleted rule allows nothing"),
    ),
    ("instances.insert", Routes("vm", INSTANCE)),
    (
        "instances.bulkInsert",
        Swept(
            "vm",
            &["projects/acme-prod/zones/europe-north1-a/instances"],
        ),
    ),
    ("instances.setMetadata", Routes("vm", INSTANCE)),
    ("instances.setServiceAccount", Routes("vm", INSTANCE)),
    (
        "instances.setSecondaryServiceAccount",
        Routes("vm", INSTANCE),
    ),
    ("instances.addAccessConfig", Routes("vm", INSTANCE)),
    ("instances.updateNetworkInterface", Routes("vm", INSTANCE)),
    (
        "instances.updateShieldedInstanceConfig",
        Routes("vm", INSTANCE),
    ),
    ("instances.updateShieldedVmConfig", Routes("vm", INSTANCE)),
    ("instances.update", Routes("vm", INSTANCE)),
    // A fix that stopped an instance running as the default account with full access is undone by starting it.
    ("instances.start", Routes("vm", INSTANCE)),
    ("instances.startWithEncryptionKey", Routes("vm", INSTANCE)),
    ("instances.resume", Routes("vm", INSTANCE)),
    ("instances.delete", Routes("vm", INSTANCE)),
    (
        "instances.updateAccessConfig",
        Harmless(
            "changes an existing access config's address or tier; the config itself was judged when it was added",
        ),
    ),
    (
        "instances.deleteAccessConfig",
        Harmless("removes external access"),
    ),
    (
        "instances.setTags",
        Harmless("tags choose which firewall rules apply; every rule is judged on its own"),
    ),
    (
        "instances.setLabels",
        Harmless("labels are read again at every judgement"),
    ),
    (
        "instances.setName",
        Harmless("a rename keeps every judged setting"),
    ),
    ("instances.setDeletionProtection", Harmless(STATE_ONLY)),
    ("instances.setDiskAutoDelete", Harmless(STATE_ONLY)),
    ("instances.setMachineResources", Harmless(STATE_ONLY)),
    ("instances.setMachineType", Harmless(STATE_ONLY)),
    ("instances.setMinCpuPlatform", Harmless(STATE_ONLY)),
    ("instances.setScheduling", Harmless(STATE_ONLY)),
    ("instances.attachDisk", Harmless(STATE_ONLY)),
    ("instances.detachDisk", Harmless(STATE_ONLY)),
    ("instances.addResourcePolicies", Harmless(STATE_ONLY)),
    ("instances.removeResourcePolicies", Harmless(STATE_ONLY)),
    ("instances.updateDisplayDevice", Harmless(STATE_ONLY)),
    ("instances.simulateMaintenanceEvent", Harmless(STATE_ONLY)),
    ("instances.reset", Harmless(STATE_ONLY)),
    ("instances.stop", Harmless(STATE_ONLY)),
    ("instances.suspend", Harmless(STATE_ONLY)),
    (
        "instances.setShieldedInstanceIntegrityPolicy",
        Harmless(
            "re-learns the integrity baseline; Secure Boot and vTPM are set by updateShieldedInstanceConfig",
        ),
    ),
    (
        "instances.setShieldedVmIntegrityPolicy",
        Harmless(
            "re-learns the integrity baseline; Secure Boot and vTPM are set by updateShieldedInstanceConfig",
        ),
    ),
    (
        "instances.setSecurityPolicy",
        Harmless("attaches a Cloud Armor policy, which can only narrow who reaches the instance"),
    ),
    (
        "instances.setIamPolicy",
        NotJudged(
            "Compute resources' own IAM policies (instances, templates, firewall policies) are not read",
        ),
    ),
    (
        "projects.setCommonInstanceMetadata",
        Routes("vm", &["projects/acme-prod"]),
    ),
    (
        "instanceTemplates.insert",
        Routes("instance-template", TEMPLATE),
    ),
    (
        "instanceTemplates.delete",
        Harmless("a deleted template creates nothing"),
    ),
    (
        "instanceTemplates.setIamPolicy",
        NotJudged(
            "Compute resources' own IAM policies (instances, templates, firewall policies) are not read",
        ),
    ),
    (
        "regionInstanceTemplates.insert",
        Routes("instance-template", REGION_TEMPLATE),
    ),
    (
        "regionInstanceTemplates.delete",
        Harmless("a deleted template creates nothing"),
    ),
];

/// Both managed instance group collections: what each method does to the template the group builds from. The
/// instances a group makes are inserted by Google's service agent (left alone by the instance policy); the template
/// a person gave the group is what is judged.
const MIG_METHODS: &[(&str, Option<&str>)] = &[
    ("insert", None),
    ("patch", None),
    ("update", None),
    ("setInstanceTemplate", None),
    ("applyUpdatesToInstances", Some(BUILDS_FROM_JUDGED)),
    ("createInstances", Some(BUILDS_FROM_JUDGED)),
    ("recreateInstances", Some(BUILDS_FROM_JUDGED)),
    ("resize", Some(BUILDS_FROM_JUDGED)),
    ("resizeAdvanced", Some(BUILDS_FROM_JUDGED)),
    ("delete", Some("a deleted group builds nothing")),
    (
        "abandonInstances",
        Some("the instances it abandons keep their settings, already judged"),
    ),
    ("deleteInstances", Some("deletes instances")),
    (
        "deletePerInstanceConfigs",
        Some("per-instance overrides are removed; the template remains, judged"),
    ),
    ("setAutoHealingPolicies", Some("health checks only")),
    ("setTargetPools", Some("load-balancer membership only")),
];
const BUILDS_FROM_JUDGED: &str = "builds from the template judged when the group was given it";

/// Per-instance configs can override an instance's metadata; they are not read.
const PER_INSTANCE: &[&str] = &["updatePerInstanceConfigs", "patchPerInstanceConfigs"];

const FIREWALL_POLICY_WRITES: &[&str] = &[
    "insert",
    "patch",
    "addRule",
    "patchRule",
    "cloneRules",
    "addAssociation",
];
const FIREWALL_POLICY_HARMLESS: &[(&str, &str)] = &[
    ("delete", "a deleted policy allows nothing"),
    ("removeRule", "a removed rule allows nothing"),
    (
        "removeAssociation",
        "a policy no network uses allows nothing",
    ),
];

const KEY_RING: &str = "projects/acme-prod/locations/europe-north1/keyRings/ring";
const CRYPTO_KEY: &str = "projects/acme-prod/locations/europe-north1/keyRings/ring/cryptoKeys/key";
const REPOSITORY: &str = "projects/acme-prod/locations/europe-north1/repositories/images";
const SECRET: &[&str] = &["projects/acme-prod/secrets/db-password"];
const REGIONAL_SECRET: &[&str] =
    &["projects/acme-prod/locations/europe-north1/secrets/db-password"];
const RUN_V2: &[&str] = &["projects/acme-prod/locations/europe-north1/services/api"];
const RUN_V1: &[&str] = &["namespaces/acme-prod/services/api"];
const FUNCTION: &[&str] = &["projects/acme-prod/locations/europe-north1/functions/hook"];
const DATASET: &[&str] = &["projects/acme-prod/datasets/sales"];
const CUSTOM_ROLES: &str = "a custom role's permissions are not judged; grants of it by name are";
const SOURCE_URL: &str = "a signed URL for the caller's own source upload or download";
const UPGRADE: &str =
    "moves a function to 2nd gen, served by a Cloud Run service whose own entries are judged";
const OBJECT_ACL: &str = "an object's own ACL is not read; `enable_uniform_access` turns every object ACL of a bucket off";
const NO_IAM: &str =
    "creates or changes the resource's settings; its IAM policy is set by SetIamPolicy alone";

/// Every other service's catalog methods that write a resource a kind watches.
const OTHERS: &[(&str, &str, Fate)] = &[
    (
        "storage.googleapis.com",
        "storage.buckets.create",
        Routes("bucket", &["projects/_/buckets/media"]),
    ),
    (
        "storage.googleapis.com",
        "storage.buckets.update",
        Routes("bucket", &["projects/_/buckets/media"]),
    ),
    (
        "storage.googleapis.com",
        "storage.setIamPermissions",
        Routes("bucket", &["projects/_/buckets/media"]),
    ),
    (
        "storage.googleapis.com",
        "storage.objects.update",
        NotJudged(OBJECT_ACL),
    ),
    (
        "storage.googleapis.com",
        "storage.objects.create",
        NotJudged(OBJECT_ACL),
    ),
    (
        "storage.googleapis.com",
        "storage.buckets.delete",
        Harmless("a deleted bucket serves nothing"),
    ),
    (
        "storage.googleapis.com",
        "storage.objects.delete",
        Harmless("a deleted object serves nothing"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.create",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.update",
        Routes("sql-instance", SQL),
    ),
    // The clone is a new instance with the source's settings; a restore or migration may replace an instance's.
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.clone",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.restoreBackup",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.promoteReplica",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.demoteMaster",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.migrate",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.delete",
        Routes("sql-instance", SQL),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.addServerCa",
        Harmless("certificates only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.rotateServerCa",
        Harmless("certificates only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.resetSslConfig",
        Harmless("client certificates only; the SSL mode is unchanged"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.connect",
        Harmless("a connection, not a change"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.login",
        Harmless("a connection, not a change"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.query",
        Harmless("data, not settings"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.export",
        Harmless("data, not settings"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.import",
        Harmless("data, not settings"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.truncateLog",
        Harmless("data, not settings"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.reencrypt",
        Harmless("encryption at rest only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.failover",
        Harmless("the standby takes over the same settings"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.restart",
        Harmless("run state only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.performDiskShrink",
        Harmless("storage only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.resetReplicaSize",
        Harmless("storage only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.startReplica",
        Harmless("replication state only"),
    ),
    (
        "cloudsql.googleapis.com",
        "cloudsql.instances.stopReplica",
        Harmless("replication state only"),
    ),
    (
        "bigquery.googleapis.com",
        "google.cloud.bigquery.v2.DatasetService.InsertDataset",
        Routes("dataset", DATASET),
    ),
    (
        "bigquery.googleapis.com",
        "google.cloud.bigquery.v2.DatasetService.PatchDataset",
        Routes("dataset", DATASET),
    ),
    (
        "bigquery.googleapis.com",
        "google.cloud.bigquery.v2.DatasetService.UpdateDataset",
        Routes("dataset", DATASET),
    ),
    (
        "bigquery.googleapis.com",
        "google.cloud.bigquery.v2.DatasetService.DeleteDataset",
        Harmless("a deleted dataset shares nothing"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CreateSink",
        Routes("log-routing", &["projects/acme-prod/sinks/export"]),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.UpdateSink",
        Routes("log-routing", &["projects/acme-prod/sinks/_Default"]),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.DeleteSink",
        Routes("log-routing", &["projects/acme-prod/sinks/export"]),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CreateExclusion",
        Routes("log-routing", &["projects/acme-prod/exclusions/noise"]),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.UpdateExclusion",
        Routes("log-routing", &["projects/acme-prod/exclusions/noise"]),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.DeleteExclusion",
        Harmless("a removed exclusion keeps more entries"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CreateBucket",
        NotJudged("log buckets' retention is not judged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CreateBucketAsync",
        NotJudged("log buckets' retention is not judged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.UpdateBucket",
        NotJudged("log buckets' retention is not judged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.UpdateBucketAsync",
        NotJudged("log buckets' retention is not judged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.DeleteBucket",
        NotJudged("log buckets' retention is not judged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.UndeleteBucket",
        Harmless("brings entries back"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CopyLogEntries",
        Harmless("copies entries; the originals stay"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CreateLink",
        Harmless("a read-only BigQuery link to a bucket"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.CreateView",
        Harmless("views select what readers see; routing is unchanged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.UpdateView",
        Harmless("views select what readers see; routing is unchanged"),
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.ConfigServiceV2.DeleteView",
        Harmless("views select what readers see; routing is unchanged"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.CreateServiceAccountKey",
        Routes(
            "sa-key",
            &["projects/acme-prod/serviceAccounts/ci@acme-prod.iam.gserviceaccount.com/keys/0a1b"],
        ),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.UploadServiceAccountKey",
        Routes(
            "sa-key",
            &["projects/acme-prod/serviceAccounts/ci@acme-prod.iam.gserviceaccount.com/keys/0a1b"],
        ),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.EnableServiceAccountKey",
        Routes(
            "sa-key",
            &["projects/acme-prod/serviceAccounts/ci@acme-prod.iam.gserviceaccount.com/keys/0a1b"],
        ),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.DisableServiceAccountKey",
        Harmless("a disabled key signs nothing"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.DeleteServiceAccountKey",
        Harmless("a deleted key signs nothing"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.SetIAMPolicy",
        Routes(
            "resource-iam",
            &["projects/acme-prod/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com"],
        ),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.CreateRole",
        NotJudged(CUSTOM_ROLES),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.UpdateRole",
        NotJudged(CUSTOM_ROLES),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.UndeleteRole",
        NotJudged(CUSTOM_ROLES),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.DeleteRole",
        Harmless("a deleted role grants nothing"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.CreateServiceAccount",
        Harmless("a new account holds no keys and no grants"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.PatchServiceAccount",
        Harmless("name and description only"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.UpdateServiceAccount",
        Harmless("name and description only"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.DeleteServiceAccount",
        Harmless("a deleted account acts for no one"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.DisableServiceAccount",
        Harmless("a disabled account acts for no one"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.EnableServiceAccount",
        Harmless("its keys and grants were judged when they were made; none is added"),
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.UndeleteServiceAccount",
        Harmless("its keys and grants were judged when they were made; none is added"),
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
        Routes("project-iam", &["projects/acme-prod"]),
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
        Routes("project-iam", &["projects/acme-prod"]),
    ),
    (
        "pubsub.googleapis.com",
        "google.iam.v1.IAMPolicy.SetIamPolicy",
        Routes(
            "resource-iam",
            &[
                "projects/acme-prod/topics/orders",
                "projects/acme-prod/subscriptions/orders-sub",
            ],
        ),
    ),
    (
        "pubsub.googleapis.com",
        "google.pubsub.v1.Publisher.CreateTopic",
        Harmless(NO_IAM),
    ),
    (
        "pubsub.googleapis.com",
        "google.pubsub.v1beta2.Publisher.CreateTopic",
        Harmless(NO_IAM),
    ),
    (
        "pubsub.googleapis.com",
        "google.pubsub.v1.Publisher.UpdateTopic",
        Harmless(NO_IAM),
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secretmanager.v1.SecretManagerService.SetIamPolicy",
        Routes("resource-iam", SECRET),
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secrets.v1beta1.SecretManagerService.SetIamPolicy",
        Routes("resource-iam", SECRET),
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secretmanager.v1.SecretManagerService.CreateSecret",
        Harmless(NO_IAM),
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secretmanager.v1.SecretManagerService.UpdateSecret",
        Harmless(NO_IAM),
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secrets.v1beta1.SecretManagerService.CreateSecret",
        Harmless(NO_IAM),
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secrets.v1beta1.SecretManagerService.UpdateSecret",
        Harmless(NO_IAM),
    ),
    (
        "cloudkms.googleapis.com",
        "SetIamPolicy",
        Routes("resource-iam", &[KEY_RING, CRYPTO_KEY]),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1.ArtifactRegistry.SetIamPolicy",
        Routes("resource-iam", &[REPOSITORY]),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta1.ArtifactRegistry.SetIamPolicy",
        Routes("resource-iam", &[REPOSITORY]),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta2.ArtifactRegistry.SetIamPolicy",
        Routes("resource-iam", &[REPOSITORY]),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1.ArtifactRegistry.CreateRepository",
        Harmless(NO_IAM),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1.ArtifactRegistry.UpdateRepository",
        Harmless(NO_IAM),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta1.ArtifactRegistry.CreateRepository",
        Harmless(NO_IAM),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta1.ArtifactRegistry.UpdateRepository",
        Harmless(NO_IAM),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta2.ArtifactRegistry.CreateRepository",
        Harmless(NO_IAM),
    ),
    (
        "artifactregistry.googleapis.com",
        "google.devtools.artifactregistry.v1beta2.ArtifactRegistry.UpdateRepository",
        Harmless(NO_IAM),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v2.Services.SetIamPolicy",
        Routes("resource-iam", RUN_V2),
    ),
    // A service's own settings can turn its invoker IAM check off.
    (
        "run.googleapis.com",
        "google.cloud.run.v2.Services.CreateService",
        Routes("resource-iam", RUN_V2),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v2.Services.UpdateService",
        Routes("resource-iam", RUN_V2),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v1.Services.SetIamPolicy",
        Routes("resource-iam", RUN_V2),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v1.Services.CreateService",
        Routes("resource-iam", RUN_V1),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v1.Services.ReplaceService",
        Routes("resource-iam", RUN_V1),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v2.Services.DeleteService",
        Harmless("a deleted service answers no one"),
    ),
    (
        "run.googleapis.com",
        "google.cloud.run.v1.Services.DeleteService",
        Harmless("a deleted service answers no one"),
    ),
    (
        "cloudfunctions.googleapis.com",
        "SetIamPolicy",
        Routes("resource-iam", FUNCTION),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.SetIamPolicy",
        Routes("resource-iam", FUNCTION),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.CreateFunction",
        Harmless(NO_IAM),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.UpdateFunction",
        Harmless(NO_IAM),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.CreateFunction",
        Harmless(
            "a 2nd-gen function is served by a Cloud Run service, whose own entries are judged",
        ),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.UpdateFunction",
        Harmless(
            "a 2nd-gen function is served by a Cloud Run service, whose own entries are judged",
        ),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2beta.FunctionService.CreateFunction",
        Harmless(
            "a 2nd-gen function is served by a Cloud Run service, whose own entries are judged",
        ),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2beta.FunctionService.UpdateFunction",
        Harmless(
            "a 2nd-gen function is served by a Cloud Run service, whose own entries are judged",
        ),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.DeleteFunction",
        Harmless("a deleted function answers no one"),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.DeleteFunction",
        Harmless("a deleted function answers no one"),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2beta.FunctionService.DeleteFunction",
        Harmless("a deleted function answers no one"),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.CallFunction",
        Harmless("a call, not a change"),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.GenerateUploadUrl",
        Harmless(SOURCE_URL),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v1.CloudFunctionsService.GenerateDownloadUrl",
        Harmless(SOURCE_URL),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.GenerateUploadUrl",
        Harmless(SOURCE_URL),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.GenerateDownloadUrl",
        Harmless(SOURCE_URL),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2beta.FunctionService.GenerateUploadUrl",
        Harmless(SOURCE_URL),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2beta.FunctionService.GenerateDownloadUrl",
        Harmless(SOURCE_URL),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.SetupFunctionUpgradeConfig",
        Harmless(UPGRADE),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.RedirectFunctionUpgradeTraffic",
        Harmless(UPGRADE),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.CommitFunctionUpgrade",
        Harmless(UPGRADE),
    ),
    (
        "cloudfunctions.googleapis.com",
        "google.cloud.functions.v2.FunctionService.AbortFunctionUpgrade",
        Harmless(UPGRADE),
    ),
];

/// Methods Google writes that the catalog (made for Eventarc's per-project triggers) does not list: folder and
/// organization policies (in their own audit logs), BigQuery IAM through the IAM API, and a v1 method the catalog
/// knows only in beta (Compute's v1 discovery document has it).
const OUTSIDE_CATALOG: &[(&str, &str, Fate)] = &[
    (
        "compute.googleapis.com",
        "v1.compute.regionInstanceTemplates.insert",
        Routes("instance-template", REGION_TEMPLATE),
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "google.cloud.resourcemanager.v3.Folders.SetIamPolicy",
        Routes("project-iam", &["folders/123456789012"]),
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy",
        Routes("project-iam", &["organizations/123456789012"]),
    ),
    (
        "bigquery.googleapis.com",
        "google.iam.v1.IAMPolicy.SetIamPolicy",
        Routes("dataset", DATASET),
    ),
];

/// The catalog's collections whose writes can open a watched hole (Compute's surface prefix taken off).
fn in_scope(service: &str, method: &str) -> bool {
    let method = compute_method(method);
    let prefixes: &[&str] = match service {
        "compute.googleapis.com" => &[
            "compute.firewalls.",
            "compute.instances.",
            "compute.projects.setCommonInstanceMetadata",
            "compute.instanceTemplates.",
            "compute.regionInstanceTemplates.",
            "compute.instanceGroupManagers.",
            "compute.regionInstanceGroupManagers.",
            "compute.networkFirewallPolicies.",
            "compute.regionNetworkFirewallPolicies.",
        ],
        "storage.googleapis.com" => &[
            "storage.buckets.",
            "storage.objects.",
            "storage.setIamPermissions",
        ],
        "cloudsql.googleapis.com" => &["cloudsql.instances."],
        "bigquery.googleapis.com" => &["google.cloud.bigquery.v2.DatasetService."],
        "logging.googleapis.com" => &["google.logging.v2.ConfigServiceV2."],
        "iam.googleapis.com" => &["google.iam.admin.v1."],
        "cloudresourcemanager.googleapis.com" => &[
            "SetIamPolicy",
            "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
        ],
        "pubsub.googleapis.com" => &[
            "google.iam.v1.IAMPolicy.",
            "google.pubsub.v1.Publisher.",
            "google.pubsub.v1beta2.Publisher.",
        ],
        "secretmanager.googleapis.com" => &[
            "google.cloud.secretmanager.v1.SecretManagerService.",
            "google.cloud.secrets.v1beta1.SecretManagerService.",
        ],
        "cloudkms.googleapis.com" => &["SetIamPolicy"],
        "artifactregistry.googleapis.com" => &["google.devtools.artifactregistry."],
        "run.googleapis.com" => &[
            "google.cloud.run.v1.Services.",
            "google.cloud.run.v2.Services.",
        ],
        "cloudfunctions.googleapis.com" => &["SetIamPolicy", "google.cloud.functions."],
        _ => &[],
    };
    // Within a service, the verbs that create, change or open up the resource itself (a secret's versions, a
    // topic's messages, a repository's packages are data, not settings).
    let settings_verb = match service {
        "pubsub.googleapis.com" => ["CreateTopic", "UpdateTopic", "SetIamPolicy"]
            .iter()
            .any(|verb| method.ends_with(verb)),
        "secretmanager.googleapis.com" => ["CreateSecret", "UpdateSecret", "SetIamPolicy"]
            .iter()
            .any(|verb| method.ends_with(verb)),
        "artifactregistry.googleapis.com" => {
            ["CreateRepository", "UpdateRepository", "SetIamPolicy"]
                .iter()
                .any(|verb| method.ends_with(verb))
        }
        _ => true,
    };
    settings_verb && prefixes.iter().any(|prefix| method.starts_with(prefix))
}

/// A Compute method without the API surface Compute puts first.
fn compute_method(method: &str) -> &str {
    for surface in ["v1.", "beta.", "alpha."] {
        if let Some(rest) = method.strip_prefix(surface) {
            return rest;
        }
    }
    method
}

/// Reads are never a road to a hole.
fn is_read(method: &str) -> bool {
    let verb = method.rsplit('.').next().unwrap_or(method);
    let lower = verb.to_ascii_lowercase();
    [
        "get",
        "list",
        "aggregatedlist",
        "testiampermissions",
        "search",
        "query",
    ]
    .iter()
    .any(|read| lower.starts_with(read))
        && verb != "query"
}

fn catalog() -> BTreeMap<String, BTreeSet<String>> {
    let catalog = fixture("audit.method-catalog.google-cloudevents.json");
    let mut services = BTreeMap::new();
    for service in catalog["services"].as_array().expect("services") {
        let name = service["serviceName"]
            .as_str()
            .expect("serviceName")
            .to_string();
        let methods = service["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .map(|method| {
                method["methodName"]
                    .as_str()
                    .expect("methodName")
                    .to_string()
            })
            .collect();
        services.insert(name, methods);
    }
    services
}

/// The table, with every Compute row spelled as the catalog spells it, per surface.
fn table(
    catalog: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(&'static str, String, &'static Fate)> {
    let mut rows = Vec::new();
    let compute = &catalog["compute.googleapis.com"];
    let spellings = |method: &str| -> Vec<String> {
        let mut found: Vec<String> = ["v1.", "beta.", "alpha.", ""]
            .iter()
            .map(|surface| format!("{surface}compute.{method}"))
            .filter(|spelled| compute.contains(spelled))
            .collect();
        if found.is_empty() {
            found.push(format!("v1.compute.{method}"));
        }
        found
    };
    for (method, fate) in COMPUTE {
        for spelled in spellings(method) {
            rows.push(("compute.googleapis.com", spelled, fate));
        }
    }
    static MIG_ROUTES: Fate = Routes("instance-template", MIG);
    static REGION_MIG_ROUTES: Fate = Routes("instance-template", REGION_MIG);
    static MIG_HARMLESS: std::sync::OnceLock<Vec<Fate>> = std::sync::OnceLock::new();
    let harmless = MIG_HARMLESS.get_or_init(|| {
        MIG_METHODS
            .iter()
            .map(|(_, reason)| Harmless(reason.unwrap_or_default()))
            .collect()
    });
    static PER_INSTANCE_NOT_JUDGED: Fate =
        NotJudged("a managed instance's per-instance metadata overrides are not read");
    for (collection, routes) in [
        ("instanceGroupManagers", &MIG_ROUTES),
        ("regionInstanceGroupManagers", &REGION_MIG_ROUTES),
    ] {
        for verb in PER_INSTANCE {
            for spelled in spellings(&format!("{collection}.{verb}")) {
                rows.push(("compute.googleapis.com", spelled, &PER_INSTANCE_NOT_JUDGED));
            }
        }
        for ((verb, reason), harmless) in MIG_METHODS.iter().zip(harmless) {
            let fate = if reason.is_some() { harmless } else { routes };
            for spelled in spellings(&format!("{collection}.{verb}")) {
                rows.push(("compute.googleapis.com", spelled, fate));
            }
        }
    }
    static POLICY_NOT_JUDGED: Fate =
        NotJudged("network firewall policies (global and regional) are not read");
    static POLICY_HARMLESS: std::sync::OnceLock<Vec<Fate>> = std::sync::OnceLock::new();
    let policy_harmless = POLICY_HARMLESS.get_or_init(|| {
        FIREWALL_POLICY_HARMLESS
            .iter()
            .map(|(_, reason)| Harmless(reason))
            .collect()
    });
    static POLICY_IAM: Fate = NotJudged(
        "Compute resources' own IAM policies (instances, templates, firewall policies) are not read",
    );
    for collection in ["networkFirewallPolicies", "regionNetworkFirewallPolicies"] {
        for verb in FIREWALL_POLICY_WRITES {
            for spelled in spellings(&format!("{collection}.{verb}")) {
                rows.push(("compute.googleapis.com", spelled, &POLICY_NOT_JUDGED));
            }
        }
        for ((verb, _), fate) in FIREWALL_POLICY_HARMLESS.iter().zip(policy_harmless) {
            for spelled in spellings(&format!("{collection}.{verb}")) {
                rows.push(("compute.googleapis.com", spelled, fate));
            }
        }
        for spelled in spellings(&format!("{collection}.setIamPolicy")) {
            rows.push(("compute.googleapis.com", spelled, &POLICY_IAM));
        }
    }
    for (service, method, fate) in OTHERS.iter().chain(OUTSIDE_CATALOG) {
        rows.push((service, method.to_string(), fate));
    }
    rows
}

fn entry(service: &str, method: &str, resource_name: &str) -> AuditEvent {
    let mut resource = json!({"type": "audited_resource", "labels": {"project_id": P, "location": "europe-north1"}});
    if service == "cloudsql.googleapis.com" {
        resource = json!({"type": "cloudsql_database", "labels": {"project_id": P,
            "database_id": format!("{P}:orders-db"), "region": "europe-north1"}});
    }
    let entry = json!({
        "insertId": "table-1",
        "logName": format!("projects/{P}/logs/cloudaudit.googleapis.com%2Factivity"),
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": service,
            "methodName": method,
            "resourceName": resource_name,
            "authenticationInfo": {"principalEmail": "dev@acme.example"},
        },
        "resource": resource,
    });
    AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("a valid entry")
}

// Issue 34: the catalog is the universe of what Google logs; a watched kind's write method that no row names (a new
// surface, a new verb) fails here until someone decides what it does to the hole.
#[test]
fn every_write_method_the_catalog_lists_for_a_watched_resource_is_decided() {
    let catalog = catalog();
    let rows = table(&catalog);
    let named: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(service, method, _)| (service.to_string(), method.clone()))
        .collect();
    let mut undecided = Vec::new();
    for (service, methods) in &catalog {
        for method in methods {
            if in_scope(service, method)
                && !is_read(method)
                && !named.contains(&(service.clone(), method.clone()))
            {
                undecided.push(format!("{service} {method}"));
            }
        }
    }
    assert!(undecided.is_empty(), "no row decides: {undecided:#?}");
    // And no row names a method Google does not log (a misspelt row would decide nothing).
    let outside: BTreeSet<(&str, &str)> = OUTSIDE_CATALOG
        .iter()
        .map(|(service, method, _)| (*service, *method))
        .collect();
    let unknown: Vec<_> = rows
        .iter()
        .filter(|(service, method, _)| {
            !outside.contains(&(*service, method.as_str()))
                && !catalog
                    .get(*service)
                    .is_some_and(|methods| methods.contains(method))
        })
        .map(|(service, method, _)| format!("{service} {method}"))
        .collect();
    assert!(unknown.is_empty(), "not in Google's catalog: {unknown:#?}");
}

#[test]
fn every_road_the_table_says_routes_reaches_its_kind() {
    let catalog = catalog();
    let mut wrong = Vec::new();
    for (service, method, fate) in table(&catalog) {
        match fate {
            Routes(kind, names) => {
                for name in *names {
                    match kinds::route(&entry(service, &method, name)) {
                        Route::Check(target) | Route::Deleted(target)
                            if target.kind.name() == *kind
                                && (target.project() == P
                                    || name.starts_with("folders/")
                                    || name.starts_with("organizations/")) => {}
                        other => wrong.push(format!("{method} {name}: {other:?}, want {kind}")),
                    }
                }
            }
            Swept(kind, names) => {
                for name in *names {
                    match kinds::route(&entry(service, &method, name)) {
                        Route::Ignore(_) => {}
                        other => wrong.push(format!(
                            "{method} {name}: {other:?}, want {kind} to ignore it"
                        )),
                    }
                }
            }
            Harmless(reason) | NotJudged(reason) => {
                assert!(!reason.is_empty(), "{method}: a row says why");
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// What `plan` makes triggers of is what the table routes: every watched method is a road the table names.
#[test]
fn every_watched_method_is_a_row_of_the_table() {
    let catalog = catalog();
    let routed: BTreeSet<(String, String)> = table(&catalog)
        .into_iter()
        .filter(|(_, _, fate)| matches!(fate, Routes(..)))
        .map(|(service, method, _)| (service.to_string(), method))
        .collect();
    let stray: Vec<_> = kinds::watches(&Config::default())
        .into_iter()
        .filter(|watch| !routed.contains(&(watch.service.to_string(), watch.method.to_string())))
        .map(|watch| format!("{} {}", watch.service, watch.method))
        .collect();
    assert!(stray.is_empty(), "watched but no road: {stray:#?}");
}

// Issue 34: entries as Google wrote them (Cloud Custodian's captured events): each is read, and routes to the
// resource it names or is answered as one no policy needs, never refused as malformed.
#[test]
fn real_captured_entries_route_as_google_wrote_them() {
    let expected: &[(&str, Option<(&str, &str)>)] = &[
        (
            "instance-template-create.c7n.json",
            Some((
                "instance-template",
                "projects/cloud-custodian/global/instanceTemplates/custodian-instance-template",
            )),
        ),
        (
            "log-create-project-sink.c7n.json",
            Some((
                "log-routing",
                "projects/test-project-232910/sinks/testqqqqqqqqqqqqqqqqq",
            )),
        ),
        (
            "log-create-project-exclusion.c7n.json",
            Some((
                "log-routing",
                "projects/test-project-232910/exclusions/qwerty",
            )),
        ),
        // Cloud SQL names a backup run `backupRuns/` and a certificate's instance `instances/I`: neither changes
        // who may connect.
        ("sql-backup-create.c7n.json", None),
        ("sql-ssl-cert-create.c7n.json", None),
        // BigQuery's legacy AuditData names the collection; the catalog's InsertDataset entry names the dataset.
        ("bq-dataset-create.c7n.json", None),
        ("bq-table-create.c7n.json", None),
        ("kms-keyring-create.c7n.json", None),
        ("kms-cryptokey-create.c7n.json", None),
        ("pubsub-subscription-create.c7n.json", None),
        ("iam-role-create.c7n.json", None),
        ("route-create.c7n.json", None),
        ("router-create.c7n.json", None),
        ("autoscaler-insert.c7n.json", None),
        ("dns-policy-create.c7n.json", None),
    ];
    let dir = format!("{}/tests/fixtures/entries", env!("CARGO_MANIFEST_DIR"));
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("the corpus")
        .map(|entry| {
            entry
                .expect("a file")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let listed: BTreeSet<String> = expected.iter().map(|(file, _)| file.to_string()).collect();
    assert_eq!(on_disk, listed, "every captured entry has an expectation");
    for (file, want) in expected {
        let entry = fixture(&format!("entries/{file}"));
        let event = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None)
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        let route = kinds::route(&event);
        match (want, &route) {
            (Some((kind, key)), Route::Check(target)) => {
                assert_eq!((target.kind.name(), target.key()), (*kind, *key), "{file}");
            }
            (None, Route::Ignore(_)) => {}
            _ => panic!("{file}: {route:?}, want {want:?}"),
        }
    }
}

// A regional secret's entry names `projects/P/locations/L/secrets/S`; its policy is served by the region's own
// endpoint, not read yet: the entry is acknowledged as not watched, never refused (a 400 is redelivered).
#[test]
fn a_regional_secrets_entry_is_acknowledged_not_refused() {
    for method in [
        "google.cloud.secretmanager.v1.SecretManagerService.SetIamPolicy",
        "google.cloud.secrets.v1beta1.SecretManagerService.SetIamPolicy",
    ] {
        for name in REGIONAL_SECRET {
            let route = kinds::route(&entry("secretmanager.googleapis.com", method, name));
            assert!(
                matches!(route, Route::Ignore(_)),
                "{method} {name}: {route:?}"
            );
        }
    }
}
