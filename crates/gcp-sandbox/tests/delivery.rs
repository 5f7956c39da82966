//! The sandbox delivers audit entries the way Eventarc and a log sink's push subscription do: binary and structured
//! CloudEvents, Pub/Sub envelopes, redelivery until acknowledged, and sink filters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gcp_sandbox::{Delivery, DeliveryMode, RetryPolicy, SandboxConfig};
use serde_json::{Value, json};

mod common;
use common::{rule, sandbox};

/// A subscriber that fails its first `failures` requests, recording every request it sees.
async fn subscriber(failures: usize) -> (String, Arc<Mutex<Vec<(HeaderMap, Value)>>>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let recorder = seen.clone();
    let app = axum::Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let recorder = recorder.clone();
            async move {
                let mut seen = recorder.lock().expect("lock");
                seen.push((
                    headers,
                    serde_json::from_slice(&body).unwrap_or(Value::Null),
                ));
                if seen.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, seen)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        max_attempts: 10,
        timeout: Duration::from_secs(5),
    }
}

// Issue 18, item 6: structured mode wrote its extension attributes in camelCase; the CloudEvents spec requires
// lowercase names, and Eventarc builds `id` from the entry's logName, insertId and timestamp.
#[tokio::test]
async fn structured_delivery_uses_lowercase_extension_attributes() {
    let (url, seen) = subscriber(0).await;
    let config = SandboxConfig {
        deliveries: vec![Delivery {
            mode: gcp_sandbox::DeliveryMode::EventarcStructured,
            ..Delivery::eventarc(url)
        }],
        retry: fast_retry(),
        ..SandboxConfig::default()
    };
    let (running, client, base) = sandbox(config).await;
    client
        .post(&base)
        .json(&rule("structured"))
        .send()
        .await
        .expect("insert");
    running.settled().await;
    let seen = seen.lock().expect("lock").clone();
    let (headers, body) = &seen[0];
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/cloudevents+json")
    );
    for attribute in ["methodname", "servicename", "resourcename", "recordedtime"] {
        assert!(body.get(attribute).is_some(), "{attribute} in {body}");
    }
    for camel in ["methodName", "serviceName", "resourceName", "recordedTime"] {
        assert!(body.get(camel).is_none(), "{camel} in {body}");
    }
    let entry = &body["data"];
    let digits: String = entry["timestamp"]
        .as_str()
        .expect("timestamp")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(
        body["id"].as_str(),
        Some(
            format!(
                "{}{}{digits}",
                entry["logName"].as_str().expect("logName"),
                entry["insertId"].as_str().expect("insertId")
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn eventarc_binary_delivery_redelivers_until_acknowledged() {
    let (url, seen) = subscriber(2).await;
    let config = SandboxConfig {
        deliveries: vec![Delivery::eventarc(url)],
        retry: fast_retry(),
        ..SandboxConfig::default()
    };
    let (running, client, base) = sandbox(config).await;
    client
        .patch(format!("{base}/missing"))
        .json(&json!({}))
        .send()
        .await
        .expect("failed write emits nothing");
    client
        .post(&base)
        .json(&rule("d"))
        .send()
        .await
        .expect("insert");
    running.settled().await;
    let seen = seen.lock().expect("lock").clone();
    // Two entries (first, last); one of them failed twice before a 204.
    assert_eq!(seen.len(), 4);
    let ids: std::collections::HashSet<String> = seen
        .iter()
        .map(|(headers, _)| headers["ce-id"].to_str().expect("ascii").to_string())
        .collect();
    assert_eq!(ids.len(), 2, "a redelivery keeps its ce-id");
    let (headers, body) = &seen[0];
    assert_eq!(headers["ce-type"], "google.cloud.audit.log.v1.written");
    assert_eq!(headers["ce-specversion"], "1.0");
    assert_eq!(
        headers["ce-source"],
        "//cloudaudit.googleapis.com/projects/p1/logs/activity"
    );
    assert_eq!(
        headers["ce-subject"],
        "compute.googleapis.com/projects/p1/global/firewalls/d"
    );
    assert_eq!(headers["ce-methodname"], "v1.compute.firewalls.insert");
    assert_eq!(headers["ce-servicename"], "compute.googleapis.com");
    assert_eq!(headers["ce-resourcename"], "projects/p1/global/firewalls/d");
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(
        headers["ce-recordedtime"].to_str().ok(),
        body["timestamp"].as_str()
    );
    assert_eq!(
        headers["ce-time"].to_str().ok(),
        body["receiveTimestamp"].as_str()
    );
    assert!(headers.contains_key("ce-dataschema"));
    assert_eq!(
        body["protoPayload"]["methodName"],
        "v1.compute.firewalls.insert"
    );
    let statuses: Vec<u16> = running
        .delivery_attempts()
        .iter()
        .map(|attempt| attempt.status)
        .collect();
    assert_eq!(statuses.iter().filter(|status| **status == 500).count(), 2);
}

#[tokio::test]
async fn pubsub_push_envelopes_carry_the_entry_in_base64() {
    use base64::Engine;
    let (url, seen) = subscriber(0).await;
    let delivery = Delivery {
        url,
        mode: DeliveryMode::PubSubPush,
        identity: None,
        filter: None,
    };
    let config = SandboxConfig {
        deliveries: vec![delivery],
        retry: fast_retry(),
        ..SandboxConfig::default()
    };
    let (running, client, base) = sandbox(config).await;
    client
        .post(&base)
        .json(&rule("ps"))
        .send()
        .await
        .expect("insert");
    running.settled().await;
    let seen = seen.lock().expect("lock").clone();
    let (_, envelope) = &seen[0];
    let message = &envelope["message"];
    assert_eq!(message["messageId"], message["message_id"]);
    assert_eq!(message["publishTime"], message["publish_time"]);
    let data = base64::engine::general_purpose::STANDARD
        .decode(message["data"].as_str().expect("data"))
        .expect("base64");
    let entry: Value = serde_json::from_slice(&data).expect("a LogEntry");
    assert_eq!(
        entry["protoPayload"]["resourceName"],
        "projects/p1/global/firewalls/ps"
    );
    assert!(
        envelope["subscription"]
            .as_str()
            .is_some_and(|name| name.starts_with("projects/p1/subscriptions/"))
    );
}

// A log sink routes only what its filter matches; the same query language as `entries:list`.
#[tokio::test]
async fn a_sink_filter_decides_which_entries_are_pushed() {
    use base64::Engine;
    let (url, seen) = subscriber(0).await;
    let filter = gcp_sandbox::logquery::Query::parse(
        r#"protoPayload.methodName="v1.compute.firewalls.insert" AND protoPayload.resourceName:"keep"
        AND operation.last=true"#,
    )
    .expect("a valid filter");
    let config = SandboxConfig {
        deliveries: vec![Delivery {
            url,
            mode: DeliveryMode::PubSubPush,
            identity: None,
            filter: Some(Arc::new(filter)),
        }],
        retry: fast_retry(),
        ..SandboxConfig::default()
    };
    let (running, client, base) = sandbox(config).await;
    for name in ["keep-1", "drop-1", "keep-2"] {
        let answer = client
            .post(&base)
            .json(&rule(name))
            .send()
            .await
            .expect("insert");
        assert!(answer.status().is_success());
    }
    let answer = client
        .delete(format!("{base}/keep-1"))
        .send()
        .await
        .expect("delete");
    assert!(answer.status().is_success());
    running.settled().await;
    let mut pushed: Vec<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, envelope)| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(envelope["message"]["data"].as_str().expect("data"))
                .expect("base64");
            let entry: Value = serde_json::from_slice(&data).expect("a LogEntry");
            entry["protoPayload"]["resourceName"]
                .as_str()
                .expect("resourceName")
                .to_string()
        })
        .collect();
    pushed.sort();
    assert_eq!(
        pushed,
        [
            "projects/p1/global/firewalls/keep-1",
            "projects/p1/global/firewalls/keep-2"
        ]
    );
}

#[test]
fn a_sink_filter_the_sandbox_cannot_read_is_refused_at_start() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        args: gcp_sandbox::cli::Args,
    }
    let parse = |filter: &str| {
        Command::try_parse_from([
            "sandbox",
            "--pubsub-push-to",
            "http://127.0.0.1:1/",
            "--sink-filter",
            filter,
        ])
        .expect("flags parse")
        .args
        .config()
    };
    let error = parse("protoPayload.methodName=(").expect_err("refused");
    assert!(error.to_string().starts_with("--sink-filter: "), "{error}");
    let (config, _) = parse(r#"logName:"cloudaudit.googleapis.com""#).expect("a valid filter");
    assert!(config.deliveries[0].filter.is_some());
}
