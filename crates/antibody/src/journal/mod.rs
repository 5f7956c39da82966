//! The journal: every accepted event, its decision, the before-state and the fix, written durably.

mod sqlite;

use serde::Serialize;
use serde_json::Value;

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
}

/// One row, as `antibody journal` and tests read it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
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
