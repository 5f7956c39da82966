//! The state the safety controls share: counters of recent fixes, quarantine, the exemption registry, the kill switch.

use rusqlite::{OptionalExtension, params};

use rusqlite::Connection;

use super::{Sqlite, exec, one};
use crate::journal::{Error, Exemption, Quarantine, Safety};

impl Sqlite {
    /// Everything the gate needs about one resource, read in one connection.
    pub async fn safety(
        &self,
        resource_key: &str,
        project: &str,
        flap_window_secs: i64,
    ) -> Result<Safety, Error> {
        let now = self.clock.now_secs();
        self.read(|connection| {
            let paused = one(connection, "SELECT value FROM settings WHERE key = 'paused'", [], |row| row.get::<_, String>(0))
                .optional()?
                .is_some_and(|value| value == "1");
            let exemption = {
                let mut statement = connection.prepare_cached(
                    "SELECT id, resource, owner, reason, expires_epoch, created_at FROM exemptions
                     WHERE expires_epoch IS NULL OR expires_epoch > ?1 ORDER BY id",
                )?;
                let rows = statement.query_map(params![now], exemption_row)?;
                rows.filter_map(Result::ok).find(|exemption| exemption.covers(resource_key, now))
            };
            let quarantined = one(connection,
                    "SELECT resource_key, since, principals, reason FROM quarantine WHERE resource_key = ?1",
                    params![resource_key],
                    |row| Ok(Quarantine { resource_key: row.get(0)?, since: row.get(1)?, principals: row.get(2)?, reason: row.get(3)? }),
                )
                .optional()?;
            // A release starts the flap window afresh.
            let released: i64 = one(connection, "SELECT epoch FROM releases WHERE resource_key = ?1", params![resource_key], |row| row.get(0))
                .optional()?
                .unwrap_or(0);
            let flap_since = (now - flap_window_secs).max(released);
            let recent_breakers = {
                let mut statement = connection.prepare_cached(
                    "SELECT principal FROM events WHERE outcome = 'remediated' AND resource_key = ?1 AND finished_epoch > ?2
                     ORDER BY id DESC",
                )?;
                let rows = statement.query_map(params![resource_key, flap_since], |row| row.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let recent_fixes_in_project: u32 = one(connection,
                "SELECT COUNT(*) FROM fix_slots WHERE project = ?1 AND epoch > ?2",
                params![project, now - 3600],
                |row| row.get(0),
            )?;
            let recent_fixes_of_resource = u32::try_from(recent_breakers.len()).unwrap_or(u32::MAX);
            Ok(Safety { paused, exemption, quarantined, recent_fixes_of_resource, recent_breakers, recent_fixes_in_project })
        })
    }

    /// Takes one of the project's fix slots for the hour if the cap leaves one (a cap of 0 means none): the count and
    /// the taking are one transaction, so concurrent fixes cannot overrun the cap.
    pub async fn reserve_fix(&self, project: &str, cap: u32) -> Result<bool, Error> {
        let project = project.to_string();
        let now = self.clock.now_secs();
        self.with(move |connection| take_slot(connection, &project, cap, now))
            .await
    }

    /// Marks a resource quarantined; `false` when it already was (so the alert is raised once).
    pub async fn quarantine(
        &self,
        resource_key: &str,
        principals: &str,
        reason: &str,
    ) -> Result<bool, Error> {
        let values = (
            resource_key.to_string(),
            principals.to_string(),
            reason.to_string(),
        );
        self.with(move |connection| {
            let inserted = exec(connection,
                "INSERT OR IGNORE INTO quarantine (resource_key, principals, reason) VALUES (?1, ?2, ?3)",
                params![values.0, values.1, values.2],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    pub async fn quarantined(&self) -> Result<Vec<Quarantine>, Error> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT resource_key, since, principals, reason FROM quarantine ORDER BY since",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Quarantine {
                    resource_key: row.get(0)?,
                    since: row.get(1)?,
                    principals: row.get(2)?,
                    reason: row.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Lets antibody fix a quarantined resource again; `false` when it was not quarantined.
    pub async fn release(&self, resource_key: &str) -> Result<bool, Error> {
        let resource_key = resource_key.to_string();
        let now = self.clock.now_secs();
        self.with(move |connection| {
            let released = exec(
                connection,
                "DELETE FROM quarantine WHERE resource_key = ?1",
                params![resource_key],
            )? == 1;
            exec(
                connection,
                "INSERT INTO releases (resource_key, epoch) VALUES (?1, ?2)
                 ON CONFLICT(resource_key) DO UPDATE SET epoch = excluded.epoch",
                params![resource_key, now],
            )?;
            Ok(released)
        })
        .await
    }

    /// Schedules a fresh decision on a resource after its grace period (the earlier schedule wins).
    pub async fn defer(
        &self,
        resource_key: &str,
        project: &str,
        due_epoch: i64,
        hint: Option<&str>,
    ) -> Result<(), Error> {
        let (resource_key, project) = (resource_key.to_string(), project.to_string());
        let hint = hint.map(str::to_string);
        self.with(move |connection| {
            // One writer: the read and the upsert cannot be interleaved by another.
            let earlier: Option<Option<String>> = connection
                .query_row(
                    "SELECT hint FROM deferred WHERE resource_key = ?1",
                    params![resource_key],
                    |row| row.get(0),
                )
                .optional()?;
            let hint = crate::journal::merge_hints(earlier.flatten().as_deref(), hint.as_deref());
            exec(connection,
                "INSERT INTO deferred (resource_key, project, due_epoch, hint) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(resource_key) DO UPDATE SET due_epoch = MIN(due_epoch, excluded.due_epoch),
                   hint = excluded.hint",
                params![resource_key, project, due_epoch, hint],
            )?;
            Ok(())
        })
        .await
    }

    /// Takes the decisions whose grace period is over.
    pub async fn take_due_rechecks(&self, now: i64) -> Result<Vec<crate::journal::Due>, Error> {
        self.with(move |connection| {
            let due = {
                let mut statement = connection.prepare_cached(
                    "SELECT resource_key, project, hint FROM deferred WHERE due_epoch <= ?1",
                )?;
                let rows = statement.query_map(params![now], |row| {
                    Ok(crate::journal::Due {
                        resource: row.get(0)?,
                        project: row.get(1)?,
                        hint: row.get(2)?,
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            exec(
                connection,
                "DELETE FROM deferred WHERE due_epoch <= ?1",
                params![now],
            )?;
            Ok(due)
        })
        .await
    }

    /// The kill switch: while paused, antibody detects and journals but changes nothing.
    /// A durable write that changes nothing that matters: whether the journal can be written now.
    pub async fn writable(&self) -> Result<(), Error> {
        let now = self.clock.now_secs().to_string();
        self.with(move |connection| {
            exec(connection,
                "INSERT INTO settings (key, value) VALUES ('ready', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![now],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_paused(&self, paused: bool) -> Result<(), Error> {
        self.with(move |connection| {
            exec(connection,
                "INSERT INTO settings (key, value) VALUES ('paused', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![if paused { "1" } else { "0" }],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn add_exemption(
        &self,
        resource: &str,
        owner: &str,
        reason: &str,
        expires_epoch: Option<i64>,
    ) -> Result<i64, Error> {
        let values = (resource.to_string(), owner.to_string(), reason.to_string());
        self.with(move |connection| {
            exec(connection,
                "INSERT INTO exemptions (resource, owner, reason, expires_epoch) VALUES (?1, ?2, ?3, ?4)",
                params![values.0, values.1, values.2, expires_epoch],
            )?;
            Ok(connection.last_insert_rowid())
        })
        .await
    }

    /// Every registered exemption, expired ones included (they simply stop applying).
    pub async fn exemptions(&self) -> Result<Vec<Exemption>, Error> {
        self.with(|connection| {
            let mut statement =
                connection.prepare_cached("SELECT id, resource, owner, reason, expires_epoch, created_at FROM exemptions ORDER BY id")?;
            let rows = statement.query_map([], exemption_row)?;
            rows.collect()
        })
        .await
    }

    pub async fn remove_exemption(&self, id: i64) -> Result<bool, Error> {
        self.with(move |connection| {
            Ok(exec(
                connection,
                "DELETE FROM exemptions WHERE id = ?1",
                params![id],
            )? == 1)
        })
        .await
    }
}

fn exemption_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Exemption> {
    Ok(Exemption {
        id: row.get(0)?,
        resource: row.get(1)?,
        owner: row.get(2)?,
        reason: row.get(3)?,
        expires_epoch: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// Takes a fix slot inside the caller's transaction, if the cap (0: none) leaves one for the hour.
pub(super) fn take_slot(
    connection: &Connection,
    project: &str,
    cap: u32,
    now: i64,
) -> rusqlite::Result<bool> {
    if cap == 0 {
        return Ok(true);
    }
    let taken: i64 = one(
        connection,
        "SELECT COUNT(*) FROM fix_slots WHERE project = ?1 AND epoch > ?2",
        params![project, now - 3600],
        |row| row.get(0),
    )?;
    if taken >= i64::from(cap) {
        return Ok(false);
    }
    exec(
        connection,
        "INSERT INTO fix_slots (project, epoch) VALUES (?1, ?2)",
        params![project, now],
    )?;
    Ok(true)
}
