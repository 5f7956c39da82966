//! Google's recorded answers as the sandbox's contract: for each recording (Cloud Custodian's test flights, real
//! Google responses, in `tests/flights/` with their attribution), the sandbox is given the same resource through its
//! API, asked the same request, and must answer in the same shape — every field both carry has the same JSON type
//! (int64 as a string, enums as strings, lists as lists), the list envelope is the same, no field is `null`, and
//! every top-level field Google returned is there unless it is named below with the reason it is not.

mod common;

use gcp_sandbox::SandboxConfig;
use reqwest::Method;
use serde_json::Value;

/// One recorded request and how to stand the sandbox where Google stood.
struct Flight {
    /// Under `tests/flights/`.
    file: &'static str,
    /// Calls that make the recorded resource exist: method, path, JSON body.
    setup: &'static [(Method, &'static str, &'static str)],
    /// The recorded request: method, path, JSON body.
    request: (Method, &'static str, Option<&'static str>),
    /// Top-level fields of Google's answer the sandbox does not give, each with the reason.
    not_given: &'static [(&'static str, &'static str)],
}

/// The instance template Cloud Custodian's recordings hold, as its creator sent it.
const TEMPLATE: &str = r#"{"name": "custodian-instance-template", "description": "", "properties": {
                    "canIpForward": false, "machineType": "f1-micro",
                    "disks": [{"deviceName": "custodian-instance-template", "kind": "compute#attachedDisk",
                        "initializeParams": {"diskSizeGb": "10", "sourceImage": "projects/debian-cloud/global/images/debian-9-stretch-v20190514", "diskType": "pd-standard"},
                        "autoDelete": true, "index": 0, "boot": true, "mode": "READ_WRITE", "type": "PERSISTENT"}],
                    "scheduling": {"automaticRestart": true, "preemptible": false, "onHostMaintenance": "MIGRATE"},
                    "serviceAccounts": [{"email": "62100636004-compute@developer.gserviceaccount.com",
                        "scopes": ["https://www.googleapis.com/auth/logging.write"]}],
                    "networkInterfaces": [{"kind": "compute#networkInterface",
                        "network": "https://www.googleapis.com/compute/v1/projects/cloud-custodian/global/networks/default",
                        "accessConfigs": [{"networkTier": "PREMIUM", "kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT", "name": "External NAT"}]}],
                    "metadata": {"kind": "compute#metadata", "fingerprint": "cc9idZffRtk="}}}"#;

/// Service Usage's `config` describes the API itself; the sandbox knows a service by its name only.
const SERVICE_CONFIG: &str = "the API's own description; the sandbox knows services by name";

