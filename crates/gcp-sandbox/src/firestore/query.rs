//! Firestore's `runQuery`: a structured query's collection selector, filters (field, unary and composite), order,
//! cursors, offset, limit and projection, evaluated as Firestore evaluates them.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::value::{self, compare, enum_name, equal};

/// A stored document as a query sees it.
pub(crate) struct Row<'a> {
    pub name: &'a str,
    pub fields: &'a Map<String, Value>,
}

impl Row<'_> {
    /// A field's value; `__name__` is the document's own reference.
    fn field(&self, path: &str) -> Result<Option<Value>, String> {
        if path == "__name__" {
            return Ok(Some(json!({"referenceValue": self.name})));
        }
        let segments = value::field_path(path)?;
        Ok(value::get(self.fields, &segments).cloned())
    }
}

const FIELD_OPERATORS: &[&str] = &[
    "OPERATOR_UNSPECIFIED",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "EQUAL",
    "NOT_EQUAL",
    "ARRAY_CONTAINS",
    "IN",
    "ARRAY_CONTAINS_ANY",
    "NOT_IN",
];
const COMPOSITE_OPERATORS: &[&str] = &["OPERATOR_UNSPECIFIED", "AND", "OR"];
const UNARY_OPERATORS: &[&str] = &[
    "OPERATOR_UNSPECIFIED",
    "",
    "IS_NAN",
    "IS_NULL",
    "IS_NOT_NAN",
    "IS_NOT_NULL",
];
const DIRECTIONS: &[&str] = &["DIRECTION_UNSPECIFIED", "ASCENDING", "DESCENDING"];

fn path_of(field: &Value) -> Result<&str, String> {
    field["fieldPath"]
        .as_str()
        .ok_or_else(|| format!("A field reference needs a fieldPath: {field}"))
}

