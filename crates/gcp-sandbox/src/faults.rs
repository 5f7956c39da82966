//! Fault injection, per endpoint, through `POST /_sandbox/faults`: Google's bad days on demand — 429 with or without
//! `Retry-After`, 500/503, slow answers, connection resets, operations that end DONE with an error, a rule deleted just before a write.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::{ApiError, Shared};

/// One injected fault; it applies to the next `times` requests that match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// A substring of the path to match.
    pub path_contains: String,
    /// Only requests by this principal (any when absent).
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    /// Answer with this status (Google's error body) instead of handling the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// With `status`: a `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long before answering (or handling).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Handle the write, but let its operation end DONE with this error message.
    #[serde(default)]
    pub operation_error: Option<String>,
    /// Delete the firewall rule the path names just before handling (a rule deleted between read and write).
    #[serde(default)]
    pub delete_first: bool,
    /// Break the connection instead of answering: `before` handling (the request never took effect) or `after`
    /// (it did, but the caller never hears so and must retry without doing it twice).
    #[serde(default)]
    pub reset: Option<Reset>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reset {
    Before,
    After,
}

/// A response body that fails at once: hyper sends the status line, then aborts the connection, as a reset would.
struct Broken;

impl http_body::Body for Broken {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))))
    }
}

fn broken() -> Response {
    Response::new(axum::body::Body::new(Broken))
}

fn one() -> u32 {
    1
}

#[derive(Default)]
pub(crate) struct Faults {
    armed: Mutex<Vec<Fault>>,
}

impl Faults {
    pub(crate) fn add(&self, fault: Fault) {
        self.armed.lock().expect("faults lock poisoned").push(fault);
    }

    /// The fault for this request, if one is armed; each use counts down.
    fn take(&self, method: &str, path: &str, principal: &str) -> Option<Fault> {
        let mut armed = self.armed.lock().expect("faults lock poisoned");
        let index = armed.iter().position(|fault| {
            fault.times > 0
                && path.contains(&fault.path_contains)
                && fault
                    .method
                    .as_deref()
                    .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method))
                && fault
                    .principal
                    .as_deref()
                    .is_none_or(|wanted| wanted == principal)
        })?;
        armed[index].times -= 1;
        let fault = armed[index].clone();
        armed.retain(|fault| fault.times > 0);
        Some(fault)
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route(
        "/_sandbox/faults",
        post(
            |State(shared): State<Arc<Shared>>, Json(fault): Json<Fault>| async move {
                shared.faults.add(fault);
                StatusCode::NO_CONTENT
            },
        ),
    )
}

/// Middleware: applies the armed fault, if any, to a request.
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let principal = shared.principal(request.headers());
    let Some(fault) =
        shared
            .faults
            .take(request.method().as_str(), request.uri().path(), &principal)
    else {
        return next.run(request).await;
    };
    if let Some(delay) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match fault.reset {
        Some(Reset::Before) => return broken(),
        Some(Reset::After) => {
            let _ = next.run(request).await;
            return broken();
        }
        None => {}
    }
    if let Some(status) = fault
        .status
        .and_then(|status| StatusCode::from_u16(status).ok())
    {
        let mut response = ApiError::injected(status).into_response();
        if let Some(seconds) = fault.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        return response;
    }
    if fault.delete_first {
        let segments: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
        if let [
            "compute",
            _,
            "projects",
            project,
            "global",
            "firewalls",
            name,
        ] = segments.as_slice()
        {
            shared
                .compute
                .lock()
                .expect("compute state lock poisoned")
                .remove_firewall(project, name);
        }
    }
    if let Some(message) = fault.operation_error {
        *shared
            .next_operation_error
            .lock()
            .expect("operation error lock poisoned") = Some(message);
    }
    next.run(request).await
}
