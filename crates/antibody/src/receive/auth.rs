//! Push authentication: the Google-signed OIDC token on every push is verified — signature against Google's JWKS (cached,
//! refetched at most once a minute on an unknown `kid`), issuer, audience, allowed service accounts, `email_verified`,
//! expiry with a minute of skew — before the body is read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::Rejection;

pub const GOOGLE_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// An unknown `kid` refetches the JWKS, but not more often than this.
const REFETCH: Duration = Duration::from_secs(60);

/// Who may push, and the keys their tokens are checked against.
pub struct Verifier {
    audience: String,
    emails: Vec<String>,
    jwks_url: String,
    /// Built when the signing keys are first fetched, not at startup.
    http: std::sync::OnceLock<reqwest::Client>,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When fetching last failed: pushes meanwhile are answered 503 (redelivered) without another fetch.
    failed: Option<Instant>,
}

/// After a failed fetch of the signing keys, how long to answer 503 before trying again.
const RETRY_FETCH: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    iat: i64,
}

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY: u64 = 60;

fn unauthorized(message: impl Into<String>) -> Rejection {
    Rejection {
        status: StatusCode::UNAUTHORIZED,
        message: message.into(),
    }
}

impl Verifier {
    pub fn new(audience: String, emails: Vec<String>, jwks_url: Option<String>) -> Verifier {
        Verifier {
            audience,
            emails,
            jwks_url: jwks_url.unwrap_or_else(|| GOOGLE_JWKS.into()),
            http: std::sync::OnceLock::new(),
            keys: Mutex::new(Keys::default()),
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, Rejection> {
        let mut keys = self.keys.lock().await;
        if let Some(key) = keys.by_kid.get(kid) {
            return Ok(key.clone());
        }
        if keys
            .fetched
            .is_some_and(|fetched| fetched.elapsed() < REFETCH)
        {
            return Err(unauthorized("the token's signing key is unknown"));
        }
        let unavailable = |message: String| Rejection {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message,
        };
        // An outage of the key server is not the sender's fault: 503, so that Pub/Sub and Eventarc redeliver.
        if keys
            .failed
            .is_some_and(|failed| failed.elapsed() < RETRY_FETCH)
        {
            return Err(unavailable(
                "the signing keys are unavailable; the push will be redelivered".into(),
            ));
        }
        let fetched: Result<JwkSet, Rejection> = async {
            self.http
                .get_or_init(|| crate::http_client(Duration::from_secs(5), |builder| builder))
                .get(&self.jwks_url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|err| unavailable(format!("cannot fetch the signing keys: {err}")))?
                .json()
                .await
                .map_err(|err| unavailable(format!("the signing keys are not a JWKS: {err}")))
        }
        .await;
        let set = match fetched {
            Ok(set) => set,
            Err(rejection) => {
                keys.failed = Some(Instant::now());
                return Err(rejection);
            }
        };
        keys.fetched = Some(Instant::now());
        keys.failed = None;
        keys.by_kid = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        keys.by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| unauthorized("the token's signing key is unknown"))
    }

    /// Checks the request's bearer token; the answer never echoes the token.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                unauthorized("a push must carry a Google-signed OIDC token (Authorization: Bearer)")
            })?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("the bearer token is not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized("the token is not signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthorized("the token names no signing key"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Google writes the service URL with or without the trailing slash, depending on who set the audience.
        let other = match self.audience.strip_suffix('/') {
            Some(bare) => bare.to_string(),
            None => format!("{}/", self.audience),
        };
        validation.set_audience(&[self.audience.as_str(), other.as_str()]);
        validation.set_issuer(&ISSUERS);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|err| unauthorized(format!("the token was refused: {}", describe(&err))))?;
        // A token issued in the future was not issued by a clock antibody can trust.
        if data.claims.iat > crate::clock::Clock::system().now_secs() + LEEWAY as i64 {
            return Err(unauthorized(
                "the token was refused: it was issued in the future",
            ));
        }
        if !data.claims.email_verified
            || !self.emails.iter().any(|email| email == &data.claims.email)
        {
            return Err(Rejection {
                status: StatusCode::FORBIDDEN,
                message: format!("{} may not push to antibody", data.claims.email),
            });
        }
        Ok(())
    }
}

