//! The `antibody` binary's offline commands: exit codes and output that scripts rely on.

use std::io::Write;

use crate::harness::{free_port, spawn, wait_for};
use std::process::{Command, Output, Stdio};

fn antibody(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("antibody runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("exit")
}

#[test]
fn check_firewall_exit_codes_and_json() {
    let open = r#"{"name": "ssh", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}"#;
    let output = antibody(
        &["check", "--kind", "firewall", "--format", "json", "-"],
        open,
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["compliant"], false);
    assert_eq!(report["findings"][0]["policy"], "open-firewall");
    assert_eq!(report["findings"][0]["severity"], "HIGH");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("SSH"))
    );
    assert_eq!(report["fix"]["kind"], "disable_firewall");

    let closed = r#"{"name": "ssh", "sourceRanges": ["10.0.0.0/8"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}"#;
    let output = antibody(
        &["check", "--kind", "firewall", "--format", "json", "-"],
        closed,
    );
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        report,
        serde_json::json!({"compliant": true, "findings": [], "fix": null})
    );

    let output = antibody(&["check", "--kind", "firewall", "-"], "{\"name\": ");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid JSON"));
}

#[test]
fn check_reads_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("rule.json");
    std::fs::write(
        &path,
        r#"{"name": "any", "sourceRanges": ["::/0"], "allowed": [{"IPProtocol": "all"}]}"#,
    )
    .expect("write");
    let output = antibody(&["check", path.to_str().expect("utf-8")], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OPEN_FIREWALL"));
    let output = antibody(&["check", "/nonexistent/rule.json"], "");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn check_project_iam() {
    let policy = r#"{"version": 3, "etag": "BwX=", "bindings": [{"role": "roles/owner", "members": ["user:me@example.com", "user:pal@gmail.com"]}]}"#;
    let output = antibody(
        &["check", "--kind", "project-iam", "--format", "json", "-"],
        policy,
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        report["fix"]["grants"],
        serde_json::json!([{"role": "roles/owner", "member": "user:pal@gmail.com"}])
    );
    let downgraded = r#"{"version": 1, "bindings": [{"role": "roles/owner_withcond_abc", "members": ["user:me@example.com"]}]}"#;
    assert_eq!(
        antibody(&["check", "--kind", "project-iam", "-"], downgraded)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../antibody.example.toml");
    assert_eq!(
        antibody(&["check-config", "--config", example], "")
            .status
            .code(),
        Some(0)
    );
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[policies.open_firewall]\nfix = \"explode\"\n").expect("write");
    let output = antibody(
        &["check-config", "--config", bad.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("policies.open_firewall.fix"));
}

// Issue 17, item 6: `check-config` printed the access token, push secret, webhook secret, PagerDuty key, Slack URL
// and SMTP password, and `--notify` errors echoed the SMTP URL with its password.
#[test]
fn secrets_never_print() {
    let secrets = [
        "ya29.access-token-SECRET-1",
        "push-secret-SECRET-2-0123456789abcdef",
        "T000/B000/SECRET-3",
        "webhook-SECRET-4",
        "routing-SECRET-5",
        "smtp-SECRET-6",
    ];
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("antibody.toml");
    std::fs::write(
        &file,
        format!(
            "[serve]\naccess_token = \"{}\"\npush_secret = \"{}\"\n\n\
             [[notify]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/{}\"\n\n\
             [[notify]]\nkind = \"webhook\"\nurl = \"https://hooks.example.com/in\"\nsecret = \"{}\"\n\n\
             [[notify]]\nkind = \"pagerduty\"\nrouting_key = \"{}\"\n\n\
             [[notify]]\nkind = \"email\"\nurl = \"smtp://alerts:{}@mail.example.com:587/?to=sec@example.com\"\n",
            secrets[0], secrets[1], secrets[2], secrets[3], secrets[4], secrets[5]
        ),
    )
    .expect("write");
    let output = antibody(
        &["check-config", "--config", file.to_str().expect("utf-8")],
        "",
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
    for secret in secrets {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    let output = antibody(
        &[
            "check",
            "--kind",
            "firewall",
            "--config",
            "/nonexistent/antibody.toml",
            "-",
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    // A bad --notify flag is reported without the password in it.
    let output = antibody(
        &[
            "scan",
            "--project",
            "my-project",
            "--notify",
            "smtp://alerts:smtp-SECRET-6@mail.example.com:587/",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("?to=") && !stderr.contains("SECRET"),
        "{stderr}"
    );
}

// Issue 17, item 6: an empty push secret turned authentication off without a word.
#[test]
fn short_or_empty_push_secrets_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    for secret in ["", "hunter2"] {
        let file = dir.path().join("antibody.toml");
        std::fs::write(&file, format!("[serve]\npush_secret = \"{secret}\"\n")).expect("write");
        let output = antibody(
            &["check-config", "--config", file.to_str().expect("utf-8")],
            "",
        );
        assert_eq!(output.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("serve.push_secret"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// Issue 17, item 8: `check-config | head` panicked on the broken pipe.
#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../antibody.example.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(["check-config", "--config", example])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("antibody runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// Issue 16: every state command reads ANTIBODY_STATE, as `serve` does (the container sets it).
#[tokio::test]
async fn state_commands_honour_antibody_state() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("from-env.sqlite");
    antibody::journal::Journal::open(&state)
        .await
        .expect("a journal");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_antibody"))
            .args(args)
            .env("ANTIBODY_STATE", &state)
            .current_dir(dir.path())
            .output()
            .expect("antibody runs")
    };
    assert!(run(&["pause"]).status.success());
    assert!(
        run(&[
            "exempt",
            "add",
            "projects/_/buckets/site",
            "--owner",
            "me",
            "--reason",
            "website"
        ])
        .status
        .success()
    );
    let listed = run(&["exempt", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("projects/_/buckets/site"));
    assert!(run(&["resume"]).status.success());
    assert!(run(&["journal"]).status.success());
    assert!(state.exists(), "the journal named by ANTIBODY_STATE");
    assert!(
        !dir.path().join("antibody.sqlite").exists(),
        "nothing written to the default file"
    );
}

// Issue 17, item 8: `--insecure-no-auth` listened on every interface.
#[test]
fn an_unauthenticated_receiver_listens_on_loopback_only() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("antibody.sqlite");
    let port = free_port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "serve",
            "--port",
            &port,
            "--state",
            state.to_str().expect("utf-8"),
            "--google-endpoint",
            "http://127.0.0.1:9",
            "--insecure-no-auth",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("antibody runs");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let listening = stderr
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("listening on"));
    let _ = child.kill();
    let _ = child.wait();
    let listening = listening.expect("a listening line");
    assert!(
        listening.contains(&format!("http://127.0.0.1:{port}/")),
        "{listening}"
    );
}

#[test]
fn the_demo_heals_every_case() {
    let output = antibody(&["demo"], "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("every hole was closed"), "{stdout}");
}

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

#[test]
fn serve_refuses_to_run_unauthenticated_unless_asked() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let output = Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "serve",
            "--port",
            "0",
            "--state",
            state.to_str().expect("utf-8"),
            "--google-endpoint",
            "http://127.0.0.1:9",
        ])
        .env_remove("ANTIBODY_PUSH_AUDIENCE")
        .env_remove("ANTIBODY_PUSH_EMAILS")
        .output()
        .expect("antibody runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("push authentication is not configured")
    );
}

/// kill -9 between the decision and the alert's delivery: after a restart on the same state file, the alert goes out
/// exactly once.
#[tokio::test]
async fn an_alert_survives_kill_9_of_antibody_and_is_delivered_once_after_restart() {
    let (engine_port, hook_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("journal.sqlite");
    let mut sandbox_config = gcp_sandbox::SandboxConfig::default();
    sandbox_config
        .principals
        .insert("bot".into(), "bot@p.iam.gserviceaccount.com".into());
    sandbox_config
        .deliveries
        .push(gcp_sandbox::Delivery::eventarc(format!(
            "http://127.0.0.1:{engine_port}/"
        )));
    let sandbox = gcp_sandbox::start(sandbox_config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
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
