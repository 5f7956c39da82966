//! Credentials end to end: tokens from the sandbox's metadata server, cached, refreshed before they expire.

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
        "{}/compute/v1/projects/p/global/firewalls",
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
    let (sandbox, _engine, _dir) = heal_with_metadata_tokens(Duration::from_secs(30)).await;
    assert!(
        sandbox.tokens_issued() > 2,
        "a token within a minute of expiry is replaced ({})",
        sandbox.tokens_issued()
    );
}
