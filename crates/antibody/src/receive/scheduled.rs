//! What Cloud Scheduler calls: `POST /sweep` (a sweep of `serve.sweep_projects`) and `POST /tick` (the work that
//! is due: deferred decisions and alerts). Each caller is verified exactly as a push is, and each piece of work runs
//! in a task of its own, so that a caller who hangs up does not cut it short.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Receiver, answer, auth, listen, stopping};
use crate::pipeline;

/// How long a push waits for its decision's alerts when the process has CPU only during requests.
pub(super) const ALERT_BUDGET: Duration = Duration::from_secs(10);

/// How long a tick spends delivering alerts (Cloud Scheduler's attempt deadline in the plan is longer).
pub(super) const TICK_BUDGET: Duration = Duration::from_secs(60);

/// Verifies the caller as a push is verified (a Google-signed token for the service's audience from an allowed
/// account), or by the shared secret's `v2` signature over this method and path with a fresh nonce; the body is not
/// read beyond that signature, so a caller can start the work and nothing else.
async fn verify_caller(receiver: &Receiver, request: Request) -> Result<(), Response> {
    let cx = &receiver.cx;
    let (parts, body) = request.into_parts();
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes().starts_with(b"Bearer "));
    match (&receiver.verifier, cx.config.push_secret.as_ref()) {
        (Some(verifier), None) => verifier
            .verify(&parts.headers)
            .await
            .map_err(|rejection| answer(rejection.status, rejection.message)),
        (Some(verifier), Some(_)) if bearer => verifier
            .verify(&parts.headers)
            .await
            .map_err(|rejection| answer(rejection.status, rejection.message)),
        (_, Some(secret)) => {
            let Ok(Ok(body)) =
                tokio::time::timeout(listen::BODY_TIMEOUT, axum::body::to_bytes(body, 4096)).await
            else {
                return Err(answer(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read",
                ));
            };
            // Only a signature over this method and path, used once: a captured push (or an earlier call)
            // cannot start a sweep.
            auth::verify_request_signature(
                secret.expose(),
                parts.method.as_str(),
                parts.uri.path(),
                &parts.headers,
                &body,
                &receiver.nonces,
            )
            .map_err(|rejection| answer(rejection.status, rejection.message))
        }
        (None, None) => Ok(()),
    }
}

/// `POST /sweep`: a sweep of `serve.sweep_projects` now, with `--fix` semantics — what Cloud Scheduler calls, so that
/// sweeps need no instance kept up for a timer.
pub(super) async fn sweep(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let cx = receiver.cx.clone();
    if cx.draining() {
        return stopping();
    }
    let run = scheduled_run(request.headers());
    if let Err(rejection) = verify_caller(&receiver, request).await {
        return rejection;
    }
    if cx.config.sweep_projects.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            "nothing to sweep: serve.sweep_projects names no project",
        );
    }
    let Ok(one) = receiver.sweeping.clone().try_lock_owned() else {
        return answer(StatusCode::CONFLICT, "a sweep is already running here");
    };
    let swept = tokio::spawn(async move {
        let _one = one;
        let report = crate::scan::sweep_once(&cx, &cx.config.sweep_projects, run.as_deref()).await;
        if cx.config.cpu == crate::config::Cpu::Request {
            pipeline::deliver_due(&cx, tokio::time::Instant::now() + TICK_BUDGET).await;
        }
        report
    })
    .await;
    match swept {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(err) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the sweep stopped: {err}"),
        ),
    }
}

/// The run a Cloud Scheduler attempt belongs to: its `X-CloudScheduler-ScheduleTime`, which every retry of the same
/// scheduled call repeats — so a retry after an instance died mid-sweep takes over what that sweep left. Only an
/// RFC 3339 time is taken (the header is written by whoever calls; the signature or token checked below says it is
/// the scheduler); anything else makes a fresh run.
pub(super) fn scheduled_run(headers: &axum::http::HeaderMap) -> Option<String> {
    let time = headers
        .get("x-cloudscheduler-scheduletime")?
        .to_str()
        .ok()?;
    let plausible = (20..=35).contains(&time.len())
        && time
            .bytes()
            .all(|byte| byte.is_ascii_digit() || b"-:TZ.+".contains(&byte));
    plausible.then(|| format!("scheduled-{time}"))
}

/// `POST /tick`: decides again what a grace period deferred and delivers the alerts that are due — what Cloud
/// Scheduler calls every minute when the instance has CPU only while it answers (`serve.cpu = "request"`).
pub(super) async fn tick(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let cx = receiver.cx.clone();
    if cx.draining() {
        return stopping();
    }
    if let Err(rejection) = verify_caller(&receiver, request).await {
        return rejection;
    }
    match tokio::spawn(async move { pipeline::tick(&cx, TICK_BUDGET).await }).await {
        Ok(ticked) => (StatusCode::OK, Json(ticked)).into_response(),
        Err(err) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the tick stopped: {err}"),
        ),
    }
}
