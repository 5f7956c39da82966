//! The HTTP receiver: decodes Eventarc (binary and structured), Pub/Sub push and raw LogEntry bodies into
//! AuditEvents, hands them to the pipeline, and answers so that senders redeliver exactly when they must.

pub mod auth;
mod eventarc;
pub mod listen;
mod pubsub;
mod scheduled;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::event::{AuditEvent, EventError, Transport};
use crate::outcome::Outcome;
use crate::pipeline::{self, Context, Handled};

/// Bodies above this are refused with 413; audit entries are far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

/// What a request body turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Event(Box<AuditEvent>),
    /// Well-formed, but not something antibody handles (another CloudEvent type): acknowledged and dropped.
    NotAudit(String),
}

/// A request we cannot use, with the sentence that tells the sender why.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub message: String,
}

impl Rejection {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<EventError> for Rejection {
    fn from(err: EventError) -> Self {
        Rejection::bad(err.to_string())
    }
}

/// The receiver's own state: the engine, who may push, and its shares of capacity.
pub struct Receiver {
    cx: Arc<Context>,
    /// Verifies Google-signed push tokens; `None` when pushes are not authenticated by token.
    verifier: Option<auth::Verifier>,
    /// One sweep at a time per process (`POST /sweep`).
    sweeping: Arc<tokio::sync::Mutex<()>>,
    /// The nonces of `v2`-signed requests seen within the signature window.
    nonces: auth::Nonces,
    /// Bodies read before their sender is verified (a self-hosted sender's signature covers the body): a quarter
    /// of the capacity, so that unverified senders can never take what verified ones need.
    unverified: Arc<tokio::sync::Semaphore>,
}

/// Bodies read before their sender is verified, at once: a quarter of the capacity.
fn unverified_share(max_in_flight: usize) -> usize {
    (max_in_flight / 4).max(1)
}

/// One peer's part of the unverified share: a quarter of it, so that at least three others keep room.
pub fn unverified_per_peer(max_in_flight: usize) -> usize {
    (unverified_share(max_in_flight) / 4).max(1)
}

pub fn router(cx: Arc<Context>) -> Router {
    let verifier = cx.config.push_audience.clone().map(|audience| {
        auth::Verifier::new(
            audience,
            cx.config.push_emails.clone(),
            cx.config.jwks_url.clone(),
        )
    });
    let receiver = Arc::new(Receiver {
        unverified: Arc::new(tokio::sync::Semaphore::new(unverified_share(
            cx.config.max_in_flight,
        ))),
        verifier,
        sweeping: Arc::new(tokio::sync::Mutex::new(())),
        nonces: auth::Nonces::default(),
        cx: cx.clone(),
    });
    let ready = Arc::new(Readiness {
        cx: cx.clone(),
        probed: tokio::sync::Mutex::new(None),
    });
    let metrics_cx = cx.clone();
    Router::new()
        .route("/", post(receive))
        .route("/sweep", post(scheduled::sweep))
        .route("/tick", post(scheduled::tick))
        .with_state(receiver)
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move { ready.answer().await }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let cx = metrics_cx.clone();
                async move { metrics(&cx).await }
            }),
        )
}

/// How long a successful probe of the journal answers `/readyz`: anyone may ask, and on Firestore every probe is a
/// billed write, so callers share one per window (a failed probe is not kept: the next call probes again).
pub const READINESS_WINDOW_MS: i64 = 5_000;

/// Ready while the journal can be written (an instance that cannot journal cannot accept events) and the process is
/// not stopping.
struct Readiness {
    cx: Arc<Context>,
    /// When (engine-clock milliseconds) the journal was last probed successfully.
    probed: tokio::sync::Mutex<Option<i64>>,
}

