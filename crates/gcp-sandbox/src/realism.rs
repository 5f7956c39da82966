//! Google's speed and limits, on demand: every API answer delayed by a latency (with jitter), and a per-project
//! request quota answered with Google's 429 `RESOURCE_EXHAUSTED`. Off by default, so that tests and the demo stay
//! fast; benchmarks turn them on to measure antibody against something like Google rather than loopback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::error::ApiError;

/// A latency added to every answer: `base` plus up to `jitter`, uniformly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub base: Duration,
    pub jitter: Duration,
}

impl Latency {
    /// `MS` or `MS,JITTER_MS`.
    pub fn parse(text: &str) -> Result<Latency, String> {
        let number = |part: &str| {
            part.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("'{text}' is not MS or MS,JITTER_MS"))
        };
        match text.split_once(',') {
            Some((base, jitter)) => Ok(Latency {
                base: number(base)?,
                jitter: number(jitter)?,
            }),
            None => Ok(Latency {
                base: number(text)?,
                jitter: Duration::ZERO,
            }),
        }
    }

    fn sample(&self, seed: u64) -> Duration {
        let jitter = self.jitter.as_micros() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            // A cheap spread that needs no random source: the request counter through a multiplicative hash.
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (jitter + 1)
        };
        self.base + Duration::from_micros(extra)
    }
}

/// Requests per project in the current second, and the requests served so far (all of them, and those a per-project
/// quota counts), which `GET /_sandbox/requests` reports for benchmarks.
#[derive(Default)]
pub(crate) struct Quotas {
    used: Mutex<HashMap<String, (u64, u32)>>,
    requests: std::sync::atomic::AtomicU64,
    project_requests: std::sync::atomic::AtomicU64,
}

pub(crate) fn routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new().route("/_sandbox/requests", axum::routing::get(requests_served))
}

/// `GET /_sandbox/requests`: how many Google API requests the sandbox has answered.
async fn requests_served(State(shared): State<Arc<Shared>>) -> axum::Json<serde_json::Value> {
    let load =
        |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    axum::Json(serde_json::json!({
        "requests": load(&shared.quotas.requests),
        "project_requests": load(&shared.quotas.project_requests),
    }))
}

impl Quotas {
    /// Whether one more request about `project` in `second` fits in `limit` per second.
    fn admit(&self, project: &str, limit: u32, second: u64) -> bool {
        let mut used = self.used.lock().expect("quota lock poisoned");
        let entry = used.entry(project.to_string()).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

/// The project a Google API path is about, where it names one.
fn project_of(path: &str) -> Option<&str> {
    let mut segments = path.trim_matches('/').split('/');
    while let Some(segment) = segments.next() {
        if segment == "projects" {
            return segments
                .next()
                .map(|project| project.split(':').next().unwrap_or(project));
        }
    }
    None
}

/// Middleware: the quota first (a refused request costs no latency of its own beyond Google's), then the latency.
pub(crate) async fn apply(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let config = &shared.config;
    let seed = shared
        .quotas
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let project = project_of(&path);
    if project.is_some() {
        shared
            .quotas
            .project_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if config.latency.base > Duration::ZERO || config.latency.jitter > Duration::ZERO {
        tokio::time::sleep(config.latency.sample(seed)).await;
    }
    if let (Some(limit), Some(project)) = (config.quota_per_project_per_s, project)
        && !shared.quotas.admit(
            project,
            limit,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs())
                .unwrap_or_default(),
        )
    {
        return ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: "rateLimitExceeded",
            message: format!(
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per second' for consumer \
                 'project:{project}' ({limit} per second in this sandbox)."
            ),
            grpc_status: Some("RESOURCE_EXHAUSTED"),
        }
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_parse_and_stay_within_their_jitter() {
        assert_eq!(
            Latency::parse("50").expect("ms"),
            Latency {
                base: Duration::from_millis(50),
                jitter: Duration::ZERO
            }
        );
        let latency = Latency::parse("30,20").expect("ms,jitter");
        for seed in 0..1000 {
            let sample = latency.sample(seed);
            assert!(sample >= Duration::from_millis(30) && sample <= Duration::from_millis(50));
        }
        assert!(Latency::parse("fast").is_err());
    }

    #[test]
    fn a_project_gets_its_quota_per_second() {
        let quotas = Quotas::default();
        assert!((0..5).all(|_| quotas.admit("p1", 5, 100)));
        assert!(
            !quotas.admit("p1", 5, 100),
            "the sixth in one second is refused"
        );
        assert!(
            quotas.admit("p2", 5, 100),
            "another project has its own quota"
        );
        assert!(quotas.admit("p1", 5, 101), "the next second starts afresh");
        assert_eq!(
            project_of("/compute/v1/projects/p1/global/firewalls"),
            Some("p1")
        );
        assert_eq!(project_of("/v1/projects/p1:getIamPolicy"), Some("p1"));
        assert_eq!(project_of("/storage/v1/b/bucket"), None);
    }
}
