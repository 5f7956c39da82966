//! Eventarc CloudEvents: binary content mode (`ce-*` headers, LogEntry body) and structured mode (one JSON object).

use axum::http::HeaderMap;
use serde_json::Value;

use super::{Decoded, Rejection};
use crate::event::{AuditEvent, LogEntry, Transport};

pub const AUDIT_TYPE: &str = "google.cloud.audit.log.v1.written";
/// The pre-GA "Events for Cloud Run" type: recognised so that its sender hears exactly what is wrong.
const LEGACY_TYPE: &str = "com.google.cloud.auditlog.event";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
}

pub fn binary(headers: &HeaderMap, body: &[u8]) -> Result<Decoded, Rejection> {
    let required = |name: &'static str| {
        header(headers, name)
            .ok_or_else(|| Rejection::bad(format!("the CloudEvent lacks the {name} header")))
    };
    let specversion = required("ce-specversion")?;
    if specversion != "1.0" {
        return Err(Rejection::bad(format!(
            "CloudEvents specversion '{specversion}' is not supported; expected 1.0"
        )));
    }
    let id = required("ce-id")?;
    let source = required("ce-source")?;
    let event_type = required("ce-type")?;
    check_type(event_type)?;
    if event_type != AUDIT_TYPE {
        return Ok(Decoded::NotAudit(format!(
            "CloudEvent type '{event_type}' is not handled"
        )));
    }
    let entry = LogEntry::parse(body).map_err(|err| {
        Rejection::bad(format!("the CloudEvent data is not a JSON LogEntry: {err}"))
    })?;
    let key = format!("ce:{source}|{id}");
    Ok(Decoded::Event(Box::new(AuditEvent::from_parsed(
        entry,
        Transport::EventarcBinary,
        Some(key),
    )?)))
}

pub fn structured(value: &Value) -> Result<Decoded, Rejection> {
    // Attribute names are lowercase in the spec, but Google's own example writes extensions in camelCase.
    let attribute = |name: &str| {
        value
            .as_object()
            .and_then(|fields| {
                fields
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
            })
            .and_then(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let required = |name: &'static str| {
        attribute(name)
            .ok_or_else(|| Rejection::bad(format!("the structured CloudEvent lacks '{name}'")))
    };
    let specversion = required("specversion")?;
    if specversion != "1.0" {
        return Err(Rejection::bad(format!(
            "CloudEvents specversion '{specversion}' is not supported; expected 1.0"
        )));
    }
    let id = required("id")?;
    let source = required("source")?;
    let event_type = required("type")?;
    check_type(event_type)?;
    if event_type != AUDIT_TYPE {
        return Ok(Decoded::NotAudit(format!(
            "CloudEvent type '{event_type}' is not handled"
        )));
    }
    let data = match value.get("data") {
        Some(Value::Object(_)) => value["data"].clone(),
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|err| {
            Rejection::bad(format!("the CloudEvent data is not a JSON LogEntry: {err}"))
        })?,
        _ => {
            return Err(Rejection::bad(
                "the structured CloudEvent has no data object",
            ));
        }
    };
    let key = format!("ce:{source}|{id}");
    Ok(Decoded::Event(Box::new(AuditEvent::from_log_entry(
        &data,
        Transport::EventarcStructured,
        Some(key),
    )?)))
}

fn check_type(event_type: &str) -> Result<(), Rejection> {
    if event_type == LEGACY_TYPE {
        return Err(Rejection::bad(format!(
            "CloudEvent type '{LEGACY_TYPE}' is the pre-GA Events for Cloud Run format; create an Eventarc trigger for '{AUDIT_TYPE}'"
        )));
    }
    Ok(())
}
