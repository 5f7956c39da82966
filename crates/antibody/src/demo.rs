//! `antibody demo`: the sandbox and the engine in one process; a careless user opens holes, antibody closes them.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::config::Config;
use crate::notify::LogSink;

const PROJECT: &str = "demo-project";
const USER_TOKEN: &str = "careless-user-token";
const USER: &str = "careless.user@example.com";
const ENGINE_TOKEN: &str = "antibody-token";
const ENGINE: &str = "antibody@demo-project.iam.gserviceaccount.com";

/// One thing the careless user does, and what must follow.
struct Step {
    what: &'static str,
    rule: &'static str,
    method: &'static str,
    body: Value,
    /// Whether antibody must leave the rule enabled.
    stays_open: bool,
}

fn steps() -> Vec<Step> {
    let insert = |what, rule, body: Value, stays_open| Step {
        what,
        rule,
        method: "POST",
        body,
        stays_open,
    };
    vec![
        insert(
            "opens SSH to the world \"for debugging\"",
            "debug-ssh",
            json!({"name": "debug-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
            false,
        ),
        insert(
            "exposes a MongoDB port range",
            "mongo-anywhere",
            json!({"name": "mongo-anywhere", "allowed": [{"IPProtocol": "tcp", "ports": ["27000-27100"]}], "sourceRanges": ["0.0.0.0/0"]}),
            false,
        ),
        insert(
            "opens RDP to every IPv6 address",
            "rdp-v6",
            json!({"name": "rdp-v6", "allowed": [{"IPProtocol": "tcp", "ports": ["3389"]}], "sourceRanges": ["::/0"]}),
            false,
        ),
        insert(
            "splits the internet in two halves",
            "almost-everyone",
            json!({"name": "almost-everyone", "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/1", "128.0.0.0/1"]}),
            false,
        ),
        insert(
            "allows HTTPS from anywhere (fine)",
            "public-web",
            json!({"name": "public-web", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["0.0.0.0/0"], "targetTags": ["web"]}),
            true,
        ),
        insert(
            "allows SSH from the VPC only (fine)",
            "internal-ssh",
            json!({"name": "internal-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["10.128.0.0/9"]}),
            true,
        ),
        Step {
            what: "re-enables the fixed SSH rule",
            rule: "debug-ssh",
            method: "PATCH",
            body: json!({"disabled": false}),
            stays_open: false,
        },
    ]
}

/// Runs the demo and prints its table; `Ok(false)` when any expectation failed.
pub async fn run() -> anyhow::Result<bool> {
    let mut sandbox_config = gcp_sandbox::SandboxConfig::default();
    sandbox_config
        .principals
        .insert(USER_TOKEN.into(), USER.into());
    sandbox_config
        .principals
        .insert(ENGINE_TOKEN.into(), ENGINE.into());
    let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let sandbox = gcp_sandbox::start(sandbox_config, localhost)
        .await
        .context("starting the sandbox")?;

    let state = tempfile::tempdir().context("creating a temporary directory")?;
    let config = Config {
        state: state.path().join("journal.sqlite"),
        google_endpoint: Some(sandbox.base_url()),
        access_token: Some(ENGINE_TOKEN.into()),
        identities: vec![ENGINE.into()],
        ..Config::default()
    };
    let context = crate::build(config, LogSink::memory())?;
    let server = crate::start(context.clone(), localhost)
        .await
        .context("starting the receiver")?;
    sandbox.add_delivery(gcp_sandbox::Delivery::eventarc(server.url()));

    println!(
        "antibody demo: a local Google API sandbox at {} delivers audit events to antibody at {}",
        sandbox.base_url(),
        server.url()
    );
    println!("the careless user is {USER}; antibody acts as {ENGINE}\n");
    println!(
        "{:<3} {:<42} {:<16} {:<22} {:>9}  check",
        "#", "the user", "rule", "antibody", "healed in"
    );

    let client = gcp_sandbox::http_client(Duration::from_secs(10));
    let firewalls = format!(
        "{}/compute/v1/projects/{PROJECT}/global/firewalls",
        sandbox.base_url()
    );
    let mut all_ok = true;
    for (index, step) in steps().into_iter().enumerate() {
        let url = match step.method {
            "PATCH" => format!("{firewalls}/{}", step.rule),
            _ => firewalls.clone(),
        };
        let started = Instant::now();
        let request = match step.method {
            "PATCH" => client.patch(&url),
            _ => client.post(&url),
        };
        let response = request
            .bearer_auth(USER_TOKEN)
            .json(&step.body)
            .send()
            .await?;
        if !response.status().is_success() {
            anyhow::bail!(
                "the sandbox refused step {}: {}",
                index + 1,
                response.text().await?
            );
        }
        let (healed, elapsed) = if step.stays_open {
            sandbox.settled().await;
            (false, started.elapsed())
        } else {
            wait_disabled(&client, &format!("{firewalls}/{}", step.rule)).await?
        };
        sandbox.settled().await;
        let rule = read_rule(&client, &format!("{firewalls}/{}", step.rule)).await?;
        let disabled = rule["disabled"].as_bool().unwrap_or(false);
        let ok = disabled != step.stays_open && (step.stays_open || healed);
        all_ok &= ok;
        let action = if disabled {
            "disabled the rule"
        } else {
            "left it alone"
        };
        let timing = if step.stays_open {
            "-".to_string()
        } else {
            format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0)
        };
        println!(
            "{:<3} {:<42} {:<16} {:<22} {:>9}  {}",
            index + 1,
            step.what,
            step.rule,
            action,
            timing,
            if ok { "ok" } else { "FAILED" }
        );
    }

    let entries = context.journal.entries(1000).await?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for entry in &entries {
        *counts
            .entry(entry.outcome.clone().unwrap_or(entry.state.clone()))
            .or_default() += 1;
    }
    println!(
        "\njournal: {} audit events, {}",
        entries.len(),
        counts
            .iter()
            .map(|(outcome, count)| format!("{count} {outcome}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("structured alerts written: {}", context.log.lines().len());
    if let Some(line) = context.log.lines().first() {
        println!(
            "first alert: {}",
            line["message"].as_str().unwrap_or_default()
        );
    }
    println!(
        "\n{}",
        if all_ok {
            "every hole was closed, every safe rule left alone"
        } else {
            "SOME EXPECTATIONS FAILED"
        }
    );
    server.shutdown();
    sandbox.shutdown();
    Ok(all_ok)
}

async fn read_rule(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(url)
        .bearer_auth(USER_TOKEN)
        .send()
        .await?
        .json()
        .await?)
}

/// Polls until the rule reads back disabled; returns how long that took.
async fn wait_disabled(client: &reqwest::Client, url: &str) -> anyhow::Result<(bool, Duration)> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if read_rule(client, url).await?["disabled"] == json!(true) {
            return Ok((true, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok((false, started.elapsed()))
}
