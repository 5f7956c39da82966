//! The `antibody` binary's offline commands: exit codes and output that scripts rely on.

use std::io::Write;
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
