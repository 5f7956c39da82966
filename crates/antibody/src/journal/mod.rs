//! The journal: every accepted event, its decision, the before-state and the fix, written durably.

mod firestore;
mod postgres;
mod sqlite;

pub use firestore::collection::EXPIRING as FIRESTORE_TTL_COLLECTIONS;
pub use firestore::{Access, DEFAULT_RETENTION_DAYS, Location as FirestoreLocation};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::event::AuditEvent;
use crate::kinds::Fix;
use crate::policy::Finding;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("journal database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("journal: {0}")]
    Unavailable(String),
    #[error("journal worker: {0}")]
    Worker(String),
}

/// The state store: SQLite (one file, one replica), PostgreSQL or Firestore (shared by several replicas), behind one
/// interface.
#[derive(Clone)]
pub struct Journal {
    backend: Backend,
    clock: Clock,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
    Firestore(firestore::Firestore),
}

/// How long a replica may hold a resource's lease; one that dies holding it blocks the resource no longer than this.
pub const LEASE_SECS: u64 = 120;

/// How long handling waits for another replica's lease on the same resource before giving up (503, redelivered).
const LEASE_WAIT: Duration = Duration::from_secs(20);

/// Whether `state` names a database server rather than a file.
pub fn names_a_server(state: &Path) -> bool {
    let text = state.to_string_lossy();
    text.starts_with("postgres://") || text.starts_with("postgresql://") || names_firestore(state)
}

/// Whether `state` names a Firestore database (`firestore://PROJECT[/DATABASE]`).
pub fn names_firestore(state: &Path) -> bool {
    state.to_string_lossy().starts_with("firestore://")
}

impl Journal {
    /// Opens the store `state` names: `postgres://…` / `postgresql://…`, `sqlite://PATH`, or a plain file path.
    /// Either way the schema is migrated to this version first. (`firestore://` needs Google access: `open_using`.)
    pub async fn open(state: &Path) -> Result<Journal, Error> {
        Journal::open_with(state, Clock::system()).await
    }

    /// `open`, with the clock every window and expiry is read from.
    pub async fn open_with(state: &Path, clock: Clock) -> Result<Journal, Error> {
        Journal::open_using(state, clock, None).await
    }

    /// `open_with`, reaching a `firestore://` journal through `access` (the endpoint and credentials `serve` uses).
    pub async fn open_using(
        state: &Path,
        clock: Clock,
        access: Option<&Access>,
    ) -> Result<Journal, Error> {
        let backend = if names_firestore(state) {
            let location =
                firestore::Location::parse(&state.to_string_lossy()).map_err(Error::Unavailable)?;
            let access = access.ok_or_else(|| {
                Error::Unavailable(format!(
                    "{}: a Firestore journal needs Google credentials and an endpoint",
                    state.display()
                ))
            })?;
            Backend::Firestore(firestore::Firestore::open(&location, access, clock.clone()).await?)
        } else if names_a_server(state) {
            Backend::Postgres(
                postgres::Postgres::connect(&state.to_string_lossy(), clock.clone()).await?,
            )
        } else {
            let text = state.to_string_lossy();
            let path = text
                .strip_prefix("sqlite://")
                .map(PathBuf::from)
                .unwrap_or_else(|| state.to_path_buf());
            Backend::Sqlite(sqlite::Sqlite::open(&path, clock.clone())?)
        };
        Ok(Journal { backend, clock })
    }

