//! Google's JSON error bodies, as Compute Engine writes them (`error.code`, `error.message`, `error.errors[]`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API failure rendered exactly the way the emulated Google service renders it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
    /// The gRPC-style status string (`ABORTED`, `NOT_FOUND`) that newer front ends add; Compute omits it.
    pub grpc_status: Option<&'static str>,
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            reason: "notFound",
            message: format!("The resource '{what}' was not found"),
            grpc_status: None,
        }
    }

    pub fn already_exists(what: &str) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            reason: "alreadyExists",
            message: format!("The resource '{what}' already exists"),
            grpc_status: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            reason: "invalid",
            message: message.into(),
            grpc_status: None,
        }
    }

    /// A request Compute refuses as a whole (`errors[].reason: "badRequest"`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            reason: "badRequest",
            message: message.into(),
            grpc_status: None,
        }
    }

    /// Compute's 412 for a write whose fingerprint is not the resource's any more.
    pub fn condition_not_met(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::PRECONDITION_FAILED,
            reason: "conditionNotMet",
            message: message.into(),
            grpc_status: None,
        }
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            reason: "parseError",
            message: message.into(),
            grpc_status: Some("INVALID_ARGUMENT"),
        }
    }

    pub fn unauthenticated() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            reason: "required",
            message: "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.".into(),
            grpc_status: Some("UNAUTHENTICATED"),
        }
    }

    /// The newer front end's shape (Resource Manager, IAM): `status` and no `errors[]`.
    /// Refuses a request body naming a field the message type lacks, as the APIs behind Google's newer front end
    /// do (Resource Manager v3 among them): `Invalid JSON payload received. Unknown name "type": Cannot find field.`
    pub fn unknown_fields(body: &serde_json::Value, known: &[&str]) -> Result<(), Self> {
        Self::unknown_fields_at(body, "", known)
    }

    /// As `unknown_fields`, for the object at `at` (`settings.ipConfiguration`) of a request, named as Google names
    /// it. Google's JSON parser takes a field by its JSON name (`includeChildren`) or its proto name
    /// (`include_children`); both are known.
    pub fn unknown_fields_at(
        body: &serde_json::Value,
        at: &str,
        known: &[&str],
    ) -> Result<(), Self> {
        let unknown = body
            .as_object()
            .into_iter()
            .flat_map(|fields| fields.keys())
            .find(|field| {
                !known
                    .iter()
                    .any(|name| *name == field.as_str() || snake_case(name) == field.as_str())
            });
        let place = match at {
            "" => String::new(),
            at => format!(" at '{at}'"),
        };
        match unknown {
            Some(field) => Err(ApiError::esf(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!(
                    "Invalid JSON payload received. Unknown name {}{place}: Cannot find field.",
                    serde_json::Value::from(field.as_str())
                ),
            )),
            None => Ok(()),
        }
    }

    pub fn esf(status: StatusCode, grpc_status: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason: "",
            message: message.into(),
            grpc_status: Some(grpc_status),
        }
    }

    pub fn injected(status: StatusCode) -> Self {
        let (reason, grpc) = match status.as_u16() {
            429 => ("rateLimitExceeded", "RESOURCE_EXHAUSTED"),
            // A conflict: what Firestore answers a transaction that lost to a concurrent write.
            409 => ("aborted", "ABORTED"),
            503 => ("backendError", "UNAVAILABLE"),
            _ => ("backendError", "INTERNAL"),
        };
        ApiError {
            status,
            reason,
            message: format!(
                "Injected fault: {}",
                status.canonical_reason().unwrap_or("error")
            ),
            grpc_status: Some(grpc),
        }
    }

    /// The body Google returns for this error.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.status.as_u16(), "message": self.message});
        if !self.reason.is_empty() {
            error["errors"] =
                json!([{"message": self.message, "domain": "global", "reason": self.reason}]);
        }
        if let Some(status) = self.grpc_status {
            error["status"] = json!(status);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// A JSON name's proto name: `includeChildren` → `include_children`.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}
