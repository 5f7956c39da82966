//! The receiver against hostile input over a real socket: each request gets a clear 4xx (never a 5xx that would be
//! redelivered for ever, never a crash), and the receiver keeps serving valid events afterwards.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Harness, PROJECT, open_ssh};

/// Sends raw bytes on a fresh connection and returns the status code of the answer (0 when the server closed the
/// connection without one).
async fn raw(harness: &Harness, request: Vec<u8>) -> u16 {
    let mut socket = tokio::net::TcpStream::connect(harness.engine.addr)
        .await
        .expect("connect");
    // The server may answer (and close) before it has read everything. The write side stays open: a half-closed
    // connection is taken as a client that went away.
    let _ = socket.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn post(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: antibody\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn entry_naming(resource: &str) -> Vec<u8> {
    json!({"insertId": format!("hostile-{}", resource.len()), "logName": format!("projects/{PROJECT}/logs/x"),
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.patch",
            "resourceName": resource}})
    .to_string()
    .into_bytes()
}

// Issue 17: the hostile-input table.
#[tokio::test]
async fn hostile_requests_get_a_clear_4xx_and_the_receiver_keeps_serving() {
    let harness = Harness::start().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut invalid_utf8 = br#"{"insertId": "x", "protoPayload": {"serviceName": ""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(br#""}}"#);
    let long_name = format!("projects/{PROJECT}/global/firewalls/{}", "a".repeat(50_000));
    let cases: Vec<(&str, Vec<u8>, std::ops::RangeInclusive<u16>)> = vec![
        (
            "100,000-deep JSON",
            post("Content-Type: application/json\r\n", deep.as_bytes()),
            400..=400,
        ),
        (
            "invalid UTF-8",
            post("Content-Type: application/json\r\n", &invalid_utf8),
            400..=400,
        ),
        (
            "a body over the limit",
            post(
                "Content-Type: application/json\r\n",
                &vec![b' '; 2 * 1024 * 1024],
            ),
            413..=413,
        ),
        (
            "a Content-Length that lies short",
            {
                let mut request = b"POST / HTTP/1.1\r\nHost: antibody\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n".to_vec();
                request.extend_from_slice(br#"{"insertId": "short"}"#);
                request
            },
            400..=400,
        ),
        (
            "two Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: antibody\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
            400..=400,
        ),
        (
            "an oversized CloudEvents header",
            post(
                &format!(
                    "Content-Type: application/json\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: x\r\n\
                     ce-type: google.cloud.audit.log.v1.written\r\nce-methodname: {}\r\n",
                    "m".repeat(1024 * 1024)
                ),
                b"{}",
            ),
            400..=431,
        ),
        (
            "a forged resource name",
            post(
                "Content-Type: application/json\r\n",
                &entry_naming(&format!("projects/{PROJECT}/global/firewalls/web-ssh?alt=json")),
            ),
            400..=400,
        ),
        (
            "a resource name longer than Google allows",
            post("Content-Type: application/json\r\n", &entry_naming(&long_name)),
            400..=400,
        ),
        (
            "not an audit entry",
            post("Content-Type: application/json\r\n", br#"{"hello": "world"}"#),
            400..=400,
        ),
        (
            "not JSON at all",
            post("Content-Type: text/plain\r\n", b"rm -rf /"),
            400..=415,
        ),
    ];
    for (what, request, expected) in cases {
        let status = raw(&harness, request).await;
        assert!(expected.contains(&status), "{what}: answered {status}");
    }
    // A forged or overlong name is journaled once, as ignored, with its reason; its stored name is bounded.
    let rows = harness.cx().journal.entries(100).await.expect("journal");
    let refused: Vec<_> = rows
        .iter()
        .filter(|row| row.outcome.as_deref() == Some("ignored"))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|row| row
            .reason
            .as_deref()
            .is_some_and(|reason| reason.len() < 400)),
        "{refused:?}"
    );
    // And the receiver still does its job.
    harness.user_inserts(open_ssh("after-the-storm")).await;
    assert_eq!(harness.rule("after-the-storm").await["disabled"], true);
}