    /// The clock this journal reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Serialises work on one resource across replicas: waits for the resource's lease (PostgreSQL, Firestore) and holds it
    /// until the returned guard drops. `None` when another replica kept it past the wait. With SQLite there is one
    /// replica, whose in-process lock suffices.
    pub async fn hold(&self, key: &str) -> Result<Option<Hold>, Error> {
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(hold) = self.try_hold(key).await? {
                return Ok(Some(hold));
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

impl Journal {
    /// `hold` without waiting: `None` at once while another holder has the resource's lease.
    pub async fn try_hold(&self, key: &str) -> Result<Option<Hold>, Error> {
        self.try_hold_for(key, LEASE_SECS).await
    }

    /// `try_hold`, with a lease that lapses after `seconds` if its holder dies without releasing it.
    pub async fn try_hold_for(&self, key: &str, seconds: u64) -> Result<Option<Hold>, Error> {
        let holder = uuid::Uuid::new_v4().to_string();
        let seconds = seconds as f64;
        let taken = match &self.backend {
            Backend::Sqlite(_) => return Ok(Some(Hold { lease: None })),
            Backend::Postgres(store) => Box::pin(store.try_lease(key, &holder, seconds)).await?,
            Backend::Firestore(store) => Box::pin(store.try_lease(key, &holder, seconds)).await?,
        };
        Ok(taken.then(|| Hold {
            lease: Some((self.backend.clone(), key.to_string(), holder)),
        }))
    }
}

/// A resource's lease, released when dropped (and by expiry if the process dies first).
pub struct Hold {
    lease: Option<(Backend, String, String)>,
}

impl Hold {
    /// Releases the lease now and waits until the store has it: what a short-lived process (the `undo` command)
    /// must do before it exits, or its lease would outlive it until it expires.
    pub async fn release(mut self) {
        if let Some(lease) = self.lease.take() {
            end_lease(lease).await;
        }
    }
}

async fn end_lease((store, key, holder): (Backend, String, String)) {
    let ended = match &store {
        Backend::Sqlite(_) => Ok(()),
        Backend::Postgres(store) => store.end_lease(&key, &holder).await,
        Backend::Firestore(store) => store.end_lease(&key, &holder).await,
    };
    if let Err(err) = ended {
        tracing::warn!(%err, %key, "releasing a resource lease; it expires by itself");
    }
}

impl Drop for Hold {
    /// Dropped without `release` (an early return), the lease is ended in the background.
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(end_lease(lease));
        }
    }
}

/// A claim still `processing` after this long was abandoned; a redelivery handles it again, whoever held it.
/// Longer than any handling can take: Google calls are bounded by timeouts and retries well below it.
const STALE_CLAIM_SECS: i64 = 300;

/// What a claim decides about an event whose row already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Handle it again: it failed transiently (`retry`), or its claimer is gone (`abandoned`).
    Reclaim { abandoned: bool },
    /// Another handler is working on it right now.
    InProgress,
    /// It has been handled.
    Duplicate,
}

/// The claim decision, the same for every backend (pure): from the existing row's `state`, when it was claimed, and
/// whether its claimer is gone (another process on a SQLite file; a replica silent for too long on PostgreSQL).
fn seen_again(state: &str, claimed_epoch: Option<i64>, claimer_gone: bool, now: i64) -> Seen {
    let abandoned = state == "processing"
        && (claimer_gone || claimed_epoch.is_none_or(|claimed| claimed < now - STALE_CLAIM_SECS));
    match state {
        "retry" => Seen::Reclaim { abandoned: false },
        _ if abandoned => Seen::Reclaim { abandoned: true },
        "processing" => Seen::InProgress,
        _ => Seen::Duplicate,
    }
}

#[cfg(test)]
mod seen_tests {
    use super::*;

    #[test]
    fn the_claim_decision_is_one_function() {
        let now = 10_000;
        assert_eq!(
            seen_again("retry", Some(now), false, now),
            Seen::Reclaim { abandoned: false }
        );
        assert_eq!(
            seen_again("processing", Some(now), false, now),
            Seen::InProgress
        );
        assert_eq!(
            seen_again("processing", Some(now), true, now),
            Seen::Reclaim { abandoned: true }
        );
        assert_eq!(
            seen_again("processing", Some(now - STALE_CLAIM_SECS - 1), false, now),
            Seen::Reclaim { abandoned: true },
            "a claim too old is taken over whoever holds it"
        );
        assert_eq!(
            seen_again("processing", None, false, now),
            Seen::Reclaim { abandoned: true }
        );
        assert_eq!(seen_again("done", Some(now), true, now), Seen::Duplicate);
    }
}

