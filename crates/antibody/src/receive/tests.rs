//! Receiver tests through the router, no socket: envelopes, rejections and their status codes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    map
}

fn entry() -> Value {
    json!({"insertId": "abc", "logName": "projects/my-project/logs/cloudaudit.googleapis.com%2Factivity",
        "resource": {"type": "gce_firewall_rule", "labels": {"project_id": "my-project"}},
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
            "resourceName": "projects/my-project/global/firewalls/fw", "authenticationInfo": {"principalEmail": "u@example.com"}}})
}

fn binary_headers() -> HeaderMap {
    headers(&[
        ("ce-specversion", "1.0"),
        ("ce-id", "42"),
        (
            "ce-source",
            "//cloudaudit.googleapis.com/projects/my-project/logs/activity",
        ),
        ("ce-type", "google.cloud.audit.log.v1.written"),
        ("content-type", "application/json; charset=utf-8"),
    ])
}

fn event_of(decoded: Result<Decoded, Rejection>) -> AuditEvent {
    match decoded {
        Ok(Decoded::Event(event)) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn rejection(decoded: Result<Decoded, Rejection>) -> Rejection {
    match decoded {
        Err(rejection) => rejection,
        Ok(other) => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn binary_mode_keys_on_source_and_id() {
    let event = event_of(decode(&binary_headers(), entry().to_string().as_bytes()));
    assert_eq!(event.transport, Transport::EventarcBinary);
    assert_eq!(
        event.delivery_key,
        "ce://cloudaudit.googleapis.com/projects/my-project/logs/activity|42"
    );
    assert_eq!(
        event.resource_name,
        "projects/my-project/global/firewalls/fw"
    );
    assert_eq!(event.principal, "u@example.com");
}

#[test]
fn binary_mode_headers_are_case_insensitive() {
    let upper = headers(&[
        ("CE-SpecVersion", "1.0"),
        ("CE-ID", "42"),
        ("Ce-Source", "s"),
        ("CE-TYPE", "google.cloud.audit.log.v1.written"),
    ]);
    assert_eq!(
        event_of(decode(&upper, entry().to_string().as_bytes())).delivery_key,
        "ce:s|42"
    );
}

#[test]
fn structured_mode_accepts_camel_case_extensions_and_string_data() {
    let fixture: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/eventarc.structured.bigquery-job.cloudevents.json"
    ))
    .expect("fixture");
    let ce = headers(&[(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )]);
    let event = event_of(decode(&ce, fixture.to_string().as_bytes()));
    assert_eq!(event.transport, Transport::EventarcStructured);
    assert_eq!(event.method_name, "jobservice.jobcompleted");
    let mut as_string = fixture.clone();
    as_string["data"] = json!(fixture["data"].to_string());
    assert_eq!(
        event_of(decode(&ce, as_string.to_string().as_bytes())).method_name,
        "jobservice.jobcompleted"
    );
}

#[test]
fn pubsub_push_decodes_base64_log_entries() {
    use base64::Engine;
    let envelope = json!({"subscription": "projects/my-project/subscriptions/s", "message": {
        "data": base64::engine::general_purpose::STANDARD.encode(entry().to_string()),
        "message_id": "77", "publish_time": "2021-02-05T04:06:14.109Z"}});
    let event = event_of(decode(&HeaderMap::new(), envelope.to_string().as_bytes()));
    assert_eq!(event.transport, Transport::PubSubPush);
    assert_eq!(
        event.delivery_key,
        "pubsub:projects/my-project/subscriptions/s|77"
    );
    assert_eq!(
        event.log_key,
        "projects/my-project/logs/cloudaudit.googleapis.com%2Factivity|abc"
    );
}

#[test]
fn malformed_input_is_refused_with_a_reason() {
    let json_headers = headers(&[("content-type", "application/json")]);
    let cases: Vec<(HeaderMap, Vec<u8>, StatusCode, &str)> = vec![
        (
            json_headers.clone(),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            json_headers.clone(),
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "neither",
        ),
        (
            json_headers.clone(),
            json!({"insertId": "x"}).to_string().into_bytes(),
            StatusCode::BAD_REQUEST,
            "neither",
        ),
        (
            headers(&[("content-type", "text/plain")]),
            b"hi".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not JSON",
        ),
        (
            binary_headers(),
            b"garbage".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a JSON LogEntry",
        ),
        (
            headers(&[
                ("ce-specversion", "1.0"),
                ("ce-source", "s"),
                ("ce-type", "t"),
            ]),
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "ce-id",
        ),
        (
            headers(&[
                ("ce-specversion", "0.3"),
                ("ce-id", "1"),
                ("ce-source", "s"),
                ("ce-type", "t"),
            ]),
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "specversion",
        ),
        (
            headers(&[
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "s"),
                ("ce-type", "com.google.cloud.auditlog.event"),
            ]),
            entry().to_string().into_bytes(),
            StatusCode::BAD_REQUEST,
            "pre-GA",
        ),
        (
            json_headers.clone(),
            include_bytes!(
                "../../tests/fixtures/pubsub.push.duplicated-snake-case.cloudevents.json"
            )
            .to_vec(),
            StatusCode::BAD_REQUEST,
            "not a JSON LogEntry",
        ),
        (
            json_headers.clone(),
            json!({"message": {"data": "!!!", "messageId": "1"}})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "not base64",
        ),
        (
            json_headers.clone(),
            json!({"message": {"data": "e30="}})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "messageId",
        ),
        (
            json_headers,
            json!({"insertId": "x", "protoPayload": {"methodName": "m"}})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "serviceName",
        ),
    ];
    for (headers, body, status, phrase) in cases {
        let rejection = rejection(decode(&headers, &body));
        assert_eq!(
            rejection.status,
            status,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            rejection.message.contains(phrase),
            "{:?} lacks {phrase}",
            rejection.message
        );
    }
}

#[test]
fn other_cloudevent_types_are_acknowledged_not_handled() {
    let mut other = binary_headers();
    other.insert(
        "ce-type",
        "google.cloud.pubsub.topic.v1.messagePublished"
            .parse()
            .expect("value"),
    );
    assert!(matches!(decode(&other, b"{}"), Ok(Decoded::NotAudit(_))));
}

#[test]
fn deeply_nested_json_is_refused_not_a_crash() {
    let body = "[".repeat(100_000);
    let rejection = rejection(decode(
        &headers(&[("content-type", "application/json")]),
        body.as_bytes(),
    ));
    assert_eq!(rejection.status, StatusCode::BAD_REQUEST);
}

async fn context() -> (Arc<Context>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = crate::config::Config {
        state: dir.path().join("journal.sqlite"),
        // Nothing listens here: a re-read fails fast and transiently.
        google_endpoint: Some("http://127.0.0.1:9".into()),
        ..crate::config::Config::default()
    };
    (
        crate::build(config, crate::notify::LogSink::memory())
            .await
            .expect("engine"),
        dir,
    )
}

#[tokio::test]
async fn the_router_answers_413_above_one_mebibyte() {
    let (cx, _dir) = context().await;
    let body = vec![b' '; MAX_BODY + 1];
    let request = Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router(cx).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// What an organization sink pushes: the `logging.googleapis.com/timestamp` attribute, an audit entry at Logging's
/// 512 KiB limit (base64 makes it about 683 KiB), and the later part of a split entry, acknowledged and journaled.
#[tokio::test]
async fn a_sinks_largest_push_and_a_split_part_are_accepted_and_journaled() {
    use base64::Engine;
    let (cx, _dir) = context().await;
    let mut large = entry();
    large["protoPayload"]["methodName"] = json!("v1.compute.networks.insert");
    large["protoPayload"]["request"] = json!({"padding": "x".repeat(512 * 1024 - 1024)});
    let mut split = entry();
    split["insertId"] = json!("abc-part-2");
    split["split"] = json!({"uid": "s-1", "index": 1, "totalSplits": 2});
    for (id, entry) in [("1", &large), ("2", &split)] {
        let data = entry.to_string();
        assert!(data.len() <= 512 * 1024);
        let envelope = json!({"subscription": "projects/acme-sec/subscriptions/antibody-audit-push", "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "attributes": {"logging.googleapis.com/timestamp": "2026-11-29T10:00:00.123456Z"},
            "messageId": id, "publishTime": "2026-11-29T10:00:01.000Z"}});
        let request = Request::post("/")
            .header("content-type", "application/json")
            .body(Body::from(envelope.to_string()))
            .expect("request");
        let response = router(cx.clone()).oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK, "message {id}");
    }
    let rows = cx.journal.entries(10).await.expect("journal");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|row| row.outcome.as_deref() == Some("ignored"))
    );
    assert!(
        rows.iter().any(|row| row
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("part 2 of 2 of the split entry 's-1'")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn ignored_events_are_acknowledged_and_journaled() {
    let (cx, _dir) = context().await;
    let mut ignored = entry();
    ignored["protoPayload"]["methodName"] = json!("v1.compute.networks.insert");
    let request = Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from(ignored.to_string()))
        .expect("request");
    let response = router(cx.clone()).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let rows = cx.journal.entries(10).await.expect("journal");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome.as_deref(), Some("ignored"));
}

