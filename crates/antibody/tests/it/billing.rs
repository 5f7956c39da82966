//! The deployed billing mode: with CPU only while it answers a request (Cloud Run's request-based billing,
//! `serve --cpu request`), a process frozen between requests still re-decides what a grace period deferred, retries
//! the alert that failed and delivers every alert — on Cloud Scheduler's `POST /tick`, never on a timer of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    ENGINE, ENGINE_TOKEN, PROJECT, USER, USER_TOKEN, free_port, open_ssh, wait_for,
};

/// A webhook receiver that fails its first delivery (500) and records every body.
async fn flaky_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = recorded.clone();
            async move {
                let mut seen = seen.lock().expect("seen");
                seen.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                match seen.len() {
                    1 => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    _ => axum::http::StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, seen)
}

/// SIGSTOP or SIGCONT to a process: frozen, it gets no CPU at all.
fn freeze(child: &std::process::Child, frozen: bool) {
    let signal = if frozen { "-STOP" } else { "-CONT" };
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

// Issue 32: under request-based billing, work that falls due after the response (deferred decisions, alert
// retries) ran in background tasks that never get CPU on an idle instance.
#[tokio::test]
async fn a_process_frozen_between_requests_still_fixes_and_alerts_on_its_ticks() {
    let mut sandbox_config = gcp_sandbox::SandboxConfig::default();
    sandbox_config
        .principals
        .insert(USER_TOKEN.into(), USER.into());
    sandbox_config
        .principals
        .insert(ENGINE_TOKEN.into(), ENGINE.into());
    let sandbox = gcp_sandbox::start(
        sandbox_config,
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .expect("sandbox");
    let (hook, seen) = flaky_receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("antibody.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\nidentities = [\"{ENGINE}\"]\n\n[policies.open_firewall]\ngrace_seconds = 1\n\n\
             [[notify]]\nkind = \"webhook\"\nurl = \"{hook}\"\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let state = dir.path().join("journal.sqlite");
    let mut engine = crate::harness::spawn_with_env(
        &[
            "serve",
            "--port",
            &port.to_string(),
            "--insecure-no-auth",
            "--cpu",
            "request",
            "--state",
            state.to_str().expect("utf-8"),
        ],
        &[
            ("ANTIBODY_CONFIG", config.to_str().expect("utf-8")),
            ("ANTIBODY_GOOGLE_ENDPOINT", &sandbox.base_url()),
            ("ANTIBODY_ACCESS_TOKEN", ENGINE_TOKEN),
        ],
    );
    let client = crate::harness::http();
    let engine_url = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{engine_url}/healthz"), &client).await;

    let rules = format!(
        "{}/compute/v1/projects/{PROJECT}/global/firewalls",
        sandbox.base_url()
    );
    let inserted = client
        .post(&rules)
        .bearer_auth(USER_TOKEN)
        .json(&open_ssh("frozen-ssh"))
        .send()
        .await
        .expect("insert");
    assert!(inserted.status().is_success());
    sandbox.settled().await;
    let entry = sandbox
        .audit_entries()
        .into_iter()
        .find(|entry| {
            entry["protoPayload"]["resourceName"]
                .as_str()
                .is_some_and(|name| name.ends_with("/frozen-ssh"))
        })
        .expect("the insert's audit entry");
    let answer: Value = client
        .post(format!("{engine_url}/"))
        .json(&entry)
        .send()
        .await
        .expect("push")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["outcome"], "deferred", "{answer}");

    // No CPU between requests: past the grace period, and past any timer a process might keep.
    freeze(&engine.0, true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    freeze(&engine.0, false);
    let rule = |client: reqwest::Client, url: String| async move {
        client
            .get(url)
            .send()
            .await
            .expect("get")
            .json::<Value>()
            .await
            .expect("json")
    };
    let rule_url = format!("{rules}/frozen-ssh");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(
        rule(client.clone(), rule_url.clone()).await["disabled"],
        true,
        "with CPU only during requests nothing runs on a timer"
    );

    // The tick decides again and delivers what it alerts before it answers; the first delivery fails.
    let mut ticks = Vec::new();
    for _ in 0..10 {
        freeze(&engine.0, false);
        let ticked: Value = client
            .post(format!("{engine_url}/tick"))
            .send()
            .await
            .expect("tick")
            .json()
            .await
            .expect("json");
        freeze(&engine.0, true);
        ticks.push(ticked);
        let delivered = seen.lock().expect("seen").len();
        if delivered >= 2 {
            break;
        }
        // The retry's backoff passes while the process is frozen.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    freeze(&engine.0, false);
    assert_eq!(ticks[0]["rechecked"], 1, "{ticks:?}");
    assert_eq!(
        rule(client.clone(), rule_url).await["disabled"],
        true,
        "the tick fixed the rule"
    );
    let seen = seen.lock().expect("seen").clone();
    assert!(
        seen.len() >= 2,
        "the failed alert was retried on a tick: {ticks:?}"
    );
    assert_eq!(seen[0], seen[1], "the same alert, delivered again");
    assert!(seen[1].to_string().contains("frozen-ssh"), "{}", seen[1]);
    let _ = engine.0.kill();
}
