//! The demo's bucket scenarios: public through IAM, public through an ACL, a website that is meant to be public, and
//! a colleague's edit racing antibody's fix (the 412 path).

use reqwest::Method;
use serde_json::{Value, json};

use super::{ENGINE, Scene};

pub(super) fn seed_buckets() -> Vec<Value> {
    vec![
        json!({"name": "customer-exports"}),
        json!({"name": "legacy-reports"}),
        json!({"name": "www-demo-site"}),
        json!({"name": "payroll-exports"}),
        json!({"name": "team-share"}),
    ]
}

async fn policy(scene: &Scene, bucket: &str) -> anyhow::Result<Value> {
    scene
        .send(
            Method::GET,
            &format!("/storage/v1/b/{bucket}/iam?optionsRequestedPolicyVersion=3"),
            None,
        )
        .await
}

/// The user adds `member` to `role` on the bucket's policy, sending the etag they read.
async fn grant(scene: &Scene, bucket: &str, role: &str, member: &str) -> anyhow::Result<()> {
    let mut iam = policy(scene, bucket).await?;
    if let Some(bindings) = iam["bindings"].as_array_mut() {
        bindings.push(json!({"role": role, "members": [member]}));
    }
    scene
        .send(
            Method::PUT,
            &format!("/storage/v1/b/{bucket}/iam"),
            Some(&iam),
        )
        .await?;
    Ok(())
}

fn public(policy: &Value) -> bool {
    let text = policy["bindings"].to_string();
    text.contains("\"allUsers\"") || text.contains("\"allAuthenticatedUsers\"")
}

fn has(policy: &Value, member: &str) -> bool {
    policy["bindings"]
        .to_string()
        .contains(&format!("\"{member}\""))
}

pub(super) async fn play(scene: &mut Scene) -> anyhow::Result<()> {
    scene.header("Buckets (Cloud Storage)");
    // 1. Public through IAM.
    grant(
        scene,
        "customer-exports",
        "roles/storage.objectViewer",
        "allUsers",
    )
    .await?;
    let (healed, elapsed) = scene
        .wait_until(async || Ok(!public(&policy(scene, "customer-exports").await?)))
        .await?;
    scene.sandbox.settled().await;
    let bucket = scene
        .send(Method::GET, "/storage/v1/b/customer-exports", None)
        .await?;
    let enforced = bucket["iamConfiguration"]["publicAccessPrevention"] == "enforced";
    scene.report(
        "makes an export bucket readable by allUsers",
        "removed it, enforced prevention",
        Some(elapsed),
        healed && enforced,
    );

    // 2. Public through a legacy ACL.
    scene
        .send(
            Method::POST,
            "/storage/v1/b/legacy-reports/acl",
            Some(&json!({"entity": "allAuthenticatedUsers", "role": "READER"})),
        )
        .await?;
    let (healed, elapsed) = scene
        .wait_until(async || {
            let acl = scene
                .send(
                    Method::GET,
                    "/storage/v1/b/legacy-reports?projection=full",
                    None,
                )
                .await?["acl"]
                .to_string();
            Ok(!acl.contains("allAuthenticatedUsers"))
        })
        .await?;
    scene.sandbox.settled().await;
    scene.report(
        "adds an allAuthenticatedUsers ACL entry",
        "removed the ACL entry",
        Some(elapsed),
        healed,
    );

    // 3. A label the user set themselves is no exemption.
    scene
        .send(
            Method::PATCH,
            "/storage/v1/b/payroll-exports",
            Some(&json!({"labels": {"antibody-exempt": "trust-me"}})),
        )
        .await?;
    grant(
        scene,
        "payroll-exports",
        "roles/storage.objectViewer",
        "allUsers",
    )
    .await?;
    let (healed, elapsed) = scene
        .wait_until(async || Ok(!public(&policy(scene, "payroll-exports").await?)))
        .await?;
    scene.sandbox.settled().await;
    scene.report(
        "labels a bucket antibody-exempt, publishes it",
        "removed it (self-set label ignored)",
        Some(elapsed),
        healed,
    );

    // 4. The website bucket is meant to be public.
    grant(
        scene,
        "www-demo-site",
        "roles/storage.objectViewer",
        "allUsers",
    )
    .await?;
    scene.sandbox.settled().await;
    let still_public = public(&policy(scene, "www-demo-site").await?);
    scene.report(
        "publishes the registered website bucket (fine)",
        "left it alone (exempt)",
        None,
        still_public,
    );

    // 5. A colleague edits the policy while antibody fixes it.
    let race = json!({"bucket": "team-share", "role": "roles/storage.objectViewer", "member": "group:analysts@example.com", "before_write_by": ENGINE});
    scene
        .send(Method::POST, "/_sandbox/interleave-bucket-iam", Some(&race))
        .await
        .ok();
    grant(
        scene,
        "team-share",
        "roles/storage.objectAdmin",
        "allAuthenticatedUsers",
    )
    .await?;
    let (healed, elapsed) = scene
        .wait_until(async || Ok(!public(&policy(scene, "team-share").await?)))
        .await?;
    scene.sandbox.settled().await;
    let kept = has(
        &policy(scene, "team-share").await?,
        "group:analysts@example.com",
    );
    scene.report(
        "grants public write while a colleague edits",
        "removed it after a 412, kept theirs",
        Some(elapsed),
        healed && kept,
    );
    Ok(())
}
