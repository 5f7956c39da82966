//! The alert outbox: rows written with their decision, delivered by a worker, retried, and kept when they fail for good.

use rusqlite::params;

use super::{Sqlite, exec, one};
use crate::journal::{Error, Metrics, OutboxItem};

fn item(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: row.get(0)?,
        event_id: row.get(1)?,
        channel: row.get(2)?,
        action: row.get(3)?,
        dedup_key: row.get(4)?,
        body: row.get(5)?,
        state: row.get(6)?,
        attempts: row.get(7)?,
        last_error: row.get(8)?,
    })
}

const COLUMNS: &str = "id, event_id, channel, action, dedup_key, body, state, attempts, last_error";

impl Sqlite {
    /// Alerts due for (re)delivery now, oldest first.
    pub async fn due_alerts(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, Error> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![now_ms, limit as i64], item)?;
            rows.collect()
        })
        .await
    }

    /// When the next pending alert is due, if any.
    pub async fn next_alert_due(&self) -> Result<Option<i64>, Error> {
        self.with(|connection| {
            one(
                connection,
                "SELECT MIN(next_ms) FROM outbox WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )
        })
        .await
    }

    pub async fn alert_delivered(&self, id: i64) -> Result<(), Error> {
        self.with(move |connection| {
            exec(
                connection,
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1,
                     delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
                params![id],
            )?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt; `retry_at_ms` of `None` gives up (state `failed`, visible in `antibody alerts`).
    pub async fn alert_attempt_failed(
        &self,
        id: i64,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), Error> {
        let error = error.to_string();
        self.with(move |connection| {
            exec(connection,
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                     state = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END, next_ms = COALESCE(?3, next_ms)
                 WHERE id = ?1",
                params![id, error, retry_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Every alert, newest first.
    pub async fn alerts(&self, limit: usize) -> Result<Vec<OutboxItem>, Error> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = statement.query_map(params![limit as i64], item)?;
            rows.collect()
        })
        .await
    }

    /// The alerts of one decision, with their delivery state.
    pub async fn alerts_for(&self, event_id: i64) -> Result<Vec<OutboxItem>, Error> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE event_id = ?1 ORDER BY id"
            ))?;
            let rows = statement.query_map(params![event_id], item)?;
            rows.collect()
        })
        .await
    }

    /// Whether `channel` holds an open incident for `dedup_key`: a trigger with no resolve after it.
    pub async fn incident_open(&self, channel: &str, dedup_key: &str) -> Result<bool, Error> {
        self.read(|connection| {
            one(
                connection,
                "SELECT COALESCE(MAX(CASE WHEN action = 'trigger' THEN id END), 0) >
                        COALESCE(MAX(CASE WHEN action = 'resolve' THEN id END), 0)
                 FROM outbox WHERE channel = ?1 AND dedup_key = ?2",
                params![channel, dedup_key],
                |row| row.get(0),
            )
        })
    }
}

impl Sqlite {
    pub async fn metrics(&self) -> Result<Metrics, Error> {
        self.with(|connection| {
            let pairs = |sql: &str| -> rusqlite::Result<Vec<(String, i64)>> {
                let mut statement = connection.prepare_cached(sql)?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect()
            };
            let events_by_outcome = pairs(
                "SELECT COALESCE(outcome, state), COUNT(*) FROM events GROUP BY 1 ORDER BY 1",
            )?;
            let alerts_by_state = {
                let mut statement = connection.prepare_cached(
                    "SELECT channel, state, COUNT(*) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2",
                )?;
                let rows =
                    statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let quarantined = one(connection, "SELECT COUNT(*) FROM quarantine", [], |row| {
                row.get(0)
            })?;
            let paused = one(
                connection,
                "SELECT value FROM settings WHERE key = 'paused'",
                [],
                |row| row.get::<_, String>(0),
            )
            .map(|value| value == "1")
            .unwrap_or(false);
            Ok(Metrics {
                events_by_outcome,
                alerts_by_state,
                quarantined,
                paused,
            })
        })
        .await
    }
}
