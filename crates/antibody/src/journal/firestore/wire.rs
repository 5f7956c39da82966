//! Firestore's wire format as the journal uses it: typed values (`stringValue`, `integerValue` as a string,
//! `timestampValue`…), documents read back, writes with masks, preconditions and transforms, and errors by status.

use serde_json::{Map, Value, json};

pub(crate) use crate::gcp::firestore::Fault;

pub(crate) fn string(text: &str) -> Value {
    json!({"stringValue": text})
}

pub(crate) fn integer(number: i64) -> Value {
    json!({"integerValue": number.to_string()})
}

pub(crate) fn optional_string(text: Option<&str>) -> Value {
    text.map_or_else(|| json!({"nullValue": null}), string)
}

pub(crate) fn optional_integer(number: Option<i64>) -> Value {
    number.map_or_else(|| json!({"nullValue": null}), integer)
}

pub(crate) fn array(values: Vec<Value>) -> Value {
    json!({"arrayValue": {"values": values}})
}

pub(crate) fn map(fields: Map<String, Value>) -> Value {
    json!({"mapValue": {"fields": fields}})
}

/// A timestamp value for `seconds` since the epoch.
pub(crate) fn timestamp_value(seconds: i64) -> Value {
    json!({"timestampValue": format_time(at_ms(seconds.saturating_mul(1000)))})
}

/// The time `ms` milliseconds after the epoch (out-of-range values are clamped to the year 9999).
pub(crate) fn at_ms(ms: i64) -> time::OffsetDateTime {
    let ms = ms.clamp(0, 253_402_300_799_000);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a clamped time is in range")
}

/// RFC 3339 with Google's `Z`, to the millisecond (the journal's text times).
pub(crate) fn format_time(time: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    )
}

/// A clock's time as the journal's text times read.
pub(crate) fn text_at(ms: i64) -> String {
    format_time(at_ms(ms))
}

/// An RFC 3339 time → microseconds since the epoch.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let time =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1000).ok()
}

/// A field path with each segment that is not a plain identifier quoted in backticks.
pub(crate) fn path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|segment| {
            let plain = segment.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if plain {
                segment.to_string()
            } else {
                format!("`{}`", segment.replace('\\', "\\\\").replace('`', "\\`"))
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A document as read.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub name: String,
    pub fields: Map<String, Value>,
    /// Verbatim, for an `updateTime` precondition.
    pub update_time: String,
}

impl Doc {
    pub(crate) fn from_value(value: &Value) -> Option<Doc> {
        Some(Doc {
            name: value["name"].as_str()?.to_string(),
            fields: value["fields"].as_object().cloned().unwrap_or_default(),
            update_time: value["updateTime"].as_str().unwrap_or_default().to_string(),
        })
    }

    pub(crate) fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field)?["stringValue"].as_str()
    }

    pub(crate) fn string(&self, field: &str) -> String {
        self.str(field).unwrap_or_default().to_string()
    }

    pub(crate) fn int(&self, field: &str) -> Option<i64> {
        integer_of(self.fields.get(field)?)
    }

    pub(crate) fn bool(&self, field: &str) -> bool {
        self.fields
            .get(field)
            .and_then(|value| value["booleanValue"].as_bool())
            .unwrap_or(false)
    }

    /// A timestamp field, in microseconds since the epoch.
    pub(crate) fn time(&self, field: &str) -> Option<i64> {
        parse_time(self.fields.get(field)?["timestampValue"].as_str()?)
    }

    /// The document's update time, in microseconds since the epoch.
    pub(crate) fn updated_micros(&self) -> Option<i64> {
        parse_time(&self.update_time)
    }

    /// A map field's entries.
    pub(crate) fn map(&self, field: &str) -> Map<String, Value> {
        self.fields
            .get(field)
            .and_then(|value| value["mapValue"]["fields"].as_object())
            .cloned()
            .unwrap_or_default()
    }

    /// An array field's values.
    pub(crate) fn array(&self, field: &str) -> Vec<Value> {
        self.fields
            .get(field)
            .and_then(|value| value["arrayValue"]["values"].as_array())
            .cloned()
            .unwrap_or_default()
    }
}

/// An integer value (Firestore sends `integerValue` as a string).
pub(crate) fn integer_of(value: &Value) -> Option<i64> {
    match &value["integerValue"] {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// A string inside a map value's fields.
pub(crate) fn field_str<'a>(fields: &'a Value, name: &str) -> Option<&'a str> {
    fields["mapValue"]["fields"][name]["stringValue"].as_str()
}

/// An integer inside a map value's fields.
pub(crate) fn field_int(fields: &Value, name: &str) -> Option<i64> {
    integer_of(&fields["mapValue"]["fields"][name])
}

/// One write of a commit.
#[derive(Debug, Clone)]
pub(crate) struct Write(Value);

impl Write {
    /// Sets the document's fields (all of them, unless `mask` narrows the write).
    pub(crate) fn update(name: &str, fields: Map<String, Value>) -> Write {
        Write(json!({"update": {"name": name, "fields": fields}}))
    }

    pub(crate) fn delete(name: &str) -> Write {
        Write(json!({"delete": name}))
    }

    /// Only these fields change (a listed field absent from the write is deleted).
    pub(crate) fn mask(mut self, paths: &[&str]) -> Write {
        self.0["updateMask"] = json!({"fieldPaths": paths});
        self
    }

    /// Creates: fails with `ALREADY_EXISTS` if the document exists.
    pub(crate) fn create(mut self) -> Write {
        self.0["currentDocument"] = json!({"exists": false});
        self
    }

    /// Fails unless the document exists.
    pub(crate) fn existing(mut self) -> Write {
        self.0["currentDocument"] = json!({"exists": true});
        self
    }

    /// Fails unless the document is still the version read.
    pub(crate) fn unchanged_since(mut self, update_time: &str) -> Write {
        self.0["currentDocument"] = json!({"updateTime": update_time});
        self
    }

    /// Applies a field transform after the update (`increment`, `setToServerValue`).
    pub(crate) fn transform(mut self, transform: Value) -> Write {
        match self.0["updateTransforms"].as_array_mut() {
            Some(transforms) => transforms.push(transform),
            None => self.0["updateTransforms"] = json!([transform]),
        }
        self
    }

    pub(crate) fn increment(self, path: &str, by: i64) -> Write {
        self.transform(json!({"fieldPath": path, "increment": integer(by)}))
    }

    pub(crate) fn into_value(self) -> Value {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_quote_what_is_not_an_identifier() {
        assert_eq!(path(&["events", "remediated"]), "events.remediated");
        assert_eq!(path(&["events", "dry-run"]), "events.`dry-run`");
        assert_eq!(path(&["alerts", "a`b\\c"]), "alerts.`a\\`b\\\\c`");
        assert_eq!(path(&["1st"]), "`1st`");
    }
}
