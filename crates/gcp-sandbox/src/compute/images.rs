//! Compute Engine's public images, as far as gcloud reads them: `images.getFromFamily` and `images.get` answer an
//! image of any family in any project (gcloud resolves a boot image before it creates an instance or a template).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{API_ROOT, api_version};
use crate::error::ApiError;
use crate::{Shared, digest};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/compute/{version}/projects/{project}/global/images/family/{family}",
            get(from_family),
        )
        .route(
            "/compute/{version}/projects/{project}/global/images/{image}",
            get(image),
        )
}

fn body(project: &str, name: &str, family: &str) -> Response {
    crate::json_response(&json!({
        "kind": "compute#image",
        "id": (digest(&format!("{project}/{name}")) % 9_000_000_000_000_000_000).to_string(),
        "creationTimestamp": "2026-12-01T00:00:00.000-08:00",
        "name": name,
        "family": family,
        "status": "READY",
        "sourceType": "RAW",
        "diskSizeGb": "10",
        "architecture": "X86_64",
        "selfLink": format!("{API_ROOT}/projects/{project}/global/images/{name}"),
    }))
}

async fn from_family(
    State(_shared): State<Arc<Shared>>,
    Path((version, project, family)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    Ok(body(&project, &format!("{family}-v20261201"), &family))
}

async fn image(
    State(_shared): State<Arc<Shared>>,
    Path((version, project, image)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    api_version(&version)?;
    let family = image
        .rsplit_once("-v")
        .map_or(image.as_str(), |(family, _)| family);
    Ok(body(&project, &image, family))
}