fn describe(err: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "it has expired",
        ErrorKind::InvalidAudience => "it is for another audience",
        ErrorKind::InvalidIssuer => "it was not issued by Google",
        ErrorKind::InvalidSignature => "its signature does not verify",
        ErrorKind::ImmatureSignature => "it is not valid yet",
        _ => "it is malformed",
    }
}

/// How far a signed push's timestamp may be from now.
const SIGNATURE_WINDOW_SECS: i64 = 300;

/// The nonces of `v2` signatures seen within the window: a request signed once is accepted once (per process).
#[derive(Default)]
pub struct Nonces {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl Nonces {
    /// Remembers `nonce` (signed at `timestamp`); `false` if it was seen already. Only requests whose signature
    /// verified are remembered, so a sender without the secret cannot fill the memory.
    fn first_use(&self, nonce: &str, timestamp: i64, now: i64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.retain(|_, at| (now - *at).abs() <= SIGNATURE_WINDOW_SECS);
        seen.insert(nonce.to_string(), timestamp).is_none()
    }
}

/// Checks a self-hosted sender's `v2` signature: HMAC-SHA256 over `TIMESTAMP.NONCE.METHOD.PATH.BODY`
/// (`X-Antibody-Timestamp`, `X-Antibody-Nonce`, `X-Antibody-Signature: v2=HEX`), so that a signature is good for one
/// request to one endpoint, once: a stale timestamp, another path or a nonce seen before is refused.
pub fn verify_request_signature(
    secret: &str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    nonces: &Nonces,
) -> Result<(), Rejection> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let timestamp = fresh_timestamp(headers)?;
    let nonce = header("x-antibody-nonce")
        .filter(|nonce| {
            (16..=128).contains(&nonce.len())
                && nonce
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
        .ok_or_else(|| {
            unauthorized("a v2-signed request must carry X-Antibody-Nonce: 16 to 128 letters, digits, - or _")
        })?;
    let tag = signature_tag(headers, "v2=")?;
    let mut message = format!("{timestamp}.{nonce}.{method}.{path}.").into_bytes();
    message.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, &message, &tag)
        .map_err(|_| unauthorized("the signature does not verify (for this method and path)"))?;
    if !nonces.first_use(nonce, timestamp, crate::clock::Clock::system().now_secs()) {
        return Err(unauthorized(
            "this signed request was used already (its nonce is spent)",
        ));
    }
    Ok(())
}

/// The `X-Antibody-Signature` value a sender with `secret` puts on a request (`v2`).
pub fn sign_request(
    secret: &str,
    timestamp: i64,
    nonce: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    let mut message = format!("{timestamp}.{nonce}.{method}.{path}.").into_bytes();
    message.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "v2={}",
        crate::hex(ring::hmac::sign(&key, &message).as_ref())
    )
}

/// `v2` signature over the request, or `v1` over the body only: `v1` is accepted on pushes alone, where the journal's
/// dedup keys make a replayed push a duplicate.
pub fn is_v2(headers: &HeaderMap) -> bool {
    headers
        .get("x-antibody-signature")
        .is_some_and(|value| value.as_bytes().starts_with(b"v2="))
}

fn fresh_timestamp(headers: &HeaderMap) -> Result<i64, Rejection> {
    let timestamp: i64 = headers
        .get("x-antibody-timestamp")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| unauthorized("a signed push must carry X-Antibody-Timestamp"))?;
    if (crate::clock::Clock::system().now_secs() - timestamp).abs() > SIGNATURE_WINDOW_SECS {
        return Err(unauthorized(
            "the signed push's timestamp is too far from now",
        ));
    }
    Ok(timestamp)
}

fn signature_tag(headers: &HeaderMap, version: &str) -> Result<Vec<u8>, Rejection> {
    let signature = headers
        .get("x-antibody-signature")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix(version))
        .ok_or_else(|| {
            unauthorized(format!(
                "a signed request must carry X-Antibody-Signature: {version}HEX"
            ))
        })?;
    (0..signature.len())
        .step_by(2)
        .map(|at| {
            signature
                .get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| unauthorized("the signature is not hex"))
}

/// Checks a self-hosted sender's HMAC signature over `TIMESTAMP.BODY`, rejecting stale timestamps (replays).
pub fn verify_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), Rejection> {
    let timestamp = fresh_timestamp(headers)?;
    let tag = signature_tag(headers, "v1=")?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    ring::hmac::verify(&key, &message, &tag)
        .map_err(|_| unauthorized("the signature does not verify"))
}
