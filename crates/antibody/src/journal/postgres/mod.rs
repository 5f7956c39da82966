//! PostgreSQL journal, for several replicas: the rows SQLite keeps, with deduplication, leases, counters and the alert
//! outbox made safe across processes by advisory locks, `FOR UPDATE SKIP LOCKED` and single-statement upserts.

mod outbox;
mod safety;
mod schema;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use super::{Claim, Entry, Error, OutboxItem, Record, key_of};
use crate::clock::Clock;
use crate::event::AuditEvent;
use crate::kinds::Fix;
use serde_json::Value;

/// Every call to the database finishes within this, or fails: a stopped or frozen server turns into 503 answers
/// (so the event is redelivered), never into a request that hangs.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Serialises migrations when several replicas start at once (`pg_advisory_xact_lock` key).
const MIGRATION_LOCK: i64 = 0x616e_7469_626f_6479;

/// The earliest other row of an operation that fixed, would have fixed, or reported its resource.
const DECIDED_BY: &str = "SELECT id FROM events WHERE operation_id = $1 AND id != $2
     AND outcome IN ('remediated', 'dry-run', 'detected') ORDER BY id LIMIT 1";

const MIGRATIONS: &[&str] = &[schema::SCHEMA, schema::DEFERRED_HINTS];

/// Each replica proves it is alive this often; a claim whose replica has been silent for [`INSTANCE_SILENCE`] was
/// abandoned by a replica that died, and a redelivery takes it over.
const HEARTBEAT: Duration = Duration::from_secs(5);
const INSTANCE_SILENCE: &str = "15 seconds";

#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    /// This replica's identity in `claimed_by` and `instances`.
    instance: std::sync::Arc<str>,
    /// Windows and expiries (leases and replica liveness use the database's own clock, shared by every replica).
    clock: Clock,
}

