//! Google REST clients: the only code that talks to Google. Typed requests, unknown response fields ignored.

pub mod auth;
pub mod bigquery;
pub mod compute;
mod connections;
pub mod firestore;
pub mod firewall_policies;
pub mod iam;
pub mod iam_admin;
pub mod instances;
pub mod log_buckets;
pub mod logging;
pub mod resource_iam;
pub mod resourcemanager;
pub mod sql;
pub mod storage;
pub mod templates;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads a field Google may send as `null` the way it reads an absent one: as its default (an empty list). A field
/// read as `null` must never fail the read of the whole resource, and with it the fix.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}

/// One path segment or query value as it goes into a URL: everything but RFC 3986's unreserved characters is
/// percent-encoded, so that no name can add a segment, a query or a fragment to a call.
pub(crate) fn segment(text: &str) -> std::borrow::Cow<'_, str> {
    // A segment of only dots would be read as "this" or "the parent" directory: its dots are encoded too.
    let dots = !text.is_empty() && text.bytes().all(|byte| byte == b'.');
    let unreserved = |byte: u8| {
        byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'~')
            || (byte == b'.' && !dots)
    };
    if !text.is_empty() && text.bytes().all(unreserved) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if unreserved(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    std::borrow::Cow::Owned(encoded)
}

/// What a caller can do about a failed call.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    /// A concurrent change won (409 ABORTED, 412 precondition failed): re-read and decide again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Quota, overload, network: worth redelivering later.
    #[error("transient error ({status}): {message}")]
    Retryable {
        status: u16,
        message: String,
        after: Option<Duration>,
    },
    /// Bad request, permission denied: redelivery will not help.
    #[error("request refused ({status}): {message}")]
    Permanent { status: u16, message: String },
    /// The write was accepted but its long-running operation ended with an error.
    #[error("operation failed: {0}")]
    Operation(String),
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Retryable { .. } | Error::Conflict(_))
    }
}

/// Google's real hosts, or one base URL for all of them (the sandbox).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub compute: String,
    pub resource_manager: String,
    pub storage: String,
    pub iam: String,
    pub logging: String,
    pub bigquery: String,
    pub sql: String,
    /// The one base URL every API is served from (the sandbox), if any.
    pub base: Option<String>,
    /// HTTP/2 without TLS to `base` (`serve.google_http2`).
    pub http2: bool,
}

impl Endpoints {
    pub fn new(override_base: Option<&str>) -> Self {
        let host = |google: &str| match override_base {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => google.to_string(),
        };
        Endpoints {
            compute: host("https://compute.googleapis.com"),
            resource_manager: host("https://cloudresourcemanager.googleapis.com"),
            storage: host("https://storage.googleapis.com"),
            iam: host("https://iam.googleapis.com"),
            logging: host("https://logging.googleapis.com"),
            bigquery: host("https://bigquery.googleapis.com"),
            sql: host("https://sqladmin.googleapis.com"),
            base: override_base.map(|base| base.trim_end_matches('/').to_string()),
            http2: false,
        }
    }

    /// Speaks HTTP/2 with prior knowledge to a plain `http://` base URL when `on`; Google's `https://` hosts
    /// negotiate HTTP/2 by themselves (ALPN), so it changes nothing for them.
    pub fn speaking_http2(mut self, on: bool) -> Self {
        self.http2 = on
            && self
                .base
                .as_deref()
                .is_some_and(|base| base.starts_with("http://"));
        self
    }
}

/// The HTTP client for Google's APIs: every call ends within `bound`; redirects are errors to report, not hops to take
/// with a bearer token; `http2` speaks HTTP/2 without TLS (see `Endpoints::speaking_http2`).
pub(crate) fn http_client(bound: Duration, http2: bool) -> reqwest::Client {
    crate::http_client(bound, |builder| {
        let builder = builder
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        match http2 {
            true => builder.http2_prior_knowledge(),
            false => builder,
        }
    })
}

/// A client for every Google API antibody uses.
#[derive(Debug, Clone)]
pub struct Client {
    http: std::sync::Arc<connections::Connections>,
    endpoints: Endpoints,
    credentials: std::sync::Arc<auth::Credentials>,
    attempts: u32,
    /// Operations this client started: their audit entries are antibody's own writes whatever principal they
    /// show (the loop guard's fingerprint). Every event asks, so lookups are by hash.
    started: std::sync::Arc<std::sync::Mutex<StartedOperations>>,
    /// Paces requests per project (`max_requests_per_second_per_project`); `None` means no limit.
    limiter: Option<std::sync::Arc<governor::DefaultKeyedRateLimiter<String>>>,
}

/// How many started operations the fingerprint remembers.
const REMEMBERED_OPERATIONS: usize = 10_000;

