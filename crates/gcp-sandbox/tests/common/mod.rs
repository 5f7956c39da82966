//! What the sandbox's integration tests share: a running sandbox with a client, and a firewall rule to write.

use std::time::Duration;

use gcp_sandbox::SandboxConfig;
use serde_json::{Value, json};

/// A sandbox on a free port, a client, and project p1's firewalls collection URL.
pub async fn sandbox(config: SandboxConfig) -> (gcp_sandbox::Running, reqwest::Client, String) {
    let running = gcp_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let base = format!(
        "{}/compute/v1/projects/p1/global/firewalls",
        running.base_url()
    );
    (
        running,
        gcp_sandbox::http_client(Duration::from_secs(5)),
        base,
    )
}

/// A valid INGRESS rule allowing TCP 22 from anywhere.
#[allow(dead_code)] // each test binary compiles this module; not every one writes firewall rules
pub fn rule(name: &str) -> Value {
    json!({"name": name, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]})
}