impl Readiness {
    async fn answer(&self) -> Response {
        if self.cx.draining() {
            return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
        }
        let now = self.cx.clock().now_ms();
        let mut probed = self.probed.lock().await;
        let found = match *probed {
            Some(at) if (0..READINESS_WINDOW_MS).contains(&(now - at)) => Ok(()),
            _ => {
                let found = self.cx.journal.writable().await;
                *probed = found.is_ok().then_some(now);
                found
            }
        };
        match found {
            Ok(()) => (StatusCode::OK, "ok\n").into_response(),
            Err(err) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the journal cannot be written: {err}\n"),
            )
                .into_response(),
        }
    }
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The answer while stopping: the sender redelivers, to another instance.
fn stopping() -> Response {
    let mut response = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "antibody is stopping; the event will be redelivered",
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

fn busy() -> Response {
    let mut response = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "antibody is at its concurrency limit; the event will be redelivered",
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

/// Prometheus text exposition of the journal's counters.
async fn metrics(cx: &Context) -> Response {
    let Ok(metrics) = cx.journal.metrics().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the journal is unavailable\n",
        )
            .into_response();
    };
    let mut text = String::from(
        "# HELP antibody_events_total Accepted events by outcome.\n# TYPE antibody_events_total counter\n",
    );
    for (outcome, count) in &metrics.events_by_outcome {
        text.push_str(&format!(
            "antibody_events_total{{outcome=\"{outcome}\"}} {count}\n"
        ));
    }
    text.push_str("# HELP antibody_alerts_total Alerts by channel and delivery state.\n# TYPE antibody_alerts_total counter\n");
    for (channel, state, count) in &metrics.alerts_by_state {
        text.push_str(&format!(
            "antibody_alerts_total{{channel=\"{channel}\",state=\"{state}\"}} {count}\n"
        ));
    }
    text.push_str(&format!(
        "# HELP antibody_quarantined_resources Resources antibody stopped fixing.\n# TYPE antibody_quarantined_resources gauge\nantibody_quarantined_resources {}\n",
        metrics.quarantined
    ));
    text.push_str(&format!(
        "# HELP antibody_paused Whether the kill switch is on.\n# TYPE antibody_paused gauge\nantibody_paused {}\n",
        u8::from(metrics.paused)
    ));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let cx = &receiver.cx;
    if cx.draining() {
        return stopping();
    }
    let (parts, body) = request.into_parts();
    let peer_share = parts.extensions.get::<listen::PeerShare>().cloned();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    // A Google-signed token is checked from the headers alone, before any of the body is read, so a sender without
    // one costs a header parse and nothing else.
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes().starts_with(b"Bearer "));
    let secret = cx.config.push_secret.as_ref();
    let token_verified = match (&receiver.verifier, bearer) {
        (Some(verifier), true) => match verifier.verify(&headers).await {
            Ok(()) => true,
            Err(rejection) => return answer(rejection.status, rejection.message),
        },
        (Some(verifier), false) if secret.is_none() => {
            if let Err(rejection) = verifier.verify(&headers).await {
                return answer(rejection.status, rejection.message);
            }
            true
        }
        _ => false,
    };
    let open = receiver.verifier.is_none() && secret.is_none();
    // A sender not yet verified reads its body in the smaller unverified share of the capacity.
    // The peer's own part of it first: one peer cannot spend what others need.
    let reading = match token_verified || open {
        true => None,
        false => {
            let peer = match peer_share {
                Some(share) => match share.0.try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => return busy(),
                },
                None => None,
            };
            match receiver.unverified.clone().try_acquire_owned() {
                Ok(permit) => Some((permit, peer)),
                Err(_) => return busy(),
            }
        }
    };
    let body = match tokio::time::timeout(
        listen::BODY_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(err)) if is_too_large(&err) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_BODY} bytes; audit entries are far smaller"),
            );
        }
        Ok(Err(err)) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {err}"),
            );
        }
        Err(_) => {
            return answer(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    listen::BODY_TIMEOUT.as_secs()
                ),
            );
        }
    };
    if !token_verified && let Some(secret) = secret {
        let verified = match auth::is_v2(&headers) {
            true => auth::verify_request_signature(
                secret.expose(),
                method.as_str(),
                uri.path(),
                &headers,
                &body,
                &receiver.nonces,
            ),
            false => auth::verify_signature(secret.expose(), &headers, &body),
        };
        if let Err(rejection) = verified {
            return answer(rejection.status, rejection.message);
        }
    }
    drop(reading);
    // Saturated: ask the sender to come back rather than queueing without bound.
    let Ok(handling) = cx.in_flight.clone().try_acquire_owned() else {
        return busy();
    };
    // Stopping began while the body was read: the permit is back before the answer, and the sender redelivers.
    if cx.draining() {
        return stopping();
    }
    let event = match decode(&headers, &body) {
        Ok(Decoded::Event(event)) => crate::event::AuditEvent {
            trace: trace_id(&headers),
            ..*event
        },
        Ok(Decoded::NotAudit(reason)) => {
            return (
                StatusCode::OK,
                Json(json!({"outcome": "ignored", "reason": reason})),
            )
                .into_response();
        }
        Err(rejection) => {
            return (rejection.status, Json(json!({"error": rejection.message}))).into_response();
        }
    };
    // What arrived is parsed: the body (over HTTP/2 a slice of the connection's read buffer, which it keeps alive)
    // and the headers are not held while the handling waits on Google.
    drop((body, headers));
    pipeline::crash_point("received");
    // The pipeline runs in a task of its own: if the sender gives up (an ack deadline, a dropped connection), the
    // handling still finishes and its row is completed, instead of being cancelled half-way.
    let handled = tokio::spawn({
        let cx = cx.clone();
        // The permit goes with the handling, not with the request: a sender that hangs up does not make a stopping
        // process think the event is done.
        async move {
            let _handling = handling;
            let handled = pipeline::handle(&cx, &event).await;
            // Without CPU after the answer, the decision's alerts go out before it (what is left, the next tick
            // delivers).
            if cx.config.cpu == crate::config::Cpu::Request
                && matches!(&handled, Ok(handled) if handled.alerted)
            {
                let deadline = tokio::time::Instant::now() + scheduled::ALERT_BUDGET;
                pipeline::deliver_due(&cx, deadline).await;
            }
            handled
        }
    })
    .await
    .unwrap_or_else(|err| {
        Err(crate::journal::Error::Worker(format!(
            "the handler stopped: {err}"
        )))
    });
    match handled {
        Ok(Handled {
            id,
            outcome: Outcome::Rejected { reason },
            ..
        }) => {
            // Journaled as ignored with the reason; the sender hears one sentence.
            let body = json!({"id": id, "outcome": "ignored", "error": reason});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        Ok(handled) => {
            let status = if matches!(
                handled.outcome,
                Outcome::Retry { .. } | Outcome::InProgress { .. }
            ) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (status, Json(handled)).into_response()
        }
        Err(err) => {
            tracing::error!(%err, "journal unavailable; asking for redelivery");
            let body =
                json!({"error": "the journal is unavailable; the event will be redelivered"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The trace id of a delivery: W3C `traceparent` (also as the CloudEvents extension `ce-traceparent`) or Google's
/// `X-Cloud-Trace-Context: TRACE/SPAN;o=1`.
fn trace_id(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let w3c = header("traceparent")
        .or_else(|| header("ce-traceparent"))
        .and_then(|value| value.split('-').nth(1));
    let google = || header("x-cloud-trace-context").and_then(|value| value.split('/').next());
    w3c.or_else(google)
        .filter(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
}

/// Whether reading a body failed on its size limit.
fn is_too_large(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Recognises the envelope by its headers and shape, never by guessing from content.
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Decoded, Rejection> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if headers.contains_key("ce-specversion") || headers.contains_key("ce-id") {
        return eventarc::binary(headers, body);
    }
    if !(content_type.is_empty() || content_type.contains("json")) {
        return Err(Rejection {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "content type '{content_type}' is not JSON; send application/json or application/cloudevents+json"
            ),
        });
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| Rejection::bad(format!("the body is not valid JSON: {err}")))?;
    if content_type.starts_with("application/cloudevents+json")
        || value.get("specversion").is_some()
    {
        return eventarc::structured(&value);
    }
    if value.get("message").is_some() {
        return pubsub::push(&value);
    }
    if value.get("protoPayload").is_some() {
        return Ok(Decoded::Event(Box::new(AuditEvent::from_log_entry(
            &value,
            Transport::LogEntry,
            None,
        )?)));
    }
    Err(Rejection::bad(
        "the body is neither a CloudEvent, a Pub/Sub push envelope nor a LogEntry with a protoPayload",
    ))
}

#[cfg(test)]
mod tests;
