//! Claims on Firestore: the rules the SQL backends follow (one `New` per entry, however many deliveries, on any
//! replica), kept by dedup-key documents created with `exists: false`. First sight is one commit; a key that exists
//! sends the claim through a transaction that reads the keys and the row they name.

use serde_json::Map;

use super::events::where_equal;
use super::wire::{self, Doc, Fault, Write};
use super::{Firestore, INSTANCE_SILENCE_MICROS, collection, hashed};
use crate::event::AuditEvent;
use crate::journal::{Claim, Error, Record, Seen, interrupted, seen_again};

impl Firestore {
    /// The dedup key documents of an event: by delivery and by log entry.
    pub(super) fn key_names(&self, event: &AuditEvent) -> [String; 2] {
        let (delivery, log) = crate::journal::key_of(event);
        [
            self.name(collection::KEYS, &hashed(&format!("delivery\n{delivery}"))),
            self.name(collection::KEYS, &hashed(&format!("log\n{log}"))),
        ]
    }

    pub(super) fn key_doc(&self, name: &str, id: i64) -> Write {
        let mut fields = Map::new();
        fields.insert("event".into(), wire::integer(id));
        fields.insert("expireAt".into(), self.expire_at());
        Write::update(name, fields).create()
    }

    pub async fn record_settled(
        &self,
        event: &AuditEvent,
        record: &Record,
    ) -> Result<(i64, bool), Error> {
        let keys = &self.key_names(event);
        // First sight is the common case: the row and its keys in one commit, each created only if absent. A key that
        // exists already (a redelivery, or the same entry through another path) fails the commit as a whole, and the
        // transaction below decides.
        let first = self
            .first_sight("recording an event", |id| {
                self.settled_writes(id, event, record, keys, [true, true])
            })
            .await?;
        if let Some(id) = first {
            return Ok((id, true));
        }
        self.transaction("recording an event", move |transaction| async move {
            let (found, _) = self.get_all(keys, Some(&*transaction)).await?;
            if let Some(id) = found[0].as_ref().and_then(|key| key.int("event")) {
                let again = Write::update(&self.event_name(id), Map::new())
                    .mask(&[])
                    .existing()
                    .increment("deliveries", 1);
                return Ok((vec![again], (id, false)));
            }
            let id = self.next_id();
            let writes = self.settled_writes(id, event, record, keys, [true, found[1].is_none()]);
            Ok((writes, (id, true)))
        })
        .await
    }

    /// First sight of an event, in one commit: `writes(id)` creates its row and keys, each only if absent. A key that
    /// exists fails the commit as a whole (`None`), and the caller's transaction decides.
    async fn first_sight(
        &self,
        what: &str,
        writes: impl Fn(i64) -> Vec<Write>,
    ) -> Result<Option<i64>, Error> {
        self.retrying(what, || async {
            let id = self.next_id();
            match self.commit(writes(id), None).await {
                Ok(_) => Ok(Some(id)),
                Err(Fault::AlreadyExists(_)) => Ok(None),
                Err(other) => Err(other),
            }
        })
        .await
    }

    /// A new row's writes: the row, the keys still `missing`, and its count under `counted`.
    fn row_writes(
        &self,
        id: i64,
        fields: Map<String, serde_json::Value>,
        keys: &[String; 2],
        missing: [bool; 2],
        counted: &str,
    ) -> Vec<Write> {
        let mut writes = vec![Write::update(&self.event_name(id), fields).create()];
        for (key, missing) in keys.iter().zip(missing) {
            if missing {
                writes.push(self.key_doc(key, id));
            }
        }
        writes.extend(self.count(&[(&["events", counted], 1)]));
        writes
    }

    /// The writes of a settled event's new row (see `row_writes`).
    fn settled_writes(
        &self,
        id: i64,
        event: &AuditEvent,
        record: &Record,
        keys: &[String; 2],
        missing: [bool; 2],
    ) -> Vec<Write> {
        let mut fields = self.new_row(id, event);
        fields.insert("state".into(), wire::string("done"));
        fields.insert("label".into(), wire::string(&record.outcome));
        fields.insert("outcome".into(), wire::string(&record.outcome));
        fields.insert("reason".into(), wire::string(&record.reason));
        fields.insert("findings".into(), wire::string("[]"));
        fields.insert("durationUs".into(), wire::integer(record.duration_us));
        fields.insert("finishedAt".into(), wire::string(&self.now_text()));
        fields.insert(
            "finishedEpoch".into(),
            wire::integer(self.clock().now_secs()),
        );
        self.row_writes(id, fields, keys, missing, &record.outcome)
    }

    /// The writes of a claimed event's new row (see `row_writes`).
    fn claimed_writes(
        &self,
        id: i64,
        event: &AuditEvent,
        keys: &[String; 2],
        missing: [bool; 2],
    ) -> Vec<Write> {
        let now = self.clock().now_secs();
        let mut fields = self.new_row(id, event);
        fields.insert("state".into(), wire::string("processing"));
        fields.insert("label".into(), wire::string("processing"));
        fields.insert("claimedEpoch".into(), wire::integer(now));
        fields.insert("claimedBy".into(), wire::string(self.instance()));
        self.row_writes(id, fields, keys, missing, "processing")
    }

