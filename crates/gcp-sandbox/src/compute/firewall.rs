//! The Compute firewall resource: validation with Google's messages, defaults, and output-only fields.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::API_ROOT;
use crate::error::ApiError;
use crate::time_fmt::compute_now;

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "network",
    "priority",
    "sourceRanges",
    "destinationRanges",
    "sourceTags",
    "targetTags",
    "sourceServiceAccounts",
    "targetServiceAccounts",
    "allowed",
    "denied",
    "direction",
    "logConfig",
    "disabled",
];
const OUTPUT_ONLY: &[&str] = &["id", "creationTimestamp", "selfLink", "kind"];
const PROTOCOLS: &[&str] = &["tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"];

/// Validates a firewall body and returns the stored resource: defaults filled, output-only fields set, empty
/// fields omitted. `existing` keeps the identity of a rule being patched or replaced.
pub(crate) fn normalise(
    project: &str,
    body: Value,
    existing: Option<&Value>,
    id: u64,
) -> Result<Value, ApiError> {
    let Value::Object(body) = body else {
        return Err(ApiError::bad_json(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    let mut firewall = Map::new();
    for (key, value) in body {
        if OUTPUT_ONLY.contains(&key.as_str()) {
            continue;
        }
        // Compute ignores fields it does not know: Cloud Custodian's recorded `modify` PATCH with the body
        // `{"type": "modify", "disabled": true}` was answered 200 with a RUNNING operation (cloud-custodian
        // tools/c7n_gcp/tests/data/flights/firewall-modify, 2021-03-17). APIs behind the newer front end (Resource
        // Manager v3, IAM) refuse them with "Unknown name"; Compute does not.
        if !WRITABLE.contains(&key.as_str()) {
            continue;
        }
        // An empty description sent is kept (Google's recordings echo `"description": ""`); other empty fields go.
        if !value.is_null() && value != json!([]) && (value != json!("") || key == "description") {
            firewall.insert(key, value);
        }
    }

    let name = firewall.get("name").and_then(Value::as_str).unwrap_or("");
    if !valid_name(name) {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
        )));
    }
    if existing.is_some_and(|existing| existing["name"] != firewall["name"]) {
        return Err(ApiError::invalid(
            "Invalid value for field 'resource.name': the name of an existing firewall cannot be changed.",
        ));
    }
    let name = name.to_string();

    let direction = firewall
        .get("direction")
        .and_then(Value::as_str)
        .unwrap_or("INGRESS")
        .to_string();
    if direction != "INGRESS" && direction != "EGRESS" {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.direction': '{direction}'."
        )));
    }
    firewall.insert("direction".into(), json!(direction));

    let priority = match firewall.get("priority") {
        None => 1000,
        Some(value) => int_field(value)
            .filter(|priority| (0..=65535).contains(priority))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid value for field 'resource.priority': '{value}'. Must be in the range [0, 65535]."
                ))
            })?,
    };
    firewall.insert("priority".into(), json!(priority));

    let network = firewall
        .get("network")
        .and_then(Value::as_str)
        .unwrap_or("global/networks/default")
        .to_string();
    firewall.insert("network".into(), json!(network_url(project, &network)?));

    let allowed = firewall.contains_key("allowed");
    let denied = firewall.contains_key("denied");
    if allowed == denied {
        return Err(ApiError::invalid(
            "Invalid value for field 'resource': Exactly one of 'allowed' or 'denied' must be specified.",
        ));
    }
    for field in ["allowed", "denied"] {
        if let Some(entries) = firewall.get(field) {
            check_entries(field, entries)?;
        }
    }
    for field in ["sourceRanges", "destinationRanges"] {
        if let Some(ranges) = firewall.get(field) {
            check_ranges(field, ranges)?;
        }
    }
    for field in [
        "sourceTags",
        "targetTags",
        "sourceServiceAccounts",
        "targetServiceAccounts",
    ] {
        let strings = |value: &Value| {
            value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string))
        };
        if firewall.get(field).is_some_and(|value| !strings(value)) {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.{field}': expected a list of strings."
            )));
        }
    }
    // Combinations Compute refuses (facts: Terraform's google_compute_firewall schema and Compute's messages).
    let has = |field: &str| firewall.contains_key(field);
    if direction == "EGRESS" && (has("sourceTags") || has("sourceServiceAccounts")) {
        return Err(ApiError::bad_request(
            "Should not specify source tag or service account for egress direction.",
        ));
    }
    if (has("sourceServiceAccounts") || has("targetServiceAccounts"))
        && (has("sourceTags") || has("targetTags"))
    {
        return Err(ApiError::bad_request(
            "Invalid value for field 'resource': service accounts cannot be combined with tags in one firewall rule.",
        ));
    }
    if let Some(existing) = existing {
        // `direction` and `network` are fixed when a rule is created (Terraform marks both ForceNew).
        if existing["direction"].as_str().unwrap_or("INGRESS") != direction {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.direction': '{direction}'. The direction of an existing firewall cannot be changed."
            )));
        }
        let network = firewall
            .get("network")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if existing["network"].as_str() != Some(network) {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.network': '{network}'. The network of an existing firewall cannot be changed."
            )));
        }
    }
    // The sandbox has one network per project, `default`: a rule naming another names a network that does not
    // exist (Compute: 404 for the referenced resource).
    let network = firewall
        .get("network")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !network.ends_with("/global/networks/default") {
        return Err(ApiError::not_found(
            network
                .strip_prefix(&format!("{API_ROOT}/"))
                .unwrap_or(&network),
        ));
    }
    // Google fills in the whole internet for a rule that names no source (or, EGRESS, no destination): a rule
    // "without sources" is open to the world, and clearing its last source opens it. Sources:
    // hashicorp/terraform-provider-google #4031 and #6789 (`diffSuppressSourceRanges`),
    // GoogleCloudPlatform/cloud-foundation-fabric #1058.
    let names_a_source = ["sourceRanges", "sourceTags", "sourceServiceAccounts"]
        .iter()
        .any(|field| firewall.contains_key(*field));
    if direction == "INGRESS" && !names_a_source {
        firewall.insert("sourceRanges".into(), json!(["0.0.0.0/0"]));
    }
    if direction == "EGRESS" && !firewall.contains_key("destinationRanges") {
        firewall.insert("destinationRanges".into(), json!(["0.0.0.0/0"]));
    }
    match firewall.get("disabled") {
        None => {
            firewall.insert("disabled".into(), json!(false));
        }
        Some(disabled) if !disabled.is_boolean() => {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.disabled': '{disabled}'."
            )));
        }
        Some(_) => {}
    }
    match firewall.get("logConfig") {
        Some(Value::Object(log_config))
            if log_config.get("enable").is_some_and(Value::is_boolean) => {}
        Some(Value::Object(log_config)) if log_config.get("enable").is_none() => {
            firewall.insert("logConfig".into(), json!({"enable": false}));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.logConfig': '{other}'."
            )));
        }
        None => {
            firewall.insert("logConfig".into(), json!({"enable": false}));
        }
    }

    let (id, created) = match existing {
        Some(existing) => (
            existing["id"].clone(),
            existing["creationTimestamp"].clone(),
        ),
        None => (json!(id.to_string()), json!(compute_now())),
    };
    firewall.insert("id".into(), id);
    firewall.insert("creationTimestamp".into(), created);
    firewall.insert(
        "selfLink".into(),
        json!(format!(
            "{API_ROOT}/projects/{project}/global/firewalls/{name}"
        )),
    );
    firewall.insert("kind".into(), json!("compute#firewall"));
    Ok(Value::Object(firewall))
}

