//! Google's own client libraries work against the sandbox with only the endpoint changed.
//! The Python clients come from PyPI (`.ci/run` installs them); without them this test says so loudly, and fails in CI.

use std::process::Command;
use std::time::Duration;

use gcp_sandbox::SandboxConfig;

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Whether a client is there to run; without it the test says so loudly, and fails in CI.
fn installed(ready: bool, missing: &str) -> bool {
    if !ready {
        let message = format!("SKIPPED: {missing}");
        assert!(
            std::env::var_os("CI").is_none(),
            "{message} (required in CI)"
        );
        eprintln!("\n*** {message} ***\n");
    }
    ready
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
    if !installed(
        python_has(module),
        &format!("python3 cannot import {module}; `pip install` it to run {script}"),
    ) {
        return;
    }
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    run_against_sandbox(script, move |base| {
        let mut command = Command::new("python3");
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

/// Cloud Custodian, pinned (`tests/custodian/requirements.txt`), in its own virtualenv (`.ci/run` makes it at
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
    let ready = Command::new(&python)
        .args(["-c", "import c7n_gcp"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed(
        ready,
        &format!(
            "{python} cannot import c7n_gcp; make the virtualenv as .ci/run does to run Cloud Custodian"
        ),
    ) {
        return;
    }
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
/// (`.ci/run` installs it with npm).
#[tokio::test(flavor = "multi_thread")]
async fn node_firestore_client() {
    let dir = format!("{}/tests/clients/node", env!("CARGO_MANIFEST_DIR"));
    let ready = std::path::Path::new(&format!("{dir}/node_modules/@google-cloud/firestore"))
        .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
    if !installed(
        ready,
        &format!("node or {dir}/node_modules missing; `npm install` there to run firestore.js"),
    ) {
        return;
    }
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