    /// The same rules as the SQL backends' claim: the key documents, read and created in one transaction, make
    /// concurrent deliveries of one entry (on any replica, through any path) produce exactly one `New`.
    pub async fn claim(&self, event: &AuditEvent) -> Result<Claim, Error> {
        let keys = &self.key_names(event);
        // First sight, in one commit; a key that exists fails it, and the transaction below decides.
        let first = self
            .first_sight("claiming an event", |id| {
                self.claimed_writes(id, event, keys, [true, true])
            })
            .await?;
        let (claim, row) = match first {
            Some(id) => (fresh(id), None),
            None => self.claim_again(event, keys).await?,
        };
        self.claimed(event, claim, row).await
    }

    /// A claim whose keys exist: the transaction reads them and the row they name, and decides.
    async fn claim_again(
        &self,
        event: &AuditEvent,
        keys: &[String; 2],
    ) -> Result<(Claim, Option<Doc>), Error> {
        self.transaction("claiming an event", move |transaction| async move {
            let transaction = Some(&*transaction);
            let (found, read_time) = self.get_all(keys, transaction).await?;
            let known = found
                .iter()
                .flatten()
                .filter_map(|key| key.int("event"))
                .min();
            let now = self.clock().now_secs();
            if let Some(id) = known
                && let Some(row) = self.get(self.event_name(id), transaction).await?
            {
                let state = row.string("state");
                let claimer = row.str("claimedBy");
                let claimer_gone = match claimer {
                    Some(claimer) if claimer == self.instance() => false,
                    Some(claimer) => {
                        let seen = self
                            .get(self.name(collection::INSTANCES, &hashed(claimer)), None)
                            .await?
                            .and_then(|instance| instance.updated_micros());
                        seen.is_none_or(|seen| seen < read_time - INSTANCE_SILENCE_MICROS)
                    }
                    None => true,
                };
                let seen = seen_again(&state, row.int("claimedEpoch"), claimer_gone, now);
                let (claim, write) = match seen {
                    Seen::InProgress => (
                        Claim::InProgress { of: id },
                        Write::update(&self.event_name(id), Map::new()).mask(&[]),
                    ),
                    Seen::Duplicate => (
                        Claim::Duplicate { of: id },
                        Write::update(&self.event_name(id), Map::new()).mask(&[]),
                    ),
                    Seen::Reclaim { .. } => {
                        let mut fields = Map::new();
                        fields.insert("state".into(), wire::string("processing"));
                        fields.insert("claimedEpoch".into(), wire::integer(now));
                        fields.insert("claimedBy".into(), wire::string(self.instance()));
                        let claim = fresh(id);
                        let write = Write::update(&self.event_name(id), fields).mask(&[
                            "state",
                            "claimedEpoch",
                            "claimedBy",
                        ]);
                        (claim, write)
                    }
                };
                let mut writes = vec![write.existing().increment("deliveries", 1)];
                if found[0].is_none() {
                    writes.push(self.key_doc(&keys[0], id));
                }
                let abandoned = seen == (Seen::Reclaim { abandoned: true });
                return Ok((writes, (claim, abandoned.then_some(row))));
            }
            let id = self.next_id();
            let writes =
                self.claimed_writes(id, event, keys, [found[0].is_none(), found[1].is_none()]);
            Ok((writes, (fresh(id), None)))
        })
        .await
    }

    /// A claim's answer completed: what an abandoned row's process had announced, and the operation's earlier fix.
    async fn claimed(
        &self,
        event: &AuditEvent,
        claim: Claim,
        row: Option<Doc>,
    ) -> Result<Claim, Error> {
        let Claim::New { id, .. } = claim else {
            return Ok(claim);
        };
        let interrupted = match row {
            Some(row) => {
                let before = self
                    .retrying("reading a before-state", || {
                        self.state_text(&row, "beforeState")
                    })
                    .await?;
                interrupted(row.str("fix"), before.as_deref())
            }
            None => None,
        };
        let remediated_by = match &event.operation {
            Some(operation) if !operation.id.is_empty() => {
                self.retrying("finding the operation's fix", || {
                    self.remediated_by(&operation.id, id)
                })
                .await?
            }
            _ => None,
        };
        Ok(Claim::New {
            id,
            remediated_by,
            interrupted,
        })
    }

    pub async fn operation_decided(&self, operation: &str, id: i64) -> Result<Option<i64>, Error> {
        self.retrying("finding the operation's decision", || {
            self.remediated_by(operation, id)
        })
        .await
    }

    /// The earliest other row of the operation that fixed (or would have fixed, or reported) the resource.
    async fn remediated_by(&self, operation: &str, id: i64) -> Result<Option<i64>, Fault> {
        let rows = self
            .query(
                collection::EVENTS,
                where_equal("operationId", wire::string(operation)),
                None,
            )
            .await?;
        Ok(rows
            .iter()
            .filter(|row| {
                matches!(
                    row.str("outcome"),
                    Some("remediated" | "dry-run" | "detected")
                )
            })
            .filter_map(|row| row.int("id"))
            .filter(|other| *other != id)
            .min())
    }
}

/// A new claim, before `claimed` completes it.
fn fresh(id: i64) -> Claim {
    Claim::New {
        id,
        remediated_by: None,
        interrupted: None,
    }
}