pub(super) fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// Integers may come as JSON numbers or, from proto-minded clients, as strings.
fn int_field(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
}

fn network_url(project: &str, network: &str) -> Result<String, ApiError> {
    // A full URL names the network on whichever host the client speaks to: Google's, or the endpoint a client was
    // pointed at (gcloud with an endpoint override sends this sandbox's own URL).
    let relative = ["http://", "https://"]
        .iter()
        .find_map(|scheme| network.strip_prefix(scheme))
        .and_then(|rest| rest.split_once('/').map(|(_, path)| path))
        .and_then(|path| {
            path.strip_prefix("compute/v1/")
                .or_else(|| path.strip_prefix("compute/beta/"))
        })
        .unwrap_or(network);
    let relative = if relative.starts_with("projects/") {
        relative.to_string()
    } else if relative.starts_with("global/networks/") {
        format!("projects/{project}/{relative}")
    } else {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.network': '{network}'. The URL is malformed."
        )));
    };
    Ok(format!("{API_ROOT}/{relative}"))
}

fn check_entries(field: &str, entries: &Value) -> Result<(), ApiError> {
    let Some(entries) = entries.as_array() else {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.{field}'."
        )));
    };
    for (index, entry) in entries.iter().enumerate() {
        let protocol = entry
            .get("IPProtocol")
            .and_then(Value::as_str)
            .unwrap_or("");
        let known = PROTOCOLS.contains(&protocol.to_ascii_lowercase().as_str())
            || protocol.parse::<u8>().is_ok();
        if !known {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.{field}[{index}].IPProtocol': '{protocol}'. Invalid IP protocol specification."
            )));
        }
        if let Some(ports) = entry.get("ports") {
            let takes_ports = matches!(
                protocol.to_ascii_lowercase().as_str(),
                "tcp" | "udp" | "sctp" | "6" | "17" | "132"
            );
            let items = ports.as_array().ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid value for field 'resource.{field}[{index}].ports'."
                ))
            })?;
            if !items.is_empty() && !takes_ports {
                return Err(ApiError::invalid(format!(
                    "Invalid value for field 'resource.{field}[{index}].ports': ports may only be specified for tcp, udp and sctp."
                )));
            }
            for port in items {
                let text = port.as_str().unwrap_or("");
                if !valid_port_spec(text) {
                    return Err(ApiError::invalid(format!(
                        "Invalid value for field 'resource.{field}[{index}].ports': '{text}'. Invalid port specification."
                    )));
                }
            }
        }
    }
    Ok(())
}