/// Whether `row` passes `filter` (`fieldFilter`, `unaryFilter` or `compositeFilter`).
pub(crate) fn passes(row: &Row<'_>, filter: &Value) -> Result<bool, String> {
    if let Some(composite) = filter.get("compositeFilter") {
        let filters = composite["filters"].as_array().cloned().unwrap_or_default();
        return match enum_name(&composite["op"], COMPOSITE_OPERATORS) {
            Some("AND") => {
                for inner in &filters {
                    if !passes(row, inner)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Some("OR") => {
                for inner in &filters {
                    if passes(row, inner)? {
                        return Ok(true);
                    }
                }
                Ok(filters.is_empty())
            }
            other => Err(format!("Unsupported composite operator: {other:?}")),
        };
    }
    if let Some(unary) = filter.get("unaryFilter") {
        let found = row.field(path_of(&unary["field"])?)?;
        return match enum_name(&unary["op"], UNARY_OPERATORS) {
            Some("IS_NULL") => Ok(found.as_ref().is_some_and(value::is_null)),
            Some("IS_NOT_NULL") => Ok(found.as_ref().is_some_and(|found| !value::is_null(found))),
            Some("IS_NAN") => Ok(found.as_ref().is_some_and(value::is_nan)),
            Some("IS_NOT_NAN") => Ok(found.as_ref().is_some_and(|found| !value::is_nan(found))),
            other => Err(format!("Unsupported unary operator: {other:?}")),
        };
    }
    let Some(field_filter) = filter.get("fieldFilter") else {
        return Err(format!("Invalid filter: {filter}"));
    };
    let operand = &field_filter["value"];
    value::check(operand)?;
    // A document without the field never matches a field filter.
    let Some(found) = row.field(path_of(&field_filter["field"])?)? else {
        return Ok(false);
    };
    let order = || compare(&found, operand);
    let same_type = |a: &Value, b: &Value| {
        let kind = |value: &Value| {
            value
                .as_object()
                .and_then(|object| object.keys().next().cloned())
                .map(|key| match key.as_str() {
                    "integerValue" | "doubleValue" => "number".to_string(),
                    other => other.to_string(),
                })
        };
        kind(a) == kind(b)
    };
    let list = || value::elements(operand);
    Ok(match enum_name(&field_filter["op"], FIELD_OPERATORS) {
        // Range comparisons only hold between values of one type.
        Some("LESS_THAN") => same_type(&found, operand) && order() == Ordering::Less,
        Some("LESS_THAN_OR_EQUAL") => same_type(&found, operand) && order() != Ordering::Greater,
        Some("GREATER_THAN") => same_type(&found, operand) && order() == Ordering::Greater,
        Some("GREATER_THAN_OR_EQUAL") => same_type(&found, operand) && order() != Ordering::Less,
        Some("EQUAL") => equal(&found, operand),
        Some("NOT_EQUAL") => !value::is_null(&found) && !equal(&found, operand),
        Some("ARRAY_CONTAINS") => value::elements(&found)
            .iter()
            .any(|element| equal(element, operand)),
        Some("IN") => list().iter().any(|candidate| equal(&found, candidate)),
        Some("NOT_IN") => {
            !value::is_null(&found) && !list().iter().any(|candidate| equal(&found, candidate))
        }
        Some("ARRAY_CONTAINS_ANY") => {
            let candidates = list();
            value::elements(&found)
                .iter()
                .any(|element| candidates.iter().any(|candidate| equal(element, candidate)))
        }
        other => return Err(format!("Unsupported field operator: {other:?}")),
    })
}

/// The orderings a query sorts by: its `orderBy`, then its first inequality field if not ordered on, then the
/// document name in the direction of the last ordering.
pub(crate) fn orderings(query: &Value) -> Vec<(String, bool)> {
    let mut orders: Vec<(String, bool)> = query["orderBy"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|order| {
            let path = order["field"]["fieldPath"].as_str()?.to_string();
            Some((
                path,
                enum_name(&order["direction"], DIRECTIONS) == Some("DESCENDING"),
            ))
        })
        .collect();
    if orders.is_empty()
        && let Some(field) = first_inequality(&query["where"])
    {
        orders.push((field, false));
    }
    if !orders.iter().any(|(path, _)| path == "__name__") {
        let descending = orders.last().is_some_and(|(_, descending)| *descending);
        orders.push(("__name__".into(), descending));
    }
    orders
}

fn first_inequality(filter: &Value) -> Option<String> {
    if let Some(composite) = filter.get("compositeFilter") {
        return composite["filters"]
            .as_array()?
            .iter()
            .find_map(first_inequality);
    }
    let field_filter = filter.get("fieldFilter")?;
    matches!(
        enum_name(&field_filter["op"], FIELD_OPERATORS),
        Some(
            "LESS_THAN"
                | "LESS_THAN_OR_EQUAL"
                | "GREATER_THAN"
                | "GREATER_THAN_OR_EQUAL"
                | "NOT_EQUAL"
                | "NOT_IN"
        )
    )
    .then(|| {
        field_filter["field"]["fieldPath"]
            .as_str()
            .map(str::to_string)
    })
    .flatten()
}

/// A row's sort key: its value for each ordering (`None` when a field is missing, which excludes the row).
pub(crate) fn sort_key(
    row: &Row<'_>,
    orders: &[(String, bool)],
) -> Result<Option<Vec<Value>>, String> {
    let mut key = Vec::with_capacity(orders.len());
    for (path, _) in orders {
        match row.field(path)? {
            Some(found) => key.push(found),
            None => return Ok(None),
        }
    }
    Ok(Some(key))
}

pub(crate) fn compare_keys(a: &[Value], b: &[Value], orders: &[(String, bool)]) -> Ordering {
    for ((x, y), (_, descending)) in a.iter().zip(b).zip(orders) {
        let order = compare(x, y);
        let order = if *descending { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Where a row stands against a cursor (`{values, before}`): compared on the cursor's values only.
pub(crate) fn against_cursor(key: &[Value], cursor: &Value, orders: &[(String, bool)]) -> Ordering {
    let values = cursor["values"].as_array().cloned().unwrap_or_default();
    let width = values.len().min(key.len());
    compare_keys(&key[..width], &values[..width], &orders[..width])
}

/// Whether a row is inside the query's `startAt` / `endAt` bounds.
pub(crate) fn within_cursors(key: &[Value], query: &Value, orders: &[(String, bool)]) -> bool {
    if let Some(start) = query.get("startAt") {
        let order = against_cursor(key, start, orders);
        let before = start["before"].as_bool().unwrap_or(false);
        if order == Ordering::Less || (order == Ordering::Equal && !before) {
            return false;
        }
    }
    if let Some(end) = query.get("endAt") {
        let order = against_cursor(key, end, orders);
        let before = end["before"].as_bool().unwrap_or(false);
        if order == Ordering::Greater || (order == Ordering::Equal && before) {
            return false;
        }
    }
    true
}

/// The fields a `select` keeps (all without one).
pub(crate) fn project(
    fields: &Map<String, Value>,
    query: &Value,
) -> Result<Map<String, Value>, String> {
    let Some(select) = query.get("select") else {
        return Ok(fields.clone());
    };
    let mut kept = Map::new();
    for field in select["fields"].as_array().into_iter().flatten() {
        let path = path_of(field)?;
        if path == "__name__" {
            continue;
        }
        let segments = value::field_path(path)?;
        if let Some(found) = value::get(fields, &segments) {
            value::set(&mut kept, &segments, found.clone());
        }
    }
    Ok(kept)
}
