//! The demo's log-routing scenarios: an exclusion that drops audit logs, and the `_Default` sink switched off.

use reqwest::Method;
use serde_json::json;

use super::{PROJECT, Scene};

pub(super) async fn play(scene: &mut Scene) -> anyhow::Result<()> {
    scene.header("Log routing (Cloud Logging)");
    let base = format!("/v2/projects/{PROJECT}");
    let exclusion = json!({"name": "save-costs", "filter": r#"LOG_ID("cloudaudit.googleapis.com/data_access")"#});
    scene
        .send(
            Method::POST,
            &format!("{base}/exclusions"),
            Some(&exclusion),
        )
        .await?;
    let path = format!("{base}/exclusions/save-costs");
    let disabled = async || Ok(scene.send(Method::GET, &path, None).await?["disabled"] == true);
    let (healed, elapsed) = scene.wait_until(disabled).await?;
    scene.report(
        "excludes Data Access audit logs (\"costs\")",
        "disabled the exclusion",
        Some(elapsed),
        healed,
    );
    let default = format!("{base}/sinks/_Default");
    scene
        .send(
            Method::PATCH,
            &format!("{default}?updateMask=disabled"),
            Some(&json!({"disabled": true})),
        )
        .await?;
    let enabled = async || Ok(scene.send(Method::GET, &default, None).await?["disabled"] != true);
    let (healed, elapsed) = scene.wait_until(enabled).await?;
    scene.report(
        "switches off the _Default log sink",
        "enabled it again",
        Some(elapsed),
        healed,
    );
    Ok(())
}
