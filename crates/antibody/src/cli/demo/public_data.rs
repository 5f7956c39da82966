//! The demo's public-data scenarios: a Pub/Sub topic, a BigQuery dataset and a Cloud SQL instance opened to
//! everyone are closed; a Cloud Run site's public invoker is reported and left alone.

use reqwest::Method;
use serde_json::{Value, json};

use super::{PROJECT, Scene};

fn has_member(policy: &Value, member: &str) -> bool {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|binding| {
            binding["members"]
                .as_array()
                .is_some_and(|members| members.iter().any(|candidate| candidate == member))
        })
}

pub(super) async fn play(scene: &mut Scene) -> anyhow::Result<()> {
    scene.header("Public data (Pub/Sub, BigQuery, Cloud SQL, Cloud Run)");
    let topic = format!("/v1/projects/{PROJECT}/topics/orders");
    let public = json!({"policy": {"bindings": [{"role": "roles/pubsub.subscriber", "members": ["allUsers"]}]}});
    scene
        .send(
            Method::POST,
            &format!("{topic}:setIamPolicy"),
            Some(&public),
        )
        .await?;
    let closed = async || {
        let policy = scene
            .send(Method::GET, &format!("{topic}:getIamPolicy"), None)
            .await?;
        Ok(!has_member(&policy, "allUsers"))
    };
    let (healed, elapsed) = scene.wait_until(closed).await?;
    scene.report(
        "lets allUsers subscribe to a topic",
        "removed allUsers",
        Some(elapsed),
        healed,
    );

    let datasets = format!("/bigquery/v2/projects/{PROJECT}/datasets");
    scene
        .send(
            Method::POST,
            &datasets,
            Some(&json!({"datasetReference": {"datasetId": "sales"}})),
        )
        .await?;
    let dataset = format!("{datasets}/sales");
    let mut access = scene.send(Method::GET, &dataset, None).await?["access"].clone();
    if let Some(entries) = access.as_array_mut() {
        entries.push(json!({"role": "READER", "iamMember": "allAuthenticatedUsers"}));
    }
    scene
        .send(Method::PATCH, &dataset, Some(&json!({"access": access})))
        .await?;
    let closed = async || {
        let read = scene.send(Method::GET, &dataset, None).await?;
        Ok(!read["access"].to_string().contains("allAuthenticatedUsers"))
    };
    let (healed, elapsed) = scene.wait_until(closed).await?;
    scene.report(
        "shares a BigQuery dataset with any Google user",
        "removed the access entry",
        Some(elapsed),
        healed,
    );

    let instances = format!("/v1/projects/{PROJECT}/instances");
    let database = json!({"name": "orders-db", "settings": {"ipConfiguration": {"ipv4Enabled": true, "requireSsl": true,
        "authorizedNetworks": [{"value": "0.0.0.0/0", "name": "temporary"}, {"value": "203.0.113.0/24", "name": "office"}]}}});
    scene
        .send(Method::POST, &instances, Some(&database))
        .await?;
    let closed = async || {
        let read = scene
            .send(Method::GET, &format!("{instances}/orders-db"), None)
            .await?;
        let networks = read["settings"]["ipConfiguration"]["authorizedNetworks"].to_string();
        Ok(!networks.contains("0.0.0.0/0") && networks.contains("203.0.113.0/24"))
    };
    let (healed, elapsed) = scene.wait_until(closed).await?;
    scene.report(
        "opens a Cloud SQL database to 0.0.0.0/0",
        "removed it, kept the office",
        Some(elapsed),
        healed,
    );

    let service = format!("/v2/projects/{PROJECT}/locations/europe-west1/services/website");
    let site =
        json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}});
    scene
        .send(
            Method::POST,
            &format!("{service}:setIamPolicy"),
            Some(&site),
        )
        .await?;
    scene.sandbox.settled().await;
    let policy = scene
        .send(Method::GET, &format!("{service}:getIamPolicy"), None)
        .await?;
    scene.report(
        "makes a Cloud Run website public (fine)",
        "reported it, left it",
        None,
        has_member(&policy, "allUsers"),
    );
    Ok(())
}
