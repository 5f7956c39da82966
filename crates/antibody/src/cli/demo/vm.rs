//! The demo's instance scenarios: a new team member's VM with the default account and the serial port on, and the
//! serial port opened for the whole project.

use reqwest::Method;
use serde_json::{Value, json};

use super::{PROJECT, Scene};

const ZONE: &str = "europe-west1-b";

fn metadata_value(metadata: &Value, key: &str) -> Option<String> {
    metadata["items"]
        .as_array()?
        .iter()
        .find(|item| item["key"] == key)
        .and_then(|item| item["value"].as_str())
        .map(str::to_string)
}

pub(super) async fn play(
    scene: &mut Scene,
    context: &antibody::pipeline::Context,
) -> anyhow::Result<()> {
    scene.header("VM instances (Compute Engine)");
    let instances = format!("/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances");
    let vm = json!({"name": "new-hire-vm", "machineType": "e2-medium",
        "metadata": {"items": [{"key": "serial-port-enable", "value": "TRUE"}]},
        "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
        "networkInterfaces": [{"accessConfigs": [{"name": "External NAT"}]}]});
    scene.send(Method::POST, &instances, Some(&vm)).await?;
    let path = format!("{instances}/new-hire-vm");
    let closed = async || {
        let read = scene.send(Method::GET, &path, None).await?;
        Ok(metadata_value(&read["metadata"], "serial-port-enable").as_deref() == Some("false"))
    };
    let (healed, elapsed) = scene.wait_until(closed).await?;
    scene.sandbox.settled().await;
    let read = scene.send(Method::GET, &path, None).await?;
    scene.report(
        "creates a VM with the serial console on",
        "turned the serial port off",
        Some(elapsed),
        healed && read["status"] == "RUNNING",
    );
    let key = format!("projects/{PROJECT}/zones/{ZONE}/instances/new-hire-vm");
    let rows = context.journal.entries(10_000).await?;
    let rescope = rows
        .iter()
        .filter(|row| row.resource == key)
        .flat_map(|row| row.findings.iter())
        .find(|finding| finding.category == "FULL_API_ACCESS");
    scene.report(
        "(running as the default account, full scope)",
        "reported it, with the rescope command",
        None,
        rescope.is_some_and(|finding| finding.message.contains("set-service-account"))
            && read["serviceAccounts"][0]["scopes"][0]
                == "https://www.googleapis.com/auth/cloud-platform",
    );

    let project = format!("/compute/v1/projects/{PROJECT}");
    let common = scene.send(Method::GET, &project, None).await?;
    let opened = json!({"fingerprint": common["commonInstanceMetadata"]["fingerprint"],
        "items": [{"key": "serial-port-enable", "value": "1"}, {"key": "startup-script", "value": "apt-get update"}]});
    scene
        .send(
            Method::POST,
            &format!("{project}/setCommonInstanceMetadata"),
            Some(&opened),
        )
        .await?;
    let closed = async || {
        let read = scene.send(Method::GET, &project, None).await?;
        Ok(
            metadata_value(&read["commonInstanceMetadata"], "serial-port-enable").as_deref()
                == Some("false"),
        )
    };
    let (healed, elapsed) = scene.wait_until(closed).await?;
    let read = scene.send(Method::GET, &project, None).await?;
    let kept = metadata_value(&read["commonInstanceMetadata"], "startup-script").as_deref()
        == Some("apt-get update");
    scene.report(
        "opens the serial port project-wide",
        "closed it, kept the startup script",
        Some(elapsed),
        healed && kept,
    );
    Ok(())
}