#[tokio::test]
async fn an_unreachable_google_asks_for_redelivery() {
    let (cx, _dir) = context().await;
    let request = Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from(entry().to_string()))
        .expect("request");
    let response = router(cx.clone()).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let rows = cx.journal.entries(10).await.expect("journal");
    assert_eq!(rows[0].outcome.as_deref(), Some("retry"));
    assert_eq!(rows[0].state, "retry");
}

#[tokio::test]
async fn health_endpoints_answer_without_side_effects() {
    let (cx, _dir) = context().await;
    for path in ["/healthz", "/readyz"] {
        let response = router(cx.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert!(cx.journal.entries(10).await.expect("journal").is_empty());
}

#[tokio::test]
async fn metrics_count_outcomes_from_the_journal() {
    let (cx, _dir) = context().await;
    let mut ignored = entry();
    ignored["protoPayload"]["methodName"] = json!("v1.compute.networks.insert");
    let request = Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from(ignored.to_string()))
        .expect("request");
    router(cx.clone()).oneshot(request).await.expect("response");
    let response = router(cx)
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("antibody_events_total{outcome=\"ignored\"} 1"),
        "{text}"
    );
    assert!(text.contains("antibody_paused 0"), "{text}");
}

#[tokio::test]
async fn every_decision_is_logged_with_its_trace() {
    let (cx, _dir) = context().await;
    let mut ignored = entry();
    ignored["protoPayload"]["methodName"] = json!("v1.compute.networks.insert");
    let request = Request::post("/")
        .header("content-type", "application/json")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::from(ignored.to_string()))
        .expect("request");
    router(cx.clone()).oneshot(request).await.expect("response");
    let lines = cx.log.lines();
    assert_eq!(lines.len(), 1, "routine decisions are logged too");
    assert_eq!(lines[0]["severity"], "INFO");
    assert_eq!(
        lines[0]["logging.googleapis.com/labels"]["outcome"],
        "ignored"
    );
    let trace = lines[0]["logging.googleapis.com/trace"]
        .as_str()
        .unwrap_or_default();
    assert!(
        trace.ends_with("/traces/4bf92f3577b34da6a3ce929d0e0e4736"),
        "{trace}"
    );
}

/// A Cloud Scheduler attempt's run is its schedule time, repeated by every retry; anything that is not a plausible
/// RFC 3339 time makes a fresh run rather than a key of the caller's choosing.
#[test]
fn a_scheduled_sweep_is_named_by_its_schedule_time_only() {
    let run = |value: &str| {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-cloudscheduler-scheduletime",
            value.parse().expect("a header value"),
        );
        scheduled::scheduled_run(&headers)
    };
    assert_eq!(
        run("2026-12-07T10:00:00.123Z").as_deref(),
        Some("scheduled-2026-12-07T10:00:00.123Z")
    );
    assert_eq!(
        run("2026-12-07T10:00:00+01:00").as_deref(),
        Some("scheduled-2026-12-07T10:00:00+01:00")
    );
    for hostile in [
        "projects/p/global/firewalls/x",
        "2026-12-07T10:00:00Z:projects/p",
        "now",
        "2026-12-07T10:00:00Z 2026-12-07T10:00:00Z 2026",
    ] {
        assert_eq!(run(hostile), None, "{hostile}");
    }
    assert_eq!(
        scheduled::scheduled_run(&axum::http::HeaderMap::new()),
        None
    );
}
