//! Work that falls due after its event: deferred decisions taken again, and alerts delivered. With CPU always there
//! (`serve.cpu = "always"`) timers beside the receiver run it; with CPU only during requests (Cloud Run's
//! request-based billing) `POST /tick` runs it, and a decision's alerts go out before its push is acknowledged.

use std::sync::Arc;

use serde::Serialize;

use super::{Context, handle};
use crate::event::{AuditEvent, Transport};
use crate::notify;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ticked {
    /// Deferred decisions taken again, on the live state.
    pub rechecked: usize,
    /// Alerts still due when the tick's time ran out (the next tick delivers them).
    pub alerts_left: usize,
}

/// Decides again, on the live state, every resource whose grace period is over; returns how many.
pub async fn recheck_due(cx: &Context) -> usize {
    // Taken as work in flight, so that a stopping process waits for the batch it took (taken rows are gone from
    // the schedule); a stopping process takes none.
    if cx.draining() {
        return 0;
    }
    let Ok(_working) = cx.in_flight.clone().acquire_owned().await else {
        return 0;
    };
    let due = match cx.journal.take_due_rechecks(cx.clock().now_secs()).await {
        Ok(due) => due,
        Err(err) => {
            tracing::error!(%err, "reading the deferred decisions");
            return 0;
        }
    };
    let count = due.len();
    for crate::journal::Due {
        resource,
        project,
        hint,
    } in due
    {
        let mut event = AuditEvent::synthetic(Transport::Recheck, &project, &resource);
        event.hint = hint;
        if let Err(err) = handle(cx, &event).await {
            tracing::error!(%err, %resource, "re-deciding after the grace period");
        }
    }
    count
}

/// Delivers every alert due now, until none is left or `deadline` passes; returns how many were still due. One
/// delivery at a time in this process, so that a tick and a push never send the same alert twice.
pub async fn deliver_due(cx: &Context, deadline: tokio::time::Instant) -> usize {
    let _one = cx.delivering.lock().await;
    notify::outbox::flush(&cx.journal, &cx.config.channels, deadline).await
}

/// One tick: what is due now, within `budget`.
pub async fn tick(cx: &Context, budget: std::time::Duration) -> Ticked {
    let deadline = tokio::time::Instant::now() + budget;
    let rechecked = recheck_due(cx).await;
    let alerts_left = deliver_due(cx, deadline).await;
    Ticked {
        rechecked,
        alerts_left,
    }
}

/// Decides again every half second, beside the receiver (CPU always there).
pub async fn rechecks(cx: Arc<Context>) {
    let mut timer = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        timer.tick().await;
        recheck_due(&cx).await;
    }
}
