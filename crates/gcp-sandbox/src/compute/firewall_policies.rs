//! Compute Engine network firewall policies, global (`/global/firewallPolicies`) and regional
//! (`/regions/R/firewallPolicies`): insert (with Google's four default rules), get, list, aggregated list, delete,
//! `addRule`, `patchRule`, `removeRule`, `getRule`, `addAssociation` and `removeAssociation`, each write an operation
//! with its audit entries (`networkFirewallPolicies.*`, `regionNetworkFirewallPolicies.*`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::scoped::{
    Key, Params, Surface, aggregated_page, list_page, operate, path, place, resource_name,
};
use super::{API_ROOT, merge_patch, parse_body};
use crate::Shared;
use crate::error::ApiError;
use crate::time_fmt::compute_now;

const COLLECTION: &str = "firewallPolicies";

/// The lowest priority a caller's rule may have; the four below it are Google's defaults.
const LOWEST_USER_PRIORITY: i64 = 2_147_483_643;

pub(super) fn routes() -> Router<Arc<Shared>> {
    let base = "/compute/{version}/projects/{project}";
    let mut router = Router::new().route(
        &format!("{base}/aggregated/firewallPolicies"),
        get(aggregated),
    );
    for place in ["global", "regions/{region}"] {
        router = router
            .route(
                &format!("{base}/{place}/firewallPolicies"),
                get(list).post(insert),
            )
            .route(
                &format!("{base}/{place}/firewallPolicies/{{name}}"),
                get(read).patch(patch).delete(delete),
            )
            .route(
                &format!("{base}/{place}/firewallPolicies/{{name}}/getRule"),
                get(get_rule),
            )
            .route(
                &format!("{base}/{place}/firewallPolicies/{{name}}/{{verb}}"),
                post(act),
            );
    }
    router
}

fn surface(key: &Key) -> Surface<'static> {
    let regional = key.1.starts_with("regions/");
    Surface {
        collection: COLLECTION,
        method: if regional {
            "regionNetworkFirewallPolicies"
        } else {
            "networkFirewallPolicies"
        },
        permission: if regional {
            "regionFirewallPolicies"
        } else {
            "firewallPolicies"
        },
        resource_type: "gce_network_firewall_policy",
        labels: json!({"firewall_policy_name": key.2}),
    }
}

