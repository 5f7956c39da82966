//! The demo's firewall scenarios: holes opened by a careless user, and rules that must stay as they are.

use reqwest::Method;
use serde_json::{Value, json};

use super::{PROJECT, Scene};

struct Step {
    what: &'static str,
    rule: &'static str,
    /// `None` creates the rule from `body`; `Some` patches it.
    patch: bool,
    body: Value,
    stays_open: bool,
}

fn steps() -> Vec<Step> {
    let insert = |what, rule, body: Value, stays_open| Step {
        what,
        rule,
        patch: false,
        body,
        stays_open,
    };
    vec![
        insert(
            "opens SSH to the world \"for debugging\"",
            "debug-ssh",
            json!({"name": "debug-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
            false,
        ),
        insert(
            "exposes a MongoDB port range",
            "mongo-anywhere",
            json!({"name": "mongo-anywhere", "allowed": [{"IPProtocol": "tcp", "ports": ["27000-27100"]}], "sourceRanges": ["0.0.0.0/0"]}),
            false,
        ),
        insert(
            "opens RDP to every IPv6 address",
            "rdp-v6",
            json!({"name": "rdp-v6", "allowed": [{"IPProtocol": "tcp", "ports": ["3389"]}], "sourceRanges": ["::/0"]}),
            false,
        ),
        insert(
            "allows everything from two /1 halves",
            "almost-everyone",
            json!({"name": "almost-everyone", "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/1", "128.0.0.0/1"]}),
            false,
        ),
        insert(
            "allows HTTPS from anywhere (fine)",
            "public-web",
            json!({"name": "public-web", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["0.0.0.0/0"], "targetTags": ["web"]}),
            true,
        ),
        insert(
            "allows SSH from the VPC only (fine)",
            "internal-ssh",
            json!({"name": "internal-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["10.128.0.0/9"]}),
            true,
        ),
        Step {
            what: "re-enables the fixed SSH rule",
            rule: "debug-ssh",
            patch: true,
            body: json!({"disabled": false}),
            stays_open: false,
        },
    ]
}

pub(super) async fn play(scene: &mut Scene) -> anyhow::Result<()> {
    scene.header("Firewall rules (Compute Engine)");
    let collection = format!("/compute/v1/projects/{PROJECT}/global/firewalls");
    for step in steps() {
        let rule_path = format!("{collection}/{}", step.rule);
        let (method, path) = if step.patch {
            (Method::PATCH, rule_path.clone())
        } else {
            (Method::POST, collection.clone())
        };
        scene.send(method, &path, Some(&step.body)).await?;
        let disabled = async || -> anyhow::Result<bool> {
            Ok(scene.send(Method::GET, &rule_path, None).await?["disabled"] == json!(true))
        };
        let (healed, elapsed) = if step.stays_open {
            scene.sandbox.settled().await;
            (false, None)
        } else {
            let (healed, elapsed) = scene.wait_until(disabled).await?;
            (healed, Some(elapsed))
        };
        scene.sandbox.settled().await;
        let now_disabled =
            scene.send(Method::GET, &rule_path, None).await?["disabled"] == json!(true);
        let ok = now_disabled != step.stays_open && (step.stays_open || healed);
        let action = if now_disabled {
            format!("disabled {}", step.rule)
        } else {
            format!("left {} alone", step.rule)
        };
        scene.report(step.what, &action, elapsed, ok);
    }
    Ok(())
}
