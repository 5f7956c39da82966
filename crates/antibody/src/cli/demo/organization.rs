//! The demo's organization act: outsiders granted on the organization, on a folder and in a project created a
//! moment ago are removed, with antibody holding only the role `antibody plan --organization` prints, bound at the
//! organization; the same grant under the folder `[scope]` excludes is left alone and journaled.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use antibody::pipeline::Context;

use super::{ENGINE, Scene, USER};

pub(super) const ORGANIZATION: &str = "organizations/123456789012";
/// The engineering folder, where the demo project lives, and the playground folder `[scope]` leaves alone.
pub(super) const ENGINEERING: &str = "folders/100";
pub(super) const PLAYGROUND: &str = "folders/200";
pub(super) const PLAYGROUND_PROJECT: &str = "playground-app";

/// The organization's policy: the careless user administers it, antibody holds the organization role.
pub(super) fn seed_policy() -> Value {
    json!({"bindings": [
        {"role": "roles/resourcemanager.organizationAdmin", "members": [format!("user:{USER}")]},
        {"role": format!("{ORGANIZATION}/roles/{}", antibody::plan::ROLE), "members": [format!("serviceAccount:{ENGINE}")]},
    ]})
}

async fn grant(scene: &Scene, resource: &str, role: &str, member: &str) -> anyhow::Result<()> {
    let mut policy = read(scene, resource).await?;
    let bindings = policy["bindings"]
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("{resource}: a policy without bindings"))?;
    bindings.push(json!({"role": role, "members": [member]}));
    scene
        .send(
            Method::POST,
            &format!("{resource}:setIamPolicy"),
            Some(&json!({"policy": policy})),
        )
        .await?;
    Ok(())
}

async fn read(scene: &Scene, resource: &str) -> anyhow::Result<Value> {
    scene
        .send(
            Method::POST,
            &format!("{resource}:getIamPolicy"),
            Some(&json!({"options": {"requestedPolicyVersion": 3}})),
        )
        .await
}

async fn holds(scene: &Scene, resource: &str, member: &str) -> anyhow::Result<bool> {
    Ok(read(scene, resource).await?["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|binding| {
            binding["members"]
                .as_array()
                .is_some_and(|members| members.contains(&json!(member)))
        }))
}

pub(super) async fn play(scene: &mut Scene, context: &Context) -> anyhow::Result<()> {
    scene.header("Organization (Resource Manager hierarchy)");
    let outsider = "user:consultant@gmail.com";
    let steps = [
        (
            format!("/v1/{ORGANIZATION}"),
            "roles/viewer",
            "makes a gmail.com account org viewer",
        ),
        (
            format!("/v3/{ENGINEERING}"),
            "roles/editor",
            "makes it editor of the Engineering folder",
        ),
    ];
    for (resource, role, what) in steps {
        grant(scene, &resource, role, outsider).await?;
        let removed = async || Ok(!holds(scene, &resource, outsider).await?);
        let (healed, elapsed) = scene.wait_until(removed).await?;
        scene.report(what, "removed the grant", Some(elapsed), healed);
    }

    // A project created a moment ago is covered at once: nobody deploys anything for it.
    scene
        .send(
            Method::POST,
            "/v3/projects",
            Some(&json!({"projectId": "new-team-app", "parent": ENGINEERING})),
        )
        .await?;
    let resource = "/v1/projects/new-team-app";
    grant(scene, resource, "roles/editor", outsider).await?;
    let removed = async || Ok(!holds(scene, resource, outsider).await?);
    let (healed, elapsed) = scene.wait_until(removed).await?;
    scene.report(
        "creates a project, makes the outsider editor",
        "removed the grant (new project)",
        Some(elapsed),
        healed,
    );

    // The playground folder is outside `[scope]`: the same grant there stays, and the journal says why.
    let resource = format!("/v1/projects/{PLAYGROUND_PROJECT}");
    grant(scene, &resource, "roles/editor", outsider).await?;
    let journaled = async || {
        Ok(context.journal.entries(50).await?.iter().any(|row| {
            row.resource == format!("projects/{PLAYGROUND_PROJECT}")
                && row.outcome.as_deref() == Some("ignored")
                && row
                    .reason
                    .as_deref()
                    .is_some_and(|reason| reason.contains(PLAYGROUND))
        }))
    };
    let (seen, _) = scene.wait_until(journaled).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let left = holds(scene, &resource, outsider).await?;
    scene.report(
        "does the same in the Playground folder",
        "left alone: [scope] exclude_folders",
        None,
        seen && left,
    );
    Ok(())
}