fn flights() -> Vec<Flight> {
    vec![
        Flight {
            file: "service-get/get-v1-projects-cloud-custodian-services-deploymentmanager.googleapis.com_1.json",
            setup: &[],
            request: (
                Method::GET,
                "/v1/projects/cloud-custodian/services/deploymentmanager.googleapis.com",
                None,
            ),
            not_given: &[
                ("title", SERVICE_CONFIG),
                ("apis", SERVICE_CONFIG),
                ("documentation", SERVICE_CONFIG),
                ("quota", SERVICE_CONFIG),
                ("authentication", SERVICE_CONFIG),
                ("usage", SERVICE_CONFIG),
                ("endpoints", SERVICE_CONFIG),
                ("monitoredResources", SERVICE_CONFIG),
                ("monitoring", SERVICE_CONFIG),
            ],
        },
        Flight {
            file: "instance-template-get/get-compute-v1-projects-cloud-custodian-global-instanceTemplates-custodian-instance-template_1.json",
            setup: &[(
                Method::POST,
                "/compute/v1/projects/cloud-custodian/global/instanceTemplates",
                TEMPLATE,
            )],
            request: (
                Method::GET,
                "/compute/v1/projects/cloud-custodian/global/instanceTemplates/custodian-instance-template",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "instance-template-query/get-compute-v1-projects-cloud-custodian-global-instanceTemplates_1.json",
            setup: &[(
                Method::POST,
                "/compute/v1/projects/cloud-custodian/global/instanceTemplates",
                TEMPLATE,
            )],
            request: (
                Method::GET,
                "/compute/v1/projects/cloud-custodian/global/instanceTemplates",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "test_instance_group_manager_query/get-compute-v1-projects-cloud-custodian-zones-asia-east1-a-instanceGroupManagers_1.json",
            setup: &[],
            request: (
                Method::GET,
                "/compute/v1/projects/cloud-custodian/zones/asia-east1-a/instanceGroupManagers",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "firewall-get/get-compute-v1-projects-cloud-custodian-global-firewalls-allow-inbound-xyz_1.json",
            setup: &[(
                Method::POST,
                "/compute/v1/projects/cloud-custodian/global/firewalls",
                r#"{"name": "allow-inbound-xyz", "description": "", "sourceRanges": ["0.0.0.0/0"],
                    "targetServiceAccounts": ["604150802624-compute@developer.gserviceaccount.com"],
                    "allowed": [{"IPProtocol": "all"}]}"#,
            )],
            request: (
                Method::GET,
                "/compute/v1/projects/cloud-custodian/global/firewalls/allow-inbound-xyz",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "firewall-delete/get-compute-v1-projects-cloud-custodian-global-firewalls_1.json",
            setup: &[(
                Method::POST,
                "/compute/v1/projects/cloud-custodian/global/firewalls",
                r#"{"name": "test", "description": "", "sourceRanges": ["1.1.1.1"], "targetTags": ["test"],
                    "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}"#,
            )],
            request: (
                Method::GET,
                "/compute/v1/projects/cloud-custodian/global/firewalls",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "instance-get/get-compute-v1-projects-cloud-custodian-zones-us-central1-b-instances-c7n-jenkins_1.json",
            setup: &[(
                Method::POST,
                "/compute/v1/projects/cloud-custodian/zones/us-central1-b/instances",
                r#"{"name": "c7n-jenkins", "machineType": "zones/us-central1-b/machineTypes/n1-standard-1",
                    "description": "", "tags": {"items": ["jenkins"]}, "labels": {"env": "dev"},
                    "disks": [{"boot": true, "autoDelete": true, "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
                    "networkInterfaces": [{"accessConfigs": [{"name": "External NAT"}]}],
                    "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]}"#,
            )],
            request: (
                Method::GET,
                "/compute/v1/projects/cloud-custodian/zones/us-central1-b/instances/c7n-jenkins",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "bucket-get-resource/get-storage-v1-b-staging.cloud-custodian.appspot.com_1.json",
            setup: &[(
                Method::POST,
                "/storage/v1/b?project=cloud-custodian",
                r#"{"name": "staging.cloud-custodian.appspot.com", "location": "EU",
                    "lifecycle": {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 15}}]}}"#,
            )],
            request: (
                Method::GET,
                "/storage/v1/b/staging.cloud-custodian.appspot.com",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "project-get-resource/get-v1-projects-cloud-custodian_1.json",
            setup: &[],
            request: (Method::GET, "/v1/projects/cloud-custodian", None),
            not_given: &[],
        },
        Flight {
            file: "organization-query/post-v1-organizations-search_1.json",
            setup: &[],
            request: (Method::POST, "/v1/organizations:search", Some("{}")),
            not_given: &[],
        },
        Flight {
            file: "folder-query/get-v2-folders_1.json",
            setup: &[(
                Method::POST,
                "/v2/folders?parent=organizations/123456789012",
                r#"{"displayName": "Folder-custodian-0"}"#,
            )],
            request: (
                Method::GET,
                "/v2/folders?parent=organizations/123456789012",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "iam-service-account/get-v1-projects-cloud-custodian-serviceAccounts-devtest@cloud-custodian.iam.gserviceaccount.com_1.json",
            setup: &[(
                Method::POST,
                "/v1/projects/cloud-custodian/serviceAccounts",
                r#"{"accountId": "devtest", "serviceAccount": {"displayName": "devtest"}}"#,
            )],
            request: (
                Method::GET,
                "/v1/projects/cloud-custodian/serviceAccounts/devtest@cloud-custodian.iam.gserviceaccount.com",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "log-exclusion-get/get-v2-projects-cloud-custodian-exclusions-qwerty_1.json",
            setup: &[(
                Method::POST,
                "/v2/projects/cloud-custodian/exclusions",
                r#"{"name": "qwerty", "filter": "a", "description": "storage.googleapis.com/staging.test-project-232910.appspot.com"}"#,
            )],
            request: (
                Method::GET,
                "/v2/projects/cloud-custodian/exclusions/qwerty",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "logsink-resource/get-v2-projects-cloud-custodian-sinks-storage_1.json",
            setup: &[(
                Method::POST,
                "/v2/projects/cloud-custodian/sinks",
                r#"{"name": "storage", "destination": "storage.googleapis.com/staging.test-project-232910.appspot.com"}"#,
            )],
            request: (
                Method::GET,
                "/v2/projects/cloud-custodian/sinks/storage",
                None,
            ),
            not_given: &[(
                "outputVersionFormat",
                "deprecated since 2019 (always V2); Google still shows it on sinks made before",
            )],
        },
        Flight {
            file: "pubsub-topic-query/get-v1-projects-cloud-custodian-topics-test_topic_1.json",
            setup: &[(
                Method::PUT,
                "/v1/projects/cloud-custodian/topics/test_topic",
                "{}",
            )],
            request: (
                Method::GET,
                "/v1/projects/cloud-custodian/topics/test_topic",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "gcp-secret-query/get-v1-projects-cloud-custodian-secrets_1.json",
            setup: &[(
                Method::POST,
                "/v1/projects/cloud-custodian/secrets?secretId=defectdojo_token",
                r#"{"replication": {"automatic": {}}}"#,
            )],
            request: (Method::GET, "/v1/projects/cloud-custodian/secrets", None),
            not_given: &[],
        },
        Flight {
            file: "kms-keyring-get/get-v1-projects-cloud-custodian-locations-us-central1-keyRings-cloud-custodian_1.json",
            setup: &[(
                Method::POST,
                "/v1/projects/cloud-custodian/locations/us-central1/keyRings?keyRingId=cloud-custodian",
                "{}",
            )],
            request: (
                Method::GET,
                "/v1/projects/cloud-custodian/locations/us-central1/keyRings/cloud-custodian",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "kms-cryptokey-get/get-v1-projects-cloud-custodian-locations-us-central1-keyRings-cloud-custodian-cryptoKeys-cloud-custodian_1.json",
            setup: &[
                (
                    Method::POST,
                    "/v1/projects/cloud-custodian/locations/us-central1/keyRings?keyRingId=cloud-custodian",
                    "{}",
                ),
                (
                    Method::POST,
                    "/v1/projects/cloud-custodian/locations/us-central1/keyRings/cloud-custodian/cryptoKeys?cryptoKeyId=cloud-custodian",
                    r#"{"purpose": "ENCRYPT_DECRYPT"}"#,
                ),
            ],
            request: (
                Method::GET,
                "/v1/projects/cloud-custodian/locations/us-central1/keyRings/cloud-custodian/cryptoKeys/cloud-custodian",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "bq-dataset-query/get-bigquery-v2-projects-cloud-custodian-datasets-devxyz_1.json",
            setup: &[(
                Method::POST,
                "/bigquery/v2/projects/cloud-custodian/datasets",
                r#"{"datasetReference": {"datasetId": "devxyz"}, "defaultTableExpirationMs": "432000000", "location": "US",
                    "labels": {"env": "dev"}}"#,
            )],
            request: (
                Method::GET,
                "/bigquery/v2/projects/cloud-custodian/datasets/devxyz",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "sqlinstance-get/get-sql-v1beta4-projects-cloud-custodian-instances-brenttest-2_1.json",
            setup: &[(
                Method::POST,
                "/sql/v1beta4/projects/cloud-custodian/instances",
                r#"{"name": "brenttest-2", "databaseVersion": "MYSQL_5_7", "region": "us-central1",
                    "settings": {"tier": "db-n1-standard-1"}}"#,
            )],
            request: (
                Method::GET,
                "/sql/v1beta4/projects/cloud-custodian/instances/brenttest-2",
                None,
            ),
            not_given: &[],
        },
        Flight {
            file: "sqlinstance-enable-deletion/patch-sql-v1beta4-projects-cloud-custodian-instances-custodiantestsql_1.json",
            setup: &[(
                Method::POST,
                "/sql/v1beta4/projects/cloud-custodian/instances",
                r#"{"name": "custodiantestsql", "settings": {"tier": "db-f1-micro"}}"#,
            )],
            request: (
                Method::PATCH,
                "/sql/v1beta4/projects/cloud-custodian/instances/custodiantestsql",
                Some(r#"{"settings": {"deletionProtectionEnabled": true}}"#),
            ),
            not_given: &[],
        },
        Flight {
            file: "artifactregistry-repositories-query/get-v1-projects-cloud-custodian-locations-us-central1-repositories_1.json",
            setup: &[(
                Method::POST,
                "/v1/projects/cloud-custodian/locations/us-central1/repositories?repositoryId=test",
                r#"{"format": "DOCKER"}"#,
            )],
            request: (
                Method::GET,
                "/v1/projects/cloud-custodian/locations/us-central1/repositories",
                None,
            ),
            not_given: &[],
        },
    ]
}

/// A JSON value's kind, as the shape comparison sees it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Differences in shape between Google's answer and the sandbox's at `path`. `resource_level` says whether the
/// objects here are a resource or a list envelope, whose every field Google gave must be there.
fn compare(
    google: &Value,
    ours: &Value,
    path: &str,
    resource_level: bool,
    not_given: &[(&str, &str)],
    found: &mut Vec<String>,
) {
    if ours.is_null() {
        found.push(format!("{path}: null, a value Google never sends"));
        return;
    }
    if kind(google) != kind(ours) {
        found.push(format!(
            "{path}: Google gives a {}, the sandbox a {}",
            kind(google),
            kind(ours)
        ));
        return;
    }
    match (google, ours) {
        (Value::Object(google), Value::Object(ours)) => {
            for (key, value) in google {
                let here = format!("{path}.{key}");
                match ours.get(key) {
                    Some(mine) => {
                        // A list envelope's items are resources too.
                        let items = resource_level && value.is_array();
                        compare(value, mine, &here, items, not_given, found);
                    }
                    None if resource_level
                        && key != "nextPageToken"
                        && !not_given.iter().any(|(field, _)| field == key) =>
                    {
                        found.push(format!("{here}: Google gives it, the sandbox does not"));
                    }
                    None => {}
                }
            }
            for (key, value) in ours {
                if value.is_null() {
                    found.push(format!("{path}.{key}: null, a value Google never sends"));
                }
            }
        }
        (Value::Array(google), Value::Array(ours)) => {
            if let (Some(google), Some(mine)) = (google.first(), ours.first()) {
                compare(
                    google,
                    mine,
                    &format!("{path}[0]"),
                    resource_level,
                    not_given,
                    found,
                );
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_sandbox_answers_in_the_shape_google_recorded() {
    let mut differences = Vec::new();
    for flight in flights() {
        // Each recording is replayed against a sandbox of its own.
        let (sandbox, client, _) = common::sandbox(SandboxConfig::default()).await;
        let base = sandbox.base_url();
        let path = format!(
            "{}/tests/flights/{}",
            env!("CARGO_MANIFEST_DIR"),
            flight.file
        );
        let recorded: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("a recording"))
                .expect("JSON");
        let google = &recorded["body"];
        for (method, setup, body) in flight.setup {
            let response = client
                .request(method.clone(), format!("{base}{setup}"))
                .header("content-type", "application/json")
                .body(*body)
                .send()
                .await
                .expect("the sandbox answers");
            assert!(
                response.status().is_success(),
                "{}: setting up with {method} {setup}: {}",
                flight.file,
                response.text().await.unwrap_or_default()
            );
        }
        sandbox.settled().await;
        let (method, request, body) = &flight.request;
        let mut call = client.request(method.clone(), format!("{base}{request}"));
        if let Some(body) = body {
            call = call.header("content-type", "application/json").body(*body);
        }
        let response = call.send().await.expect("the sandbox answers");
        let status = response.status().as_u16().to_string();
        let ours: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            status,
            recorded["headers"]["status"].as_str().unwrap_or("200"),
            "{}: {ours}",
            flight.file
        );
        let mut found = Vec::new();
        compare(google, &ours, "", true, flight.not_given, &mut found);
        differences.extend(
            found
                .into_iter()
                .map(|difference| format!("{}: {difference}", flight.file)),
        );
    }
    assert!(
        differences.is_empty(),
        "{} differences from Google's recordings:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// The comparison itself sees what it exists to see: a number where Google gives a string (int64), a missing field,
/// a `null`, a list envelope under another name.
#[test]
fn the_comparison_catches_each_kind_of_difference() {
    let google =
        serde_json::json!({"id": "17", "items": [{"name": "a", "priority": 1000}], "kind": "x"});
    let cases = [
        (
            serde_json::json!({"id": 17, "items": [{"name": "a", "priority": 1000}], "kind": "x"}),
            ".id",
        ),
        (
            serde_json::json!({"id": "17", "items": [{"name": "a"}], "kind": "x"}),
            ".items[0].priority",
        ),
        (
            serde_json::json!({"id": "17", "items": [{"name": "a", "priority": 1000}], "kind": "x", "etag": null}),
            ".etag",
        ),
        (
            serde_json::json!({"id": "17", "firewalls": [{"name": "a", "priority": 1000}], "kind": "x"}),
            ".items",
        ),
    ];
    for (ours, expected) in cases {
        let mut found = Vec::new();
        compare(&google, &ours, "", true, &[], &mut found);
        assert!(
            found
                .iter()
                .any(|difference| difference.starts_with(expected)),
            "{expected} not reported: {found:?}"
        );
    }
    let mut found = Vec::new();
    compare(&google, &google, "", true, &[], &mut found);
    assert!(found.is_empty(), "{found:?}");
}
