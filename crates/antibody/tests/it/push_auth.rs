//! Push authentication end to end: the sandbox signs pushes with its own key and serves its JWKS.

use std::time::{Duration, SystemTime};

use gcp_sandbox::oidc::{PushIdentity, mint};
use serde_json::json;

use crate::harness::{Harness, Options};

const AUDIENCE: &str = "https://antibody-abc123-uc.a.run.app/";
const PUSHER: &str = "eventarc-trigger@test-project.iam.gserviceaccount.com";

async fn authenticated() -> Harness {
    let identity = PushIdentity {
        audience: AUDIENCE.into(),
        email: PUSHER.into(),
    };
    let options = Options {
        push_identity: Some(identity),
        tweak: Box::new(|config| {
            config.push_audience = Some(AUDIENCE.into());
            config.push_emails = vec![PUSHER.into()];
        }),
        ..Options::default()
    };
    Harness::with(options).await
}

fn open_ssh(name: &str) -> serde_json::Value {
    json!({"name": name, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]})
}

#[tokio::test]
async fn signed_pushes_are_accepted_and_everything_else_is_refused_unread() {
    let harness = authenticated().await;
    harness.user_inserts(open_ssh("signed")).await;
    assert_eq!(
        harness.rule("signed").await["disabled"],
        true,
        "the sandbox's signed pushes are accepted"
    );
    let rows = harness.outcomes().await.len();
    let entry = harness.sandbox.audit_entries()[0].to_string();
    let token = |identity: PushIdentity, issued: SystemTime| {
        mint(&identity, issued, Duration::from_secs(3600))
    };
    let cases = [
        (None, 401, "OIDC token"),
        (Some("Bearer not-a-jwt".to_string()), 401, "not a JWT"),
        (
            Some(format!(
                "Bearer {}",
                token(
                    PushIdentity {
                        audience: "https://elsewhere/".into(),
                        email: PUSHER.into()
                    },
                    SystemTime::now()
                )
            )),
            401,
            "another audience",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(
                    PushIdentity {
                        audience: AUDIENCE.into(),
                        email: PUSHER.into()
                    },
                    SystemTime::now() - Duration::from_secs(7300)
                )
            )),
            401,
            "expired",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(
                    PushIdentity {
                        audience: AUDIENCE.into(),
                        email: "intruder@evil.iam.gserviceaccount.com".into()
                    },
                    SystemTime::now()
                )
            )),
            403,
            "may not push",
        ),
    ];
    for (authorization, status, phrase) in cases {
        let mut request = harness
            .http
            .post(harness.engine.url())
            .header("content-type", "application/json")
            .body(entry.clone());
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status().as_u16(), status, "{phrase}");
        let body: serde_json::Value = response.json().await.expect("json");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(phrase), "{error} lacks {phrase}");
        assert!(
            authorization.is_none_or(
                |authorization| !error.contains(authorization.trim_start_matches("Bearer "))
            ),
            "never echo the token"
        );
    }
    assert_eq!(
        harness.outcomes().await.len(),
        rows,
        "refused pushes leave nothing behind"
    );
    let health = harness
        .http
        .get(format!("{}healthz", harness.engine.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200, "health checks need no token");
}
