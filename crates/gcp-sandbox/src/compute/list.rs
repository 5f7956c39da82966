//! `firewalls.list`: paging by name (`maxResults`, `pageToken`), Compute's `filter`, and `orderBy`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{API_ROOT, api_version, filter};
use crate::Shared;
use crate::error::ApiError;

pub(super) async fn list_firewalls(
    State(shared): State<Arc<Shared>>,
    Path((version, project)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    api_version(&version)?;
    let max_results = match query.get("maxResults") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|value| (0..=500).contains(value))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid value for field 'maxResults': '{text}'. Must be in the range [0, 500]."
                ))
            })?,
        None => 500,
    };
    let max_results = if max_results == 0 { 500 } else { max_results };
    let after = match query.get("pageToken").filter(|token| !token.is_empty()) {
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ApiError::invalid("Invalid value for field 'pageToken'."))?,
        ),
        None => None,
    };
    let filter = match query
        .get("filter")
        .filter(|filter| !filter.trim().is_empty())
    {
        Some(text) => Some(filter::Filter::parse(text)?),
        None => None,
    };
    // Compute sorts by name (the default) or by newest first; nothing else.
    let newest_first = match query.get("orderBy").map(String::as_str) {
        None | Some("") | Some("name") => false,
        Some("creationTimestamp desc") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'orderBy': '{other}'. Sorting is supported by name and \
                 creationTimestamp desc only."
            )));
        }
    };
    let state = shared.compute.lock().expect("compute state lock poisoned");
    if newest_first {
        // Newest first: the page token is the offset of the next page (rules created at once keep name order).
        let mut matching: Vec<&Value> = state
            .firewalls
            .range((project.clone(), String::new())..)
            .take_while(|((owner, _), _)| owner == &project)
            .map(|(_, firewall)| firewall)
            .filter(|firewall| {
                filter
                    .as_ref()
                    .is_none_or(|filter| filter.matches(firewall))
            })
            .collect();
        matching.sort_by(|a, b| {
            b["creationTimestamp"]
                .as_str()
                .cmp(&a["creationTimestamp"].as_str())
                .then(
                    b["id"]
                        .as_str()
                        .map(str::len)
                        .cmp(&a["id"].as_str().map(str::len)),
                )
                .then(b["id"].as_str().cmp(&a["id"].as_str()))
        });
        let offset: usize = after
            .as_deref()
            .and_then(|token| token.strip_prefix('#'))
            .and_then(|offset| offset.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(max_results)
            .map(|firewall| (*firewall).clone())
            .collect();
        let mut list = json!({
            "kind": "compute#firewallList",
            "id": format!("projects/{project}/global/firewalls"),
            "selfLink": format!("{API_ROOT}/projects/{project}/global/firewalls"),
        });
        if offset + page.len() < matching.len() {
            list["nextPageToken"] =
                json!(URL_SAFE_NO_PAD.encode(format!("#{}", offset + page.len())));
        }
        if !page.is_empty() {
            list["items"] = Value::Array(page);
        }
        return Ok(Json(list));
    }
    let lower = (project.clone(), after.clone().unwrap_or_default());
    let mut items = Vec::new();
    let mut next_page_token = None;
    for ((owner, name), firewall) in state.firewalls.range(lower..) {
        if owner != &project {
            break;
        }
        if after.as_deref() == Some(name.as_str()) {
            continue;
        }
        if filter
            .as_ref()
            .is_some_and(|filter| !filter.matches(firewall))
        {
            continue;
        }
        if items.len() == max_results {
            next_page_token = items
                .last()
                .and_then(|last: &Value| last["name"].as_str())
                .map(|last| URL_SAFE_NO_PAD.encode(last));
            break;
        }
        items.push(firewall.clone());
    }
    let mut list = json!({
        "kind": "compute#firewallList",
        "id": format!("projects/{project}/global/firewalls"),
        "selfLink": format!("{API_ROOT}/projects/{project}/global/firewalls"),
    });
    if !items.is_empty() {
        list["items"] = Value::Array(items);
    }
    if let Some(token) = next_page_token {
        list["nextPageToken"] = json!(token);
    }
    Ok(Json(list))
}
