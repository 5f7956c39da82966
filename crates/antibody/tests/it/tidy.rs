//! The invariants of ARCHITECTURE.md that a reading of the source can check: only `gcp/` talks to Google, only the
//! kinds' apply and undo change anything, the sandbox does not depend on the engine, wall time comes from the clock,
//! every file says what it is — each guard proven by a mutation it catches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files by path (relative to the tree they were read from) with their text.
type Sources = Vec<(String, String)>;

/// Every `.rs` file under `root`, by its path relative to `root`, with its text.
fn sources(root: &Path) -> Sources {
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
    found.sort();
    found
}

fn engine() -> Sources {
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

fn sandbox() -> (String, Sources) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gcp-sandbox");
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).expect("the sandbox's manifest");
    (manifest, sources(&root.join("src")))
}

/// The code of a file without its comments and without the items marked `#[cfg(test)]` (a `mod tests;` line or a
/// braced item): what it does, not what it says — everything before and after those items is kept.
fn code(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        rest = skip_item(&rest[at + "#[cfg(test)]".len()..]);
    }
    kept.push_str(rest);
    kept.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What follows the item at the start of `text`: up to its `;` when it has no body, past its matching `}` when it has
/// one. String, raw-string and character literals are stepped over so braces inside them do not count.
fn skip_item(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b';' if depth == 0 => return &text[at + 1..],
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &text[at + 1..];
                }
            }
            b'"' => at = past_string(bytes, at + 1),
            b'r' if bytes
                .get(at + 1)
                .is_some_and(|next| *next == b'#' || *next == b'"') =>
            {
                let hashes = bytes[at + 1..]
                    .iter()
                    .take_while(|byte| **byte == b'#')
                    .count();
                if bytes.get(at + 1 + hashes) == Some(&b'"') {
                    let close = format!("\"{}", "#".repeat(hashes));
                    let start = at + 2 + hashes;
                    at = text[start..]
                        .find(&close)
                        .map_or(bytes.len(), |end| start + end + close.len() - 1);
                }
            }
            b'\'' if bytes.get(at + 2) == Some(&b'\'') => at += 2,
            b'\'' if bytes.get(at + 1) == Some(&b'\\') => {
                at = text[at + 2..]
                    .find('\'')
                    .map_or(bytes.len(), |end| at + 2 + end);
            }
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                at = text[at..].find('\n').map_or(bytes.len(), |end| at + end);
            }
            _ => {}
        }
        at += 1;
    }
    ""
}

