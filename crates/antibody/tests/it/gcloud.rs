//! gcloud, unchanged, as a user drives the sandbox: its everyday commands work against Google's API shapes as the
//! sandbox serves them, and what a user opens with gcloud antibody closes. gcloud must be installed (it is on every
//! machine this project builds on); a missing gcloud fails these tests rather than skipping them.

use serde_json::Value;

use crate::harness::{Harness, PROJECT, USER_TOKEN};

/// Runs gcloud against the sandbox as the user, every API it touches pointed at the sandbox, nothing leaving the
/// machine; returns the exit status and the parsed `--format json` output (`Null` when there is none).
pub(crate) async fn gcloud(
    harness: &Harness,
    config: &std::path::Path,
    args: &[&str],
) -> (bool, Value, String) {
    let base = harness.sandbox.base_url();
    let mut command = tokio::process::Command::new("gcloud");
    command
        .args(args)
        .args(["--format", "json", "--quiet"])
        .env("CLOUDSDK_CONFIG", config)
        .env("CLOUDSDK_AUTH_ACCESS_TOKEN", USER_TOKEN)
        .env("CLOUDSDK_CORE_PROJECT", PROJECT)
        .env("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("GCE_METADATA_ROOT", "127.0.0.1:1")
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
            format!("{base}/compute/v1/"),
        )
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE",
            format!("{base}/storage/v1/"),
        )
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER",
            format!("{base}/"),
        )
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", format!("{base}/"))
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING",
            format!("{base}/"),
        )
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB", format!("{base}/"))
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_SQL", format!("{base}/"))
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE",
            format!("{base}/"),
        )
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
            format!("{base}/"),
        )
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
            format!("{base}/"),
        )
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY",
            format!("{base}/"),
        )
        // An API left without an override fails at once instead of reaching for Google.
        .env("HTTPS_PROXY", "http://127.0.0.1:1")
        .env("https_proxy", "http://127.0.0.1:1");
    let output = command
        .output()
        .await
        .expect("gcloud is installed (the README's test command needs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        output.status.success(),
        parsed,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// gcloud as `gcloud` runs it, failing the test unless the command succeeds; its `--format json` output.
pub(crate) async fn gcloud_ok(harness: &Harness, config: &std::path::Path, args: &[&str]) -> Value {
    let (ok, out, stderr) = gcloud(harness, config, args).await;
    assert!(ok, "{args:?}: {stderr}");
    out
}

// Issue 33: `gcloud compute firewall-rules create` was answered 400 — gcloud sends the network as a URL on the host
// it speaks to, and the sandbox accepted only Google's hosts.
#[tokio::test]
async fn a_rule_opened_with_gcloud_is_closed_and_gcloud_sees_it_closed() {
    let harness = Harness::start().await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let created = gcloud_ok(
        &harness,
        config.path(),
        &[
            "compute",
            "firewall-rules",
            "create",
            "debug-ssh",
            "--allow",
            "tcp:22",
            "--source-ranges",
            "0.0.0.0/0",
        ],
    )
    .await;
    assert_eq!(created[0]["name"], "debug-ssh", "{created}");
    assert!(
        created[0]["network"].as_str().is_some_and(
            |network| network.ends_with("/projects/test-project/global/networks/default")
        ),
        "{created}"
    );
    harness.sandbox.settled().await;
    let described = gcloud_ok(
        &harness,
        config.path(),
        &["compute", "firewall-rules", "describe", "debug-ssh"],
    )
    .await;
    assert_eq!(
        described["disabled"], true,
        "antibody closed it: {described}"
    );
    let listed = gcloud_ok(
        &harness,
        config.path(),
        &["compute", "firewall-rules", "list"],
    )
    .await;
    assert!(
        listed
            .as_array()
            .is_some_and(|rules| rules.iter().any(|rule| rule["name"] == "debug-ssh")),
        "{listed}"
    );
    // Re-enabled with gcloud: closed again.
    gcloud_ok(
        &harness,
        config.path(),
        &[
            "compute",
            "firewall-rules",
            "update",
            "debug-ssh",
            "--no-disabled",
        ],
    )
    .await;
    harness.sandbox.settled().await;
    assert_eq!(harness.rule("debug-ssh").await["disabled"], true);
    assert_eq!(harness.count("remediated").await, 2);
}

// Issue 33: `gcloud pubsub topics create` was answered 405 (a topic appeared only on its first setIamPolicy) and
// `describe` 404. A topic made public with gcloud is closed again.
#[tokio::test]
async fn a_topic_made_public_with_gcloud_is_closed() {
    let harness = Harness::start().await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let created = gcloud_ok(
        &harness,
        config.path(),
        &["pubsub", "topics", "create", "orders"],
    )
    .await;
    assert_eq!(
        created[0]["name"], "projects/test-project/topics/orders",
        "{created}"
    );
    let (ok, _, stderr) = gcloud(
        &harness,
        config.path(),
        &["pubsub", "topics", "create", "orders"],
    )
    .await;
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let described = gcloud_ok(
        &harness,
        config.path(),
        &["pubsub", "topics", "describe", "orders"],
    )
    .await;
    assert_eq!(described["name"], "projects/test-project/topics/orders");
    gcloud_ok(
        &harness,
        config.path(),
        &[
            "pubsub",
            "topics",
            "add-iam-policy-binding",
            "orders",
            "--member",
            "allUsers",
            "--role",
            "roles/pubsub.subscriber",
        ],
    )
    .await;
    harness.sandbox.settled().await;
    let policy = gcloud_ok(
        &harness,
        config.path(),
        &["pubsub", "topics", "get-iam-policy", "orders"],
    )
    .await;
    assert!(
        !policy.to_string().contains("allUsers"),
        "antibody closed it: {policy}"
    );
    gcloud_ok(
        &harness,
        config.path(),
        &["pubsub", "topics", "delete", "orders"],
    )
    .await;
    let (ok, _, _) = gcloud(
        &harness,
        config.path(),
        &["pubsub", "topics", "describe", "orders"],
    )
    .await;
    assert!(!ok, "deleted");
}

// Issue 33: every `gcloud sql instances` command was 404 — gcloud speaks Cloud SQL Admin v1beta4 under
// `/sql/v1beta4/`, and waits on operations that Google reports PENDING and RUNNING before DONE.
#[tokio::test]
async fn a_database_opened_with_gcloud_is_closed_and_gcloud_sees_it_closed() {
    let harness = Harness::with(crate::harness::Options {
        operation_delay: std::time::Duration::from_millis(400),
        ..crate::harness::Options::default()
    })
    .await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let created = gcloud_ok(
        &harness,
        config.path(),
        &[
            "sql",
            "instances",
            "create",
            "orders-db",
            "--database-version=POSTGRES_15",
            "--tier=db-f1-micro",
            "--region=us-central1",
        ],
    )
    .await;
    assert_eq!(created["name"], "orders-db", "{created}");
    gcloud_ok(
        &harness,
        config.path(),
        &[
            "sql",
            "instances",
            "patch",
            "orders-db",
            "--authorized-networks=0.0.0.0/0,203.0.113.0/24",
        ],
    )
    .await;
    harness.sandbox.settled().await;
    let described = gcloud_ok(
        &harness,
        config.path(),
        &["sql", "instances", "describe", "orders-db"],
    )
    .await;
    let networks: Vec<&str> = described["settings"]["ipConfiguration"]["authorizedNetworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|network| network["value"].as_str())
        .collect();
    assert_eq!(
        networks,
        ["203.0.113.0/24"],
        "antibody closed it: {described}"
    );
    let listed = gcloud_ok(&harness, config.path(), &["sql", "instances", "list"]).await;
    assert_eq!(listed[0]["name"], "orders-db", "{listed}");
    assert_eq!(harness.count("remediated").await, 1);
}

// Issue 33: `gcloud secrets create`, `kms keyrings create`, `kms keys create` and `artifacts repositories create`
// were answered 405 (a resource appeared only on its first setIamPolicy). Each is made with gcloud, opened to everyone
// with gcloud, and closed by antibody; the three journeys run side by side.
#[tokio::test]
async fn a_secret_a_key_and_a_repository_made_public_with_gcloud_are_closed() {
    let harness = Harness::start().await;
    let config = tempfile::tempdir().expect("gcloud config dir");
    let config = config.path();
    let journey = |create: Vec<&'static str>, grant: Vec<&'static str>, read: Vec<&'static str>| {
        let harness = &harness;
        async move {
            let (ok, created, stderr) = gcloud(harness, config, &create).await;
            assert!(ok, "{create:?}: {stderr}");
            let mut grant = grant;
            grant.extend(["--member=allUsers"]);
            let (ok, _, stderr) = gcloud(harness, config, &grant).await;
            assert!(ok, "{grant:?}: {stderr}");
            harness.sandbox.settled().await;
            let (ok, policy, stderr) = gcloud(harness, config, &read).await;
            assert!(ok, "{read:?}: {stderr}");
            assert!(
                !policy.to_string().contains("allUsers"),
                "antibody closed {created}: {policy}"
            );
        }
    };
    tokio::join!(
        journey(
            vec![
                "secrets",
                "create",
                "api-key",
                "--replication-policy=automatic"
            ],
            vec![
                "secrets",
                "add-iam-policy-binding",
                "api-key",
                "--role=roles/secretmanager.secretAccessor"
            ],
            vec!["secrets", "get-iam-policy", "api-key"],
        ),
        async {
            gcloud_ok(
                &harness,
                config,
                &["kms", "keyrings", "create", "ring", "--location=global"],
            )
            .await;
            journey(
                vec![
                    "kms",
                    "keys",
                    "create",
                    "key",
                    "--keyring=ring",
                    "--location=global",
                    "--purpose=encryption",
                ],
                vec![
                    "kms",
                    "keys",
                    "add-iam-policy-binding",
                    "key",
                    "--keyring=ring",
                    "--location=global",
                    "--role=roles/cloudkms.cryptoKeyEncrypterDecrypter",
                ],
                vec![
                    "kms",
                    "keys",
                    "get-iam-policy",
                    "key",
                    "--keyring=ring",
                    "--location=global",
                ],
            )
            .await;
        },
        journey(
            vec![
                "artifacts",
                "repositories",
                "create",
                "images",
                "--location=us-central1",
                "--repository-format=docker"
            ],
            vec![
                "artifacts",
                "repositories",
                "add-iam-policy-binding",
                "images",
                "--location=us-central1",
                "--role=roles/artifactregistry.reader"
            ],
            vec![
                "artifacts",
                "repositories",
                "get-iam-policy",
                "images",
                "--location=us-central1"
            ],
        ),
    );
    assert_eq!(harness.count("remediated").await, 3);
    let (ok, described, stderr) =
        gcloud(&harness, config, &["secrets", "describe", "api-key"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        described["replication"],
        serde_json::json!({"automatic": {}})
    );
    gcloud_ok(&harness, config, &["secrets", "delete", "api-key"]).await;
    let (ok, _, _) = gcloud(&harness, config, &["secrets", "describe", "api-key"]).await;
    assert!(!ok, "deleted");
}
