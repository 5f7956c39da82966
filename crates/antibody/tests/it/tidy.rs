//! The invariants of ARCHITECTURE.md that a reading of the source can check: only `gcp/` talks to Google, only the
//! kinds' apply and undo change anything, the sandbox does not depend on the engine, wall time comes from the clock,
//! every file says what it is.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `root`, by its path relative to `root`, with its text.
fn sources(root: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path: PathBuf = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).expect("source text");
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                found.push((relative, text));
            }
        }
    }
    found
}

fn engine() -> Vec<(String, String)> {
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// The code of a file without its comments and its unit tests: what it does, not what it says.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn only_the_kinds_apply_and_undo_change_the_cloud() {
    const WRITES: &[&str] = &[
        ".patch_firewall(",
        ".insert_firewall(",
        ".insert_firewall_json(",
        ".update_firewall(",
        ".delete_firewall(",
        ".set_project_policy(",
        ".patch_bucket(",
        ".set_bucket_policy(",
    ];
    for (path, text) in engine() {
        let code = code(&text);
        let writes: Vec<&&str> = WRITES
            .iter()
            .filter(|write| code.contains(**write))
            .collect();
        if writes.is_empty() || path.starts_with("gcp/") {
            continue;
        }
        assert!(
            path.starts_with("kinds/"),
            "{path} writes to Google ({writes:?}): only a kind's apply and undo may (behind apply::run and undo::undo)"
        );
    }
}

#[test]
fn only_gcp_talks_to_google() {
    // Files that make HTTP calls of their own, and why none of them is a call to a Google API.
    const OTHER_HTTP: &[(&str, &str)] = &[
        ("lib.rs", "builds the HTTP clients"),
        (
            "notify/outbox.rs",
            "delivers alerts to Slack, webhooks, PagerDuty",
        ),
        (
            "receive/auth.rs",
            "fetches the push tokens' signing keys (JWKS)",
        ),
        ("receive/listen.rs", "serves the receiver"),
        ("config/secret.rs", "parses URLs to redact them"),
        ("config/channel.rs", "parses alert channel URLs"),
    ];
    for (path, text) in engine() {
        if path.starts_with("gcp/") || path.starts_with("cli/demo/") || path == "main.rs" {
            continue;
        }
        let code = code(&text);
        let http = [
            "reqwest::",
            "Method::GET",
            "Method::POST",
            "Method::PATCH",
            "Method::PUT",
        ]
        .iter()
        .any(|marker| code.contains(marker));
        if http {
            assert!(
                OTHER_HTTP.iter().any(|(allowed, _)| *allowed == path),
                "{path} makes HTTP calls: Google's APIs are called through gcp::Client only"
            );
        }
    }
}

#[test]
fn the_sandbox_does_not_depend_on_the_engine() {
    let sandbox = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gcp-sandbox");
    let manifest =
        std::fs::read_to_string(sandbox.join("Cargo.toml")).expect("the sandbox's manifest");
    assert!(
        !manifest
            .lines()
            .any(|line| line.trim_start().starts_with("antibody")),
        "gcp-sandbox must not depend on antibody: a misreading of Google's JSON could hide in both"
    );
    for (path, text) in sources(&sandbox.join("src")) {
        assert!(
            !code(&text).contains("antibody::"),
            "{path} uses the engine"
        );
    }
}

#[test]
fn anyhow_stays_in_the_binary_and_configuration_is_pure() {
    for (path, text) in engine() {
        let code = code(&text);
        if !(path == "main.rs" || path.starts_with("cli/")) {
            assert!(
                !code.contains("anyhow"),
                "{path} uses anyhow: the library's errors are typed"
            );
        }
        if path.starts_with("config/") {
            assert!(
                !code.contains("std::env"),
                "{path} reads the environment: Config::validate is pure (the binary reads it)"
            );
        }
    }
}

#[test]
fn wall_time_is_read_from_the_clock() {
    for (path, text) in engine() {
        if path == "clock.rs" {
            continue;
        }
        let code = code(&text);
        for read in ["SystemTime::now", "UNIX_EPOCH", "OffsetDateTime::now"] {
            assert!(
                !code.contains(read),
                "{path} reads the wall clock ({read}): windows and expiries read crate::clock::Clock, which tests move"
            );
        }
    }
}

#[test]
fn every_source_file_says_what_it_is() {
    for (path, text) in engine() {
        assert!(
            text.starts_with("//!"),
            "{path} does not start with a //! line"
        );
    }
}