fn not_found(key: &Key) -> ApiError {
    ApiError::not_found(&path(&key.0, &key.1, COLLECTION, &key.2))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

/// Google's default rules of a new network firewall policy: every direction and address family goes on to the next
/// policy (the network's VPC firewall rules).
fn default_rules() -> Vec<Value> {
    [
        (2_147_483_644, "EGRESS", "destIpRanges", "::/0"),
        (2_147_483_645, "INGRESS", "srcIpRanges", "::/0"),
        (2_147_483_646, "EGRESS", "destIpRanges", "0.0.0.0/0"),
        (2_147_483_647, "INGRESS", "srcIpRanges", "0.0.0.0/0"),
    ]
    .into_iter()
    .map(|(priority, direction, field, range)| {
        json!({"kind": "compute#firewallPolicyRule", "priority": priority, "direction": direction,
            "action": "goto_next", "description": format!("default {} rule", direction.to_lowercase()),
            "match": {field: [range], "layer4Configs": [{"ipProtocol": "all"}]},
            "ruleTupleCount": 2, "enableLogging": false})
    })
    .collect()
}

/// A caller's rule, validated as Compute does: a priority no other rule has, a known action and direction, a match
/// with layer-4 configs, an ingress rule with a source (an egress one with a destination).
fn rule(body: &Value, taken: &[i64]) -> Result<Value, ApiError> {
    let priority = body["priority"]
        .as_i64()
        .or_else(|| body["priority"].as_str().and_then(|text| text.parse().ok()))
        .filter(|priority| (0..=LOWEST_USER_PRIORITY).contains(priority))
        .ok_or_else(|| {
            invalid(format!(
                "Invalid value for field 'resource.priority': '{}'. Must be between 0 and {LOWEST_USER_PRIORITY}.",
                body["priority"]
            ))
        })?;
    if taken.contains(&priority) {
        return Err(invalid(format!(
            "A rule with priority {priority} already exists in this firewall policy."
        )));
    }
    let action = body["action"].as_str().unwrap_or_default();
    if !["allow", "deny", "goto_next", "apply_security_profile_group"].contains(&action) {
        return Err(invalid(format!(
            "Invalid value for field 'resource.action': '{action}'."
        )));
    }
    let direction = body["direction"].as_str().unwrap_or("INGRESS");
    if !["INGRESS", "EGRESS"].contains(&direction) {
        return Err(invalid(format!(
            "Invalid value for field 'resource.direction': '{direction}'."
        )));
    }
    let matcher = &body["match"];
    let configs = matcher["layer4Configs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if configs.is_empty() {
        return Err(invalid(
            "Invalid value for field 'resource.match.layer4Configs': ''. At least one layer4 config is required.",
        ));
    }
    for config in &configs {
        let protocol = config["ipProtocol"].as_str().unwrap_or_default();
        let known = ["tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"].contains(&protocol)
            || protocol.parse::<u8>().is_ok();
        if !known {
            return Err(invalid(format!(
                "Invalid value for field 'resource.match.layer4Configs[0].ipProtocol': '{protocol}'."
            )));
        }
    }
    let sources = [
        "srcIpRanges",
        "srcSecureTags",
        "srcAddressGroups",
        "srcFqdns",
        "srcRegionCodes",
        "srcThreatIntelligences",
        "srcNetworks",
    ];
    let has = |fields: &[&str]| {
        fields.iter().any(|field| {
            matcher[*field]
                .as_array()
                .is_some_and(|list| !list.is_empty())
        })
    };
    if direction == "INGRESS" && !has(&sources) && matcher["srcNetworkType"].is_null() {
        return Err(invalid(
            "An ingress rule must specify at least one source: srcIpRanges, srcSecureTags, srcAddressGroups, \
             srcFqdns, srcRegionCodes, srcThreatIntelligences or srcNetworkType.",
        ));
    }
    let mut stored = body.clone();
    stored["kind"] = json!("compute#firewallPolicyRule");
    stored["priority"] = json!(priority);
    stored["direction"] = json!(direction);
    stored["ruleTupleCount"] = json!(configs.len() as u64 + 1);
    if stored["disabled"].is_null() {
        stored["disabled"] = json!(false);
    }
    Ok(stored)
}

/// A new policy as Compute stores it.
fn normalise(key: &Key, request: &Value, id: u64) -> Value {
    let (project, scope, name) = key;
    let mut policy = json!({
        "kind": "compute#firewallPolicy",
        "id": id.to_string(),
        "creationTimestamp": compute_now(),
        "name": name,
        "description": request["description"].as_str().unwrap_or_default(),
        "rules": default_rules(),
        "fingerprint": fingerprint(id),
        "selfLink": format!("{API_ROOT}/{}", path(project, scope, COLLECTION, name)),
        "selfLinkWithId": format!("{API_ROOT}/{}", path(project, scope, COLLECTION, &id.to_string())),
        "ruleTupleCount": 8,
    });
    if let Some(region) = scope.strip_prefix("regions/") {
        policy["region"] = json!(format!("{API_ROOT}/projects/{project}/regions/{region}"));
    }
    policy
}

fn fingerprint(seed: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(seed.to_be_bytes())
}

/// A policy's rules in priority order, with a fresh fingerprint.
fn settle(policy: &mut Value, seed: u64) {
    if let Some(rules) = policy["rules"].as_array_mut() {
        rules.sort_by_key(|rule| rule["priority"].as_i64().unwrap_or_default());
    }
    policy["fingerprint"] = json!(fingerprint(seed));
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let key = place(&params)?.key();
    let state = shared.compute.lock().expect("compute state lock poisoned");
    state
        .firewall_policies
        .get(&key)
        .map(crate::json_response)
        .ok_or_else(|| not_found(&key))
}

async fn get_rule(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let key = place(&params)?.key();
    let priority = query
        .get("priority")
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or(0);
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let policy = state
        .firewall_policies
        .get(&key)
        .ok_or_else(|| not_found(&key))?;
    policy["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|rule| rule["priority"] == priority)
        .map(crate::json_response)
        .ok_or_else(|| {
            invalid(format!(
                "The firewall policy does not contain a rule at priority {priority}."
            ))
        })
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let names = ("compute#firewallPolicyList", COLLECTION);
    list_page(
        &shared,
        &state.firewall_policies,
        (&at.project, &at.scope),
        names,
        &query,
    )
}

async fn aggregated(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let state = shared.compute.lock().expect("compute state lock poisoned");
    let names = ("compute#networkFirewallPolicyAggregatedList", COLLECTION);
    Ok(aggregated_page(
        &state.firewall_policies,
        &at.project,
        names,
    ))
}

async fn insert(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let request = parse_body(&body)?;
    let key = (at.project, at.scope, resource_name(&request)?);
    let asked = request.clone();
    let call = (&query, &headers);
    operate(
        &shared,
        at.version,
        "insert",
        &key,
        surface(&key),
        call,
        Some(request),
        |state, id| {
            if state.firewall_policies.contains_key(&key) {
                return Err(ApiError::already_exists(&path(
                    &key.0, &key.1, COLLECTION, &key.2,
                )));
            }
            let policy = normalise(&key, &asked, id);
            state.firewall_policies.insert(key.clone(), policy.clone());
            Ok((policy, Vec::new()))
        },
    )
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let key = at.key();
    let call = (&query, &headers);
    operate(
        &shared,
        at.version,
        "delete",
        &key,
        surface(&key),
        call,
        None,
        |state, _| {
            let policy = state
                .firewall_policies
                .get(&key)
                .ok_or_else(|| not_found(&key))?;
            if policy["associations"]
                .as_array()
                .is_some_and(|list| !list.is_empty())
            {
                return Err(invalid(
                    "The firewall policy is still associated with a network; remove the association first.",
                ));
            }
            let removed = state
                .firewall_policies
                .remove(&key)
                .ok_or_else(|| not_found(&key))?;
            Ok((removed, Vec::new()))
        },
    )
}

/// `PATCH`: the policy's description only (its rules change through the rule verbs); the fingerprint must match.
async fn patch(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let key = at.key();
    let request = parse_body(&body)?;
    let asked = request.clone();
    let call = (&query, &headers);
    operate(
        &shared,
        at.version,
        "patch",
        &key,
        surface(&key),
        call,
        Some(request),
        |state, id| {
            let policy = state
                .firewall_policies
                .get_mut(&key)
                .ok_or_else(|| not_found(&key))?;
            if asked["fingerprint"]
                .as_str()
                .is_some_and(|sent| policy["fingerprint"] != sent)
            {
                return Err(ApiError::condition_not_met(
                    "Supplied fingerprint does not match current fingerprint.",
                ));
            }
            if let Some(description) = asked["description"].as_str() {
                policy["description"] = json!(description);
            }
            settle(policy, id);
            Ok((policy.clone(), Vec::new()))
        },
    )
}

/// The rule and association verbs, each a write of the whole policy.
async fn act(
    State(shared): State<Arc<Shared>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let at = place(&params)?;
    let key = at.key();
    let verb: &'static str = match params.get("verb").map(String::as_str) {
        Some("addRule") => "addRule",
        Some("patchRule") => "patchRule",
        Some("removeRule") => "removeRule",
        Some("addAssociation") => "addAssociation",
        Some("removeAssociation") => "removeAssociation",
        _ => return Err(not_found(&key)),
    };
    let request = if body.is_empty() {
        json!({})
    } else {
        parse_body(&body)?
    };
    let asked = request.clone();
    let priority = query
        .get("priority")
        .and_then(|text| text.parse::<i64>().ok());
    let association = query.get("name").cloned();
    let call = (&query, &headers);
    operate(
        &shared,
        at.version,
        verb,
        &key,
        surface(&key),
        call,
        Some(request),
        |state, id| {
            let policy = state
                .firewall_policies
                .get_mut(&key)
                .ok_or_else(|| not_found(&key))?;
            change(policy, verb, &asked, priority, association.as_deref())?;
            settle(policy, id);
            Ok((policy.clone(), Vec::new()))
        },
    )
}

/// One rule or association verb applied to a stored policy.
fn change(
    policy: &mut Value,
    verb: &str,
    asked: &Value,
    priority: Option<i64>,
    association: Option<&str>,
) -> Result<(), ApiError> {
    let taken: Vec<i64> = policy["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|rule| rule["priority"].as_i64())
        .collect();
    let rules = policy["rules"]
        .as_array_mut()
        .ok_or_else(|| invalid("no rules"))?;
    let at = |priority: Option<i64>| -> Result<usize, ApiError> {
        let priority = priority.unwrap_or(0);
        taken
            .iter()
            .position(|taken| *taken == priority)
            .ok_or_else(|| {
                invalid(format!(
                    "The firewall policy does not contain a rule at priority {priority}."
                ))
            })
    };
    match verb {
        "addRule" => rules.push(rule(asked, &taken)?),
        "patchRule" => {
            let index = at(priority)?;
            if rules[index]["priority"].as_i64().unwrap_or_default() > LOWEST_USER_PRIORITY {
                return Err(invalid("A default rule's match cannot be changed."));
            }
            let mut merged = rules[index].clone();
            merge_patch(&mut merged, asked);
            let others: Vec<i64> = taken
                .iter()
                .copied()
                .filter(|other| Some(*other) != priority)
                .collect();
            rules[index] = rule(&merged, &others)?;
        }
        "removeRule" => {
            let index = at(priority)?;
            if rules[index]["priority"].as_i64().unwrap_or_default() > LOWEST_USER_PRIORITY {
                return Err(invalid("A default rule cannot be removed."));
            }
            rules.remove(index);
        }
        "addAssociation" => {
            let target = asked["attachmentTarget"].as_str().unwrap_or_default();
            if !target.contains("/global/networks/") {
                return Err(invalid(format!(
                    "Invalid value for field 'resource.attachmentTarget': '{target}'."
                )));
            }
            let name = asked["name"].as_str().unwrap_or(target).to_string();
            let associations = policy["associations"].as_array_mut();
            let entry = json!({"name": name, "attachmentTarget": target});
            match associations {
                Some(list) => list.push(entry),
                None => policy["associations"] = json!([entry]),
            }
        }
        "removeAssociation" => {
            let list = policy["associations"].as_array_mut();
            let found = list.and_then(|list| {
                let index = list.iter().position(|entry| {
                    Some(entry["name"].as_str().unwrap_or_default()) == association
                })?;
                Some(list.remove(index))
            });
            found.ok_or_else(|| invalid("The firewall policy has no such association."))?;
        }
        other => return Err(invalid(format!("'{other}' is not a firewall policy verb."))),
    }
    Ok(())
}
