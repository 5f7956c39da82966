//! Google-style OIDC push tokens: the sandbox signs them with its own key and serves the matching JWKS, so that push
//! authentication is tested end to end exactly as Pub/Sub and Eventarc do it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use crate::Shared;

const SIGNING_KEY: &str = include_str!("../keys/oidc-signing-key.pem");
pub(crate) const JWKS: &str = include_str!("../keys/oidc-jwks.json");
pub const KEY_ID: &str = "sandbox-oidc-1";
pub const ISSUER: &str = "https://accounts.google.com";

/// Who pushes sign their requests as: the subscription's audience and its service account.
#[derive(Debug, Clone)]
pub struct PushIdentity {
    pub audience: String,
    pub email: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    azp: &'a str,
    email: &'a str,
    email_verified: bool,
    exp: u64,
    iat: u64,
    iss: &'a str,
    sub: &'a str,
}

/// A token as Google mints for a push: RS256, `kid` of the sandbox key, one hour of validity from `issued`.
pub fn mint(identity: &PushIdentity, issued: SystemTime, lifetime: Duration) -> String {
    let iat = issued
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let claims = Claims {
        aud: &identity.audience,
        azp: "113774264463038321964",
        email: &identity.email,
        email_verified: true,
        exp: iat + lifetime.as_secs(),
        iat,
        iss: ISSUER,
        sub: "113774264463038321964",
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KEY_ID.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SIGNING_KEY.as_bytes())
        .expect("the bundled key is a valid RSA key");
    jsonwebtoken::encode(&header, &claims, &key).expect("signing with a valid key succeeds")
}

/// A token for now.
pub fn mint_now(identity: &PushIdentity) -> String {
    mint(identity, SystemTime::now(), Duration::from_secs(3600))
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route(
        "/oauth2/v3/certs",
        get(|| async {
            Json(serde_json::from_str::<Value>(JWKS).expect("the bundled JWKS is JSON"))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_against_the_served_jwks() {
        let identity = PushIdentity {
            audience: "https://antibody.example/".into(),
            email: "push@p.iam.gserviceaccount.com".into(),
        };
        let token = mint_now(&identity);
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(JWKS).expect("jwks");
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).expect("decoding key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["https://antibody.example/"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("valid");
        assert_eq!(data.claims["email"], "push@p.iam.gserviceaccount.com");
        assert_eq!(data.header.kid.as_deref(), Some(KEY_ID));
    }
}