/// The most recent operations a client started, oldest forgotten first.
#[derive(Debug, Default)]
struct StartedOperations {
    order: std::collections::VecDeque<String>,
    names: std::collections::HashSet<String>,
}

impl Client {
    /// A client with a fixed token (or none); see `with_credentials` for the metadata server.
    pub fn new(endpoints: Endpoints, token: Option<String>) -> Self {
        let credentials = match token {
            Some(token) => auth::Credentials::Token(token),
            None => auth::Credentials::Anonymous,
        };
        Client::with_credentials(endpoints, credentials)
    }

    pub fn with_credentials(endpoints: Endpoints, credentials: auth::Credentials) -> Self {
        Client::with_shared_credentials(endpoints, std::sync::Arc::new(credentials))
    }

    /// A client sharing credentials (and their token cache) with another user, such as a Firestore journal.
    pub fn with_shared_credentials(
        endpoints: Endpoints,
        credentials: std::sync::Arc<auth::Credentials>,
    ) -> Self {
        Client {
            http: std::sync::Arc::new(connections::Connections::new(
                Duration::from_secs(30),
                endpoints.http2,
            )),
            endpoints,
            credentials,
            attempts: 3,
            started: Default::default(),
            limiter: None,
        }
    }

    /// Builds the HTTP client now, so that the first call does not wait for it (a server calls this on a
    /// blocking thread once it listens).
    pub fn warm(&self) {
        self.http.warm();
    }

