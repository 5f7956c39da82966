//! Push authentication end to end: the sandbox signs pushes with its own key and serves its JWKS.

use std::time::{Duration, SystemTime};

use gcp_sandbox::oidc::{PushIdentity, mint};
use serde_json::json;

use crate::harness::{Harness, Options, open_ssh};

pub(crate) const AUDIENCE: &str = "https://antibody-abc123-uc.a.run.app/";
pub(crate) const PUSHER: &str = "eventarc-trigger@test-project.iam.gserviceaccount.com";

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
        // Issue 17, item 8: a token issued in the future was accepted.
        (
            Some(format!(
                "Bearer {}",
                token(
                    PushIdentity {
                        audience: AUDIENCE.into(),
                        email: PUSHER.into()
                    },
                    SystemTime::now() + Duration::from_secs(3600)
                )
            )),
            401,
            "issued in the future",
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

/// A shared secret of the length antibody requires.
pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef-push";

#[tokio::test]
async fn self_hosted_senders_sign_with_a_shared_secret() {
    let options = Options {
        tweak: Box::new(|config| config.push_secret = Some(SECRET.into())),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let body =
        json!({"insertId": "signed-1", "protoPayload": {"serviceName": "s", "methodName": "m"}})
            .to_string();
    let now = antibody::clock::Clock::system().now_secs();
    let post = |timestamp: i64, signature: String| {
        harness
            .http
            .post(harness.engine.url())
            .header("content-type", "application/json")
            .header("x-antibody-timestamp", timestamp.to_string())
            .header("x-antibody-signature", signature)
            .body(body.clone())
            .send()
    };
    let good = antibody::notify::alert::sign(SECRET, now, &body);
    assert_eq!(
        post(now, good.clone())
            .await
            .expect("post")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(now, antibody::notify::alert::sign("wrong", now, &body))
            .await
            .expect("post")
            .status()
            .as_u16(),
        401
    );
    let stale = now - 3600;
    assert_eq!(
        post(stale, antibody::notify::alert::sign(SECRET, stale, &body))
            .await
            .expect("post")
            .status()
            .as_u16(),
        401,
        "replays are refused"
    );
    let unsigned = harness
        .http
        .post(harness.engine.url())
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status().as_u16(), 401);
    // A v2 signature covers the method, the path and a nonce: accepted once.
    let nonce = "push-0123456789abcdef";
    let signed =
        antibody::receive::auth::sign_request(SECRET, now, nonce, "POST", "/", body.as_bytes());
    let v2 = || {
        harness
            .http
            .post(harness.engine.url())
            .header("content-type", "application/json")
            .header("x-antibody-timestamp", now.to_string())
            .header("x-antibody-nonce", nonce)
            .header("x-antibody-signature", signed.clone())
            .body(body.clone())
            .send()
    };
    assert_eq!(v2().await.expect("post").status().as_u16(), 200);
    assert_eq!(
        v2().await.expect("post").status().as_u16(),
        401,
        "a spent nonce"
    );
}

// Issue 17, item 8: an outage of the key server answered 401 for a minute, so Pub/Sub and Eventarc gave up on the
// pushes instead of redelivering them.
#[tokio::test]
async fn a_key_server_outage_asks_for_redelivery() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead_url = format!(
        "http://{}/oauth2/v3/certs",
        dead.local_addr().expect("addr")
    );
    drop(dead);
    let identity = PushIdentity {
        audience: AUDIENCE.into(),
        email: PUSHER.into(),
    };
    let options = Options {
        tweak: Box::new(move |config| {
            config.push_audience = Some(AUDIENCE.into());
            config.push_emails = vec![PUSHER.into()];
            config.jwks_url = Some(dead_url.clone());
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let entry = json!({"insertId": "k1", "protoPayload": {"serviceName": "s", "methodName": "m"}});
    for _ in 0..3 {
        let response = harness
            .http
            .post(harness.engine.url())
            .bearer_auth(gcp_sandbox::oidc::mint_now(&identity))
            .json(&entry)
            .send()
            .await
            .expect("post");
        assert_eq!(
            response.status().as_u16(),
            503,
            "redelivered, never refused"
        );
    }
}

// Cloud Scheduler's call to /sweep is verified exactly as a push is; only a verified caller starts a sweep.
#[tokio::test]
async fn the_scheduled_sweep_is_verified_like_a_push() {
    let options = Options {
        push_identity: Some(PushIdentity {
            audience: AUDIENCE.into(),
            email: PUSHER.into(),
        }),
        seed: vec![open_ssh("found-by-sweep")],
        tweak: Box::new(|config| {
            config.push_audience = Some(AUDIENCE.into());
            config.push_emails = vec![PUSHER.into()];
            config.sweep_projects = vec![crate::harness::PROJECT.into()];
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let sweep = |authorization: Option<String>| {
        let mut request = harness.http.post(format!("{}sweep", harness.engine.url()));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send()
    };
    let token = |audience: &str, email: &str| {
        let identity = PushIdentity {
            audience: audience.into(),
            email: email.into(),
        };
        format!(
            "Bearer {}",
            mint(&identity, SystemTime::now(), Duration::from_secs(3600))
        )
    };
    for (authorization, status, why) in [
        (None, 401, "no token"),
        (
            Some(token("https://elsewhere/", PUSHER)),
            401,
            "another audience",
        ),
        (
            Some(token(AUDIENCE, "intruder@example.com")),
            403,
            "another account",
        ),
    ] {
        let response = sweep(authorization).await.expect("post");
        assert_eq!(response.status().as_u16(), status, "{why}");
    }
    assert_ne!(
        harness.rule("found-by-sweep").await["disabled"],
        true,
        "no sweep ran for a caller who is not verified"
    );
    let response = sweep(Some(token(AUDIENCE, PUSHER))).await.expect("post");
    assert_eq!(response.status().as_u16(), 200);
    let report: serde_json::Value = response.json().await.expect("json");
    assert_eq!(report["violations"], 1, "{report}");
    assert_eq!(harness.rule("found-by-sweep").await["disabled"], true);
}

// A self-hosted scheduler signs its call to /sweep with the shared secret, as self-hosted senders sign pushes.
#[tokio::test]
async fn the_scheduled_sweep_can_be_signed_with_the_shared_secret() {
    let options = Options {
        seed: vec![open_ssh("swept-by-secret")],
        tweak: Box::new(|config| {
            config.push_secret = Some(SECRET.into());
            config.sweep_projects = vec![crate::harness::PROJECT.into()];
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let now = antibody::clock::Clock::system().now_secs();
    let sweep = |signature: String, nonce: &str| {
        harness
            .http
            .post(format!("{}sweep", harness.engine.url()))
            .header("x-antibody-timestamp", now.to_string())
            .header("x-antibody-nonce", nonce)
            .header("x-antibody-signature", signature)
            .send()
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    use antibody::receive::auth::sign_request;
    const NONCE: &str = "sweep-0123456789abcdef";
    let forged = sweep(
        sign_request("wrong", now, NONCE, "POST", "/sweep", b""),
        NONCE,
    );
    assert_eq!(status(forged.await.expect("post")), 401);
    // Issue 35: a signature that does not cover the path — a captured push's (v1, body only), or a v2 one made for
    // another endpoint — no longer starts a sweep.
    let body_only = sweep(antibody::notify::alert::sign(SECRET, now, ""), NONCE);
    assert_eq!(status(body_only.await.expect("post")), 401);
    let for_pushes = sweep(sign_request(SECRET, now, NONCE, "POST", "/", b""), NONCE);
    assert_eq!(status(for_pushes.await.expect("post")), 401);
    assert_ne!(harness.rule("swept-by-secret").await["disabled"], true);
    let signed = sign_request(SECRET, now, NONCE, "POST", "/sweep", b"");
    assert_eq!(
        status(sweep(signed.clone(), NONCE).await.expect("post")),
        200
    );
    assert_eq!(harness.rule("swept-by-secret").await["disabled"], true);
    // The same signed request again: its nonce is spent.
    let replayed = sweep(signed, NONCE).await.expect("post");
    assert_eq!(status(replayed), 401);
}

// Issue 35: `/readyz` needs no token, and every call wrote the journal (on Firestore, a billed write each). Callers
// share one probe per window; past it, the next call probes again.
#[tokio::test]
async fn readiness_probes_the_journal_once_per_window_whoever_asks() {
    let clock = antibody::clock::Clock::manual();
    let options = Options {
        clock: clock.clone(),
        sqlite_only: true,
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let probed_at = || {
        let connection =
            rusqlite::Connection::open(&harness.cx().config.state).expect("the journal file");
        connection
            .query_row(
                "SELECT value FROM settings WHERE key = 'ready'",
                [],
                |row| row.get::<_, String>(0),
            )
            .ok()
    };
    let ready = |client: reqwest::Client, url: String| async move {
        client
            .get(format!("{url}readyz"))
            .send()
            .await
            .expect("readyz")
            .status()
            .as_u16()
    };
    let url = harness.engine.url();
    assert_eq!(ready(harness.http.clone(), url.clone()).await, 200);
    let first = probed_at().expect("the first call probes");
    clock.advance(Duration::from_secs(2));
    for _ in 0..50 {
        assert_eq!(ready(harness.http.clone(), url.clone()).await, 200);
    }
    assert_eq!(
        probed_at(),
        Some(first.clone()),
        "no write within the window"
    );
    clock.advance(Duration::from_millis(
        antibody::receive::READINESS_WINDOW_MS as u64,
    ));
    assert_eq!(ready(harness.http.clone(), url.clone()).await, 200);
    assert_ne!(probed_at(), Some(first), "probed again after it");
}
