//! The demo's service-account key scenario: a key downloaded for a CI account is disabled at once; Google's own key
//! for the account is left alone.

use reqwest::Method;
use serde_json::{Value, json};

use super::{PROJECT, Scene};

fn by_id<'a>(keys: &'a Value, id: &str) -> Option<&'a Value> {
    keys["keys"]
        .as_array()?
        .iter()
        .find(|key| key["name"].as_str().is_some_and(|name| name.ends_with(id)))
}

pub(super) async fn play(scene: &mut Scene) -> anyhow::Result<()> {
    scene.header("Service-account keys (IAM)");
    let accounts = format!("/v1/projects/{PROJECT}/serviceAccounts");
    let account = scene
        .send(
            Method::POST,
            &accounts,
            Some(&json!({"accountId": "ci-deployer"})),
        )
        .await?;
    let keys = format!(
        "{accounts}/{}/keys",
        account["email"].as_str().unwrap_or_default()
    );
    let created = scene.send(Method::POST, &keys, Some(&json!({}))).await?;
    let id = created["name"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let disabled = async || {
        let listed = scene.send(Method::GET, &keys, None).await?;
        Ok(by_id(&listed, &id).is_some_and(|key| key["disabled"] == true))
    };
    let (healed, elapsed) = scene.wait_until(disabled).await?;
    scene.report(
        "downloads a key for the CI account",
        "disabled the key",
        Some(elapsed),
        healed,
    );
    scene.sandbox.settled().await;
    let listed = scene.send(Method::GET, &keys, None).await?;
    let google_kept = listed["keys"].as_array().is_some_and(|keys| {
        keys.iter()
            .filter(|key| key["keyType"] == "SYSTEM_MANAGED")
            .all(|key| key.get("disabled").is_none())
    });
    scene.report(
        "(Google's own key for the account)",
        "left it alone",
        None,
        google_kept,
    );
    Ok(())
}
