//! The state the safety controls share across replicas: counters, fix slots, leases, quarantine, grace-period
//! re-decisions, the kill switch and the exemption registry.

use tokio_postgres::Row;

use super::{Postgres, bounded, count};
use crate::journal::{Error, Exemption, Quarantine, Safety};

fn exemption(row: &Row) -> Exemption {
    Exemption {
        id: row.get(0),
        resource: row.get(1),
        owner: row.get(2),
        reason: row.get(3),
        expires_epoch: row.get(4),
        created_at: row.get(5),
    }
}

fn quarantine(row: &Row) -> Quarantine {
    Quarantine {
        resource_key: row.get(0),
        since: row.get(1),
        principals: row.get(2),
        reason: row.get(3),
    }
}

impl Postgres {
    pub async fn safety(
        &self,
        resource_key: &str,
        project: &str,
        flap_window_secs: i64,
    ) -> Result<Safety, Error> {
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            let now = self.clock.now_secs();
            let paused = transaction
                .query_opt("SELECT value FROM settings WHERE key = 'paused'", &[])
                .await?
                .is_some_and(|row| row.get::<_, String>(0) == "1");
            let exemption = transaction
                .query(
                    "SELECT id, resource, owner, reason, expires_epoch, created_at FROM exemptions
                     WHERE expires_epoch IS NULL OR expires_epoch > $1 ORDER BY id",
                    &[&now],
                )
                .await?
                .iter()
                .map(exemption)
                .find(|exemption| exemption.covers(resource_key, now));
            let quarantined = transaction
                .query_opt(
                    "SELECT resource_key, since, principals, reason FROM quarantine WHERE resource_key = $1",
                    &[&resource_key],
                )
                .await?
                .map(|row| quarantine(&row));
            let released: i64 = transaction
                .query_opt(
                    "SELECT epoch FROM releases WHERE resource_key = $1",
                    &[&resource_key],
                )
                .await?
                .map(|row| row.get(0))
                .unwrap_or(0);
            let flap_since = (now - flap_window_secs).max(released);
            let recent_breakers: Vec<String> = transaction
                .query(
                    "SELECT principal FROM events WHERE outcome = 'remediated' AND resource_key = $1
                         AND finished_epoch > $2 ORDER BY id DESC",
                    &[&resource_key, &flap_since],
                )
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            let recent_fixes_in_project = count(
                &transaction
                    .query_one(
                        "SELECT COUNT(*) FROM fix_slots WHERE project = $1 AND epoch > $2",
                        &[&project, &(now - 3600)],
                    )
                    .await?,
                0,
            );
            transaction.commit().await?;
            Ok(Safety {
                paused,
                exemption,
                quarantined,
                recent_fixes_of_resource: u32::try_from(recent_breakers.len())
                    .unwrap_or(u32::MAX),
                recent_breakers,
                recent_fixes_in_project,
            })
        })
        .await
    }

    /// Takes one of the project's fix slots for the hour if the cap leaves one; an advisory lock on the project
    /// makes the count and the taking atomic across replicas.
    pub async fn reserve_fix(&self, project: &str, cap: u32) -> Result<bool, Error> {
        if cap == 0 {
            return Ok(true);
        }
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            if !take_slot(&transaction, project, cap, self.clock.now_secs()).await? {
                return Ok(false);
            }
            transaction.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Takes the lease on a resource for `seconds` (by the database's clock) unless another holder's lease is live.
    pub async fn try_lease(&self, key: &str, holder: &str, seconds: f64) -> Result<bool, Error> {
        bounded(async {
            let client = self.client().await?;
            let taken = client
                .query_opt(
                    "INSERT INTO leases (resource_key, holder, expires_at)
                     VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
                     ON CONFLICT (resource_key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.expires_at < clock_timestamp()
                     RETURNING holder",
                    &[&key, &holder, &seconds],
                )
                .await?;
            Ok(taken.is_some())
        })
        .await
    }

    pub async fn end_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM leases WHERE resource_key = $1 AND holder = $2",
                    &[&key, &holder],
                )
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn quarantine(
        &self,
        resource_key: &str,
        principals: &str,
        reason: &str,
    ) -> Result<bool, Error> {
        bounded(async {
            let client = self.client().await?;
            let inserted = client
                .execute(
                    "INSERT INTO quarantine (resource_key, principals, reason) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&resource_key, &principals, &reason],
                )
                .await?;
            Ok(inserted == 1)
        })
        .await
    }

    pub async fn quarantined(&self) -> Result<Vec<Quarantine>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT resource_key, since, principals, reason FROM quarantine ORDER BY since",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(quarantine).collect())
        })
        .await
    }

    pub async fn release(&self, resource_key: &str) -> Result<bool, Error> {
        bounded(async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await?;
            let released = transaction
                .execute(
                    "DELETE FROM quarantine WHERE resource_key = $1",
                    &[&resource_key],
                )
                .await?
                == 1;
            transaction
                .execute(
                    "INSERT INTO releases (resource_key, epoch) VALUES ($1, $2)
                     ON CONFLICT (resource_key) DO UPDATE SET epoch = excluded.epoch",
                    &[&resource_key, &self.clock.now_secs()],
                )
                .await?;
            transaction.commit().await?;
            Ok(released)
        })
        .await
    }

    pub async fn defer(
        &self,
        resource_key: &str,
        project: &str,
        due_epoch: i64,
        hint: Option<&str>,
    ) -> Result<(), Error> {
        bounded(async {
            let mut client = self.client().await?;
            // The row is locked between the read and the write: concurrent deferrals' hints all survive.
            let transaction = client.transaction().await?;
            let earlier: Option<Option<String>> = transaction
                .query_opt(
                    "SELECT hint FROM deferred WHERE resource_key = $1 FOR UPDATE",
                    &[&resource_key],
                )
                .await?
                .map(|row| row.get(0));
            let hint = crate::journal::merge_hints(earlier.flatten().as_deref(), hint);
            transaction
                .execute(
                    "INSERT INTO deferred (resource_key, project, due_epoch, hint) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (resource_key) DO UPDATE SET
                       due_epoch = LEAST(deferred.due_epoch, excluded.due_epoch), hint = excluded.hint",
                    &[&resource_key, &project, &due_epoch, &hint],
                )
                .await?;
            transaction.commit().await?;
            Ok(())
        })
        .await
    }

    /// Takes the due decisions in one statement: each is taken by exactly one replica.
    pub async fn take_due_rechecks(&self, now: i64) -> Result<Vec<crate::journal::Due>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "DELETE FROM deferred WHERE due_epoch <= $1 RETURNING resource_key, project, hint",
                    &[&now],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| crate::journal::Due {
                    resource: row.get(0),
                    project: row.get(1),
                    hint: row.get(2),
                })
                .collect())
        })
        .await
    }

    /// A durable write that changes nothing that matters: whether the journal can be written now.
    pub async fn writable(&self) -> Result<(), Error> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO settings (key, value) VALUES ('ready', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&self.clock.now_secs().to_string()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn set_paused(&self, paused: bool) -> Result<(), Error> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO settings (key, value) VALUES ('paused', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&if paused { "1" } else { "0" }],
                )
                .await?;
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
        bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "INSERT INTO exemptions (resource, owner, reason, expires_epoch) VALUES ($1, $2, $3, $4)
                     RETURNING id",
                    &[&resource, &owner, &reason, &expires_epoch],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    pub async fn exemptions(&self) -> Result<Vec<Exemption>, Error> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, resource, owner, reason, expires_epoch, created_at FROM exemptions ORDER BY id",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(exemption).collect())
        })
        .await
    }

    pub async fn remove_exemption(&self, id: i64) -> Result<bool, Error> {
        bounded(async {
            let client = self.client().await?;
            Ok(client
                .execute("DELETE FROM exemptions WHERE id = $1", &[&id])
                .await?
                == 1)
        })
        .await
    }
}

/// Takes a fix slot inside the caller's transaction, if the cap (0: none) leaves one for the hour.
pub(super) async fn take_slot(
    transaction: &tokio_postgres::Transaction<'_>,
    project: &str,
    cap: u32,
    now: i64,
) -> Result<bool, Error> {
    if cap == 0 {
        return Ok(true);
    }
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('fix-slots:' || $1, 0))",
            &[&project],
        )
        .await?;
    let taken = count(
        &transaction
            .query_one(
                "SELECT COUNT(*) FROM fix_slots WHERE project = $1 AND epoch > $2",
                &[&project, &(now - 3600)],
            )
            .await?,
        0,
    );
    if taken >= cap {
        return Ok(false);
    }
    transaction
        .execute(
            "INSERT INTO fix_slots (project, epoch) VALUES ($1, $2)",
            &[&project, &now],
        )
        .await?;
    Ok(true)
}
