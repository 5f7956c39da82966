//! The metadata server's token endpoint, as Cloud Run and GCE serve it, so that the credentials path antibody uses in
//! production is tested end to end: each token maps to the configured service account.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/token",
            get(token),
        )
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/email",
            get(email),
        )
}

fn flavored(headers: &HeaderMap) -> bool {
    headers
        .get("metadata-flavor")
        .and_then(|value| value.to_str().ok())
        == Some("Google")
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    if !flavored(&headers) {
        return Err(StatusCode::FORBIDDEN);
    }
    let serial = shared.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.sandbox-metadata-{serial}");
    shared
        .issued
        .lock()
        .expect("token map poisoned")
        .insert(token.clone(), shared.config.metadata_email.clone());
    Ok(Json(json!({
        "access_token": token,
        "expires_in": shared.config.metadata_token_lifetime.as_secs(),
        "token_type": "Bearer",
    })))
}

async fn email(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<String, StatusCode> {
    if !flavored(&headers) {
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(shared.config.metadata_email.clone())
}
