//! The alert outbox on PostgreSQL: each due alert is taken by one replica's worker, and retried by another only if
//! that replica dies.

use tokio_postgres::Row;

use super::{Postgres, bounded};
use crate::journal::{Error, Metrics, OutboxItem};

/// An alert taken by one replica's outbox worker is left to it for this long before another may retry it.
const OUTBOX_LEASE_MS: i64 = 60_000;

const OUTBOX_COLUMNS: &str =
    "id, event_id, channel, action, dedup_key, body, state, attempts, last_error";

fn outbox_item(row: &Row) -> OutboxItem {
    OutboxItem {
        id: row.get(0),
        event_id: row.get(1),
        channel: row.get(2),
        action: row.get(3),
        dedup_key: row.get(4),
        body: row.get(5),
        state: row.get(6),
        attempts: row.get(7),
        last_error: row.get(8),
    }
}

impl Postgres {
    /// Due alerts, taken for this replica's worker: `SKIP LOCKED` keeps two workers from taking the same row, and
    /// the lease (a later `next_ms`) hands it to another replica only if this one dies before reporting back.
    pub async fn due_alerts(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "UPDATE outbox SET next_ms = $1 + $3 WHERE id IN (
                             SELECT id FROM outbox WHERE state = 'pending' AND next_ms <= $1
                             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING {OUTBOX_COLUMNS}"
                    ),
                    &[&now_ms, &(limit as i64), &OUTBOX_LEASE_MS],
                )
                .await?;
            let mut items: Vec<OutboxItem> = rows.iter().map(outbox_item).collect();
            items.sort_by_key(|item| item.id);
            Ok(items)
        })
        .await
    }

    pub async fn next_alert_due(&self) -> Result<Option<i64>, Error> {
        bounded(async {
            let client = self.client().await?;
            Ok(client
                .query_one(
                    "SELECT MIN(next_ms) FROM outbox WHERE state = 'pending'",
                    &[],
                )
                .await?
                .get(0))
        })
        .await
    }

    pub async fn alert_delivered(&self, id: i64) -> Result<(), Error> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = antibody_now()
                     WHERE id = $1",
                    &[&id],
                )
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn alert_attempt_failed(
        &self,
        id: i64,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), Error> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                         state = CASE WHEN $3::BIGINT IS NULL THEN 'failed' ELSE 'pending' END,
                         next_ms = COALESCE($3, next_ms)
                     WHERE id = $1",
                    &[&id, &error, &retry_at_ms],
                )
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn alerts(&self, limit: usize) -> Result<Vec<OutboxItem>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC LIMIT $1"),
                    &[&(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(outbox_item).collect())
        })
        .await
    }

    pub async fn alerts_for(&self, event_id: i64) -> Result<Vec<OutboxItem>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE event_id = $1 ORDER BY id"),
                    &[&event_id],
                )
                .await?;
            Ok(rows.iter().map(outbox_item).collect())
        })
        .await
    }

    pub async fn incident_open(&self, channel: &str, dedup_key: &str) -> Result<bool, Error> {
        bounded(async {
            let client = self.client().await?;
            Ok(client
                .query_one(
                    "SELECT COALESCE(MAX(CASE WHEN action = 'trigger' THEN id END), 0) >
                            COALESCE(MAX(CASE WHEN action = 'resolve' THEN id END), 0)
                     FROM outbox WHERE channel = $1 AND dedup_key = $2",
                    &[&channel, &dedup_key],
                )
                .await?
                .get(0))
        })
        .await
    }

    pub async fn metrics(&self) -> Result<Metrics, Error> {
        bounded(async {
            let client = self.client().await?;
            let events_by_outcome = client
                .query(
                    "SELECT COALESCE(outcome, state), COUNT(*) FROM events GROUP BY 1 ORDER BY 1",
                    &[],
                )
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            let alerts_by_state = client
                .query(
                    "SELECT channel, state, COUNT(*) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2",
                    &[],
                )
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect();
            let quarantined = client
                .query_one("SELECT COUNT(*) FROM quarantine", &[])
                .await?
                .get(0);
            let paused = client
                .query_opt("SELECT value FROM settings WHERE key = 'paused'", &[])
                .await?
                .is_some_and(|row| row.get::<_, String>(0) == "1");
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
