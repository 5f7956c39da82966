//! Firestore's typed values (`stringValue`, `integerValue` as a string, `timestampValue`, `mapValue`, …): their
//! checks, Firestore's cross-type ordering and equality, field paths (`a.b`, backquoted segments) into maps, and
//! the field transforms `commit` applies (`REQUEST_TIME`, `increment`, `maximum`, `minimum`, array unions).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The one key of a value object, and what it holds.
fn typed(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object
        .iter()
        .next()
        .map(|(key, inner)| (key.as_str(), inner))
}

/// Checks a value as Firestore does; the message names what is wrong.
pub(crate) fn check(value: &Value) -> Result<(), String> {
    let (kind, inner) = typed(value).ok_or_else(|| format!("Invalid value: {value}"))?;
    let ok = match kind {
        "nullValue" => inner.is_null() || inner == "NULL_VALUE" || inner == 0,
        "booleanValue" => inner.is_boolean(),
        "integerValue" => match inner {
            Value::String(text) => text.parse::<i64>().is_ok(),
            Value::Number(number) => number.is_i64(),
            _ => false,
        },
        "doubleValue" => {
            inner.is_number() || matches!(inner.as_str(), Some("NaN" | "Infinity" | "-Infinity"))
        }
        "timestampValue" => inner.as_str().and_then(timestamp).is_some(),
        "stringValue" | "bytesValue" | "referenceValue" => inner.is_string(),
        "geoPointValue" => inner.is_object(),
        "arrayValue" => inner["values"]
            .as_array()
            .map(|values| values.iter().all(|value| check(value).is_ok()))
            .unwrap_or(inner.get("values").is_none()),
        "mapValue" => inner["fields"]
            .as_object()
            .map(|fields| fields.values().all(|value| check(value).is_ok()))
            .unwrap_or(inner.get("fields").is_none()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid value: {value}"))
    }
}

/// An RFC 3339 timestamp as nanoseconds since the epoch.
pub(crate) fn timestamp(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

/// Microseconds since the epoch as Firestore writes times (`…T…​.123456Z`).
pub(crate) fn format_time(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|time| {
            time.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn number(kind: &str, inner: &Value) -> Option<f64> {
    match (kind, inner) {
        ("integerValue", Value::String(text)) => text.parse::<i64>().ok().map(|n| n as f64),
        ("integerValue", Value::Number(n)) => n.as_i64().map(|n| n as f64),
        ("doubleValue", Value::Number(n)) => n.as_f64(),
        ("doubleValue", Value::String(text)) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn integer(inner: &Value) -> Option<i64> {
    match inner {
        Value::String(text) => text.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Firestore's order of types: null, booleans, numbers, timestamps, strings, bytes, references, geo points,
/// arrays, maps.
fn rank(kind: &str) -> u8 {
    match kind {
        "nullValue" => 0,
        "booleanValue" => 1,
        "integerValue" | "doubleValue" => 2,
        "timestampValue" => 3,
        "stringValue" => 4,
        "bytesValue" => 5,
        "referenceValue" => 6,
        "geoPointValue" => 7,
        "arrayValue" => 8,
        _ => 9,
    }
}

/// Firestore's total order over values (NaN first among numbers; an integer and a double compare as numbers).
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    let (Some((ka, ia)), Some((kb, ib))) = (typed(a), typed(b)) else {
        return Ordering::Equal;
    };
    match rank(ka).cmp(&rank(kb)) {
        Ordering::Equal => {}
        other => return other,
    }
    match rank(ka) {
        1 => ia.as_bool().cmp(&ib.as_bool()),
        2 => {
            if ka == "integerValue" && kb == "integerValue" {
                return integer(ia).cmp(&integer(ib));
            }
            let (x, y) = (
                number(ka, ia).unwrap_or(f64::NAN),
                number(kb, ib).unwrap_or(f64::NAN),
            );
            match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            }
        }
        3 => ia
            .as_str()
            .and_then(timestamp)
            .cmp(&ib.as_str().and_then(timestamp)),
        4..=6 => ia
            .as_str()
            .unwrap_or_default()
            .as_bytes()
            .cmp(ib.as_str().unwrap_or_default().as_bytes()),
        7 => {
            let pair = |point: &Value| {
                (
                    point["latitude"].as_f64().unwrap_or(0.0),
                    point["longitude"].as_f64().unwrap_or(0.0),
                )
            };
            pair(ia).partial_cmp(&pair(ib)).unwrap_or(Ordering::Equal)
        }
        8 => {
            let empty = Vec::new();
            let xs = ia["values"].as_array().unwrap_or(&empty);
            let ys = ib["values"].as_array().unwrap_or(&empty);
            for (x, y) in xs.iter().zip(ys) {
                match compare(x, y) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => {
            let empty = Map::new();
            let mut xs: Vec<(&String, &Value)> =
                ia["fields"].as_object().unwrap_or(&empty).iter().collect();
            let mut ys: Vec<(&String, &Value)> =
                ib["fields"].as_object().unwrap_or(&empty).iter().collect();
            xs.sort_by(|a, b| a.0.cmp(b.0));
            ys.sort_by(|a, b| a.0.cmp(b.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                match kx.cmp(ky).then_with(|| compare(vx, vy)) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
    }
}

pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
        && typed(a).map(|(k, _)| rank(k)) == typed(b).map(|(k, _)| rank(k))
}

pub(crate) fn is_null(value: &Value) -> bool {
    typed(value).is_some_and(|(kind, _)| kind == "nullValue")
}

pub(crate) fn is_nan(value: &Value) -> bool {
    typed(value).is_some_and(|(kind, inner)| {
        kind == "doubleValue" && number(kind, inner).is_some_and(f64::is_nan)
    })
}

/// The values of an `arrayValue` (none for anything else).
pub(crate) fn elements(value: &Value) -> Vec<Value> {
    value["arrayValue"]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A field path's segments: dot-separated, a segment in backquotes may hold anything (`\`` and `\\` escaped).
pub(crate) fn field_path(path: &str) -> Result<Vec<String>, String> {
    let mut segments = Vec::new();
    let mut chars = path.chars().peekable();
    while chars.peek().is_some() {
        let mut segment = String::new();
        if chars.peek() == Some(&'`') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => segment.extend(chars.next()),
                    Some('`') => break,
                    Some(c) => segment.push(c),
                    None => return Err(format!("Invalid field path: {path}")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                segment.push(c);
                chars.next();
            }
        }
        if segment.is_empty() {
            return Err(format!("Invalid field path: {path}"));
        }
        segments.push(segment);
        match chars.next() {
            Some('.') if chars.peek().is_some() => {}
            None => {}
            _ => return Err(format!("Invalid field path: {path}")),
        }
    }
    if segments.is_empty() {
        return Err("Field path must not be empty".into());
    }
    Ok(segments)
}

/// The value at `path` in a document's fields.
pub(crate) fn get<'a>(fields: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = fields.get(first)?;
    if rest.is_empty() {
        return Some(value);
    }
    get(value["mapValue"]["fields"].as_object()?, rest)
}

/// Sets `path` (creating maps on the way; a non-map in the way is replaced).
pub(crate) fn set(fields: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        fields.insert(first.clone(), value);
        return;
    }
    let entry = fields
        .entry(first.clone())
        .or_insert_with(|| json!({"mapValue": {"fields": {}}}));
    if entry["mapValue"]["fields"].as_object().is_none() {
        *entry = json!({"mapValue": {"fields": {}}});
    }
    if let Some(inner) = entry["mapValue"]["fields"].as_object_mut() {
        set(inner, rest, value);
    }
}

/// Removes `path`, if present.
pub(crate) fn remove(fields: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        fields.remove(first);
        return;
    }
    if let Some(inner) = fields
        .get_mut(first)
        .and_then(|value| value.get_mut("mapValue"))
        .and_then(|map| map.get_mut("fields"))
        .and_then(Value::as_object_mut)
    {
        remove(inner, rest);
    }
}

/// Applies one field transform to the current value; the new value (also the transform's result).
pub(crate) fn transform(
    current: Option<&Value>,
    transform: &Value,
    now_micros: i64,
) -> Result<Value, String> {
    let object = transform.as_object().ok_or("Invalid transform")?;
    if let Some(server) = object.get("setToServerValue") {
        return match enum_name(server, &["SERVER_VALUE_UNSPECIFIED", "REQUEST_TIME"]) {
            Some("REQUEST_TIME") => Ok(json!({"timestampValue": format_time(now_micros)})),
            _ => Err(format!("Invalid server value: {server}")),
        };
    }
    for (key, wants) in [("increment", 0), ("maximum", 1), ("minimum", 2)] {
        let Some(operand) = object.get(key) else {
            continue;
        };
        check(operand)?;
        let (kind, inner) = typed(operand).ok_or("Invalid operand")?;
        if rank(kind) != 2 {
            return Err(format!("{key} needs a number"));
        }
        let current_number =
            current.and_then(|value| typed(value).filter(|(kind, _)| rank(kind) == 2));
        let Some((current_kind, current_inner)) = current_number else {
            // A missing or non-numeric field takes the operand.
            return Ok(operand.clone());
        };
        return Ok(match wants {
            0 if kind == "integerValue" && current_kind == "integerValue" => {
                let sum = integer(current_inner)
                    .unwrap_or(0)
                    .saturating_add(integer(inner).unwrap_or(0));
                json!({"integerValue": sum.to_string()})
            }
            0 => {
                let sum = number(current_kind, current_inner).unwrap_or(0.0)
                    + number(kind, inner).unwrap_or(0.0);
                json!({"doubleValue": sum})
            }
            1 if compare(operand, current.unwrap_or(&Value::Null)) == Ordering::Greater => {
                operand.clone()
            }
            2 if compare(operand, current.unwrap_or(&Value::Null)) == Ordering::Less => {
                operand.clone()
            }
            _ => current.cloned().unwrap_or_default(),
        });
    }
    if let Some(union) = object.get("appendMissingElements") {
        let mut values = current.map(elements).unwrap_or_default();
        for element in union["values"].as_array().into_iter().flatten() {
            if !values.iter().any(|value| equal(value, element)) {
                values.push(element.clone());
            }
        }
        return Ok(json!({"arrayValue": {"values": values}}));
    }
    if let Some(removal) = object.get("removeAllFromArray") {
        let removed = removal["values"].as_array().cloned().unwrap_or_default();
        let values: Vec<Value> = current
            .map(elements)
            .unwrap_or_default()
            .into_iter()
            .filter(|value| !removed.iter().any(|gone| equal(value, gone)))
            .collect();
        return Ok(json!({"arrayValue": {"values": values}}));
    }
    Err(format!("Invalid transform: {transform}"))
}

/// An enum as JSON carries it: its name, or (`$alt=json;enum-encoding=int`, as Google's clients ask) its number.
pub(crate) fn enum_name<'a>(value: &'a Value, names: &[&'a str]) -> Option<&'a str> {
    match value {
        Value::String(name) => Some(name.as_str()),
        Value::Number(number) => number
            .as_u64()
            .and_then(|index| names.get(index as usize).copied()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_order_across_types_and_numbers_compare_as_numbers() {
        let ordered = [
            json!({"nullValue": null}),
            json!({"booleanValue": true}),
            json!({"doubleValue": "NaN"}),
            json!({"integerValue": "-3"}),
            json!({"doubleValue": 2.5}),
            json!({"integerValue": "10"}),
            json!({"timestampValue": "2026-01-01T00:00:00Z"}),
            json!({"stringValue": "a"}),
            json!({"arrayValue": {"values": []}}),
            json!({"mapValue": {"fields": {}}}),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(compare(&pair[0], &pair[1]), Ordering::Less, "{pair:?}");
        }
        assert!(equal(
            &json!({"integerValue": "1"}),
            &json!({"doubleValue": 1.0})
        ));
        assert_eq!(
            compare(
                &json!({"timestampValue": "2026-01-01T00:00:00.5Z"}),
                &json!({"timestampValue": "2026-01-01T00:00:00.400000Z"})
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn field_paths_nest_and_quote() {
        assert_eq!(field_path("a.b").unwrap(), ["a", "b"]);
        assert_eq!(field_path("`a.b`.c").unwrap(), ["a.b", "c"]);
        assert!(field_path("a..b").is_err());
        assert!(field_path("").is_err());
        let mut fields = Map::new();
        set(
            &mut fields,
            &field_path("a.b").unwrap(),
            json!({"integerValue": "1"}),
        );
        assert_eq!(
            get(&fields, &field_path("a.b").unwrap()),
            Some(&json!({"integerValue": "1"}))
        );
        remove(&mut fields, &field_path("a.b").unwrap());
        assert_eq!(get(&fields, &field_path("a.b").unwrap()), None);
    }

    #[test]
    fn increments_keep_integers_and_start_from_the_operand() {
        let one = json!({"increment": {"integerValue": "1"}});
        assert_eq!(
            transform(None, &one, 0).unwrap(),
            json!({"integerValue": "1"})
        );
        assert_eq!(
            transform(Some(&json!({"integerValue": "41"})), &one, 0).unwrap(),
            json!({"integerValue": "42"})
        );
        assert_eq!(
            transform(Some(&json!({"doubleValue": 0.5})), &one, 0).unwrap(),
            json!({"doubleValue": 1.5})
        );
        let time = transform(
            None,
            &json!({"setToServerValue": "REQUEST_TIME"}),
            1_700_000_000_123_456,
        )
        .unwrap();
        assert_eq!(
            time,
            json!({"timestampValue": "2023-11-14T22:13:20.123456Z"})
        );
    }
}
