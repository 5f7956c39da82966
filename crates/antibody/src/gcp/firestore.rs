//! Firestore's REST API v1 as antibody's journal calls it: one database's `documents` verbs (`:commit`, `:batchGet`,
//! `:beginTransaction`, `:rollback`, `:runQuery`) on antibody's HTTP client and Google credentials, and Firestore's
//! errors by status, as far as a caller can act on them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::auth::Credentials;

/// Why a Firestore call failed, as far as the caller can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// A transaction lost to a concurrent write (`ABORTED`): run it again.
    #[error("aborted by a concurrent write: {0}")]
    Aborted(String),
    /// A `currentDocument.exists: false` precondition met a document.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A `currentDocument.updateTime` precondition did not hold.
    #[error("precondition failed: {0}")]
    Precondition(String),
    /// No such document (a write with `exists: true`), or no such database.
    #[error("not found: {0}")]
    NotFound(String),
    /// Unavailable, overloaded, timed out, unreachable: worth another attempt.
    #[error("{0}")]
    Transient(String),
    /// Refused (permission, bad request): another attempt will not help.
    #[error("{0}")]
    Permanent(String),
}

impl Fault {
    /// Contention and outages are retried; a precondition that a racing writer broke is, too, by the callers that
    /// re-read (they map it to `Aborted`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Fault::Aborted(_) | Fault::Transient(_))
    }

    /// A lost race on a create or an update-time check: the caller reads again and decides again.
    pub fn raced(self) -> Fault {
        match self {
            Fault::AlreadyExists(message) | Fault::Precondition(message) => Fault::Aborted(message),
            other => other,
        }
    }
}

/// Decodes an answer: the JSON on success, else the fault its status names.
fn answer(status: u16, bytes: &[u8]) -> Result<Value, Fault> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(bytes)
            .map_err(|err| Fault::Permanent(format!("unexpected answer from Firestore: {err}")));
    }
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    // A streamed answer (`runQuery`) carries its error as the array's element.
    let error = match &body {
        Value::Array(items) => items.iter().find_map(|item| item.get("error")).cloned(),
        other => other.get("error").cloned(),
    }
    .unwrap_or(Value::Null);
    let message = error["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(200).collect());
    let message = format!("{status}: {message}");
    Err(
        match (status, error["status"].as_str().unwrap_or_default()) {
            (_, "ABORTED") => Fault::Aborted(message),
            (_, "ALREADY_EXISTS") => Fault::AlreadyExists(message),
            (_, "FAILED_PRECONDITION") => Fault::Precondition(message),
            (404, _) | (_, "NOT_FOUND") => Fault::NotFound(message),
            (408 | 429 | 500 | 502 | 503 | 504, _) => Fault::Transient(message),
            (_, "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "RESOURCE_EXHAUSTED" | "INTERNAL") => {
                Fault::Transient(message)
            }
            _ => Fault::Permanent(message),
        },
    )
}

/// One Firestore database's documents: `{base}/v1/projects/P/databases/D/documents`.
#[derive(Debug)]
pub struct Database {
    http: super::connections::Connections,
    credentials: Arc<Credentials>,
    url: String,
}

impl Database {
    /// `base` is Google's host, or one base URL for every API (the sandbox); every call ends within `bound`.
    pub fn new(
        base: Option<&str>,
        http2: bool,
        credentials: Arc<Credentials>,
        project: &str,
        database: &str,
        bound: Duration,
    ) -> Database {
        let base = base
            .map(|base| base.trim_end_matches('/').to_string())
            .unwrap_or_else(|| "https://firestore.googleapis.com".into());
        Database {
            http: super::connections::Connections::new(bound, http2),
            credentials,
            // Both ids are checked when the state URL is parsed (`[a-z0-9-]`, or `(default)`).
            url: format!("{base}/v1/projects/{project}/databases/{database}/documents"),
        }
    }

    /// One call to `…/documents{suffix}` (`:commit` and the other verbs).
    pub async fn post(&self, suffix: &str, body: &Value) -> Result<Value, Fault> {
        let (http, _seat) = self.http.take();
        let mut request = http.post(format!("{}{suffix}", self.url)).json(body);
        match self.credentials.token().await {
            Ok(Some(token)) => request = request.bearer_auth(token),
            Ok(None) => {}
            Err(err) if err.is_retryable() => return Err(Fault::Transient(err.to_string())),
            Err(err) => return Err(Fault::Permanent(err.to_string())),
        }
        let response = request
            .send()
            .await
            .map_err(|err| Fault::Transient(format!("cannot reach Firestore: {err}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| Fault::Transient(format!("reading Firestore's answer: {err}")))?;
        answer(status.as_u16(), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_become_faults() {
        let body = |status: &str| {
            json!({"error": {"code": 409, "message": "m", "status": status}}).to_string()
        };
        assert!(matches!(
            answer(409, body("ABORTED").as_bytes()),
            Err(Fault::Aborted(_))
        ));
        assert!(matches!(
            answer(409, body("ALREADY_EXISTS").as_bytes()),
            Err(Fault::AlreadyExists(_))
        ));
        assert!(matches!(
            answer(400, body("FAILED_PRECONDITION").as_bytes()),
            Err(Fault::Precondition(_))
        ));
        assert!(matches!(answer(503, b"down"), Err(Fault::Transient(_))));
        assert!(matches!(
            answer(403, body("PERMISSION_DENIED").as_bytes()),
            Err(Fault::Permanent(_))
        ));
        let streamed =
            json!([{"error": {"status": "UNAVAILABLE", "message": "later"}}]).to_string();
        assert!(matches!(
            answer(503, streamed.as_bytes()),
            Err(Fault::Transient(_))
        ));
    }
}
