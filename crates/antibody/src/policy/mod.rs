//! What every kind's policy speaks: findings, severities, globs and CIDR ranges. Policies are pure functions from a
//! freshly read resource to findings and a planned fix (`kinds::Plan`): no I/O, no clock. Each lives in its kind's room.

pub mod cidr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// One thing wrong with a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub policy: String,
    /// Security Health Analytics' category name where one exists (`OPEN_SSH_PORT`).
    pub category: String,
    pub severity: Severity,
    pub message: String,
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(tail) = text.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len())
                .filter(|at| tail.is_char_boundary(*at))
                .any(|at| glob_match(rest, &tail[at..]))
        }
    }
}
