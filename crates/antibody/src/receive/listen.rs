//! The receiver's socket: every connection under a header deadline (which also ends idle keep-alive connections),
//! and a bound on how many are open at once, so that silent or slow sockets cannot hold the process's descriptors —
//! and no one peer more than half of them, nor more than its share of the bodies read before their sender is verified.
//! HTTP/1.1, or HTTP/2 in cleartext for a sender that opens with HTTP/2's preface (Cloud Run's front end with
//! `--use-http2`): then many deliveries share one connection instead of holding one each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client may take to send a request's headers, counted from when the connection is ready for one:
/// a connection that says nothing for this long (new, or idle between requests) is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's body, once its headers are in (and its token, if any, checked).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once; beyond it a new connection is closed as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 2048;

/// Requests one HTTP/2 connection carries at once (the in-flight limit still bounds the events handled).
const MAX_STREAMS: u32 = 1000;

/// The first bytes of every HTTP/2 connection (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One peer's share of the requests whose bodies are read before their sender is verified, carried in each of its
/// requests' extensions: the receiver takes a permit from it beside one from the process-wide share, so that one
/// peer — however many connections or HTTP/2 streams it opens — cannot take what other senders need.
#[derive(Clone)]
pub struct PeerShare(pub Arc<Semaphore>);

/// The peers with connections open: how many each has, and its share of unverified reads.
struct Peers {
    /// Connections one peer may hold (half of all).
    connections_each: usize,
    /// Unverified reads one peer may have in progress.
    unverified_each: usize,
    open: Mutex<HashMap<IpAddr, (usize, Arc<Semaphore>)>>,
}

impl Peers {
    /// A connection from `peer`, with its share, unless the peer holds its most already.
    fn enter(self: &Arc<Peers>, peer: IpAddr) -> Option<PeerSlot> {
        let mut open = self.open.lock().ok()?;
        let (count, share) = open
            .entry(peer)
            .or_insert_with(|| (0, Arc::new(Semaphore::new(self.unverified_each))));
        if *count >= self.connections_each {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            share: PeerShare(share.clone()),
            peer,
            peers: self.clone(),
        })
    }
}

/// A connection's place among its peer's: given back when the connection ends.
struct PeerSlot {
    share: PeerShare,
    peer: IpAddr,
    peers: Arc<Peers>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.peers.open.lock()
            && let Some((count, _)) = open.get_mut(&self.peer)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Serves `app` on `listener` until the task is aborted: at most `max_connections` connections, half of them from
/// one peer at most, and each peer at most `unverified_per_peer` unverified body reads at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    unverified_per_peer: usize,
) {
    raise_descriptor_limit();
    let open = Arc::new(Semaphore::new(max_connections.max(1)));
    let peers = Arc::new(Peers {
        connections_each: (max_connections / 2).max(1),
        unverified_each: unverified_per_peer.max(1),
        open: Mutex::new(HashMap::new()),
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok((stream, address)) => (stream, address.ip()),
            Err(err) => {
                // Out of descriptors or a reset before accept: wait a moment rather than spin.
                tracing::warn!(%err, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let Some(slot) = peers.enter(peer) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = WithShare {
            inner: TowerToHyperService::new(app.clone()),
            share: slot.share.clone(),
        };
        tokio::spawn(async move {
            // The first bytes decide the protocol; a connection that sends none within the header deadline is closed.
            let served = match tokio::time::timeout(HEADER_TIMEOUT, speaks_http2(&stream)).await {
                Ok(true) => serve_http2(stream, service).await,
                Ok(false) => {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT);
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Err(_) => Ok(()),
            };
            if let Err(err) = served {
                tracing::debug!(%err, "connection ended");
            }
            drop(slot);
            drop(permit);
        });
    }
}

/// Serves an HTTP/2 connection until its peer closes it, or until it has carried no request for `HEADER_TIMEOUT`
/// (then it is closed gracefully, as an idle HTTP/1.1 connection is): a peer that only answers pings cannot keep a
/// connection, and its slot, forever.
async fn serve_http2<S>(stream: tokio::net::TcpStream, service: S) -> Result<(), hyper::Error>
where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<axum::body::Body>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::default());
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(HEADER_TIMEOUT)
        .keep_alive_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(
        TokioIo::new(stream),
        Watched {
            inner: service,
            activity: activity.clone(),
        },
    );
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => return served,
            () = tokio::time::sleep(HEADER_TIMEOUT / 4), if !closing => {
                if activity.idle_for() >= HEADER_TIMEOUT {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Requests in progress on a connection, and when the last one ended.
struct Activity {
    active: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<tokio::time::Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            active: Default::default(),
            last: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
}

impl Activity {
    /// How long the connection has carried no request (zero while one is in progress).
    fn idle_for(&self) -> Duration {
        if self.active.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last
            .lock()
            .map(|last| last.elapsed())
            .unwrap_or(Duration::ZERO)
    }
}

/// A request counted on its connection's activity while it runs.
struct Active(Arc<Activity>);

impl Active {
    fn new(activity: Arc<Activity>) -> Active {
        activity
            .active
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Active(activity)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Ok(mut last) = self.0.last.lock() {
            *last = tokio::time::Instant::now();
        }
        self.0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A service that counts its requests on the connection's activity.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> hyper::service::Service<R> for Watched<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn call(&self, request: R) -> Self::Future {
        let active = Active::new(self.activity.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answered = answer.await;
            drop(active);
            answered
        })
    }
}

/// A connection's service: each request carries its peer's share in its extensions (a clone of one `Arc`, no work
/// per connection beyond it).
#[derive(Clone)]
struct WithShare<S> {
    inner: S,
    share: PeerShare,
}

impl<S, B> hyper::service::Service<hyper::Request<B>> for WithShare<S>
where
    S: hyper::service::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: hyper::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.share.clone());
        self.inner.call(request)
    }
}

/// Whether the connection opens with HTTP/2's preface: its first bytes, looked at without being consumed. A
/// connection that closes or sends something else is HTTP/1.1 (whose parser then answers or ends it).
async fn speaks_http2(stream: &tokio::net::TcpStream) -> bool {
    let mut first = [0u8; PREFACE.len()];
    // Peeking returns at once while the bytes seen are unchanged, and readiness stays set, so a prefix is looked at
    // again after a pause that grows: a client sends the preface in one packet, and a peer that stalls half-way
    // (until the header deadline) costs a few looks a second, not hundreds.
    let mut pause = Duration::from_millis(5);
    loop {
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return false,
            Ok(seen) if first[..seen] != PREFACE[..seen] => return false,
            Ok(seen) if seen == PREFACE.len() => return true,
            Ok(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// Lets the process open as many descriptors as its hard limit allows (a soft limit of 1,024 is common), so that
/// the connection bound, not the system, decides when connections are turned away.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed; failure leaves the limit as it was.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
