//! An instance as Compute stores it: what an insert may set, the zone's grammar, and the fields Compute fills in —
//! machine type and zone URLs, attached disks made from their parameters, interfaces with their addresses,
//! subnetworks and fingerprints, scheduling, tags and labels under their own fingerprints.

use serde_json::{Map, Value, json};

use super::API_ROOT;
use super::project::{self as metadata, default_account};
use crate::error::ApiError;
use crate::project_number;
use crate::time_fmt::compute_now;

/// An instance's relative name.
pub(super) fn path(project: &str, zone: &str, name: &str) -> String {
    format!("projects/{project}/zones/{zone}/instances/{name}")
}

/// Fields the caller cannot set: Compute fills them in.
const OUTPUT_ONLY: &[&str] = &[
    "id",
    "kind",
    "selfLink",
    "creationTimestamp",
    "status",
    "statusMessage",
    "fingerprint",
    "labelFingerprint",
    "cpuPlatform",
    "lastStartTimestamp",
    "lastStopTimestamp",
];

/// Zones are `REGION-LETTER` (`us-central1-a`); anything else is Compute's "Unknown zone".
pub(super) fn zone_name(zone: &str) -> Result<(), ApiError> {
    let valid = zone.rsplit_once('-').is_some_and(|(region, letter)| {
        letter.len() == 1
            && letter.chars().all(|c| c.is_ascii_lowercase())
            && region.contains('-')
            && region.ends_with(|c: char| c.is_ascii_digit())
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid value for field 'zone': '{zone}'. Unknown zone."
        )))
    }
}

