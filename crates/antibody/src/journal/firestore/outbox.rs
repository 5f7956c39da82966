//! The alert outbox on Firestore: a pending alert carries `dueMs` (and only a pending one does, so one single-field
//! index finds what is due); each due alert is taken by one replica's worker with an update-time precondition, and
//! retried by another only if that replica dies. `/metrics` sums the counter shards.

use serde_json::{Map, json};

use super::events::where_equal;
use super::wire::{self, Doc, Write};
use super::{Firestore, SHARDS, collection};
use crate::journal::{Error, Metrics, OutboxItem};

/// An alert taken by one replica's outbox worker is left to it for this long before another may retry it.
const OUTBOX_LEASE_MS: i64 = 60_000;

fn outbox_item(doc: &Doc) -> OutboxItem {
    OutboxItem {
        id: doc.int("id").unwrap_or_default(),
        event_id: doc.int("eventId").unwrap_or_default(),
        channel: doc.string("channel"),
        action: doc.string("action"),
        dedup_key: doc.string("dedupKey"),
        body: doc.string("body"),
        state: doc.string("state"),
        attempts: doc.int("attempts").unwrap_or_default(),
        last_error: doc.str("lastError").map(str::to_string),
    }
}

fn by_id(mut items: Vec<OutboxItem>) -> Vec<OutboxItem> {
    items.sort_by_key(|item| item.id);
    items
}

impl Firestore {
    fn alert_name(&self, id: i64) -> String {
        self.name(collection::OUTBOX, &id.to_string())
    }

    /// The write that puts a new alert in the outbox, due now.
    pub(super) fn new_alert(&self, event_id: i64, alert: &OutboxItem) -> Write {
        let id = self.next_id();
        let mut fields = Map::new();
        fields.insert("id".into(), wire::integer(id));
        fields.insert("eventId".into(), wire::integer(event_id));
        fields.insert("channel".into(), wire::string(&alert.channel));
        fields.insert("action".into(), wire::string(&alert.action));
        fields.insert("dedupKey".into(), wire::string(&alert.dedup_key));
        fields.insert("body".into(), wire::string(&alert.body));
        fields.insert("state".into(), wire::string("pending"));
        fields.insert("attempts".into(), wire::integer(0));
        fields.insert("dueMs".into(), wire::integer(0));
        fields.insert("expireAt".into(), self.expire_at());
        Write::update(&self.alert_name(id), fields).create()
    }

