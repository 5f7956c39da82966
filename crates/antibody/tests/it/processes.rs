//! The binaries as separate processes: `antibody sandbox` and `antibody serve` healing a rule, undo and replay through
//! the command line against a running service, and an alert that survives `kill -9`.

use crate::cli::antibody;
use crate::harness::{free_port, spawn, wait_for};

#[tokio::test]
async fn the_sandbox_and_serve_commands_heal_a_rule_as_separate_processes() {
    let (sandbox_port, engine_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let _sandbox = spawn(&[
        "sandbox",
        "--port",
        &sandbox_port.to_string(),
        "--deliver-to",
        &format!("http://127.0.0.1:{engine_port}/"),
        "--principal",
        "me=me@example.com",
        "--principal",
        "bot=bot@p.iam.gserviceaccount.com",
    ]);
    let _engine = spawn(&[
        "serve",
        "--port",
        &engine_port.to_string(),
        "--google-endpoint",
        &sandbox_url,
        "--state",
        state.to_str().expect("utf-8"),
        "--insecure-no-auth",
        "--access-token",
        "bot",
        "--identity",
        "bot@p.iam.gserviceaccount.com",
    ]);
    let client = crate::harness::http();
    wait_for(&format!("http://127.0.0.1:{engine_port}/healthz"), &client).await;
    wait_for(
        &format!("{sandbox_url}/compute/v1/projects/proj-p1/global/firewalls"),
        &client,
    )
    .await;
    let rules = format!("{sandbox_url}/compute/v1/projects/proj-p1/global/firewalls");
    let rule = serde_json::json!({"name": "cli-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]});
    assert!(
        client
            .post(&rules)
            .bearer_auth("me")
            .json(&rule)
            .send()
            .await
            .expect("insert")
            .status()
            .is_success()
    );
    let mut disabled = false;
    for _ in 0..200 {
        let read: serde_json::Value = client
            .get(format!("{rules}/cli-ssh"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if read["disabled"] == true {
            disabled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(disabled, "the separate antibody process disabled the rule");
    // The outcome is journaled once the fix is verified, a moment after the rule reads disabled.
    let entries = journal_until(&state, |entries| {
        entries.iter().any(|entry| entry["outcome"] == "remediated")
    })
    .await;
    for entry in &entries {
        for field in ["id", "resource", "outcome", "time"] {
            assert!(
                entry.get(field).is_some(),
                "journal json lacks {field}: {entry}"
            );
        }
    }
}

/// Polls `antibody journal --format json` until `done` holds for its entries.
async fn journal_until(
    state: &std::path::Path,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    for _ in 0..400 {
        let output = antibody(
            &[
                "journal",
                "--state",
                state.to_str().expect("utf-8"),
                "--format",
                "json",
            ],
            "",
        );
        entries =
            serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).unwrap_or_default();
        if done(&entries) {
            return entries;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the journal never got there: {entries:?}");
}

// Issue 16: undo through the CLI, with the operator's own credentials (not antibody's), recorded as the operator's,
// and kept from being fixed again by the exemption it registers.
#[tokio::test]
async fn undo_through_the_cli_acts_as_the_operator_and_is_not_fought() {
    let (sandbox_port, engine_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let state_arg = state.to_str().expect("utf-8").to_string();
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let _sandbox = spawn(&[
        "sandbox",
        "--port",
        &sandbox_port.to_string(),
        "--deliver-to",
        &format!("http://127.0.0.1:{engine_port}/"),
        "--principal",
        "me=me@example.com",
        "--principal",
        "bot=bot@proj-p1.iam.gserviceaccount.com",
        "--principal",
        "ops=ops@example.com",
    ]);
    let _engine = spawn(&[
        "serve",
        "--port",
        &engine_port.to_string(),
        "--google-endpoint",
        &sandbox_url,
        "--state",
        &state_arg,
        "--insecure-no-auth",
        "--access-token",
        "bot",
        "--identity",
        "bot@proj-p1.iam.gserviceaccount.com",
    ]);
    let client = crate::harness::http();
    wait_for(&format!("http://127.0.0.1:{engine_port}/healthz"), &client).await;
    let rules = format!("{sandbox_url}/compute/v1/projects/proj-p1/global/firewalls");
    wait_for(&rules, &client).await;
    let rule = serde_json::json!({"name": "vendor-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]});
    let inserted = client
        .post(&rules)
        .bearer_auth("me")
        .json(&rule)
        .send()
        .await
        .expect("insert");
    assert!(inserted.status().is_success());
    let entries = journal_until(&state, |entries| {
        entries.iter().any(|entry| entry["outcome"] == "remediated")
    })
    .await;
    let fix = entries
        .iter()
        .find(|entry| entry["outcome"] == "remediated")
        .and_then(|entry| entry["id"].as_i64())
        .expect("the fix's id");
    let output = antibody(
        &[
            "undo",
            &fix.to_string(),
            "--state",
            &state_arg,
            "--google-endpoint",
            &sandbox_url,
            "--access-token",
            "ops",
            "--operator",
            "ops@example.com",
        ],
        "",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The operator's restore comes back to the server as an audit event by ops@example.com: journaled as exempt
    // (the registry entry the undo made), not fixed again.
    let entries = journal_until(&state, |entries| {
        entries
            .iter()
            .any(|entry| entry["outcome"] == "exempt" && entry["principal"] == "ops@example.com")
    })
    .await;
    let read: serde_json::Value = client
        .get(format!("{rules}/vendor-ssh"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(read["disabled"], false, "restored and left alone");
    let undone = entries
        .iter()
        .find(|entry| entry["outcome"] == "undone")
        .expect("the undo's own row");
    assert_eq!(undone["principal"], "ops@example.com", "{undone}");
    let remediated = entries
        .iter()
        .filter(|entry| entry["outcome"] == "remediated")
        .count();
    assert_eq!(remediated, 1, "antibody did not fight the operator");
}

#[tokio::test]
async fn replay_pushes_recorded_events_through_the_same_pipeline() {
    let sandbox = gcp_sandbox::start(Default::default(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let client = crate::harness::http();
    let rules = format!(
        "{}/compute/v1/projects/proj-p1/global/firewalls",
        sandbox.base_url()
    );
    let rule = serde_json::json!({"name": "replayed", "allowed": [{"IPProtocol": "tcp", "ports": ["6379"]}], "sourceRanges": ["::/0"]});
    client
        .post(&rules)
        .bearer_auth("someone")
        .json(&rule)
        .send()
        .await
        .expect("insert");
    let dir = tempfile::tempdir().expect("dir");
    let recorded = dir.path().join("events.jsonl");
    let mut lines: Vec<String> = sandbox
        .audit_entries()
        .iter()
        .map(|entry| entry.to_string())
        .collect();
    lines.push("{\"not\": \"an event\"}".into());
    std::fs::write(&recorded, lines.join("\n")).expect("write");
    let state = dir.path().join("journal.sqlite");
    let base = sandbox.base_url();
    let output = tokio::task::spawn_blocking(move || {
        antibody(
            &[
                "replay",
                recorded.to_str().expect("utf-8"),
                "--google-endpoint",
                &base,
                "--state",
                state.to_str().expect("utf-8"),
            ],
            "",
        )
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(2),
        "one line was rejected: {stdout}"
    );
    assert!(stdout.contains("line 1: #1 remediated"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 3: rejected"));
    let read: serde_json::Value = client
        .get(format!("{rules}/replayed"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(read["disabled"], true);
}

/// kill -9 between the decision and the alert's delivery: after a restart on the same state file, the alert goes out
/// exactly once.
#[tokio::test]
async fn an_alert_survives_kill_9_of_antibody_and_is_delivered_once_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let mut sandbox_config = gcp_sandbox::SandboxConfig::default();
    sandbox_config
        .principals
        .insert("bot".into(), "bot@p.iam.gserviceaccount.com".into());
    let sandbox = gcp_sandbox::start(sandbox_config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    // Ports picked once the sandbox holds its own, so that it cannot be given one of them.
    let (engine_port, hook_port) = (free_port(), free_port());
    sandbox.add_delivery(gcp_sandbox::Delivery::eventarc(format!(
        "http://127.0.0.1:{engine_port}/"
    )));
    let engine_args = |port: u16| -> Vec<String> {
        [
            "serve",
            "--port",
            &port.to_string(),
            "--google-endpoint",
            &sandbox.base_url(),
            "--state",
            state.to_str().expect("utf-8"),
            "--insecure-no-auth",
            "--access-token",
            "bot",
            "--identity",
            "bot@p.iam.gserviceaccount.com",
            "--notify",
            &format!("webhook=http://127.0.0.1:{hook_port}/"),
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect()
    };
    let client = crate::harness::http();
    let first = spawn(
        &engine_args(engine_port)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    wait_for(&format!("http://127.0.0.1:{engine_port}/healthz"), &client).await;
    // The alert receiver is down: the fix happens, the alert waits in the outbox.
    let rule = serde_json::json!({"name": "crashy", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]});
    client
        .post(format!(
            "{}/compute/v1/projects/proj-p1/global/firewalls",
            sandbox.base_url()
        ))
        .bearer_auth("me")
        .json(&rule)
        .send()
        .await
        .expect("insert");
    sandbox.settled().await;
    let journal = antibody::journal::Journal::open(&state)
        .await
        .expect("journal");
    assert!(
        journal
            .alerts(10)
            .await
            .expect("outbox")
            .iter()
            .any(|alert| alert.state == "pending"),
        "an alert is waiting"
    );
    drop(first); // SIGKILL
    // The receiver comes up; a new process on the same state file delivers the alert.
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(serde_json::from_slice(&body).unwrap_or_default());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port))
        .await
        .expect("bind the hook port");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let _second = spawn(
        &engine_args(engine_port)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let alert = tokio::time::timeout(std::time::Duration::from_secs(15), received.recv())
        .await
        .expect("delivered after restart")
        .expect("open");
    assert_eq!(
        alert["resource"],
        "projects/proj-p1/global/firewalls/crashy"
    );
    crate::harness::all_delivered(&journal).await;
    assert!(received.try_recv().is_err(), "exactly once");
}

/// The CPU time (user + system, in clock ticks) a process has used so far, from `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // After the command's name in parentheses: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

// Issue 35: a connection that sent part of HTTP/2's preface and stalled was looked at again every 5 ms until the
// header deadline; a thousand of them cost a third of a core. They now cost next to nothing.
#[tokio::test]
async fn stalled_http2_prefaces_cost_next_to_no_cpu() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let engine = spawn(&[
        "serve",
        "--port",
        &port.to_string(),
        "--google-endpoint",
        "http://127.0.0.1:9",
        "--state",
        dir.path().join("journal.sqlite").to_str().expect("utf-8"),
        "--insecure-no-auth",
    ]);
    let client = crate::harness::http();
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), &client).await;
    let mut stalled = Vec::new();
    for _ in 0..400 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut stream, b"PRI * HTTP/2.0\r\n")
            .await
            .expect("half a preface");
        stalled.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = cpu_ticks(engine.0.id());
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let used = cpu_ticks(engine.0.id()) - before;
    // Clock ticks are 1/100 s: 3 s of a whole core would be 300.
    assert!(used < 30, "{used} ticks in 3 s for 400 stalled prefaces");
    drop(stalled);
}
