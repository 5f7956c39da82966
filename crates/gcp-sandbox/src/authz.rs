//! Which IAM permission each emulated call needs, recorded per principal: tests compare what a caller really used
//! with the role it would be given.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::Shared;

/// Principal → permissions its calls needed.
#[derive(Default)]
pub(crate) struct Ledger {
    used: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Ledger {
    pub(crate) fn used_by(&self, principal: &str) -> BTreeSet<String> {
        self.used
            .lock()
            .expect("ledger lock poisoned")
            .get(principal)
            .cloned()
            .unwrap_or_default()
    }

    fn record(&self, principal: String, permissions: Vec<&'static str>) {
        if permissions.is_empty() {
            return;
        }
        let mut used = self.used.lock().expect("ledger lock poisoned");
        let entry = used.entry(principal).or_default();
        entry.extend(permissions.into_iter().map(str::to_string));
    }
}

/// The permissions a request needs, as Google documents them per method.
fn permissions(method: &Method, path: &str, query: &str, body: &[u8]) -> Vec<&'static str> {
    let full = query.split('&').any(|pair| pair == "projection=full");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let writes_acl = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|body| body.get("acl").is_some() || body.get("defaultObjectAcl").is_some())
    };
    match (method, segments.as_slice()) {
        (&Method::GET, ["compute", _, "projects", _, "global", "firewalls"]) => {
            vec!["compute.firewalls.list"]
        }
        (&Method::POST, ["compute", _, "projects", _, "global", "firewalls"]) => {
            vec!["compute.firewalls.create", "compute.networks.updatePolicy"]
        }
        (&Method::GET, ["compute", _, "projects", _, "global", "firewalls", _]) => {
            vec!["compute.firewalls.get"]
        }
        (
            &Method::PATCH | &Method::PUT,
            ["compute", _, "projects", _, "global", "firewalls", _],
        ) => {
            vec!["compute.firewalls.update", "compute.networks.updatePolicy"]
        }
        (&Method::DELETE, ["compute", _, "projects", _, "global", "firewalls", _]) => {
            vec!["compute.firewalls.delete", "compute.networks.updatePolicy"]
        }
        (_, ["compute", _, "projects", _, "global", "operations", ..]) => {
            vec!["compute.globalOperations.get"]
        }
        (&Method::GET, ["v1" | "v3", "projects", _]) => vec!["resourcemanager.projects.get"],
        (&Method::POST, ["v1" | "v3", "projects", target]) if target.ends_with(":getIamPolicy") => {
            vec!["resourcemanager.projects.getIamPolicy"]
        }
        (&Method::POST, ["v1" | "v3", "projects", target]) if target.ends_with(":setIamPolicy") => {
            vec!["resourcemanager.projects.setIamPolicy"]
        }
        (&Method::GET, ["storage", "v1", "b"]) if full => {
            vec!["storage.buckets.list", "storage.buckets.getIamPolicy"]
        }
        (&Method::GET, ["storage", "v1", "b"]) => vec!["storage.buckets.list"],
        (&Method::POST, ["storage", "v1", "b"]) => vec!["storage.buckets.create"],
        (&Method::GET, ["storage", "v1", "b", _]) if full => {
            vec!["storage.buckets.get", "storage.buckets.getIamPolicy"]
        }
        (&Method::GET, ["storage", "v1", "b", _]) => vec!["storage.buckets.get"],
        (&Method::PATCH | &Method::PUT, ["storage", "v1", "b", _]) if writes_acl() => {
            vec!["storage.buckets.update", "storage.buckets.setIamPolicy"]
        }
        (&Method::PATCH | &Method::PUT, ["storage", "v1", "b", _]) => {
            vec!["storage.buckets.update"]
        }
        (&Method::DELETE, ["storage", "v1", "b", _]) => vec!["storage.buckets.delete"],
        (&Method::GET, ["storage", "v1", "b", _, "iam" | "acl", ..]) => {
            vec!["storage.buckets.getIamPolicy"]
        }
        (_, ["storage", "v1", "b", _, "iam" | "acl", ..]) => vec!["storage.buckets.setIamPolicy"],
        _ => Vec::new(),
    }
}

/// Middleware: notes the permissions every request needed, then lets it through unchanged.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return next.run(Request::from_parts(parts, Body::empty())).await,
    };
    let needed = permissions(
        &parts.method,
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &bytes,
    );
    shared
        .ledger
        .record(shared.principal(&parts.headers), needed);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
