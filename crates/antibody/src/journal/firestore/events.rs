//! The journal's rows on Firestore: new rows, fixes announced, decisions with their alerts in one transaction, states
//! too large for one document in pieces, rows read back, and the sharded per-outcome counters `/metrics` reads.

use serde_json::{Map, Value};

use super::wire::{self, Doc, Fault, Write};
use super::{Firestore, SHARDS, collection, hashed};
use crate::event::AuditEvent;
use crate::journal::{Entry, Error, OutboxItem, Record};
use crate::kinds::Fix;

/// A before- or after-state larger than this (in bytes of JSON text) is stored in pieces of this size, beside the
/// row: a document holds at most 1 MiB.
const PIECE_BYTES: usize = 200 * 1024;

/// Beyond this many pieces a state is trimmed, with a note saying so (a commit carries at most 10 MiB).
const MAX_PIECES: usize = 32;

/// How many of a resource's recent fixes its document keeps for the flap window.
const KEPT_FIXES: usize = 64;

/// The event fields a finished decision sets.
const FINISHED_FIELDS: [&str; 15] = [
    "state",
    "outcome",
    "reason",
    "findings",
    "fix",
    "beforeState",
    "beforePieces",
    "afterState",
    "afterPieces",
    "durationUs",
    "googleUs",
    "finishedAt",
    "finishedEpoch",
    "resourceKey",
    "label",
];

impl Firestore {
    pub(super) fn event_name(&self, id: i64) -> String {
        self.name(collection::EVENTS, &id.to_string())
    }

    /// Moves counts between labels on one of the counter shards, in the caller's commit.
    pub(super) fn count(&self, changes: &[(&[&str], i64)]) -> Option<Write> {
        let changes: Vec<_> = changes.iter().filter(|(_, by)| *by != 0).collect();
        if changes.is_empty() {
            return None;
        }
        let shard = (uuid::Uuid::new_v4().as_u128() % u128::from(SHARDS)) as u32;
        let mut write = Write::update(
            &self.name(collection::COUNTERS, &shard.to_string()),
            Map::new(),
        )
        .mask(&[]);
        for (segments, by) in changes {
            // Firestore has no empty field name: an empty label is counted as "unlabelled".
            let segments: Vec<&str> = segments
                .iter()
                .map(|segment| {
                    if segment.is_empty() {
                        "unlabelled"
                    } else {
                        segment
                    }
                })
                .collect();
            write = write.increment(&wire::path(&segments), *by);
        }
        Some(write)
    }

    /// The fields of a new row for `event`.
    pub(super) fn new_row(&self, id: i64, event: &AuditEvent) -> Map<String, Value> {
        let mut fields = Map::new();
        let mut put = |name: &str, value: Value| {
            fields.insert(name.into(), value);
        };
        let (delivery, log) = crate::journal::key_of(event);
        // What the sender wrote is clipped to fit a document (the dedup keys are hashed whole, elsewhere).
        let text = |text: &str| wire::string(&clip(text));
        put("id", wire::integer(id));
        put("deliveryKey", text(delivery));
        put("logKey", text(log));
        put("receivedAt", wire::string(&self.now_text()));
        put("transport", wire::string(event.transport.as_str()));
        put("deliveries", wire::integer(1));
        put("serviceName", text(&event.service_name));
        put("methodName", text(&event.method_name));
        put("resourceName", text(&event.resource_name));
        put("project", text(&event.project));
        put("principal", text(&event.principal));
        put(
            "operationId",
            wire::optional_string(event.operation.as_ref().map(|op| clip(&op.id)).as_deref()),
        );
        put("expireAt", self.expire_at());
        fields
    }

