//! Credentials end to end through Google's auth library: the sandbox's metadata server (cached, refreshed before
//! expiry), and Application Default Credentials files — a service-account key, gcloud's user credentials, an
//! impersonation file — used by the `antibody` binary exactly as a user's machine would.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use antibody::config::Config;
use antibody::notify::LogSink;
use gcp_sandbox::{Delivery, SandboxConfig};
use serde_json::json;

const ROBOT: &str = "antibody-run@prod.iam.gserviceaccount.com";

async fn heal_with_metadata_tokens(
    lifetime: Duration,
) -> (gcp_sandbox::Running, antibody::Server, tempfile::TempDir) {
    let config = SandboxConfig {
        metadata_email: ROBOT.into(),
        metadata_token_lifetime: lifetime,
        ..SandboxConfig::default()
    };
    let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let sandbox = gcp_sandbox::start(config, localhost)
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("dir");
    let engine_config = Config {
        state: dir.path().join("journal.sqlite"),
        google_endpoint: Some(sandbox.base_url()),
        metadata_host: Some(sandbox.addr.to_string()),
        access_token: None,
        identities: vec![ROBOT.into()],
        ..Config::default()
    };
    let engine = antibody::start(
        antibody::build(engine_config, LogSink::memory())
            .await
            .expect("engine"),
        localhost,
    )
    .await
    .expect("start");
    sandbox.add_delivery(Delivery::eventarc(engine.url()));
    let client = gcp_sandbox::http_client(Duration::from_secs(5));
    let rules = format!(
        "{}/compute/v1/projects/proj-p1/global/firewalls",
        sandbox.base_url()
    );
    for name in ["one", "two"] {
        let rule = json!({"name": name, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]});
        client
            .post(&rules)
            .bearer_auth("user")
            .json(&rule)
            .send()
            .await
            .expect("insert");
        sandbox.settled().await;
    }
    (sandbox, engine, dir)
}

#[tokio::test]
async fn calls_carry_metadata_server_tokens_and_reuse_them_while_fresh() {
    let (sandbox, engine, _dir) = heal_with_metadata_tokens(Duration::from_secs(3599)).await;
    let patches: Vec<_> = sandbox
        .audit_entries()
        .into_iter()
        .filter(|entry| entry["protoPayload"]["methodName"] == "v1.compute.firewalls.patch")
        .collect();
    assert!(!patches.is_empty());
    assert!(
        patches
            .iter()
            .all(|entry| entry["protoPayload"]["authenticationInfo"]["principalEmail"] == ROBOT)
    );
    assert_eq!(
        sandbox.tokens_issued(),
        1,
        "one token serves every call while it is fresh"
    );
    assert_eq!(
        engine
            .context
            .journal
            .entries(100)
            .await
            .expect("journal")
            .iter()
            .filter(|entry| entry.outcome.as_deref() == Some("remediated"))
            .count(),
        2
    );
}

#[tokio::test]
async fn tokens_about_to_expire_are_refreshed() {
    // Google's auth library replaces a token once it has less than four minutes left.
    let (sandbox, _engine, _dir) = heal_with_metadata_tokens(Duration::from_secs(241)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sandbox.tokens_issued() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sandbox.tokens_issued() >= 2,
        "a token close to expiry is replaced before it expires ({})",
        sandbox.tokens_issued()
    );
}

/// Runs `antibody scan` against the sandbox with `GOOGLE_APPLICATION_CREDENTIALS` naming `adc`, and returns who the
/// sandbox has seen listing the firewall rules so far.
async fn scan_with_adc(sandbox: &gcp_sandbox::Running, adc: serde_json::Value) -> Vec<String> {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("adc.json");
    std::fs::write(&file, adc.to_string()).expect("write the credentials file");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "scan",
            "--project",
            "p",
            "--format",
            "json",
            "--google-endpoint",
        ])
        .arg(sandbox.base_url())
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .env_remove("GCE_METADATA_HOST")
        .output()
        .await
        .expect("antibody runs");
    assert!(
        output.status.code().is_some_and(|code| code < 2),
        "scan failed ({:?}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    [
        "scanner@p.iam.gserviceaccount.com",
        "alice@example.com",
        "target@p.iam.gserviceaccount.com",
    ]
    .into_iter()
    .filter(|principal| {
        sandbox
            .permissions_used_by(principal)
            .contains("compute.firewalls.list")
    })
    .map(str::to_string)
    .collect()
}

#[tokio::test]
async fn application_default_credentials_files_work_as_on_a_users_machine() {
    let mut config = SandboxConfig::default();
    config
        .principals
        .insert("alice-refresh-token".into(), "alice@example.com".into());
    let sandbox = gcp_sandbox::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("sandbox");
    let token_uri = format!("{}/token", sandbox.base_url());
    let user = json!({
        "type": "authorized_user",
        "client_id": "764086051850-sandbox.apps.googleusercontent.com",
        "client_secret": "sandbox-secret",
        "refresh_token": "alice-refresh-token",
        "token_uri": token_uri,
    });

    // A service-account key file: Google's library signs its own JWT, which the sandbox verifies.
    let key =
        gcp_sandbox::oauth::service_account_key("scanner@p.iam.gserviceaccount.com", &token_uri);
    assert_eq!(
        scan_with_adc(&sandbox, key).await,
        ["scanner@p.iam.gserviceaccount.com"]
    );
    // gcloud's user credentials: a refresh token exchanged at the token endpoint.
    assert!(
        scan_with_adc(&sandbox, user.clone())
            .await
            .contains(&"alice@example.com".to_string())
    );
    // `gcloud auth application-default login --impersonate-service-account`: the user's credentials mint a token
    // for the service account, which then makes every call.
    let impersonation = json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": format!(
            "{}/v1/projects/-/serviceAccounts/target@p.iam.gserviceaccount.com:generateAccessToken",
            sandbox.base_url()
        ),
        "source_credentials": user,
        "delegates": [],
    });
    let seen = scan_with_adc(&sandbox, impersonation).await;
    assert!(
        seen.contains(&"target@p.iam.gserviceaccount.com".to_string()),
        "{seen:?}"
    );
}