/// The index just before the `"` that closes a string literal whose body starts at `at`.
fn past_string(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// The functions defined in `text`, by name, with their bodies (code only).
fn functions(text: &str) -> BTreeMap<String, String> {
    let code = code(text);
    let mut found = BTreeMap::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("fn ") {
        let after = &rest[at + 3..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let preceded_by_word = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let Some(open) = after.find('{') else { break };
        let body_start = &after[open..];
        let remainder = skip_item(body_start);
        let body = &body_start[..body_start.len() - remainder.len()];
        if !name.is_empty() && !preceded_by_word && !after[..open].contains(';') {
            found.insert(name, body.to_string());
        }
        rest = remainder;
    }
    found
}

/// URL verbs that are reads although Google takes them by POST.
const READ_VERBS: &[&str] = &["getIamPolicy", "getAncestry", "entries:list"];

/// Every method of `gcp/` that changes something at Google: a function that sends POST, PATCH, PUT or DELETE (or calls
/// one of `gcp/`'s own helpers that does), unless its URL is a read Google takes by POST. `gcp/firestore.rs` is the
/// journal's store, not a guarded resource.
fn google_writes(sources: &Sources) -> BTreeSet<String> {
    let mut bodies = BTreeMap::new();
    let mut public = BTreeSet::new();
    for (path, text) in sources {
        if !path.starts_with("gcp/") || path == "gcp/firestore.rs" {
            continue;
        }
        let code = code(text);
        for (name, body) in functions(text) {
            if code.contains(&format!("pub async fn {name}("))
                || code.contains(&format!("pub fn {name}("))
            {
                public.insert(name.clone());
            }
            bodies.insert(name, body);
        }
    }
    let reads = |body: &str| READ_VERBS.iter().any(|verb| body.contains(verb));
    let mut writes: BTreeSet<String> = bodies
        .iter()
        .filter(|(_, body)| {
            [
                "Method::POST",
                "Method::PATCH",
                "Method::PUT",
                "Method::DELETE",
            ]
            .iter()
            .any(|method| body.contains(method))
                && !reads(body)
        })
        .map(|(name, _)| name.clone())
        .collect();
    loop {
        let more: Vec<String> = bodies
            .iter()
            .filter(|(name, body)| {
                !writes.contains(*name)
                    && !reads(body)
                    && writes
                        .iter()
                        .any(|write| body.contains(&format!(".{write}(")))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        writes.extend(more);
    }
    writes.retain(|name| public.contains(name));
    writes
}

/// Files outside `gcp/` and `kinds/` that call one of Google's writes.
fn writes_outside_the_kinds(sources: &Sources) -> Vec<String> {
    let writes = google_writes(sources);
    let mut found = Vec::new();
    for (path, text) in sources {
        if path.starts_with("gcp/") || path.starts_with("kinds/") {
            continue;
        }
        let code = code(text);
        let called: Vec<&String> = writes
            .iter()
            .filter(|write| code.contains(&format!(".{write}(")))
            .collect();
        if !called.is_empty() {
            found.push(format!(
                "{path} writes to Google ({called:?}): only a kind's apply and undo may (behind apply::run and undo::undo)"
            ));
        }
    }
    found
}

/// Files outside `gcp/` that make HTTP calls without a reason on the list.
fn http_outside_gcp(sources: &Sources) -> Vec<String> {
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
    let mut found = Vec::new();
    for (path, text) in sources {
        if path.starts_with("gcp/") || path.starts_with("cli/demo/") || path == "main.rs" {
            continue;
        }
        let code = code(text);
        let http = [
            "reqwest::",
            "Method::GET",
            "Method::POST",
            "Method::PATCH",
            "Method::PUT",
        ]
        .iter()
        .any(|marker| code.contains(marker));
        if http && !OTHER_HTTP.iter().any(|(allowed, _)| allowed == path) {
            found.push(format!(
                "{path} makes HTTP calls: Google's APIs are called through gcp::Client only"
            ));
        }
    }
    found
}

/// Ways the sandbox could lean on the engine.
fn sandbox_uses_the_engine(manifest: &str, sources: &Sources) -> Vec<String> {
    let mut found = Vec::new();
    if manifest
        .lines()
        .any(|line| line.trim_start().starts_with("antibody"))
    {
        found.push(
            "gcp-sandbox depends on antibody: a misreading of Google's JSON could hide in both"
                .to_string(),
        );
    }
    for (path, text) in sources {
        if code(text).contains("antibody::") {
            found.push(format!("{path} uses the engine"));
        }
    }
    found
}

/// anyhow outside the binary, or the environment read by configuration code.
fn impure_library(sources: &Sources) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources {
        let code = code(text);
        if !(path == "main.rs" || path.starts_with("cli/")) && code.contains("anyhow") {
            found.push(format!(
                "{path} uses anyhow: the library's errors are typed"
            ));
        }
        if path.starts_with("config/") && code.contains("std::env") {
            found.push(format!(
                "{path} reads the environment: Config::validate is pure (the binary reads it)"
            ));
        }
    }
    found
}

/// Wall-clock reads anywhere but `clock.rs`.
fn wall_clock_reads(sources: &Sources) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources {
        if path == "clock.rs" {
            continue;
        }
        let code = code(text);
        for read in ["SystemTime::now", "UNIX_EPOCH", "OffsetDateTime::now"] {
            if code.contains(read) {
                found.push(format!(
                    "{path} reads the wall clock ({read}): windows and expiries read crate::clock::Clock, which tests move"
                ));
            }
        }
    }
    found
}

/// Files that do not start with a `//!` line.
fn unexplained_files(sources: &Sources) -> Vec<String> {
    sources
        .iter()
        .filter(|(_, text)| !text.starts_with("//!"))
        .map(|(path, _)| format!("{path} does not start with a //! line"))
        .collect()
}

#[test]
fn only_the_kinds_apply_and_undo_change_the_cloud() {
    let engine = engine();
    let writes = google_writes(&engine);
    for known in [
        "patch_firewall",
        "set_project_policy",
        "set_sql_networks",
        "delete_key",
        "stop_instance",
    ] {
        assert!(
            writes.contains(known),
            "{known} is a write; found {writes:?}"
        );
    }
    for read in [
        "get_project_policy",
        "ancestry",
        "key_disabled_at",
        "list_sql_instances",
    ] {
        assert!(!writes.contains(read), "{read} is a read; found {writes:?}");
    }
    assert_eq!(writes_outside_the_kinds(&engine), Vec::<String>::new());
}

#[test]
fn only_gcp_talks_to_google() {
    assert_eq!(http_outside_gcp(&engine()), Vec::<String>::new());
}

#[test]
fn the_sandbox_does_not_depend_on_the_engine() {
    let (manifest, sources) = sandbox();
    assert_eq!(
        sandbox_uses_the_engine(&manifest, &sources),
        Vec::<String>::new()
    );
}

#[test]
fn anyhow_stays_in_the_binary_and_configuration_is_pure() {
    assert_eq!(impure_library(&engine()), Vec::<String>::new());
}

#[test]
fn wall_time_is_read_from_the_clock() {
    assert_eq!(wall_clock_reads(&engine()), Vec::<String>::new());
}

#[test]
fn every_source_file_says_what_it_is() {
    assert_eq!(unexplained_files(&engine()), Vec::<String>::new());
}

/// A copy of `sources` with `insert` put into `path` right after the first line containing `after`.
fn mutated(sources: &Sources, path: &str, after: &str, insert: &str) -> Sources {
    let mut copy = sources.clone();
    let (_, text) = copy
        .iter_mut()
        .find(|(candidate, _)| candidate == path)
        .unwrap_or_else(|| panic!("{path} is a source file"));
    let at = text
        .find(after)
        .unwrap_or_else(|| panic!("{path} contains {after:?}"));
    let line_end = text[at..].find('\n').map_or(text.len(), |end| at + end + 1);
    text.insert_str(line_end, insert);
    copy
}

/// Each guard fails on a copy of the source with one violation put in — including past a file's `mod tests;` line —
/// and lets the same violation pass inside a `#[cfg(test)]` item.
#[test]
fn every_guard_catches_the_violation_it_exists_for() {
    let engine = engine();
    let caught = |what: &str, found: Vec<String>| {
        assert!(!found.is_empty(), "the guard missed: {what}");
    };
    caught(
        "a Cloud SQL write from the pipeline",
        writes_outside_the_kinds(&mutated(
            &engine,
            "pipeline/mod.rs",
            "async fn apply_fix(",
            "    let _ = cx.gcp.set_sql_networks(\"p\", \"i\", &[], \"\");\n",
        )),
    );
    caught(
        "a bucket write from notify",
        writes_outside_the_kinds(&mutated(
            &engine,
            "notify/mod.rs",
            "//!",
            "async fn open(gcp: &crate::gcp::Client) { let _ = gcp.set_bucket_policy(\"b\", &p).await; }\n",
        )),
    );
    caught(
        "a wall-clock read in kinds::route, past `mod tests;`",
        wall_clock_reads(&mutated(
            &engine,
            "kinds/mod.rs",
            "pub fn route(",
            "    let _ = std::time::SystemTime::now();\n",
        )),
    );
    caught(
        "a wall-clock read in journal::interrupted",
        wall_clock_reads(&mutated(
            &engine,
            "journal/mod.rs",
            "fn interrupted(",
            "    let _ = time::OffsetDateTime::now_utc();\n",
        )),
    );
    caught(
        "an HTTP call from the gate",
        http_outside_gcp(&mutated(
            &engine,
            "gate.rs",
            "//!",
            "fn call() { let _ = reqwest::Client::new(); }\n",
        )),
    );
    caught(
        "anyhow in the pipeline",
        impure_library(&mutated(
            &engine,
            "pipeline/mod.rs",
            "//!",
            "use anyhow::Context as _;\n",
        )),
    );
    caught(
        "configuration reading the environment",
        impure_library(&mutated(
            &engine,
            "config/mod.rs",
            "//!",
            "fn home() -> Option<String> { std::env::var(\"HOME\").ok() }\n",
        )),
    );
    let mut unexplained = engine.clone();
    unexplained[0].1 = unexplained[0].1.replacen("//!", "//", 1);
    caught(
        "a file without its //! line",
        unexplained_files(&unexplained),
    );
    let (manifest, sandbox) = sandbox();
    caught(
        "the sandbox depending on the engine",
        sandbox_uses_the_engine(
            &format!("{manifest}\nantibody = {{ path = \"../antibody\" }}\n"),
            &sandbox,
        ),
    );
    caught(
        "the sandbox calling the engine",
        sandbox_uses_the_engine(
            &manifest,
            &mutated(&sandbox, "lib.rs", "//!", "use antibody::policy;\n"),
        ),
    );
    // The same read inside a test item is the test's business; the code after that item is still read.
    let test_item = "#[cfg(test)]\nmod probe {\n    fn t() { let _ = std::time::SystemTime::now(); let _ = ('}', \"}\", r#\"}\"#); }\n}\n";
    let file = |tail: &str| {
        vec![(
            "gate.rs".to_string(),
            format!("//! probe\n{test_item}{tail}"),
        )]
    };
    assert_eq!(
        wall_clock_reads(&file("fn later() {}\n")),
        Vec::<String>::new(),
        "a read inside a #[cfg(test)] item is not the library's"
    );
    caught(
        "a read after a #[cfg(test)] item",
        wall_clock_reads(&file(
            "fn later() { let _ = std::time::SystemTime::now(); }\n",
        )),
    );
}