    /// A state's text, inline or in pieces: the fields to set on the row and the piece documents to write.
    fn stored_state(
        &self,
        id: i64,
        field: &str,
        state: Option<&Value>,
    ) -> (Map<String, Value>, Vec<Write>) {
        let mut fields = Map::new();
        let mut writes = Vec::new();
        let text = state.map(Value::to_string);
        match text {
            Some(text) if text.len() > PIECE_BYTES => {
                let mut pieces = split(&text, PIECE_BYTES);
                if pieces.len() > MAX_PIECES {
                    let note = serde_json::json!({"antibodyTrimmed": format!(
                        "a state of {} bytes does not fit in the Firestore journal", text.len())});
                    pieces = vec![note.to_string()];
                }
                for (index, piece) in pieces.iter().enumerate() {
                    let mut piece_fields = Map::new();
                    piece_fields.insert("text".into(), wire::string(piece));
                    piece_fields.insert("expireAt".into(), self.expire_at());
                    writes.push(Write::update(
                        &format!(
                            "{}/{}/{field}-{index}",
                            self.event_name(id),
                            collection::PIECES
                        ),
                        piece_fields,
                    ));
                }
                fields.insert(field.into(), wire::optional_string(None));
                fields.insert(
                    format!("{}Pieces", field.trim_end_matches("State")),
                    wire::integer(pieces.len() as i64),
                );
            }
            text => {
                fields.insert(field.into(), wire::optional_string(text.as_deref()));
                fields.insert(
                    format!("{}Pieces", field.trim_end_matches("State")),
                    wire::optional_integer(None),
                );
            }
        }
        (fields, writes)
    }

    /// A state's text as stored: inline, or put together from its pieces.
    pub(super) async fn state_text(&self, doc: &Doc, field: &str) -> Result<Option<String>, Fault> {
        let pieces = doc.int(&format!("{}Pieces", field.trim_end_matches("State")));
        let Some(pieces) = pieces.filter(|count| *count > 0) else {
            return Ok(doc.str(field).map(str::to_string));
        };
        let names: Vec<String> = (0..pieces)
            .map(|index| format!("{}/{}/{field}-{index}", doc.name, collection::PIECES))
            .collect();
        let (found, _) = self.get_all(&names, None).await?;
        let mut text = String::new();
        for piece in found {
            let piece = piece.ok_or_else(|| {
                Fault::Permanent(format!("a piece of {field} of {} is missing", doc.name))
            })?;
            text.push_str(piece.str("text").unwrap_or_default());
        }
        Ok(Some(text))
    }

    async fn entry_of(&self, doc: &Doc) -> Result<Entry, Fault> {
        let json = |text: Option<String>| text.and_then(|text| serde_json::from_str(&text).ok());
        let findings: Vec<crate::policy::Finding> = doc
            .str("findings")
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let resource_name = doc.string("resourceName");
        Ok(Entry {
            id: doc.int("id").unwrap_or_default(),
            time: doc.string("receivedAt"),
            resource: doc
                .str("resourceKey")
                .map(str::to_string)
                .unwrap_or_else(|| resource_name.clone()),
            policy: findings.first().map(|finding| finding.policy.clone()),
            received_at: doc.string("receivedAt"),
            transport: doc.string("transport"),
            deliveries: doc.int("deliveries").unwrap_or(1),
            method_name: doc.string("methodName"),
            resource_name,
            project: doc.string("project"),
            principal: doc.string("principal"),
            operation_id: doc.str("operationId").map(str::to_string),
            state: doc.string("state"),
            outcome: doc.str("outcome").map(str::to_string),
            reason: doc.str("reason").map(str::to_string),
            findings,
            fix: doc
                .str("fix")
                .and_then(|text| serde_json::from_str(text).ok()),
            before: json(self.state_text(doc, "beforeState").await?),
            after: json(self.state_text(doc, "afterState").await?),
            duration_us: doc.int("durationUs"),
        })
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
        let fix = &serde_json::to_string(fix).expect("a fix serialises");
        self.transaction("announcing a fix", move |transaction| async move {
            let mut writes = Vec::new();
            if cap > 0 {
                match self.take_slot(project, cap, &transaction).await? {
                    Some(slot) => writes.push(slot),
                    None => return Ok((Vec::new(), false)),
                }
            }
            let (mut fields, pieces) = self.stored_state(id, "beforeState", Some(before));
            fields.insert("fix".into(), wire::string(fix));
            writes.push(
                Write::update(&self.event_name(id), fields)
                    .mask(&["fix", "beforeState", "beforePieces"])
                    .existing(),
            );
            writes.extend(pieces);
            Ok((writes, true))
        })
        .await
    }

    pub async fn finish(&self, id: i64, record: &Record) -> Result<(), Error> {
        self.finish_with(id, record, Vec::new()).await
    }

