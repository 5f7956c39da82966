//! The receiver's connections against slow, silent and greedy peers: bodies that never arrive, sockets that say
//! nothing, HTTP/2 connections kept alive by pings, and one host trying to take every slot or the whole unverified
//! share — valid pushes and other hosts still get through.

use std::time::Duration;

use gcp_sandbox::oidc::PushIdentity;
use serde_json::json;

use crate::harness::{Harness, Options, open_ssh};
use crate::push_auth::{AUDIENCE, PUSHER, SECRET};

// Issue 17, item 4: the body was read inside the concurrency limit and before the token was checked, with no
// deadline, so sockets that sent headers and one byte made every valid push 503 for minutes.
#[tokio::test]
async fn slow_senders_without_a_token_cannot_starve_valid_pushes() {
    use tokio::io::AsyncWriteExt;
    let identity = PushIdentity {
        audience: AUDIENCE.into(),
        email: PUSHER.into(),
    };
    let options = Options {
        push_identity: Some(identity),
        tweak: Box::new(|config| {
            config.push_audience = Some(AUDIENCE.into());
            config.push_emails = vec![PUSHER.into()];
            config.max_in_flight = 4;
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    let address = harness.engine.addr;
    let mut slow = Vec::new();
    for index in 0..40 {
        let mut socket = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let authorization = if index % 2 == 0 {
            ""
        } else {
            "Authorization: Bearer forged\r\n"
        };
        socket
            .write_all(
                format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{authorization}\
                     Content-Length: 100000\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        slow.push(socket);
    }
    harness.user_inserts(open_ssh("while-slow")).await;
    assert_eq!(
        harness.rule("while-slow").await["disabled"],
        true,
        "the sandbox's signed push got through"
    );
    drop(slow);
}

// Issue 17, item 4: a connection that says nothing is closed after the header deadline, so idle sockets cannot
// hold the process's descriptors.
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_deadline() {
    use tokio::io::AsyncReadExt;
    let harness = Harness::start().await;
    let mut socket = tokio::net::TcpStream::connect(harness.engine.addr)
        .await
        .expect("connect");
    let mut buffer = [0u8; 64];
    let closed = tokio::time::timeout(
        antibody::receive::listen::HEADER_TIMEOUT + Duration::from_secs(5),
        socket.read(&mut buffer),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the server closed the silent connection: {closed:?}"
    );
}

// An HTTP/2 connection that carries no request is closed after the same deadline, even though its peer answers every
// ping (HTTP/2's keep-alive would keep it forever): idle connections cannot hold the server's connection slots.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_header_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = Harness::start().await;
    let mut socket = tokio::net::TcpStream::connect(harness.engine.addr)
        .await
        .expect("connect");
    // The client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5); then only answers to pings.
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface");
    let started = std::time::Instant::now();
    let mut received: Vec<u8> = Vec::new();
    let mut types = Vec::new();
    let mut buffer = [0u8; 1024];
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
            // Whole frames: a 9-byte header (length, type, flags, stream) and the payload.
            while received.len() >= 9 {
                let length = usize::from(received[0]) << 16
                    | usize::from(received[1]) << 8
                    | usize::from(received[2]);
                if received.len() < 9 + length {
                    break;
                }
                let frame: Vec<u8> = received.drain(..9 + length).collect();
                types.push(frame[3]);
                if frame[3] == 6 && frame[4] & 1 == 0 {
                    // PING without ACK: answer it, as a live peer does.
                    let mut ack = frame.clone();
                    ack[4] = 1;
                    let _ = socket.write_all(&ack).await;
                }
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the idle connection was never closed: {types:?}"
    );
    assert!(
        started.elapsed() < antibody::receive::listen::HEADER_TIMEOUT + Duration::from_secs(5),
        "closed for idleness: {:?}",
        started.elapsed()
    );
    assert!(
        types.contains(&7),
        "a GOAWAY frame before the close: {types:?}"
    );
}

// Issue 35: with a shared secret the body is read before its sender is verified; one peer's stalled bodies (600 on
// one HTTP/2 connection, or many connections) filled the whole unverified share and every correctly signed push got
// 503. A peer now has its own part of that share; the others keep theirs.
#[tokio::test]
async fn one_peer_stalling_bodies_cannot_keep_signed_pushes_out() {
    use tokio::io::AsyncWriteExt;
    let harness = Harness::with(Options {
        tweak: Box::new(|config| {
            config.push_secret = Some(SECRET.into());
            // An unverified share of 16 bodies at once; 4 for any one peer.
            config.max_in_flight = 64;
        }),
        ..Options::default()
    })
    .await;
    let address = harness.engine.addr;
    let mut stalled = Vec::new();
    for _ in 0..40 {
        // The attacker is another host: 127.0.0.2 (the whole of 127/8 is this machine's).
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.2:0".parse().expect("address"))
            .expect("bind 127.0.0.2");
        let Ok(mut stream) = socket.connect(address).await else {
            continue;
        };
        let _ = stream
            .write_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
            )
            .await;
        stalled.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let body =
        json!({"insertId": "signed-while-stalled", "protoPayload": {"serviceName": "s", "methodName": "m"}})
            .to_string();
    let now = antibody::clock::Clock::system().now_secs();
    let nonce = "stalled-0123456789abcdef";
    let signed =
        antibody::receive::auth::sign_request(SECRET, now, nonce, "POST", "/", body.as_bytes());
    let answer = harness
        .http
        .post(harness.engine.url())
        .header("content-type", "application/json")
        .header("x-antibody-timestamp", now.to_string())
        .header("x-antibody-nonce", nonce)
        .header("x-antibody-signature", signed)
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status().as_u16(), 200, "{:?}", answer.text().await);
    drop(stalled);
}

// Issue 35: 2,100 silent connections held every connection slot (each freed after the header deadline, and ~205 new
// ones a second kept them all). One peer now holds half the slots at most; others are still served.
#[tokio::test]
async fn one_peer_cannot_hold_every_connection_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let server = tokio::spawn(antibody::receive::listen::serve(listener, app, 8, 1));
    let from = |host: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{host}:0").parse().expect("address"))
            .expect("bind");
        socket.connect(address).await.expect("connect")
    };
    // The silent peer takes its half: four connections held open, saying nothing.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(from("127.0.0.2").await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Its fifth is closed at once.
    let mut fifth = from("127.0.0.2").await;
    let mut byte = [0u8; 1];
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(2), fifth.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a peer's connection beyond its half is closed: {closed:?}"
    );
    // Another peer is served.
    let mut other = from("127.0.0.1").await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        other.read_to_string(&mut answer),
    )
    .await
    .expect("answered in time")
    .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(silent);
    server.abort();
}