fn valid_port_spec(text: &str) -> bool {
    let parse = |part: &str| part.parse::<u16>().ok();
    match text.split_once('-') {
        Some((low, high)) => {
            matches!((parse(low), parse(high)), (Some(low), Some(high)) if low <= high)
        }
        None => parse(text).is_some(),
    }
}

fn check_ranges(field: &str, ranges: &Value) -> Result<(), ApiError> {
    let Some(ranges) = ranges.as_array() else {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.{field}'."
        )));
    };
    for (index, range) in ranges.iter().enumerate() {
        let text = range.as_str().unwrap_or("");
        let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
        let valid = match address.parse::<IpAddr>() {
            Ok(ip) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|bits| bits <= max)
            }
            Err(_) => false,
        };
        if !valid {
            return Err(ApiError::invalid(format!(
                "Invalid value for field 'resource.{field}[{index}]': '{text}'. Must be a CIDR address range that is contained in the network."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: Value) -> Value {
        normalise("p1", body, None, 7).expect("valid firewall")
    }

    #[test]
    fn defaults_are_filled_and_ids_are_strings() {
        let firewall = ok(
            json!({"name": "allow-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
        );
        assert_eq!(firewall["priority"], 1000);
        assert_eq!(firewall["direction"], "INGRESS");
        assert_eq!(firewall["disabled"], false);
        assert_eq!(firewall["id"], "7");
        assert_eq!(firewall["kind"], "compute#firewall");
        assert_eq!(
            firewall["network"],
            "https://www.googleapis.com/compute/v1/projects/p1/global/networks/default"
        );
        assert_eq!(
            firewall["selfLink"],
            "https://www.googleapis.com/compute/v1/projects/p1/global/firewalls/allow-ssh"
        );
    }

    // Issue 18, item 5: a rule on a network that does not exist was accepted.
    #[test]
    fn a_network_that_does_not_exist_is_not_found() {
        let err = normalise(
            "p1",
            json!({"name": "a", "network": "global/networks/nowhere", "allowed": [{"IPProtocol": "tcp"}]}),
            None,
            1,
        )
        .expect_err("no such network");
        assert_eq!(err.status.as_u16(), 404);
        assert!(
            err.message.contains("projects/p1/global/networks/nowhere"),
            "{}",
            err.message
        );
        ok(
            json!({"name": "a", "network": "projects/p1/global/networks/default", "allowed": [{"IPProtocol": "tcp"}]}),
        );
    }

    // Issue 18, item 5: combinations and changes Compute refuses were accepted.
    #[test]
    fn combinations_and_changes_google_refuses_are_refused() {
        let cases = [
            (
                json!({"name": "a", "direction": "EGRESS", "allowed": [{"IPProtocol": "tcp"}], "sourceTags": ["web"]}),
                "badRequest",
                "Should not specify source tag or service account for egress direction.",
            ),
            (
                json!({"name": "a", "direction": "EGRESS", "allowed": [{"IPProtocol": "tcp"}],
                    "sourceServiceAccounts": ["sa@p1.iam.gserviceaccount.com"]}),
                "badRequest",
                "egress direction",
            ),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "sourceServiceAccounts": ["sa@p1.iam.gserviceaccount.com"],
                    "targetTags": ["web"]}),
                "badRequest",
                "cannot be combined with tags",
            ),
        ];
        for (body, reason, expected) in cases {
            let err = normalise("p1", body.clone(), None, 1).expect_err(&body.to_string());
            assert_eq!(err.reason, reason, "{body}");
            assert!(err.message.contains(expected), "{body}: {}", err.message);
        }
        let existing = ok(json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}]}));
        let egress =
            json!({"name": "a", "direction": "EGRESS", "allowed": [{"IPProtocol": "tcp"}]});
        let err = normalise("p1", egress, Some(&existing), 1).expect_err("direction is fixed");
        assert!(err.message.contains("direction"), "{}", err.message);
        let moved = json!({"name": "a", "network": "global/networks/other", "allowed": [{"IPProtocol": "tcp"}]});
        let err = normalise("p1", moved, Some(&existing), 1).expect_err("network is fixed");
        assert!(err.message.contains("network"), "{}", err.message);
    }

    #[test]
    fn a_rule_without_sources_is_open_to_the_world_as_on_google() {
        let ingress = ok(json!({"name": "a", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}));
        assert_eq!(ingress["sourceRanges"], json!(["0.0.0.0/0"]));
        let tagged =
            ok(json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "sourceTags": ["web"]}));
        assert!(tagged.get("sourceRanges").is_none());
        let cleared =
            ok(json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": []}));
        assert_eq!(cleared["sourceRanges"], json!(["0.0.0.0/0"]));
        let egress =
            ok(json!({"name": "a", "direction": "EGRESS", "allowed": [{"IPProtocol": "tcp"}]}));
        assert_eq!(egress["destinationRanges"], json!(["0.0.0.0/0"]));
        assert!(egress.get("sourceRanges").is_none());
    }

    // Issue 25: Compute accepted Cloud Custodian's `{"type": "modify", "disabled": true}`; the sandbox refused it.
    #[test]
    fn fields_compute_does_not_know_are_ignored() {
        let firewall = ok(
            json!({"name": "a", "type": "modify", "colour": "red", "allowed": [{"IPProtocol": "tcp"}]}),
        );
        assert!(firewall.get("type").is_none() && firewall.get("colour").is_none());
    }

    #[test]
    fn empty_fields_are_omitted() {
        let firewall = ok(
            json!({"name": "a", "allowed": [{"IPProtocol": "icmp"}], "targetTags": [], "description": ""}),
        );
        assert!(firewall.get("targetTags").is_none());
        assert_eq!(firewall["description"], "", "as Google echoes it");
    }

    #[test]
    fn invalid_bodies_are_rejected_with_the_field_named() {
        let cases = [
            (
                json!({"name": "Bad_Name", "allowed": [{"IPProtocol": "tcp"}]}),
                "resource.name",
            ),
            (json!({"name": "a"}), "Exactly one of"),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "denied": [{"IPProtocol": "tcp"}]}),
                "Exactly one of",
            ),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "bogus"}]}),
                "IPProtocol",
            ),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "tcp", "ports": ["70000"]}]}),
                "ports",
            ),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "icmp", "ports": ["22"]}]}),
                "ports",
            ),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["1.2.3.4/40"]}),
                "sourceRanges[0]",
            ),
            (
                json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "priority": 70000}),
                "priority",
            ),
        ];
        for (body, expected) in cases {
            let err = normalise("p1", body.clone(), None, 1).expect_err(&body.to_string());
            assert!(err.message.contains(expected), "{body}: {}", err.message);
        }
    }

    #[test]
    fn disabled_is_kept_when_given_and_false_when_not() {
        let body = json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "disabled": true});
        assert_eq!(ok(body)["disabled"], true);
        let body = json!({"name": "a", "allowed": [{"IPProtocol": "tcp"}], "disabled": "yes"});
        assert!(normalise("p1", body, None, 1).is_err());
    }

    #[test]
    fn bare_addresses_and_ranges_are_accepted() {
        ok(
            json!({"name": "a", "allowed": [{"IPProtocol": "tcp", "ports": ["21-25"]}], "sourceRanges": ["1.1.1.1", "::/0"]}),
        );
    }
}
