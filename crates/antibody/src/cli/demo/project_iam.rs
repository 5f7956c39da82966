//! The demo's project-IAM scenarios: outsiders granted risky roles, a conditional grant that must survive
//! byte for byte, and another writer racing antibody's fix.

use reqwest::Method;
use serde_json::{Value, json};

use super::{ENGINE, PROJECT, Scene, USER};

fn break_glass() -> Value {
    json!({"role": "roles/iam.serviceAccountAdmin", "members": ["user:oncall@example.com"],
        "condition": {"title": "break-glass until 2030", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}})
}

pub(super) fn seed_policy() -> Value {
    // The careless user owns the project; antibody holds only the custom role `antibody plan` prints.
    json!({"bindings": [{"role": "roles/owner", "members": ["user:owner@example.com", format!("user:{USER}")]},
        {"role": format!("projects/{PROJECT}/roles/{}", antibody::plan::ROLE), "members": [format!("serviceAccount:{ENGINE}")]},
        break_glass()],
        "auditConfigs": [{"service": "allServices", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}]})
}

fn has(policy: &Value, role: &str, member: &str) -> bool {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|binding| {
            binding["role"] == role
                && binding.get("condition").is_none()
                && binding["members"]
                    .as_array()
                    .is_some_and(|members| members.contains(&json!(member)))
        })
}

async fn read(scene: &Scene) -> anyhow::Result<Value> {
    let path = format!("/v1/projects/{PROJECT}:getIamPolicy");
    scene
        .send(
            Method::POST,
            &path,
            Some(&json!({"options": {"requestedPolicyVersion": 3}})),
        )
        .await
}

struct Step {
    what: &'static str,
    role: &'static str,
    member: &'static str,
    removed: bool,
    /// Another writer adds this viewer just before antibody's write lands.
    race: Option<&'static str>,
}

pub(super) async fn play(scene: &mut Scene) -> anyhow::Result<()> {
    scene.header("Project IAM (Resource Manager)");
    let steps = [
        Step {
            what: "makes a gmail.com account editor",
            role: "roles/editor",
            member: "user:helper@gmail.com",
            removed: true,
            race: None,
        },
        Step {
            what: "gives an outside group TokenCreator",
            role: "roles/iam.serviceAccountTokenCreator",
            member: "group:contractors@vendor.io",
            removed: true,
            race: None,
        },
        Step {
            what: "adds a colleague as viewer (fine)",
            role: "roles/viewer",
            member: "user:colleague@example.com",
            removed: false,
            race: None,
        },
        Step {
            what: "grants an outsider while a teammate edits too",
            role: "roles/pubsub.admin",
            member: "user:stranger@yahoo.com",
            removed: true,
            race: Some("user:teammate@example.com"),
        },
    ];
    let set = format!("/v1/projects/{PROJECT}:setIamPolicy");
    for step in steps {
        if let Some(teammate) = step.race {
            let race = json!({"project": PROJECT, "role": "roles/viewer", "member": teammate, "before_write_by": ENGINE});
            scene
                .send(Method::POST, "/_sandbox/interleave-iam", Some(&race))
                .await
                .ok();
        }
        let mut policy = read(scene).await?;
        let bindings = policy["bindings"]
            .as_array_mut()
            .ok_or_else(|| anyhow::anyhow!("policy without bindings"))?;
        bindings.push(json!({"role": step.role, "members": [step.member]}));
        scene
            .send(Method::POST, &set, Some(&json!({"policy": policy})))
            .await?;
        let (healed, elapsed) = if step.removed {
            let gone = async || Ok(!has(&read(scene).await?, step.role, step.member));
            let (healed, elapsed) = scene.wait_until(gone).await?;
            (healed, Some(elapsed))
        } else {
            (false, None)
        };
        scene.sandbox.settled().await;
        let after = read(scene).await?;
        let present = has(&after, step.role, step.member);
        let race_kept = step
            .race
            .is_none_or(|teammate| has(&after, "roles/viewer", teammate));
        let ok = present != step.removed && (healed || !step.removed) && race_kept;
        let action = match (present, step.race) {
            (false, Some(_)) => "removed it, kept the teammate's",
            (false, None) => "removed the grant",
            (true, _) => "left it alone",
        };
        scene.report(step.what, action, elapsed, ok);
    }
    let after = read(scene).await?;
    let intact = after["bindings"]
        .as_array()
        .is_some_and(|bindings| bindings.contains(&break_glass()))
        && after["auditConfigs"] == seed_policy()["auditConfigs"];
    scene.report(
        "(the conditional break-glass grant)",
        "kept it byte for byte",
        None,
        intact,
    );
    Ok(())
}
