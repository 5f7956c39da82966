//! Google's token endpoints for credentials other than the metadata server: OAuth's `POST /token` (the gcloud user's
//! refresh token, a service account's JWT-bearer grant), IAM Credentials' `generateAccessToken` (impersonation), and
//! self-signed service-account JWTs used directly as bearer tokens. Service-account keys are "issued" by the sandbox:
//! they carry its own signing key, so it can verify what they sign.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;

const SIGNING_KEY: &str = include_str!("../keys/oidc-signing-key.pem");

/// A service-account key file, as `gcloud iam service-accounts keys create` writes it, for a key this sandbox issued.
pub fn service_account_key(email: &str, token_uri: &str) -> Value {
    let project = email
        .split('@')
        .nth(1)
        .and_then(|domain| domain.split('.').next())
        .unwrap_or("sandbox-project");
    json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": crate::oidc::KEY_ID,
        "private_key": SIGNING_KEY,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    // `…/serviceAccounts/EMAIL:generateAccessToken` is routed with the account's other methods (`iam_admin.rs`).
    Router::new().route("/token", post(token))
}

/// The principal a JWT names, if the sandbox's key signed it (a self-signed service-account JWT or a JWT-bearer
/// assertion): its `iss`, a service account's email.
pub(crate) fn self_signed_principal(token: &str) -> Option<String> {
    if token.split('.').count() != 3 {
        return None;
    }
    #[derive(Deserialize)]
    struct Claims {
        iss: String,
    }
    let jwks: Value = serde_json::from_str(crate::oidc::JWKS).ok()?;
    let key = &jwks["keys"][0];
    let decoding =
        jsonwebtoken::DecodingKey::from_rsa_components(key["n"].as_str()?, key["e"].as_str()?)
            .ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
    let data = jsonwebtoken::decode::<Claims>(token, &decoding, &validation).ok()?;
    data.claims.iss.contains('@').then_some(data.claims.iss)
}

/// Mints an access token for `principal` that the sandbox will recognise.
fn mint(shared: &Shared, kind: &str, principal: &str) -> (String, u64) {
    let serial = shared.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.sandbox-{kind}-{serial}");
    shared
        .issued
        .lock()
        .expect("token map poisoned")
        .insert(token.clone(), principal.to_string());
    (token, shared.config.metadata_token_lifetime.as_secs())
}

fn oauth_error(error: &str, description: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
}

/// The request's parameters: Google's endpoint takes them form-encoded (most libraries) or as JSON (some).
fn parameters(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json {
        let object: HashMap<String, Value> = serde_json::from_slice(body).unwrap_or_default();
        return object
            .into_iter()
            .filter_map(|(key, value)| value.as_str().map(|text| (key, text.to_string())))
            .collect();
    }
    let query = String::from_utf8_lossy(body);
    reqwest::Url::parse(&format!("http://form/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let form = parameters(&headers, &body);
    let principal = match form.get("grant_type").map(String::as_str) {
        // A user's refresh token (gcloud's application-default credentials): mapped like any token.
        Some("refresh_token") => form
            .get("refresh_token")
            .and_then(|refresh| shared.config.principals.get(refresh))
            .cloned()
            .ok_or_else(|| oauth_error("invalid_grant", "Bad Request"))?,
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => form
            .get("assertion")
            .and_then(|assertion| self_signed_principal(assertion))
            .ok_or_else(|| oauth_error("invalid_grant", "Invalid JWT Signature."))?,
        Some(other) => {
            return Err(oauth_error(
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            ));
        }
        None => return Err(oauth_error("invalid_request", "Missing grant_type")),
    };
    let (access_token, expires_in) = mint(&shared, "oauth", &principal);
    Ok(Json(json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "token_type": "Bearer",
    })))
}

/// `POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`: any principal the sandbox knows may impersonate.
pub(crate) async fn generate_access_token(
    State(shared): State<Arc<Shared>>,
    Path((_project, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, crate::ApiError> {
    let Some(target) = account.strip_suffix(":generateAccessToken") else {
        return Err(crate::ApiError::esf(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Method not found: {account}"),
        ));
    };
    let caller = shared.principal(&headers);
    if !caller.contains('@') {
        return Err(crate::ApiError::esf(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ));
    }
    let (access_token, lifetime) = mint(&shared, "impersonated", target);
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(lifetime as i64);
    Ok(Json(json!({
        "accessToken": access_token,
        "expireTime": expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })))
}
