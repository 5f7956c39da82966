//! SQLite journal: one file, WAL, `synchronous=FULL` so a row is on disk before the HTTP answer.

mod outbox;
mod safety;
mod schema;
mod writer;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Claim, Entry, Error, Record, key_of};
use crate::clock::Clock;
use crate::event::AuditEvent;
use crate::kinds::Fix;
use serde_json::Value;
use writer::Job;

/// Page cache of each reader connection, in KiB (negative, as SQLite's `cache_size` takes it).
const READER_CACHE_KIB: i64 = -1024;

/// Statements kept prepared per connection: every statement of the hot paths, so none is parsed twice.
const STATEMENT_CACHE: usize = 64;

/// The journal, shared by every request. One writer thread owns the connection and commits the jobs that arrived
/// together in one transaction (group commit): every caller still hears back only after its work is on disk, and
/// concurrent requests share one fsync. Reads on the hot path go to reader connections instead (WAL lets them
/// run beside the writer and see only committed rows).
#[derive(Clone)]
pub struct Sqlite {
    jobs: std::sync::mpsc::Sender<Job>,
    /// This process's identity in `claimed_by`: one process owns a SQLite journal, so a row another instance left
    /// `processing` was abandoned by a process that died.
    instance: std::sync::Arc<str>,
    path: std::sync::Arc<Path>,
    /// Idle reader connections; one is opened whenever all are busy.
    readers: std::sync::Arc<std::sync::Mutex<Vec<Connection>>>,
    clock: Clock,
}

/// Runs one statement from the connection's statement cache (parsed once per connection, not once per call).
fn exec(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    connection.prepare_cached(sql)?.execute(params)
}

/// Reads one row with a cached statement.
/// The earliest other row of `operation` that fixed, would have fixed, or reported its resource.
fn decided_by(
    connection: &Connection,
    operation: &str,
    id: i64,
) -> Result<Option<i64>, rusqlite::Error> {
    one(
        connection,
        "SELECT id FROM events WHERE operation_id = ?1 AND id != ?2
             AND outcome IN ('remediated', 'dry-run', 'detected') ORDER BY id LIMIT 1",
        params![operation, id],
        |row| row.get(0),
    )
    .optional()
}

fn one<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    connection.prepare_cached(sql)?.query_row(params, map)
}

/// Runs `work` inside a savepoint of its own, so that a failed job leaves no trace in the shared transaction.
fn isolated<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    exec(connection, "SAVEPOINT job", [])?;
    match work(connection) {
        Ok(value) => exec(connection, "RELEASE job", []).map(|_| value),
        Err(err) => {
            let _ = exec(connection, "ROLLBACK TO job", []);
            let _ = exec(connection, "RELEASE job", []);
            Err(err)
        }
    }
}

