//! `[scope]` by the hierarchy: a project under an excluded folder is left alone (journaled, never re-read), one in an
//! allowed folder is fixed, and a project moved into the excluded folder is left alone once its cached ancestry
//! expires — on the engine's clock, without waiting.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{Harness, Options, PROJECT, USER_TOKEN, open_ssh};

#[tokio::test]
async fn excluded_folders_are_left_alone_and_a_move_is_seen_when_the_ancestry_expires() {
    let clock = antibody::clock::Clock::manual();
    let harness = Harness::with(Options {
        tweak: Box::new(|config| {
            config.scope.organization = Some("organizations/123456789012".into());
            config.scope.exclude_folders = vec!["folders/20".into()];
            config.scope.ancestry_cache_secs = 300;
        }),
        clock: clock.clone(),
        folders: vec![
            ("folders/10".into(), "organizations/123456789012".into()),
            ("folders/20".into(), "organizations/123456789012".into()),
        ],
        parents: vec![
            (PROJECT.into(), "folders/10".into()),
            ("sandbox-playground".into(), "folders/20".into()),
        ],
        ..Options::default()
    })
    .await;
    harness.user_inserts(open_ssh("in-scope")).await;
    assert_eq!(
        harness.rule("in-scope").await["disabled"],
        true,
        "a project under folders/10 is fixed"
    );

    let (status, _) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            "/compute/v1/projects/sandbox-playground/global/firewalls",
            Some(open_ssh("playground-ssh")),
        )
        .await;
    assert_eq!(status, 200);
    let (_, rule) = harness
        .google_as(
            USER_TOKEN,
            Method::GET,
            "/compute/v1/projects/sandbox-playground/global/firewalls/playground-ssh",
            None,
        )
        .await;
    assert_eq!(
        rule["disabled"], false,
        "a project under the excluded folder is left alone"
    );
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    assert!(
        rows.iter()
            .any(|row| row.outcome.as_deref() == Some("ignored")
                && row
                    .reason
                    .as_deref()
                    .unwrap_or_default()
                    .contains("folders/20")),
        "{rows:?}"
    );

    // The project moves into the excluded folder: the cached ancestry holds for five minutes, then the move counts.
    let (status, _) = harness
        .google_as(
            USER_TOKEN,
            Method::POST,
            &format!("/v3/projects/{PROJECT}:move"),
            Some(json!({"destinationParent": "folders/20"})),
        )
        .await;
    assert_eq!(status, 200);
    clock.advance(Duration::from_secs(301));
    harness.user_inserts(open_ssh("after-move")).await;
    assert_eq!(
        harness.rule("after-move").await["disabled"],
        false,
        "now under the excluded folder"
    );

    // A folder's own policy: under the excluded folder it is left alone, elsewhere an outsider is removed.
    for (folder, fixed) in [("20", false), ("10", true)] {
        let (status, mut policy) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/v3/folders/{folder}:getIamPolicy"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200, "{policy}");
        policy["bindings"]
            .as_array_mut()
            .expect("bindings")
            .push(json!({"role": "roles/viewer", "members": ["user:stranger@gmail.com"]}));
        let (status, body) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/v3/folders/{folder}:setIamPolicy"),
                Some(json!({"policy": policy})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, after) = harness
            .google_as(
                USER_TOKEN,
                Method::POST,
                &format!("/v3/folders/{folder}:getIamPolicy"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            !after.to_string().contains("stranger@gmail.com"),
            fixed,
            "folders/{folder}: {after}"
        );
    }
}
