//! The SQLite journal's schema, and the migrations that bring an older file up to it.

use rusqlite::Connection;

use crate::journal::Error;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_key  TEXT NOT NULL UNIQUE,
    log_key       TEXT NOT NULL,
    received_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    transport     TEXT NOT NULL,
    deliveries    INTEGER NOT NULL DEFAULT 1,
    service_name  TEXT NOT NULL,
    method_name   TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    project       TEXT NOT NULL,
    principal     TEXT NOT NULL,
    operation_id  TEXT,
    state         TEXT NOT NULL,
    outcome       TEXT,
    reason        TEXT,
    findings      TEXT,
    fix           TEXT,
    before_state  TEXT,
    after_state   TEXT,
    duration_us   INTEGER,
    finished_at   TEXT,
    resource_key  TEXT,
    finished_epoch INTEGER,
    claimed_epoch INTEGER
);
CREATE INDEX IF NOT EXISTS events_fixes ON events(outcome, resource_key, finished_epoch);
CREATE INDEX IF NOT EXISTS events_project_fixes ON events(outcome, project, finished_epoch);
CREATE TABLE IF NOT EXISTS exemptions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    resource    TEXT NOT NULL,
    owner       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    expires_epoch INTEGER,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS quarantine (
    resource_key TEXT PRIMARY KEY,
    since        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    principals   TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    resource_key TEXT PRIMARY KEY,
    epoch        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    action      TEXT NOT NULL,
    dedup_key   TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    delivered_at TEXT,
    UNIQUE (event_id, channel, action)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_ms);
CREATE TABLE IF NOT EXISTS deferred (
    resource_key TEXT PRIMARY KEY,
    project      TEXT NOT NULL,
    due_epoch    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_log_key ON events(log_key);
CREATE INDEX IF NOT EXISTS events_operation ON events(operation_id);
";

/// The schema, one step per version (`PRAGMA user_version` counts the steps applied). Step 1 creates with
/// `IF NOT EXISTS`, so files written before versioning began take it as a no-op.
const MIGRATIONS: &[&str] = &[
    SCHEMA,
    FIX_SLOTS,
    CLAIMED_BY,
    GOOGLE_US,
    PARTIAL_INDEXES,
    CLAIMED_LOG_KEYS,
    DEFERRED_HINTS,
    OPERATION_DECIDED,
];

/// An operation's later entries are answered by the row that decided it: fixed, would have fixed, or reported.
const OPERATION_DECIDED: &str = "
DROP INDEX events_operation;
CREATE INDEX events_operation ON events(operation_id) WHERE outcome IN ('remediated', 'dry-run', 'detected');
";

/// What the deferred events said the change did, kept for the decision taken again.
const DEFERRED_HINTS: &str = "ALTER TABLE deferred ADD COLUMN hint TEXT;";

/// Claims look a log entry up by its `log_key` among claimed rows only (see `claim`).
const CLAIMED_LOG_KEYS: &str = "
DROP INDEX events_log_key;
CREATE INDEX events_log_key ON events(log_key) WHERE claimed_epoch IS NOT NULL;
";

/// Indexes only the rows the safety counters and the operation lookup read: an ignored event's row updates the
/// table and its keys, nothing else. (The project cap counts `fix_slots`, so fixes per project need no index.)
const PARTIAL_INDEXES: &str = "
DROP INDEX events_fixes;
CREATE INDEX events_fixes ON events(resource_key, finished_epoch) WHERE outcome = 'remediated';
DROP INDEX events_project_fixes;
DROP INDEX events_operation;
CREATE INDEX events_operation ON events(operation_id) WHERE outcome IN ('remediated', 'dry-run');
";

const CLAIMED_BY: &str = "ALTER TABLE events ADD COLUMN claimed_by TEXT;";
const GOOGLE_US: &str = "ALTER TABLE events ADD COLUMN google_us INTEGER;";

const FIX_SLOTS: &str = "
CREATE TABLE fix_slots (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    epoch   INTEGER NOT NULL
);
CREATE INDEX fix_slots_project ON fix_slots(project, epoch);
";

pub(super) fn migrate(connection: &mut Connection) -> Result<(), Error> {
    let applied: usize = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", step + 1)?;
        transaction.commit()?;
    }
    Ok(())
}
