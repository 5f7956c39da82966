//! The PostgreSQL schema, version 1: the tables SQLite keeps, plus replica heartbeats and resource leases.

pub(super) const SCHEMA: &str = r#"
CREATE FUNCTION antibody_now() RETURNS text LANGUAGE sql AS
    $$ SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
CREATE TABLE events (
    id             BIGSERIAL PRIMARY KEY,
    delivery_key   TEXT NOT NULL UNIQUE,
    log_key        TEXT NOT NULL,
    received_at    TEXT NOT NULL DEFAULT antibody_now(),
    transport      TEXT NOT NULL,
    deliveries     BIGINT NOT NULL DEFAULT 1,
    service_name   TEXT NOT NULL,
    method_name    TEXT NOT NULL,
    resource_name  TEXT NOT NULL,
    project        TEXT NOT NULL,
    principal      TEXT NOT NULL,
    operation_id   TEXT,
    state          TEXT NOT NULL,
    outcome        TEXT,
    reason         TEXT,
    findings       TEXT,
    fix            TEXT,
    before_state   TEXT,
    after_state    TEXT,
    duration_us    BIGINT,
    google_us      BIGINT,
    finished_at    TEXT,
    resource_key   TEXT,
    finished_epoch BIGINT,
    claimed_epoch  BIGINT,
    claimed_by     TEXT
);
CREATE TABLE instances (
    id      TEXT PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_fixes ON events(outcome, resource_key, finished_epoch);
CREATE INDEX events_project_fixes ON events(outcome, project, finished_epoch);
CREATE INDEX events_log_key ON events(log_key);
CREATE INDEX events_operation ON events(operation_id);
CREATE TABLE exemptions (
    id            BIGSERIAL PRIMARY KEY,
    resource      TEXT NOT NULL,
    owner         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    expires_epoch BIGINT,
    created_at    TEXT NOT NULL DEFAULT antibody_now()
);
CREATE TABLE quarantine (
    resource_key TEXT PRIMARY KEY,
    since        TEXT NOT NULL DEFAULT antibody_now(),
    principals   TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE TABLE releases (
    resource_key TEXT PRIMARY KEY,
    epoch        BIGINT NOT NULL
);
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     BIGINT NOT NULL,
    channel      TEXT NOT NULL,
    action       TEXT NOT NULL,
    dedup_key    TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_ms      BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    delivered_at TEXT,
    UNIQUE (event_id, channel, action)
);
CREATE INDEX outbox_due ON outbox(state, next_ms);
CREATE TABLE deferred (
    resource_key TEXT PRIMARY KEY,
    project      TEXT NOT NULL,
    due_epoch    BIGINT NOT NULL
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE fix_slots (
    id      BIGSERIAL PRIMARY KEY,
    project TEXT NOT NULL,
    epoch   BIGINT NOT NULL
);
CREATE INDEX fix_slots_project ON fix_slots(project, epoch);
CREATE TABLE leases (
    resource_key TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
"#;

/// Version 2: what the deferred events said the change did, kept for the decision taken again.
pub(super) const DEFERRED_HINTS: &str = "ALTER TABLE deferred ADD COLUMN hint TEXT;";