/// The fix a dead process announced (see `announce_fix`), from the row's `fix` and `before_state` columns.
fn interrupted(fix: Option<&str>, before: Option<&str>) -> Option<Box<(Fix, Value)>> {
    let fix = serde_json::from_str(fix?).ok()?;
    let before = serde_json::from_str(before?).ok()?;
    Some(Box::new((fix, before)))
}

/// Forwards each call to the backend.
macro_rules! delegate {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Journal {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, Error> {
                    // The servers' futures are boxed: a handling in flight holds only the backend it uses, so
                    // thousands of them waiting at once stay small.
                    match &self.backend {
                        Backend::Sqlite(store) => store.$name($($arg),*).await,
                        Backend::Postgres(store) => Box::pin(store.$name($($arg),*)).await,
                        Backend::Firestore(store) => Box::pin(store.$name($($arg),*)).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    /// Records an event settled without reading anything (ignored, our own write, a failed call) in one write.
    /// Returns its row and whether this was its first delivery.
    fn record_settled(&self, event: &AuditEvent, record: &Record) -> (i64, bool);
    /// Records the arrival of an event, or recognises a redelivery of one already recorded.
    fn claim(&self, event: &AuditEvent) -> Claim;
    /// Takes one of the project's fix slots (as `reserve_fix`) and records the fix about to be applied, with the
    /// before-state, ahead of the first write to Google; `false`, with nothing written, when the cap leaves no slot.
    fn announce_fix(&self, id: i64, project: &str, cap: u32, fix: &Fix, before: &Value) -> bool;
    /// Writes how the handling of a claimed event ended.
    fn finish(&self, id: i64, record: &Record) -> ();
    /// Writes the outcome and its alerts in one transaction: no decision without its alerts, no alert without its
    /// decision.
    fn finish_with(&self, id: i64, record: &Record, alerts: Vec<OutboxItem>) -> ();
    /// The newest rows first.
    fn entries(&self, limit: usize) -> Vec<Entry>;
    /// One row by its id.
    fn entry(&self, id: i64) -> Option<Entry>;
    /// The earliest other row of the operation that fixed, would have fixed, or reported the resource: an
    /// operation's later entries (Compute's `last`) are answered by it.
    fn operation_decided(&self, operation: &str, id: i64) -> Option<i64>;
    /// Starts the row of an operator's action (an undo), durable like every other; `finish_with` completes it.
    fn begin_action(&self, action: &str, resource: &str, project: &str, principal: &str) -> i64;
    /// Everything the gate needs about one resource, read in one transaction.
    fn safety(&self, resource_key: &str, project: &str, flap_window_secs: i64) -> Safety;
    /// Takes one of the project's fix slots for the hour if the cap leaves one (a cap of 0 means none), atomically.
    fn reserve_fix(&self, project: &str, cap: u32) -> bool;
    /// Marks a resource quarantined; `false` when it already was (so the alert is raised once).
    fn quarantine(&self, resource_key: &str, principals: &str, reason: &str) -> bool;
    fn quarantined(&self) -> Vec<Quarantine>;
    /// Lets antibody fix a quarantined resource again; `false` when it was not quarantined.
    fn release(&self, resource_key: &str) -> bool;
    /// Schedules a fresh decision on a resource after its grace period (the earlier schedule wins), keeping what the
    /// deferred events said the change did (`hint`, a JSON list; deferring again adds to it).
    fn defer(&self, resource_key: &str, project: &str, due_epoch: i64, hint: Option<&str>) -> ();
    /// Takes the decisions whose grace period is over.
    fn take_due_rechecks(&self, now: i64) -> Vec<Due>;
    /// The kill switch: while paused, antibody detects and journals but changes nothing.
    fn set_paused(&self, paused: bool) -> ();
    /// Writes durably, to tell whether the journal can take events now (`/readyz`).
    fn writable(&self) -> ();
    fn add_exemption(&self, resource: &str, owner: &str, reason: &str, expires_epoch: Option<i64>) -> i64;
    /// Every registered exemption, expired ones included (they simply stop applying).
    fn exemptions(&self) -> Vec<Exemption>;
    fn remove_exemption(&self, id: i64) -> bool;
    /// Alerts due for (re)delivery now, oldest first.
    fn due_alerts(&self, now_ms: i64, limit: usize) -> Vec<OutboxItem>;
    /// When the next pending alert is due, if any.
    fn next_alert_due(&self) -> Option<i64>;
    fn alert_delivered(&self, id: i64) -> ();
    /// Records a failed attempt; `retry_at_ms` of `None` gives up (state `failed`, visible in `antibody alerts`).
    fn alert_attempt_failed(&self, id: i64, error: &str, retry_at_ms: Option<i64>) -> ();
    /// Every alert, newest first.
    fn alerts(&self, limit: usize) -> Vec<OutboxItem>;
    /// The alerts of one decision, with their delivery state.
    fn alerts_for(&self, event_id: i64) -> Vec<OutboxItem>;
    /// Whether `channel` holds an open incident for `dedup_key`: a trigger with no resolve after it.
    fn incident_open(&self, channel: &str, dedup_key: &str) -> bool;
    /// Counters for `/metrics`, read from the state store so that every replica reports the same totals.
    fn metrics(&self) -> Metrics;
}

/// Whether an event is new to us.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First sight (or a redelivery of one that failed transiently): handle it. `remediated_by` names an earlier
    /// row of the same operation that already fixed the resource (or would have, or reported it).
    New {
        id: i64,
        remediated_by: Option<i64>,
        /// The fix (and before-state) a process that died had announced for this row: it may have been applied.
        interrupted: Option<Box<(Fix, Value)>>,
    },
    /// A redelivery of an event already handled.
    Duplicate { of: i64 },
    /// A redelivery of an event another handler is working on right now: the sender should ask again later, when
    /// that handling has ended (or, if its process died, once the claim is stale).
    InProgress { of: i64 },
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
    /// Of `duration_us`, the time spent waiting on Google's APIs (the rest is antibody's own).
    pub google_us: i64,
    /// A transient failure: the row may be claimed again by a redelivery.
    pub retry: bool,
    /// The resource the event pointed at (its audit-log name), for per-resource counters.
    pub resource_key: Option<String>,
    /// The resource's owner, from its owner label (alerts reach them too).
    #[serde(skip)]
    pub owner: Option<String>,
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
    /// Fix slots taken in the resource's project within the last hour (slots are taken only while a cap is set,
    /// so this count stays as small as the cap).
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

impl Exemption {
    /// Whether this entry exempts `resource_key` at `now` (a trailing `*` matches any suffix; expired entries
    /// stop applying by themselves).
    pub fn covers(&self, resource_key: &str, now: i64) -> bool {
        self.expires_epoch.is_none_or(|expires| expires > now)
            && crate::policy::glob_match(&self.resource, resource_key)
    }
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

/// A deferred decision whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub resource: String,
    pub project: String,
    /// What the deferred events said the change did (a JSON list), for the decision the re-read alone cannot make.
    pub hint: Option<String>,
}

/// Two hints (JSON lists) as one: the items of both, the first's first. A hint that is not a list is kept whole as
/// one item, so nothing a change said is lost.
pub(crate) fn merge_hints(earlier: Option<&str>, later: Option<&str>) -> Option<String> {
    let items = |hint: &str| match serde_json::from_str::<Value>(hint) {
        Ok(Value::Array(items)) => items,
        Ok(other) => vec![other],
        Err(_) => vec![Value::String(hint.to_string())],
    };
    match (earlier, later) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (Some(earlier), Some(later)) => {
            let mut all = items(earlier);
            for item in items(later) {
                if !all.contains(&item) {
                    all.push(item);
                }
            }
            Some(Value::Array(all).to_string())
        }
    }
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

/// Counters for `/metrics`, read from the state store so that every replica reports the same totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub events_by_outcome: Vec<(String, i64)>,
    pub alerts_by_state: Vec<(String, String, i64)>,
    pub quarantined: i64,
    pub paused: bool,
}