    /// Due alerts, taken for this replica's worker: moving `dueMs` a lease ahead, on the version read, makes
    /// exactly one worker take each.
    pub async fn due_alerts(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, Error> {
        let due = self
            .retrying("listing due alerts", || async {
                let mut query = Map::new();
                query.insert(
                    "where".into(),
                    json!({"fieldFilter": {"field": {"fieldPath": "dueMs"},
                        "op": "LESS_THAN_OR_EQUAL", "value": wire::integer(now_ms)}}),
                );
                query.insert(
                    "orderBy".into(),
                    json!([{"field": {"fieldPath": "dueMs"}, "direction": "ASCENDING"}]),
                );
                query.insert("limit".into(), json!(limit.min(i32::MAX as usize)));
                self.query(collection::OUTBOX, query, None).await
            })
            .await?;
        let taken = self
            .take_each(due, "taking an alert", |doc| {
                let mut fields = Map::new();
                fields.insert(
                    "dueMs".into(),
                    wire::integer(now_ms.saturating_add(OUTBOX_LEASE_MS)),
                );
                Write::update(&doc.name, fields)
                    .mask(&["dueMs"])
                    .unchanged_since(&doc.update_time)
            })
            .await?;
        Ok(by_id(taken.iter().map(outbox_item).collect()))
    }

    pub async fn next_alert_due(&self) -> Result<Option<i64>, Error> {
        self.retrying("reading the next alert due", || async {
            let mut query = Map::new();
            query.insert(
                "orderBy".into(),
                json!([{"field": {"fieldPath": "dueMs"}, "direction": "ASCENDING"}]),
            );
            query.insert("limit".into(), json!(1));
            let next = self.query(collection::OUTBOX, query, None).await?;
            Ok(next.first().and_then(|doc| doc.int("dueMs")))
        })
        .await
    }

    /// Changes an alert's delivery state in a transaction, keeping the per-channel counts true.
    async fn settle_alert(
        &self,
        id: i64,
        what: &str,
        fields: Map<String, serde_json::Value>,
        mask: &[&str],
    ) -> Result<(), Error> {
        let name = &self.alert_name(id);
        let fields = &fields;
        self.transaction(what, move |transaction| async move {
            let Some(doc) = self.get(name.clone(), Some(&*transaction)).await? else {
                return Ok((Vec::new(), ()));
            };
            let old = doc.string("state");
            let new = fields
                .get("state")
                .and_then(|value| value["stringValue"].as_str())
                .unwrap_or(&old)
                .to_string();
            let channel = doc.string("channel");
            let mut writes = vec![
                Write::update(name, fields.clone())
                    .mask(mask)
                    .increment("attempts", 1),
            ];
            if old != new {
                writes.extend(self.count(&[
                    (&["alerts", &channel, &old], -1),
                    (&["alerts", &channel, &new], 1),
                ]));
            }
            Ok((writes, ()))
        })
        .await
    }

    pub async fn alert_delivered(&self, id: i64) -> Result<(), Error> {
        let mut fields = Map::new();
        fields.insert("state".into(), wire::string("delivered"));
        fields.insert("deliveredAt".into(), wire::string(&self.now_text()));
        self.settle_alert(
            id,
            "recording a delivery",
            fields,
            &["state", "deliveredAt", "dueMs"],
        )
        .await
    }

    pub async fn alert_attempt_failed(
        &self,
        id: i64,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), Error> {
        let mut fields = Map::new();
        fields.insert("lastError".into(), wire::string(error));
        match retry_at_ms {
            Some(at) => {
                fields.insert("state".into(), wire::string("pending"));
                fields.insert("dueMs".into(), wire::integer(at));
            }
            None => {
                fields.insert("state".into(), wire::string("failed"));
            }
        }
        self.settle_alert(
            id,
            "recording a failed delivery",
            fields,
            &["state", "lastError", "dueMs"],
        )
        .await
    }

    pub async fn alerts(&self, limit: usize) -> Result<Vec<OutboxItem>, Error> {
        self.retrying("listing alerts", || async {
            let mut query = Map::new();
            query.insert(
                "orderBy".into(),
                json!([{"field": {"fieldPath": "id"}, "direction": "DESCENDING"}]),
            );
            query.insert("limit".into(), json!(limit.min(i32::MAX as usize)));
            let found = self.query(collection::OUTBOX, query, None).await?;
            Ok(found
                .iter()
                .filter(|doc| !self.expired(doc))
                .map(outbox_item)
                .collect())
        })
        .await
    }

    pub async fn alerts_for(&self, event_id: i64) -> Result<Vec<OutboxItem>, Error> {
        self.retrying("listing a decision's alerts", || async {
            let found = self
                .query(
                    collection::OUTBOX,
                    where_equal("eventId", wire::integer(event_id)),
                    None,
                )
                .await?;
            Ok(by_id(found.iter().map(outbox_item).collect()))
        })
        .await
    }

    pub async fn incident_open(&self, channel: &str, dedup_key: &str) -> Result<bool, Error> {
        self.retrying("reading an incident", || async {
            let found = self
                .query(
                    collection::OUTBOX,
                    where_equal("dedupKey", wire::string(dedup_key)),
                    None,
                )
                .await?;
            let last = |action: &str| {
                found
                    .iter()
                    .filter(|doc| doc.str("channel") == Some(channel))
                    .filter(|doc| doc.str("action") == Some(action))
                    .filter_map(|doc| doc.int("id"))
                    .max()
                    .unwrap_or(0)
            };
            Ok(last("trigger") > last("resolve"))
        })
        .await
    }

    pub async fn metrics(&self) -> Result<Metrics, Error> {
        let mut names: Vec<String> = (0..SHARDS)
            .map(|shard| self.name(collection::COUNTERS, &shard.to_string()))
            .collect();
        names.push(self.name(collection::SETTINGS, "control"));
        let names = &names;
        self.retrying("reading the counters", || async {
            let ((found, _), quarantined) = tokio::try_join!(
                self.get_all(names, None),
                self.query(collection::QUARANTINE, Map::new(), None)
            )?;
            let mut events = std::collections::BTreeMap::<String, i64>::new();
            let mut alerts = std::collections::BTreeMap::<(String, String), i64>::new();
            let shards = &found[..SHARDS as usize];
            for shard in shards.iter().flatten() {
                for (label, count) in shard.map("events") {
                    *events.entry(label).or_default() += wire::integer_of(&count).unwrap_or(0);
                }
                for (channel, states) in shard.map("alerts") {
                    for (state, count) in states["mapValue"]["fields"]
                        .as_object()
                        .into_iter()
                        .flatten()
                    {
                        *alerts.entry((channel.clone(), state.clone())).or_default() +=
                            wire::integer_of(count).unwrap_or(0);
                    }
                }
            }
            Ok(Metrics {
                events_by_outcome: events.into_iter().filter(|(_, count)| *count > 0).collect(),
                alerts_by_state: alerts
                    .into_iter()
                    .filter(|(_, count)| *count > 0)
                    .map(|((channel, state), count)| (channel, state, count))
                    .collect(),
                quarantined: quarantined.len() as i64,
                paused: found[SHARDS as usize]
                    .as_ref()
                    .is_some_and(|doc| doc.bool("paused")),
            })
        })
        .await
    }
}
