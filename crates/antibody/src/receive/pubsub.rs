//! Pub/Sub push, wrapped envelopes: `message.data` is the base64 LogEntry; ids come in camelCase and snake_case.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::Value;

use super::{Decoded, Rejection};
use crate::event::{AuditEvent, LogEntry, Transport};

pub fn push(envelope: &Value) -> Result<Decoded, Rejection> {
    let message = envelope
        .get("message")
        .filter(|message| message.is_object())
        .ok_or_else(|| Rejection::bad("the Pub/Sub envelope's 'message' is not an object"))?;
    let text = |name: &str, alternative: &str| {
        message
            .get(name)
            .or_else(|| message.get(alternative))
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    let message_id = text("messageId", "message_id")
        .ok_or_else(|| Rejection::bad("the Pub/Sub message has no messageId"))?;
    let data =
        text("data", "data").ok_or_else(|| Rejection::bad("the Pub/Sub message has no data"))?;
    let bytes = STANDARD
        .decode(data)
        .or_else(|_| URL_SAFE.decode(data))
        .map_err(|err| Rejection::bad(format!("the Pub/Sub message data is not base64: {err}")))?;
    let entry = LogEntry::parse(&bytes).map_err(|err| {
        Rejection::bad(format!(
            "the Pub/Sub message data is not a JSON LogEntry: {err}"
        ))
    })?;
    let subscription = envelope
        .get("subscription")
        .and_then(Value::as_str)
        .unwrap_or("");
    let key = format!("pubsub:{subscription}|{message_id}");
    Ok(Decoded::Event(Box::new(AuditEvent::from_parsed(
        entry,
        Transport::PubSubPush,
        Some(key),
    )?)))
}
