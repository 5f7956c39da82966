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
#[derive(Debug)]
enum Fate {
    /// Re-read and judged by this kind, for each of these resource names (as Google writes them).
    Routes(String, Vec<String>),
    /// Names no single resource (answered, never refused): the kind's scheduled sweep reads what it made.
    Swept(String, Vec<String>),
    /// The method cannot create or widen the kind's violation: why.
    Harmless(String),
    /// The method can open a hole no kind judges yet: what the README's list of gaps says about it.
    NotJudged(String),
}
use Fate::*;

const P: &str = "acme-prod";

/// One row of `roads.txt`, with a Compute method spelled each way the catalog spells it.
struct Road {
    service: String,
    method: String,
    fate: Fate,
    /// Listed under `[outside the catalog]`.
    outside: bool,
}

/// `roads.txt`, read strictly: a line that is not a row is a failure, not a skip.
fn roads(catalog: &BTreeMap<String, BTreeSet<String>>) -> Vec<Road> {
    let text = include_str!("roads.txt");
    let mut rows = Vec::new();
    let mut outside = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line {
            "[catalog]" => outside = false,
            "[outside the catalog]" => outside = true,
            _ => {
                let fields: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
                let [service, method, fate, detail] = fields.as_slice() else {
                    panic!("not a row: {line}");
                };
                let service = format!("{service}.googleapis.com");
                let names = || {
                    detail
                        .split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                };
                let fate = match fate.split_once(' ') {
                    Some(("routes", kind)) => Routes(kind.to_string(), names()),
                    Some(("swept", kind)) => Swept(kind.to_string(), names()),
                    _ if *fate == "harmless" => Harmless(detail.to_string()),
                    _ if *fate == "not judged" => NotJudged(detail.to_string()),
                    _ => panic!("not a fate: {line}"),
                };
                let spellings: Vec<String> = if method.starts_with("compute.") {
                    let found: Vec<String> = ["v1.", "beta.", "alpha.", ""]
                        .iter()
                        .map(|surface| format!("{surface}{method}"))
                        .filter(|spelled| catalog[&service].contains(spelled))
                        .collect();
                    assert!(!found.is_empty(), "the catalog spells {method} no way");
                    found
                } else {
                    vec![method.to_string()]
                };
                for spelled in spellings {
                    rows.push(Road {
                        service: service.clone(),
                        method: spelled,
                        fate: clone_fate(&fate),
                        outside,
                    });
                }
            }
        }
    }
    rows
}

fn clone_fate(fate: &Fate) -> Fate {
    match fate {
        Routes(kind, names) => Routes(kind.clone(), names.clone()),
        Swept(kind, names) => Swept(kind.clone(), names.clone()),
        Harmless(reason) => Harmless(reason.clone()),
        NotJudged(reason) => NotJudged(reason.clone()),
    }
}

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
    let rows = roads(&catalog);
    let named: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|road| (road.service.as_str(), road.method.as_str()))
        .collect();
    let mut undecided = Vec::new();
    for (service, methods) in &catalog {
        for method in methods {
            if in_scope(service, method)
                && !is_read(method)
                && !named.contains(&(service.as_str(), method.as_str()))
            {
                undecided.push(format!("{service} {method}"));
            }
        }
    }
    assert!(undecided.is_empty(), "no row decides: {undecided:#?}");
    // And no row names a method Google does not log (a misspelt row would decide nothing), unless it is listed as
    // outside the catalog; nor is a method listed there that the catalog has.
    let misplaced: Vec<String> = rows
        .iter()
        .filter(|road| {
            let listed = catalog
                .get(&road.service)
                .is_some_and(|methods| methods.contains(&road.method));
            listed == road.outside
        })
        .map(|road| format!("{} {}", road.service, road.method))
        .collect();
    assert!(
        misplaced.is_empty(),
        "in the wrong section of roads.txt: {misplaced:#?}"
    );
}

#[test]
fn every_road_the_table_says_routes_reaches_its_kind() {
    let catalog = catalog();
    let mut wrong = Vec::new();
    for road in roads(&catalog) {
        let (service, method) = (road.service.as_str(), road.method.as_str());
        match &road.fate {
            Routes(kind, names) => {
                for name in names {
                    match kinds::route(&entry(service, method, name)) {
                        Route::Check(target) | Route::Deleted(target)
                            if target.kind.name() == kind
                                && (target.project() == P
                                    || name.starts_with("folders/")
                                    || name.starts_with("organizations/")) => {}
                        other => wrong.push(format!("{method} {name}: {other:?}, want {kind}")),
                    }
                }
            }
            Swept(kind, names) => {
                for name in names {
                    match kinds::route(&entry(service, method, name)) {
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
    let routed: BTreeSet<(String, String)> = roads(&catalog)
        .into_iter()
        .filter(|road| matches!(road.fate, Routes(..)))
        .map(|road| (road.service, road.method))
        .collect();
    let stray: Vec<_> = kinds::watches(&Config::default())
        .into_iter()
        .filter(|watch| !routed.contains(&(watch.service.to_string(), watch.method.to_string())))
        .map(|watch| format!("{} {}", watch.service, watch.method))
        .collect();
    assert!(stray.is_empty(), "watched but no road: {stray:#?}");
    // Project mode makes one Eventarc trigger of each, and Eventarc allows 500 per project and location, a limit
    // that cannot be raised.
    let watched = kinds::watches(&Config::default()).len();
    assert!(
        watched < 500,
        "{watched} triggers would exceed Eventarc's limit of 500"
    );
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
        let name = "projects/acme-prod/locations/europe-north1/secrets/db-password";
        let route = kinds::route(&entry("secretmanager.googleapis.com", method, name));
        assert!(
            matches!(route, Route::Ignore(_)),
            "{method} {name}: {route:?}"
        );
    }
}