    /// The decision, its alerts (each (channel, action) once per row), the counters and the resource's recent
    /// fixes, in one transaction.
    pub async fn finish_with(
        &self,
        id: i64,
        record: &Record,
        alerts: Vec<OutboxItem>,
    ) -> Result<(), Error> {
        let alerts = &alerts;
        let findings = &serde_json::to_string(&record.findings).expect("findings serialise");
        let fix = &record
            .fix
            .as_ref()
            .map(|fix| serde_json::to_string(fix).expect("a fix serialises"));
        let state = if record.retry { "retry" } else { "done" };
        let resource = &record
            .resource_key
            .as_ref()
            .filter(|_| record.outcome == "remediated")
            .map(|key| self.name(collection::RESOURCES, &hashed(key)));
        self.transaction("finishing an event", move |transaction| async move {
            let transaction = Some(&*transaction);
            let mut names = vec![self.event_name(id)];
            names.extend(resource.clone());
            let (found, _) = self.get_all(&names, transaction).await?;
            let row = found[0]
                .as_ref()
                .ok_or_else(|| Fault::Permanent(format!("no journal row {id}")))?;
            // Each (channel, action) once per row: what an earlier finish of this row wrote (most decisions alert no one).
            let existing = match alerts.is_empty() {
                true => Vec::new(),
                false => {
                    self.query(
                        collection::OUTBOX,
                        where_equal("eventId", wire::integer(id)),
                        transaction,
                    )
                    .await?
                }
            };
            let mut fields = Map::new();
            fields.insert("state".into(), wire::string(state));
            fields.insert("outcome".into(), wire::string(&record.outcome));
            fields.insert("label".into(), wire::string(&record.outcome));
            fields.insert("reason".into(), wire::string(&record.reason));
            fields.insert("findings".into(), wire::string(findings));
            fields.insert("fix".into(), wire::optional_string(fix.as_deref()));
            fields.insert("durationUs".into(), wire::integer(record.duration_us));
            fields.insert("googleUs".into(), wire::integer(record.google_us));
            fields.insert("finishedAt".into(), wire::string(&self.now_text()));
            fields.insert(
                "finishedEpoch".into(),
                wire::integer(self.clock().now_secs()),
            );
            fields.insert(
                "resourceKey".into(),
                wire::optional_string(record.resource_key.as_deref()),
            );
            let (before, mut writes) = self.stored_state(id, "beforeState", record.before.as_ref());
            let (after, after_pieces) = self.stored_state(id, "afterState", record.after.as_ref());
            fields.extend(before);
            fields.extend(after);
            writes.extend(after_pieces);
            writes.push(
                Write::update(&self.event_name(id), fields)
                    .mask(&FINISHED_FIELDS)
                    .existing(),
            );
            let old_label = row.string("label");
            let mut counts: Vec<(Vec<&str>, i64)> = Vec::new();
            if old_label != record.outcome {
                counts.push((vec!["events", &old_label], -1));
                counts.push((vec!["events", &record.outcome], 1));
            }
            for alert in alerts {
                let known = existing.iter().any(|item| {
                    item.str("channel") == Some(&alert.channel)
                        && item.str("action") == Some(&alert.action)
                });
                if !known {
                    writes.push(self.new_alert(id, alert));
                    counts.push((vec!["alerts", &alert.channel, "pending"], 1));
                }
            }
            let counts: Vec<(&[&str], i64)> = counts
                .iter()
                .map(|(path, by)| (path.as_slice(), *by))
                .collect();
            writes.extend(self.count(&counts));
            if let Some(name) = resource {
                writes.push(self.fixes_with(name, found.get(1).cloned().flatten(), id, row));
            }
            Ok((writes, ()))
        })
        .await
    }