/// Runs `work` within [`CALL_TIMEOUT`].
async fn bounded<T>(work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::time::timeout(CALL_TIMEOUT, work)
        .await
        .map_err(|_| {
            Error::Unavailable(format!(
                "PostgreSQL did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            ))
        })?
}

fn count(row: &Row, index: usize) -> u32 {
    u32::try_from(row.get::<_, i64>(index)).unwrap_or(u32::MAX)
}

fn entry(row: &Row) -> Entry {
    let json = |index: usize| -> Option<serde_json::Value> {
        row.get::<_, Option<String>>(index)
            .and_then(|text| serde_json::from_str(&text).ok())
    };
    let findings: Vec<crate::policy::Finding> = json(12)
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default();
    let resource_name: String = row.get(5);
    let resource_key: Option<String> = row.get(17);
    Entry {
        id: row.get(0),
        time: row.get(1),
        resource: resource_key.unwrap_or_else(|| resource_name.clone()),
        policy: findings.first().map(|finding| finding.policy.clone()),
        received_at: row.get(1),
        transport: row.get(2),
        deliveries: row.get(3),
        method_name: row.get(4),
        resource_name,
        project: row.get(6),
        principal: row.get(7),
        operation_id: row.get(8),
        state: row.get(9),
        outcome: row.get(10),
        reason: row.get(11),
        findings,
        fix: json(13).and_then(|value| serde_json::from_value(value).ok()),
        before: json(14),
        after: json(15),
        duration_us: row.get(16),
    }
}

impl Postgres {
    /// Connects (lazily, through a pool) and brings the schema up to date.
    pub async fn connect(url: &str, clock: Clock) -> Result<Postgres, Error> {
        let config: tokio_postgres::Config = url.parse()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CALL_TIMEOUT))
            .recycle_timeout(Some(CALL_TIMEOUT))
            .build()
            .map_err(|err| Error::Unavailable(format!("PostgreSQL pool: {err}")))?;
        let store = Postgres {
            pool,
            instance: uuid::Uuid::new_v4().to_string().into(),
            clock,
        };
        store.migrate().await?;
        store.heartbeat().await?;
        let beating = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Err(err) = beating.heartbeat().await {
                    tracing::warn!(%err, "the replica heartbeat failed");
                }
            }
        });
        Ok(store)
    }

    async fn heartbeat(&self) -> Result<(), Error> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO instances (id, seen_at) VALUES ($1, clock_timestamp())
                     ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                    &[&&*self.instance],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.pool
            .get()
            .await
            .map_err(|err| Error::Unavailable(format!("connecting to PostgreSQL: {err}")))
    }

    async fn migrate(&self) -> Result<(), Error> {
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            transaction
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS antibody_migrations (
                         version    INTEGER PRIMARY KEY,
                         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                )
                .await?;
            let applied: i32 = transaction
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM antibody_migrations",
                    &[],
                )
                .await?
                .get(0);
            for (step, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
                transaction.batch_execute(sql).await?;
                transaction
                    .execute(
                        "INSERT INTO antibody_migrations (version) VALUES ($1)",
                        &[&(step as i32 + 1)],
                    )
                    .await?;
            }
            transaction.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn record_settled(
        &self,
        event: &AuditEvent,
        record: &Record,
    ) -> Result<(i64, bool), Error> {
        bounded(async {
            let client = self.client().await?;
            let operation_id = event
                .operation
                .as_ref()
                .map(|operation| operation.id.clone());
            let row = client
                .query_one(
                    "INSERT INTO events (delivery_key, log_key, transport, service_name, method_name, resource_name,
                         project, principal, operation_id, state, outcome, reason, findings, duration_us, finished_at,
                         finished_epoch)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'done', $10, $11, '[]', $12, antibody_now(), $13)
                     ON CONFLICT (delivery_key) DO UPDATE SET deliveries = events.deliveries + 1
                     RETURNING id, deliveries",
                    &[
                        &event.delivery_key,
                        &event.log_key,
                        &event.transport.as_str(),
                        &event.service_name,
                        &event.method_name,
                        &event.resource_name,
                        &event.project,
                        &event.principal,
                        &operation_id,
                        &record.outcome,
                        &record.reason,
                        &record.duration_us,
                        &self.clock.now_secs(),
                    ],
                )
                .await?;
            Ok((row.get(0), row.get::<_, i64>(1) == 1))
        })
        .await
    }

    /// The same rules as SQLite's claim; an advisory lock on the log key makes concurrent deliveries of one entry
    /// (on any replica, through any path) take turns, so exactly one of them is `New`.
    pub async fn claim(&self, event: &AuditEvent) -> Result<Claim, Error> {
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            let (delivery_key, log_key) = key_of(event);
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&log_key],
                )
                .await?;
            let now = self.clock.now_secs();
            let existing = transaction
                .query_opt(
                    &format!(
                        "SELECT e.id, e.state, e.claimed_epoch, e.fix, e.before_state,
                                e.claimed_by IS DISTINCT FROM $3
                                    AND (i.seen_at IS NULL OR i.seen_at < clock_timestamp() - interval '{INSTANCE_SILENCE}')
                         FROM events e LEFT JOIN instances i ON i.id = e.claimed_by
                         WHERE e.delivery_key = $1 OR e.log_key = $2 ORDER BY e.id LIMIT 1"
                    ),
                    &[&delivery_key, &log_key, &&*self.instance],
                )
                .await?;
            let mut interrupted = None;
            let id: i64 = match existing {
                Some(row) => {
                    let (id, state, claimed): (i64, String, Option<i64>) =
                        (row.get(0), row.get(1), row.get(2));
                    let claimer_gone: bool = row.get(5);
                    // A transient failure, or a claim abandoned by a replica that died, is handled again.
                    let seen = super::seen_again(&state, claimed, claimer_gone, now);
                    let reclaim = matches!(seen, super::Seen::Reclaim { .. });
                    if seen == (super::Seen::Reclaim { abandoned: true }) {
                        interrupted = super::interrupted(row.get(3), row.get(4));
                    }
                    transaction
                        .execute(
                            "UPDATE events SET deliveries = deliveries + 1,
                                 state = CASE WHEN $2 THEN 'processing' ELSE state END,
                                 claimed_epoch = CASE WHEN $2 THEN $3 ELSE claimed_epoch END,
                                 claimed_by = CASE WHEN $2 THEN $4 ELSE claimed_by END WHERE id = $1",
                            &[&id, &reclaim, &now, &&*self.instance],
                        )
                        .await?;
                    let answer = match seen {
                        super::Seen::InProgress => Some(Claim::InProgress { of: id }),
                        super::Seen::Duplicate => Some(Claim::Duplicate { of: id }),
                        super::Seen::Reclaim { .. } => None,
                    };
                    if let Some(answer) = answer {
                        transaction.commit().await?;
                        return Ok(answer);
                    }
                    id
                }
                None => {
                    let operation_id = event
                        .operation
                        .as_ref()
                        .map(|operation| operation.id.clone());
                    transaction
                        .query_one(
                            "INSERT INTO events (delivery_key, log_key, transport, service_name, method_name,
                                 resource_name, project, principal, operation_id, state, claimed_epoch,
                                 claimed_by)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'processing', $10, $11) RETURNING id",
                            &[
                                &delivery_key,
                                &log_key,
                                &event.transport.as_str(),
                                &event.service_name,
                                &event.method_name,
                                &event.resource_name,
                                &event.project,
                                &event.principal,
                                &operation_id,
                                &now,
                                &&*self.instance,
                            ],
                        )
                        .await?
                        .get(0)
                }
            };
            let remediated_by = match &event.operation {
                Some(operation) if !operation.id.is_empty() => transaction
                    .query_opt(DECIDED_BY, &[&operation.id, &id])
                    .await?
                    .map(|row| row.get(0)),
                _ => None,
            };
            transaction.commit().await?;
            Ok(Claim::New {
                id,
                remediated_by,
                interrupted,
            })
        })
        .await
    }

    /// A fix slot and the announced fix, in one transaction.
    pub async fn announce_fix(
        &self,
        id: i64,
        project: &str,
        cap: u32,
        fix: &Fix,
        before: &Value,
    ) -> Result<bool, Error> {
        let fix = serde_json::to_string(fix).expect("a fix serialises");
        let before = before.to_string();
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            if !safety::take_slot(&transaction, project, cap, self.clock.now_secs()).await? {
                return Ok(false);
            }
            transaction
                .execute(
                    "UPDATE events SET fix = $2, before_state = $3 WHERE id = $1",
                    &[&id, &fix, &before],
                )
                .await?;
            transaction.commit().await?;
            Ok(true)
        })
        .await
    }

    pub async fn finish(&self, id: i64, record: &Record) -> Result<(), Error> {
        self.finish_with(id, record, Vec::new()).await
    }

    pub async fn finish_with(
        &self,
        id: i64,
        record: &Record,
        alerts: Vec<OutboxItem>,
    ) -> Result<(), Error> {
        let findings = serde_json::to_string(&record.findings).expect("findings serialise");
        let fix = record
            .fix
            .as_ref()
            .map(|fix| serde_json::to_string(fix).expect("a fix serialises"));
        let before = record.before.as_ref().map(|value| value.to_string());
        let after = record.after.as_ref().map(|value| value.to_string());
        let state = if record.retry { "retry" } else { "done" };
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            transaction
                .execute(
                    "UPDATE events SET state = $2, outcome = $3, reason = $4, findings = $5, fix = $6,
                         before_state = $7, after_state = $8, duration_us = $9, finished_at = antibody_now(),
                         resource_key = $10, finished_epoch = $11, google_us = $12
                     WHERE id = $1",
                    &[
                        &id,
                        &state,
                        &record.outcome,
                        &record.reason,
                        &findings,
                        &fix,
                        &before,
                        &after,
                        &record.duration_us,
                        &record.resource_key,
                        &self.clock.now_secs(),
                        &record.google_us,
                    ],
                )
                .await?;
            for alert in &alerts {
                transaction
                    .execute(
                        "INSERT INTO outbox (event_id, channel, action, dedup_key, body) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT DO NOTHING",
                        &[&id, &alert.channel, &alert.action, &alert.dedup_key, &alert.body],
                    )
                    .await?;
            }
            transaction.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn entries(&self, limit: usize) -> Result<Vec<Entry>, Error> {
        self.select(limit, None).await
    }

    pub async fn entry(&self, id: i64) -> Result<Option<Entry>, Error> {
        Ok(self.select(1, Some(id)).await?.pop())
    }

    pub async fn operation_decided(&self, operation: &str, id: i64) -> Result<Option<i64>, Error> {
        bounded(async {
            let client = self.client().await?;
            Ok(client
                .query_opt(DECIDED_BY, &[&operation, &id])
                .await?
                .map(|row| row.get(0)))
        })
        .await
    }

    async fn select(&self, limit: usize, only: Option<i64>) -> Result<Vec<Entry>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, received_at, transport, deliveries, method_name, resource_name, project, principal,
                            operation_id, state, outcome, reason, findings, fix, before_state, after_state, duration_us,
                            resource_key
                     FROM events WHERE $2::BIGINT IS NULL OR id = $2 ORDER BY id DESC LIMIT $1",
                    &[&(limit as i64), &only],
                )
                .await?;
            Ok(rows.iter().map(entry).collect())
        })
        .await
    }

    pub async fn begin_action(
        &self,
        action: &str,
        resource: &str,
        project: &str,
        principal: &str,
    ) -> Result<i64, Error> {
        let key = format!("{action}:{}", uuid::Uuid::new_v4());
        let id = bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "INSERT INTO events (delivery_key, log_key, transport, service_name, method_name, resource_name,
                         project, principal, state) VALUES ($1, $1, $2, 'antibody', $2, $3, $4, $5, 'processing')
                     RETURNING id",
                    &[&key, &action, &resource, &project, &principal],
                )
                .await?;
            Ok(row.get::<_, i64>(0))
        })
        .await?;
        Ok(id)
    }
}
