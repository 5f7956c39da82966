//! Google's own client libraries work against the sandbox with only the endpoint changed.
//! The clients come from PyPI and npm, installed by `scripts/test` (the README's test command); a test whose client is
//! missing fails, saying how to install it — it never passes without having run.

use std::process::Command;
use std::time::Duration;

use gcp_sandbox::SandboxConfig;

/// The Python that holds Google's clients: `ANTIBODY_TEST_PYTHON`, or the virtualenv `scripts/test` fills.
fn python() -> String {
    std::env::var("ANTIBODY_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../../target/test-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

fn python_has(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Fails the test, saying what is missing and how to get it, unless the client is there to run.
fn require(ready: bool, missing: &str) {
    assert!(
        ready,
        "{missing}; `scripts/test` (the README's test command) installs it"
    );
}

/// Starts a sandbox (operations RUNNING for 30 ms), runs the command `client` builds for its base URL, and fails the
/// test with the command's output unless it succeeds.
async fn run_against_sandbox(what: &str, client: impl FnOnce(String) -> Command + Send + 'static) {
    let config = SandboxConfig {
        operation_delay: Duration::from_millis(30),
        ..SandboxConfig::default()
    };
    let running = gcp_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let base = running.base_url();
    let output = tokio::task::spawn_blocking(move || client(base).output())
        .await
        .expect("join")
        .expect("the client runs");
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn run_client_script(script: &str, module: &str) {
    let python = python();
    require(
        python_has(&python, module),
        &format!("{python} cannot import {module}, which {script} needs"),
    );
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    run_against_sandbox(script, move |base| {
        let mut command = Command::new(python);
        command.arg(path).arg(base);
        command
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_compute_client() {
    run_client_script("compute_python.py", "google.cloud.compute_v1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_instances_and_projects_clients() {
    run_client_script("instances_python.py", "google.cloud.compute_v1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_bigquery_client() {
    run_client_script("bigquery_python.py", "google.cloud.bigquery").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_kms_and_secret_manager_clients() {
    run_client_script("kms_secrets_python.py", "google.cloud.kms_v1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_resource_manager_client() {
    run_client_script(
        "resourcemanager_python.py",
        "google.cloud.resourcemanager_v3",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_storage_client() {
    run_client_script("storage_python.py", "google.cloud.storage").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_resource_manager_hierarchy_clients() {
    run_client_script("hierarchy_python.py", "google.cloud.resourcemanager_v3").await;
}

/// Cloud Custodian, pinned (`tests/custodian/requirements.txt`), in its own virtualenv (`scripts/test` makes it at
/// `target/custodian-venv`, or `ANTIBODY_CUSTODIAN_PYTHON` names its Python): its stock GCP policies run against the
/// sandbox with only the endpoint and credentials redirected, and change what they should.
#[tokio::test(flavor = "multi_thread")]
async fn cloud_custodian_stock_policies() {
    let python = std::env::var("ANTIBODY_CUSTODIAN_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../../target/custodian-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    require(
        python_has(&python, "c7n_gcp"),
        &format!("{python} cannot import c7n_gcp (Cloud Custodian)"),
    );
    let script = format!(
        "{}/tests/custodian/stock_policies.py",
        env!("CARGO_MANIFEST_DIR")
    );
    run_against_sandbox("Cloud Custodian's stock policies", move |base| {
        let mut command = Command::new(python);
        command.arg(script).arg(base);
        command
    })
    .await;
}

/// Google's Node.js Firestore client over REST (`preferRest: true`), pinned in `tests/clients/node/package.json`
/// (`scripts/test` installs it with npm).
#[tokio::test(flavor = "multi_thread")]
async fn node_firestore_client() {
    let dir = format!("{}/tests/clients/node", env!("CARGO_MANIFEST_DIR"));
    let ready = std::path::Path::new(&format!("{dir}/node_modules/@google-cloud/firestore"))
        .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
    require(
        ready,
        &format!("node or {dir}/node_modules is missing, which firestore.js needs"),
    );
    run_against_sandbox("firestore.js", move |base| {
        let mut command = Command::new("node");
        command
            .current_dir(&dir)
            .arg("firestore.js")
            .arg(base.trim_start_matches("http://"));
        command
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cloud_sql_admin_client() {
    run_client_script("cloudsql_python.py", "googleapiclient.discovery").await;
}
