//! Credentials for Google's APIs: a fixed token, or tokens from the metadata server (Cloud Run, GCE; `GCE_METADATA_HOST`
//! is honoured), cached and refreshed a minute before they expire.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::Error;

/// Refresh this long before a token expires.
const EARLY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum Credentials {
    /// No Authorization header (the sandbox accepts that).
    Anonymous,
    Token(String),
    /// The metadata server at this host (`metadata.google.internal` on Google's infrastructure).
    Metadata {
        host: String,
        cached: Mutex<Option<(String, Instant)>>,
    },
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

impl Credentials {
    pub fn metadata(host: impl Into<String>) -> Self {
        Credentials::Metadata {
            host: host.into(),
            cached: Mutex::new(None),
        }
    }

    /// The bearer token to send now, if any.
    pub async fn token(&self, http: &reqwest::Client) -> Result<Option<String>, Error> {
        let (host, cached) = match self {
            Credentials::Anonymous => return Ok(None),
            Credentials::Token(token) => return Ok(Some(token.clone())),
            Credentials::Metadata { host, cached } => (host, cached),
        };
        let mut cached = cached.lock().await;
        if let Some((token, _)) = cached
            .as_ref()
            .filter(|(_, expires)| Instant::now() + EARLY < *expires)
        {
            return Ok(Some(token.clone()));
        }
        let url =
            format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
        let unavailable = |message: String| Error::Retryable {
            status: 0,
            message,
            after: None,
        };
        let response = http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|err| {
                unavailable(format!("cannot reach the metadata server at {host}: {err}"))
            })?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "the metadata server answered {}",
                response.status()
            )));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|err| unavailable(format!("unexpected metadata token answer: {err}")))?;
        let expires = Instant::now() + Duration::from_secs(answer.expires_in);
        *cached = Some((answer.access_token.clone(), expires));
        Ok(Some(answer.access_token))
    }
}