impl Sqlite {
    pub fn open(path: &Path, clock: Clock) -> Result<Sqlite, Error> {
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut connection)?;
        let jobs = writer::start(connection)?;
        Ok(Sqlite {
            jobs,
            instance: uuid::Uuid::new_v4().to_string().into(),
            path: path.into(),
            readers: Default::default(),
            clock,
        })
    }

    /// Runs `work` on the writer thread inside the current group transaction; answers once that transaction is durable.
    pub(super) async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.run(work, |_| false).await
    }

    /// `with`, for a claim: a new claim is answered as soon as it is written, before its batch is durable, and
    /// costs no commit of its own: the writer leaves its transaction open for the next write that must be durable
    /// (see `writer`). Nothing is acknowledged on a claim alone: the handler's next write on the row (the announced
    /// fix, the outcome) commits with it or after it, and fails when the claim's row never reached the disk.
    /// A duplicate is answered only once durable, since the sender's delivery is acknowledged on it.
    async fn with_claim(
        &self,
        work: impl FnOnce(&Connection) -> Result<Claim, rusqlite::Error> + Send + 'static,
    ) -> Result<Claim, Error> {
        self.run(work, |result| matches!(result, Ok(Claim::New { .. })))
            .await
    }

    /// Queues `work` for the writer; its caller hears the result once the batch is durable, or at once when
    /// `early` says the result may be answered before.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        early: fn(&rusqlite::Result<T>) -> bool,
    ) -> Result<T, Error> {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, Error>>();
        let job: Job = Box::new(move |connection| {
            let result = isolated(connection, work);
            if early(&result) {
                let _ = reply.send(result.map_err(Error::Database));
                return None;
            }
            Some(Box::new(move |commit_error: Option<&str>| {
                let _ = reply.send(settle(result, commit_error));
            }))
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Worker("the journal writer stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Worker("the journal writer dropped a job".into()))?
    }

    /// Runs a read on a reader connection, on the caller's thread: it sees every committed row and never waits
    /// for the writer's batches. For short, indexed reads on the request path.
    pub(super) fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let pooled = self
            .readers
            .lock()
            .map(|mut idle| idle.pop())
            .unwrap_or(None);
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &*self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                connection.busy_timeout(std::time::Duration::from_secs(5))?;
                connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                // Readers look up a few index pages per request; the writer's larger cache holds the hot set.
                connection.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
                connection
            }
        };
        let result = (|| {
            exec(&connection, "BEGIN", [])?;
            let result = work(&connection);
            exec(&connection, "COMMIT", [])?;
            result
        })();
        if result.is_err() && !connection.is_autocommit() {
            let _ = exec(&connection, "ROLLBACK", []);
        }
        if let Ok(mut idle) = self.readers.lock() {
            idle.push(connection);
        }
        Ok(result?)
    }

    /// Records an event settled without reading anything (ignored, our own write, a failed call) in one write.
    /// Returns its row and whether this was its first delivery.
    pub async fn record_settled(
        &self,
        event: &AuditEvent,
        record: &Record,
    ) -> Result<(i64, bool), Error> {
        let event = event.clone();
        let (outcome, reason, duration_us) = (
            record.outcome.clone(),
            record.reason.clone(),
            record.duration_us,
        );
        let now = self.clock.now_secs();
        self.with(move |connection| {
            one(connection,
                "INSERT INTO events (delivery_key, log_key, transport, service_name, method_name, resource_name, project,
                     principal, operation_id, state, outcome, reason, findings, duration_us, finished_at, finished_epoch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'done', ?10, ?11, '[]', ?12,
                     strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?13)
                 ON CONFLICT(delivery_key) DO UPDATE SET deliveries = deliveries + 1
                 RETURNING id, deliveries",
                params![
                    event.delivery_key,
                    event.log_key,
                    event.transport.as_str(),
                    event.service_name,
                    event.method_name,
                    event.resource_name,
                    event.project,
                    event.principal,
                    event.operation.as_ref().map(|operation| operation.id.clone()),
                    outcome,
                    reason,
                    duration_us,
                    now,
                ],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? == 1)),
            )
        })
        .await
    }

    /// Records the arrival of an event, or recognises a redelivery of one already recorded.
    pub async fn claim(&self, event: &AuditEvent) -> Result<Claim, Error> {
        let event = event.clone();
        let instance = self.instance.clone();
        let now = self.clock.now_secs();
        self.with_claim(move |connection| {
            let (delivery_key, log_key) = key_of(&event);
            type Existing = (i64, String, Option<i64>, Option<String>, Option<String>, Option<String>);
            let existing: Option<Existing> = one(connection,
                    // The same delivery, or the same log entry through another transport; rows settled without a
                    // claim (an ignored event) are matched by their delivery only, which spares them an index.
                    "SELECT id, state, claimed_epoch, claimed_by, fix, before_state FROM (
                         SELECT id, state, claimed_epoch, claimed_by, fix, before_state FROM events
                         WHERE delivery_key = ?1
                         UNION ALL
                         SELECT id, state, claimed_epoch, claimed_by, fix, before_state FROM events
                         WHERE log_key = ?2 AND claimed_epoch IS NOT NULL
                     ) ORDER BY id LIMIT 1",
                    params![delivery_key, log_key],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)),
                )
                .optional()?;
            let mut interrupted = None;
            let id = match existing {
                Some((id, state, claimed, claimed_by, fix, before)) => {
                    // A transient failure, or a claim abandoned by a process that died, is handled again.
                    let seen = super::seen_again(&state, claimed, claimed_by.as_deref() != Some(&*instance), now);
                    let reclaim = matches!(seen, super::Seen::Reclaim { .. });
                    if seen == (super::Seen::Reclaim { abandoned: true }) {
                        interrupted = super::interrupted(fix.as_deref(), before.as_deref());
                    }
                    exec(connection,
                        "UPDATE events SET deliveries = deliveries + 1,
                             state = CASE WHEN ?2 THEN 'processing' ELSE state END,
                             claimed_epoch = CASE WHEN ?2 THEN ?3 ELSE claimed_epoch END,
                             claimed_by = CASE WHEN ?2 THEN ?4 ELSE claimed_by END WHERE id = ?1",
                        params![id, reclaim, now, &*instance],
                    )?;
                    match seen {
                        super::Seen::InProgress => return Ok(Claim::InProgress { of: id }),
                        super::Seen::Duplicate => return Ok(Claim::Duplicate { of: id }),
                        super::Seen::Reclaim { .. } => {}
                    }
                    id
                }
                None => {
                    exec(connection,
                        "INSERT INTO events (delivery_key, log_key, transport, service_name, method_name,
                             resource_name, project, principal, operation_id, state, claimed_epoch, claimed_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'processing', ?10, ?11)",
                        params![
                            delivery_key,
                            log_key,
                            event.transport.as_str(),
                            event.service_name,
                            event.method_name,
                            event.resource_name,
                            event.project,
                            event.principal,
                            event.operation.as_ref().map(|operation| operation.id.clone()),
                            now,
                            &*instance,
                        ],
                    )?;
                    connection.last_insert_rowid()
                }
            };
            let remediated_by = match &event.operation {
                Some(operation) if !operation.id.is_empty() => {
                    decided_by(connection, &operation.id, id)?
                }
                _ => None,
            };
            Ok(Claim::New {
                id,
                remediated_by,
                interrupted,
            })
        })
        .await
    }

    /// Takes one of the project's fix slots (see `reserve_fix`) and records the fix about to be applied, with the
    /// before-state, in one write ahead of the first write to Google: if the process dies before the outcome is
    /// written, the next claim knows what may already have been done. `false` (and nothing written) when the cap
    /// leaves no slot.
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
        let project = project.to_string();
        let now = self.clock.now_secs();
        self.with(move |connection| {
            if !safety::take_slot(connection, &project, cap, now)? {
                return Ok(false);
            }
            let updated = exec(
                connection,
                "UPDATE events SET fix = ?2, before_state = ?3 WHERE id = ?1",
                params![id, fix, before],
            )?;
            present(updated)?;
            Ok(true)
        })
        .await
    }

    /// Writes how the handling of a claimed event ended.
    pub async fn finish(&self, id: i64, record: &Record) -> Result<(), Error> {
        self.finish_with(id, record, Vec::new()).await
    }

    /// Writes the outcome and its alerts in one transaction: no decision without its alerts, no alert without its decision.
    pub async fn finish_with(
        &self,
        id: i64,
        record: &Record,
        alerts: Vec<super::OutboxItem>,
    ) -> Result<(), Error> {
        let findings = serde_json::to_string(&record.findings).expect("findings serialise");
        let fix = record
            .fix
            .as_ref()
            .map(|fix| serde_json::to_string(fix).expect("a fix serialises"));
        let before = record.before.as_ref().map(|value| value.to_string());
        let after = record.after.as_ref().map(|value| value.to_string());
        let outcome = record.outcome.clone();
        let reason = record.reason.clone();
        let state = if record.retry { "retry" } else { "done" };
        let duration_us = record.duration_us;
        let google_us = record.google_us;
        let resource_key = record.resource_key.clone();
        let now = self.clock.now_secs();
        self.with(move |connection| {
            let updated = exec(connection,
                "UPDATE events SET state = ?2, outcome = ?3, reason = ?4, findings = ?5, fix = ?6,
                     before_state = ?7, after_state = ?8, duration_us = ?9, google_us = ?12,
                     finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), resource_key = ?10, finished_epoch = ?11
                 WHERE id = ?1",
                params![id, state, outcome, reason, findings, fix, before, after, duration_us, resource_key, now, google_us],
            )?;
            present(updated)?;
            for alert in &alerts {
                exec(connection,
                    "INSERT OR IGNORE INTO outbox (event_id, channel, action, dedup_key, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, alert.channel, alert.action, alert.dedup_key, alert.body],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// The newest rows first.
    pub async fn entries(&self, limit: usize) -> Result<Vec<Entry>, Error> {
        self.select(limit, None).await
    }

    /// One row by its id.
    pub async fn entry(&self, id: i64) -> Result<Option<Entry>, Error> {
        Ok(self.select(1, Some(id)).await?.pop())
    }

    pub async fn operation_decided(&self, operation: &str, id: i64) -> Result<Option<i64>, Error> {
        let operation = operation.to_string();
        self.with(move |connection| decided_by(connection, &operation, id))
            .await
    }

    async fn select(&self, limit: usize, only: Option<i64>) -> Result<Vec<Entry>, Error> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, received_at, transport, deliveries, method_name, resource_name, project, principal,
                        operation_id, state, outcome, reason, findings, fix, before_state, after_state, duration_us,
                        resource_key
                 FROM events WHERE ?2 IS NULL OR id = ?2 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map(params![limit as i64, only], |row| {
                let json = |index: usize| -> rusqlite::Result<Option<serde_json::Value>> {
                    Ok(row.get::<_, Option<String>>(index)?.and_then(|text| serde_json::from_str(&text).ok()))
                };
                let findings: Vec<crate::policy::Finding> =
                    json(12)?.and_then(|value| serde_json::from_value(value).ok()).unwrap_or_default();
                let resource_name: String = row.get(5)?;
                let resource_key: Option<String> = row.get(17)?;
                Ok(Entry {
                    id: row.get(0)?,
                    time: row.get(1)?,
                    resource: resource_key.unwrap_or_else(|| resource_name.clone()),
                    policy: findings.first().map(|finding| finding.policy.clone()),
                    received_at: row.get(1)?,
                    transport: row.get(2)?,
                    deliveries: row.get(3)?,
                    method_name: row.get(4)?,
                    resource_name,
                    project: row.get(6)?,
                    principal: row.get(7)?,
                    operation_id: row.get(8)?,
                    state: row.get(9)?,
                    outcome: row.get(10)?,
                    reason: row.get(11)?,
                    findings,
                    fix: json(13)?.and_then(|value| serde_json::from_value(value).ok()),
                    before: json(14)?,
                    after: json(15)?,
                    duration_us: row.get(16)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

impl Sqlite {
    /// Records an action antibody took on its own (an undo): a row of its own, durable like every other.
    pub async fn begin_action(
        &self,
        action: &str,
        resource: &str,
        project: &str,
        principal: &str,
    ) -> Result<i64, Error> {
        let key = format!("{action}:{}", uuid::Uuid::new_v4());
        let values = (
            action.to_string(),
            resource.to_string(),
            project.to_string(),
            principal.to_string(),
        );
        let id = self
            .with(move |connection| {
                exec(connection,
                    "INSERT INTO events (delivery_key, log_key, transport, service_name, method_name, resource_name, project,
                         principal, state) VALUES (?1, ?1, ?2, 'antibody', ?2, ?3, ?4, ?5, 'processing')",
                    params![key, values.0, values.1, values.2, values.3],
                )?;
                Ok(connection.last_insert_rowid())
            })
            .await?;
        Ok(id)
    }
}

/// What a caller hears once its batch's commit is known.
fn settle<T>(result: rusqlite::Result<T>, commit_error: Option<&str>) -> Result<T, Error> {
    match (result, commit_error) {
        (_, Some(message)) => Err(Error::Worker(message.to_string())),
        (Ok(value), None) => Ok(value),
        (Err(err), None) => Err(Error::Database(err)),
    }
}

/// A claimed row an update must find: missing only when its claim's batch never reached the disk.
fn present(updated: usize) -> rusqlite::Result<()> {
    match updated {
        0 => Err(rusqlite::Error::QueryReturnedNoRows),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
