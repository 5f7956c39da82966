//! The HTTP receiver: decodes Eventarc (binary and structured), Pub/Sub push and raw LogEntry bodies into
//! AuditEvents, hands them to the pipeline, and answers so that senders redeliver exactly when they must.

pub mod auth;
mod eventarc;
mod pubsub;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
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

pub fn router(cx: Arc<Context>) -> Router {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(cx.config.max_in_flight));
    Router::new()
        .route("/", post(receive))
        .layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
            let in_flight = in_flight.clone();
            async move {
                // Saturated: ask the sender to come back rather than queueing without bound.
                match in_flight.try_acquire_owned() {
                    Ok(_permit) => next.run(request).await,
                    Err(_) => {
                        let body = json!({"error": "antibody is at its concurrency limit; the event will be redelivered"});
                        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
                        response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
                        response
                    }
                }
            }
        }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(cx)
}

/// Prometheus text exposition of the journal's counters.
async fn metrics(State(cx): State<Arc<Context>>) -> Response {
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

async fn receive(State(cx): State<Arc<Context>>, headers: HeaderMap, body: Bytes) -> Response {
    // Either a Google-signed token or a self-hosted sender's signature admits a push, when configured.
    let verified = match (&cx.verifier, &cx.config.push_secret) {
        (None, None) => Ok(()),
        (None, Some(secret)) => auth::verify_signature(secret.expose(), &headers, &body),
        (Some(verifier), None) => verifier.verify(&headers).await,
        (Some(verifier), Some(secret)) => {
            match auth::verify_signature(secret.expose(), &headers, &body) {
                Ok(()) => Ok(()),
                Err(_) => verifier.verify(&headers).await,
            }
        }
    };
    if let Err(rejection) = verified {
        return (rejection.status, Json(json!({"error": rejection.message}))).into_response();
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
    pipeline::crash_point("received");
    // The pipeline runs in a task of its own: if the sender gives up (an ack deadline, a dropped connection), the
    // handling still finishes and its row is completed, instead of being cancelled half-way.
    let handled = tokio::spawn({
        let cx = cx.clone();
        async move { pipeline::handle(&cx, &event).await }
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
