//! The `antibody` binary's own commands, each run once: exit codes and output that scripts rely on.

use std::io::Write;

use crate::harness::free_port;
use std::process::{Command, Output, Stdio};

pub(crate) fn antibody(args: &[&str], stdin: &str) -> Output {
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

// Issue 17, item 6: an empty push secret turned authentication off without a word. Issue 35: forty spaces, or one
// character repeated, passed as long enough.
#[test]
fn short_or_empty_push_secrets_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let spaces = " ".repeat(40);
    let repeated = "a".repeat(64);
    let padded = format!("hunter2{}", " ".repeat(40));
    for secret in ["", "hunter2", &spaces, &repeated, &padded] {
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