/// Validates an inserted instance and returns it as Compute stores it.
pub(super) fn normalise(
    project: &str,
    zone: &str,
    body: Value,
    id: u64,
    ordinal: u64,
) -> Result<Value, ApiError> {
    zone_name(zone)?;
    let Value::Object(body) = body else {
        return Err(ApiError::bad_json(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    let mut instance: Map<String, Value> = body
        .into_iter()
        .filter(|(key, value)| !OUTPUT_ONLY.contains(&key.as_str()) && !value.is_null())
        .collect();
    let name = instance
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !super::firewall::valid_name(&name) {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
        )));
    }
    let machine_type = instance
        .get("machineType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if machine_type.is_empty() {
        return Err(ApiError::invalid(
            "Invalid value for field 'resource.machineType': ''. Machine type must be specified.",
        ));
    }
    let zone_url = format!("{API_ROOT}/projects/{project}/zones/{zone}");
    let short_type = machine_type.rsplit('/').next().unwrap_or_default();
    instance.insert(
        "machineType".into(),
        json!(format!("{zone_url}/machineTypes/{short_type}")),
    );
    let items = instance
        .get("metadata")
        .map(|metadata| metadata["items"].clone())
        .unwrap_or(Value::Null);
    instance.insert("metadata".into(), metadata::stored(&items)?);
    let number = project_number(project);
    let accounts = instance
        .get("serviceAccounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let accounts: Vec<Value> = accounts
        .into_iter()
        .map(|account| {
            let email = match account["email"].as_str() {
                None | Some("default") => default_account(number),
                Some(email) => email.to_string(),
            };
            json!({"email": email, "scopes": account["scopes"].as_array().cloned().unwrap_or_default()})
        })
        .collect();
    instance.insert("serviceAccounts".into(), json!(accounts));
    let interfaces = instance
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![json!({})]);
    let interfaces: Vec<Value> = interfaces
        .into_iter()
        .enumerate()
        .map(|(index, mut interface)| {
            interface["name"] = json!(format!("nic{index}"));
            interface["kind"] = json!("compute#networkInterface");
            if interface["network"].is_null() {
                interface["network"] = json!(format!(
                    "{API_ROOT}/projects/{project}/global/networks/default"
                ));
            }
            if interface["subnetwork"].is_null() {
                interface["subnetwork"] = json!(format!(
                    "{API_ROOT}/projects/{project}/regions/{}/subnetworks/default",
                    region_of(zone)
                ));
            }
            interface["fingerprint"] = json!(metadata::fingerprint(&json!([id, index])));
            interface["networkIP"] = json!(format!(
                "10.128.{}.{}",
                ordinal / 250 % 250,
                ordinal % 250 + 2
            ));
            // `get_mut`, not indexing: indexing a missing key for writing inserts `null`, a shape Google never sends.
            if let Some(configs) = interface
                .get_mut("accessConfigs")
                .and_then(Value::as_array_mut)
            {
                for config in configs {
                    *config = access_config(config.clone(), ordinal);
                }
            }
            interface
        })
        .collect();
    instance.insert("networkInterfaces".into(), json!(interfaces));
    let disks = instance
        .get("disks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let disks: Vec<Value> = disks
        .into_iter()
        .enumerate()
        .map(|(index, disk)| attached_disk(project, zone, &name, index, disk))
        .collect();
    instance.insert("disks".into(), json!(disks));
    instance.entry("scheduling").or_insert_with(
        || json!({"onHostMaintenance": "MIGRATE", "automaticRestart": true, "preemptible": false}),
    );
    instance
        .entry("deletionProtection")
        .or_insert_with(|| json!(false));
    instance.insert("startRestricted".into(), json!(false));
    instance.insert("cpuPlatform".into(), json!("Intel Broadwell"));
    instance
        .entry("canIpForward")
        .or_insert_with(|| json!(false));
    instance
        .entry("shieldedInstanceConfig")
        .or_insert_with(|| json!({"enableSecureBoot": false, "enableVtpm": true, "enableIntegrityMonitoring": true}));
    instance.insert("kind".into(), json!("compute#instance"));
    instance.insert("id".into(), json!(id.to_string()));
    instance.insert("creationTimestamp".into(), json!(compute_now()));
    instance.insert("status".into(), json!("RUNNING"));
    instance.insert("zone".into(), json!(zone_url));
    instance.insert(
        "selfLink".into(),
        json!(format!("{API_ROOT}/{}", path(project, zone, &name))),
    );
    instance.insert(
        "fingerprint".into(),
        json!(metadata::fingerprint(&json!(id))),
    );
    // Tags and labels carry fingerprints of their own, which `setTags` and `setLabels` check.
    let tags = instance
        .get("tags")
        .map(|tags| tags["items"].clone())
        .unwrap_or(Value::Null);
    instance.insert("tags".into(), stored_tags(&tags)?);
    let labels = instance.get("labels").cloned().unwrap_or(json!({}));
    instance.insert(
        "labelFingerprint".into(),
        json!(metadata::fingerprint(&labels)),
    );
    if labels == json!({}) {
        instance.remove("labels");
    }
    Ok(Value::Object(instance))
}

/// The region a zone is in (`us-central1-a` → `us-central1`).
fn region_of(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}

/// A disk as an instance lists it: the disk it made from `initializeParams` (or the one it was given as `source`),
/// attached at `index` — never the parameters themselves, which Compute does not echo.
fn attached_disk(project: &str, zone: &str, instance: &str, index: usize, disk: Value) -> Value {
    let device = disk["deviceName"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| match index {
            0 => instance.to_string(),
            n => format!("persistent-disk-{n}"),
        });
    let source = disk["source"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            let name = disk["initializeParams"]["diskName"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| device.clone());
            format!("{API_ROOT}/projects/{project}/zones/{zone}/disks/{name}")
        });
    json!({
        "kind": "compute#attachedDisk",
        "type": disk["type"].as_str().unwrap_or("PERSISTENT"),
        "mode": disk["mode"].as_str().unwrap_or("READ_WRITE"),
        "source": source,
        "deviceName": device,
        "index": index,
        "boot": disk["boot"].as_bool().unwrap_or(index == 0),
        "autoDelete": disk["autoDelete"].as_bool().unwrap_or(index == 0),
        "interface": disk["interface"].as_str().unwrap_or("SCSI"),
        "guestOsFeatures": [{"type": "VIRTIO_SCSI_MULTIQUEUE"}, {"type": "UEFI_COMPATIBLE"}],
        "licenses": [format!("{API_ROOT}/projects/debian-cloud/global/licenses/debian-12-bookworm")],
        "diskSizeGb": disk["initializeParams"]["diskSizeGb"].as_str().unwrap_or("10"),
        "architecture": "X86_64",
    })
}

/// Network tags as Compute stores them: the items (when there are any) and their fingerprint.
pub(super) fn stored_tags(items: &Value) -> Result<Value, ApiError> {
    let items = match items {
        Value::Null => Vec::new(),
        Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
        _ => {
            return Err(ApiError::bad_json(
                "Invalid JSON payload received. Expected a list of strings for 'tags.items'.",
            ));
        }
    };
    let mut tags = json!({"fingerprint": metadata::fingerprint(&json!(items))});
    if !items.is_empty() {
        tags["items"] = json!(items);
    }
    Ok(tags)
}

/// An access config as Compute stores it: an ephemeral address is assigned when none is asked for.
pub(super) fn access_config(mut config: Value, ordinal: u64) -> Value {
    config["kind"] = json!("compute#accessConfig");
    if config["type"].is_null() {
        config["type"] = json!("ONE_TO_ONE_NAT");
    }
    if config["name"].is_null() {
        config["name"] = json!("External NAT");
    }
    if config["natIP"].is_null() {
        config["natIP"] = json!(format!(
            "34.118.{}.{}",
            ordinal / 250 % 250,
            ordinal % 250 + 1
        ));
    }
    config["networkTier"] = config
        .get("networkTier")
        .cloned()
        .unwrap_or(json!("PREMIUM"));
    config
}