    /// The resource's document with this fix added to its recent fixes (newest last, the oldest dropped).
    fn fixes_with(&self, name: &str, resource: Option<Doc>, id: i64, row: &Doc) -> Write {
        let mut fixes: Vec<Value> = resource
            .map(|doc| doc.array("fixes"))
            .unwrap_or_default()
            .into_iter()
            .filter(|fix| wire::field_int(fix, "id") != Some(id))
            .collect();
        let mut fix = Map::new();
        fix.insert("id".into(), wire::integer(id));
        fix.insert("epoch".into(), wire::integer(self.clock().now_secs()));
        fix.insert(
            "principal".into(),
            wire::string(row.str("principal").unwrap_or_default()),
        );
        fixes.push(wire::map(fix));
        let keep_from = fixes.len().saturating_sub(KEPT_FIXES);
        let mut fields = Map::new();
        fields.insert("fixes".into(), wire::array(fixes.split_off(keep_from)));
        Write::update(name, fields).mask(&["fixes"])
    }

    pub async fn entries(&self, limit: usize) -> Result<Vec<Entry>, Error> {
        self.retrying("reading the journal", || async {
            let mut query = Map::new();
            query.insert(
                "orderBy".into(),
                serde_json::json!([{"field": {"fieldPath": "id"}, "direction": "DESCENDING"}]),
            );
            query.insert(
                "limit".into(),
                serde_json::json!(limit.min(i32::MAX as usize)),
            );
            let rows = self.query(collection::EVENTS, query, None).await?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in rows.iter().filter(|row| !self.expired(row)) {
                entries.push(self.entry_of(row).await?);
            }
            Ok(entries)
        })
        .await
    }

    pub async fn entry(&self, id: i64) -> Result<Option<Entry>, Error> {
        self.retrying("reading a journal row", || async {
            match self.get(self.event_name(id), None).await? {
                Some(row) if !self.expired(&row) => Ok(Some(self.entry_of(&row).await?)),
                _ => Ok(None),
            }
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
        let key = &format!("{action}:{}", uuid::Uuid::new_v4());
        self.retrying("starting an action", || async {
            let id = self.next_id();
            let mut fields = Map::new();
            let mut put = |name: &str, value: Value| {
                fields.insert(name.into(), value);
            };
            put("id", wire::integer(id));
            put("deliveryKey", wire::string(key));
            put("logKey", wire::string(key));
            put("receivedAt", wire::string(&self.now_text()));
            put("transport", wire::string(action));
            put("deliveries", wire::integer(1));
            put("serviceName", wire::string("antibody"));
            put("methodName", wire::string(action));
            put("resourceName", wire::string(resource));
            put("project", wire::string(project));
            put("principal", wire::string(principal));
            put("state", wire::string("processing"));
            put("label", wire::string("processing"));
            put("expireAt", self.expire_at());
            let mut writes = vec![Write::update(&self.event_name(id), fields).create()];
            writes.extend(self.count(&[(&["events", "processing"], 1)]));
            self.commit(writes, None).await.map_err(Fault::raced)?;
            Ok(id)
        })
        .await
    }
}

/// A query's `where` on one field's equality.
pub(super) fn where_equal(field: &str, value: Value) -> Map<String, Value> {
    let mut query = Map::new();
    query.insert(
        "where".into(),
        serde_json::json!({"fieldFilter": {"field": {"fieldPath": field}, "op": "EQUAL", "value": value}}),
    );
    query
}

/// The most of one sender-written field a row keeps: a 1 MiB delivery cannot make a row larger than a document.
const CLIP_BYTES: usize = 16 * 1024;

/// `text`, or its first `CLIP_BYTES` and a note of how much was left out.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= CLIP_BYTES {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = CLIP_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}…[{} more bytes not kept]",
        &text[..end],
        text.len() - end
    ))
}

/// `text` in pieces of at most `size` bytes, cut at character boundaries.
fn split(text: &str, size: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        pieces.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_put_back_together_make_the_text() {
        let text = "é".repeat(1000) + &"x".repeat(777);
        let pieces = split(&text, 301);
        assert!(pieces.iter().all(|piece| piece.len() <= 301));
        assert_eq!(pieces.concat(), text);
        assert!(split("", 10).is_empty());
    }

    #[test]
    fn sender_written_fields_are_clipped_to_fit_a_document() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(20_000);
        let clipped = clip(&long);
        assert!(clipped.len() < CLIP_BYTES + 64, "{}", clipped.len());
        assert!(clipped.ends_with("more bytes not kept]"));
        assert!(long.starts_with(clipped.split('…').next().expect("a head")));
    }
}