    /// Sends at most `per_second` requests per second about any one project (0 = no limit), evenly spaced: a burst
    /// would let two windows' worth land in one of Google's per-second (or per-minute) quota windows.
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        self.limiter = std::num::NonZeroU32::new(per_second).map(|rate| {
            std::sync::Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(std::num::NonZeroU32::MIN),
            ))
        });
        self
    }

    /// Remembers an operation this client started.
    pub(crate) fn remember_operation(&self, name: &str) {
        let mut started = self.started.lock().expect("operation memory poisoned");
        if !started.names.insert(name.to_string()) {
            return;
        }
        started.order.push_back(name.to_string());
        if started.order.len() > REMEMBERED_OPERATIONS
            && let Some(oldest) = started.order.pop_front()
        {
            started.names.remove(&oldest);
        }
    }

    /// Whether this client started the operation an audit entry belongs to.
    pub fn started_operation(&self, name: &str) -> bool {
        !name.is_empty()
            && self
                .started
                .lock()
                .expect("operation memory poisoned")
                .names
                .contains(name)
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        method: Method,
        url: &str,
    ) -> Result<RequestBuilder, Error> {
        let request = http.request(method, url);
        Ok(match self.credentials.token().await? {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }

    /// Sends a request, retrying transient failures a bounded number of times (writes carry a `requestId`,
    /// so a retry cannot apply twice), and decodes the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        self.call_if_match(method, url, body, None).await
    }

    /// `call`, with an `If-Match` precondition (BigQuery's etag guard: 412 when the resource changed).
    async fn call_if_match<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let result = self.call_with_retries(method, url, body, if_match).await;
        let waited = started.elapsed().as_micros() as u64;
        let _ = GOOGLE_TIME.try_with(|total| total.set(total.get() + waited));
        result
    }

    async fn call_with_retries<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<T, Error> {
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            // Quotas are per project: a call that names none (a bucket's, by its name) is not paced.
            if let Some(limiter) = &self.limiter
                && let Some(project) = project_of(url)
            {
                limiter.until_key_ready(&project).await;
            }
            let (http, seat) = self.http.take();
            let sent = match self.request(http, method.clone(), url).await {
                Ok(request) => {
                    let request = match body {
                        Some(body) => request.json(body),
                        None => request,
                    };
                    let request = match if_match {
                        Some(etag) => request.header(reqwest::header::IF_MATCH, etag),
                        None => request,
                    };
                    self.send::<T>(request).await
                }
                Err(err) => Err(err),
            };
            drop(seat);
            match sent {
                Err(Error::Retryable { after, .. }) if attempt < self.attempts => {
                    let wait = after.unwrap_or_else(|| jittered(backoff));
                    tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Every item of a Google list, page after page: `first` is the first page's URL, `items` takes a page's items
    /// out of it, and `nextPageToken` is followed until Google gives none. A token Google has already given ends the
    /// walk with an error instead of a loop.
    pub(crate) async fn every_page<T>(
        &self,
        first: &str,
        mut items: impl FnMut(Value) -> Result<Vec<T>, Error>,
    ) -> Result<Vec<T>, Error> {
        let joiner = if first.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut url = first.to_string();
        loop {
            let page: Value = self.call(Method::GET, &url, None).await?;
            let next = page["nextPageToken"]
                .as_str()
                .filter(|token| !token.is_empty())
                .map(str::to_string);
            all.extend(items(page)?);
            let Some(token) = next else {
                return Ok(all);
            };
            url = format!("{first}{joiner}pageToken={}", segment(&token));
            if !seen.insert(token) {
                return Err(Error::Permanent {
                    status: 200,
                    message: format!("Google gave the same page token twice listing {first}"),
                });
            }
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Error> {
        let response = request.send().await.map_err(|err| Error::Retryable {
            status: 0,
            message: format!("cannot reach Google: {err}"),
            after: None,
        })?;
        let status = response.status();
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|err| Error::Retryable {
            status: status.as_u16(),
            message: format!("reading the answer: {err}"),
            after: None,
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|err| Error::Permanent {
                status: status.as_u16(),
                message: format!("unexpected answer from Google: {err}"),
            });
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|body| body["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(classify(status, message, after))
    }
}

/// A value read from Google's JSON as `T`, or the error an unexpected answer is.
pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|err| Error::Permanent {
        status: 200,
        message: format!("unexpected answer from Google: {err}"),
    })
}

tokio::task_local! {
    /// Microseconds the current event's handling spent waiting on Google (calls, their retries and pacing), when
    /// the handler keeps count (`pipeline::handle`).
    pub static GOOGLE_TIME: std::cell::Cell<u64>;
}

/// The project a request is about, for pacing: the `projects/P` path segment or the `project=` parameter; calls
/// that name neither (a bucket by name) share one budget.
fn project_of(url: &str) -> Option<String> {
    if let Some(rest) = url.split("/projects/").nth(1) {
        return rest
            .split(['/', ':', '?'])
            .next()
            .filter(|project| !project.is_empty() && *project != "-")
            .map(str::to_string);
    }
    if let Some(rest) = url.split("project=").nth(1) {
        return rest.split('&').next().map(str::to_string);
    }
    None
}

/// Between half and one and a half times `backoff`, so that many clients backing off do not retry in step.
pub(crate) fn jittered(backoff: Duration) -> Duration {
    let unit = (uuid::Uuid::new_v4().as_u128() >> 64) as f64 / u64::MAX as f64;
    backoff.mul_f64(0.5 + unit)
}

/// The one place that decides what an HTTP failure means for retrying.
fn classify(status: StatusCode, message: String, after: Option<Duration>) -> Error {
    match status.as_u16() {
        404 => Error::NotFound(message),
        409 | 412 => Error::Conflict(message),
        408 | 429 | 500 | 502 | 503 | 504 => Error::Retryable {
            status: status.as_u16(),
            message,
            after,
        },
        code => Error::Permanent {
            status: code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_remembers_the_latest_operations_and_forgets_the_oldest() {
        let client = Client::new(Endpoints::new(Some("http://127.0.0.1:9")), None);
        for index in 0..=REMEMBERED_OPERATIONS {
            client.remember_operation(&format!("operation-{index}"));
        }
        assert!(
            !client.started_operation("operation-0"),
            "the oldest is forgotten"
        );
        assert!(client.started_operation("operation-1"));
        assert!(client.started_operation(&format!("operation-{REMEMBERED_OPERATIONS}")));
        assert!(!client.started_operation(""));
        // Remembering one twice keeps one entry; the next new one pushes out the oldest.
        client.remember_operation("operation-1");
        client.remember_operation("operation-new");
        assert!(!client.started_operation("operation-1"));
        assert!(client.started_operation("operation-2"));
        assert!(client.started_operation("operation-new"));
        assert_eq!(
            client.started.lock().expect("lock").order.len(),
            REMEMBERED_OPERATIONS
        );
    }

    #[test]
    fn http2_without_tls_only_for_a_plain_http_endpoint() {
        assert!(
            Endpoints::new(Some("http://127.0.0.1:8085"))
                .speaking_http2(true)
                .http2
        );
        assert!(
            !Endpoints::new(Some("http://127.0.0.1:8085"))
                .speaking_http2(false)
                .http2
        );
        // Google's hosts, and any https:// endpoint, negotiate HTTP/2 over TLS by themselves.
        assert!(!Endpoints::new(None).speaking_http2(true).http2);
        assert!(
            !Endpoints::new(Some("https://example.test"))
                .speaking_http2(true)
                .http2
        );
    }
}

#[cfg(test)]
mod segment_tests {
    use super::segment;

    #[test]
    fn names_cannot_add_segments_queries_or_fragments() {
        assert_eq!(segment("web-ssh"), "web-ssh");
        assert_eq!(segment("a.b_c~d"), "a.b_c~d");
        assert_eq!(segment("web-ssh?alt=json#x"), "web-ssh%3Falt%3Djson%23x");
        assert_eq!(segment("../x/y"), "..%2Fx%2Fy");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("."), "%2E");
        assert_eq!(segment("example.com:proj"), "example.com%3Aproj");
        assert_eq!(segment("CgR0b2s+/w=="), "CgR0b2s%2B%2Fw%3D%3D");
    }
}
