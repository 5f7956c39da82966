//! The journal: every accepted event, its decision, the before-state and the fix, written durably.

mod outbox;
mod safety;
mod sqlite;

use serde::Serialize;
use serde_json::Value;

pub use outbox::Metrics;
pub use sqlite::Journal;

use crate::event::AuditEvent;
use crate::policy::{Finding, Fix};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("journal worker: {0}")]
    Worker(String),
}

/// Whether an event is new to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First sight (or a redelivery of one that failed transiently): handle it. `remediated_by` names an earlier
    /// row of the same operation that already fixed the resource.
    New { id: i64, remediated_by: Option<i64> },
    /// A redelivery of an event already handled (or being handled).
    Duplicate { of: i64 },
}

/// How the handling of one event ended, as written to its row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub outcome: String,
    pub reason: String,
    pub findings: Vec<Finding>,
    pub fix: Option<Fix>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub duration_us: i64,
    /// A transient failure: the row may be claimed again by a redelivery.
    pub retry: bool,
    /// The resource the event pointed at (its audit-log name), for per-resource counters.
    pub resource_key: Option<String>,
    /// The resource's owner, from its owner label (alerts reach them too).
    #[serde(skip)]
    pub owner: Option<String>,
}

/// Seconds since the Unix epoch: windows and expiries are compared in these.
pub fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

/// What the state store knows that bears on whether a fix may run now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Safety {
    pub paused: bool,
    pub exemption: Option<Exemption>,
    pub quarantined: Option<Quarantine>,
    /// Fixes of this resource within the flap window.
    pub recent_fixes_of_resource: u32,
    /// Who changed this resource in the events that led to those fixes, newest first.
    pub recent_breakers: Vec<String>,
    /// Fixes in the resource's project within the last hour.
    pub recent_fixes_in_project: u32,
}

/// An entry of the exemption registry; `resource` may end in `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exemption {
    pub id: i64,
    pub resource: String,
    pub owner: String,
    pub reason: String,
    pub expires_epoch: Option<i64>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantine {
    pub resource_key: String,
    pub since: String,
    pub principals: String,
    pub reason: String,
}

/// One row, as `antibody journal` and tests read it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    /// When the event arrived (RFC 3339).
    pub time: String,
    /// The resource's audit-log name (for an ignored event, the name it carried).
    pub resource: String,
    /// The policy that found something, if any.
    pub policy: Option<String>,
    pub received_at: String,
    pub transport: String,
    pub deliveries: i64,
    pub method_name: String,
    pub resource_name: String,
    pub project: String,
    pub principal: String,
    pub operation_id: Option<String>,
    pub state: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    pub fix: Option<Fix>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub duration_us: Option<i64>,
}

pub(crate) fn key_of(event: &AuditEvent) -> (&str, &str) {
    (&event.delivery_key, &event.log_key)
}

/// An alert waiting in the outbox for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    /// `trigger` or `resolve` (PagerDuty); `alert` elsewhere.
    pub action: String,
    pub dedup_key: String,
    /// The rendered body, as it will be sent.
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}
