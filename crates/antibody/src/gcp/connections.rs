//! Connections to Google's APIs: HTTP clients opened as calls need them, so that the calls waiting at once are
//! spread over enough HTTP/2 connections.
//!
//! Over HTTP/2 a client shares one connection per host, and a connection carries a bounded number of concurrent
//! streams (the server's `SETTINGS_MAX_CONCURRENT_STREAMS`); calls beyond it queue inside the connection. A burst
//! holds a call per handling for as long as Google takes — an `operations.wait` lasts as long as the operation — so a
//! single connection would serialise a burst behind its stream limit. Each lane below is a client of its own (its
//! own pool, so its own connection to each host); a call takes the first lane with room, and a lane is opened only
//! when every open one is busy: at a low rate everything shares one warm connection.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Calls one connection carries before another is opened: below the concurrent streams servers commonly allow.
const CALLS_PER_LANE: usize = 64;
/// Lanes at most: with `serve.max_in_flight` at its default of 2,048, every handling can have a stream.
const LANES: usize = 32;

#[derive(Debug)]
pub(crate) struct Connections {
    lanes: Box<[Lane]>,
    bound: Duration,
    http2: bool,
}

#[derive(Debug, Default)]
struct Lane {
    /// Built on first use (loading the system's root certificates is most of a cold start).
    client: OnceLock<reqwest::Client>,
    calls: AtomicUsize,
}

/// A call's place in a lane, given back when dropped.
pub(crate) struct Seat<'a> {
    lane: &'a Lane,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.lane.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    /// Every call ends within `bound`; `http2` speaks HTTP/2 without TLS (see `Endpoints::speaking_http2`).
    pub(crate) fn new(bound: Duration, http2: bool) -> Self {
        Connections {
            lanes: (0..LANES).map(|_| Lane::default()).collect(),
            bound,
            http2,
        }
    }

    /// Builds the first lane's client now, so that the first call does not wait for it.
    pub(crate) fn warm(&self) {
        self.client(&self.lanes[0]);
    }

    /// A client for one call, and the seat that counts the call until it is dropped (after the answer is read).
    pub(crate) fn take(&self) -> (&reqwest::Client, Seat<'_>) {
        let lane = self
            .lanes
            .iter()
            .find(|lane| lane.calls.load(Ordering::Relaxed) < CALLS_PER_LANE)
            .unwrap_or_else(|| {
                self.lanes
                    .iter()
                    .min_by_key(|lane| lane.calls.load(Ordering::Relaxed))
                    .expect("at least one lane")
            });
        lane.calls.fetch_add(1, Ordering::Relaxed);
        (self.client(lane), Seat { lane })
    }

    /// How many lanes have a client (connections opened, at most one per host each).
    #[cfg(test)]
    fn opened(&self) -> usize {
        self.lanes
            .iter()
            .filter(|lane| lane.client.get().is_some())
            .count()
    }

    fn client<'a>(&self, lane: &'a Lane) -> &'a reqwest::Client {
        lane.client
            .get_or_init(|| super::http_client(self.bound, self.http2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_share_one_lane_until_it_is_full_then_spread() {
        let connections = Connections::new(Duration::from_secs(1), false);
        let first: Vec<_> = (0..CALLS_PER_LANE).map(|_| connections.take()).collect();
        assert_eq!(
            connections.opened(),
            1,
            "a quiet client keeps one connection"
        );
        let next = connections.take();
        assert_eq!(connections.opened(), 2, "a full lane opens the next");
        drop(first);
        drop(next);
        let _again = connections.take();
        assert_eq!(connections.opened(), 2, "lanes stay open for reuse");
        assert_eq!(connections.lanes[0].calls.load(Ordering::Relaxed), 1);
        assert_eq!(connections.lanes[1].calls.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn beyond_every_lane_calls_go_to_the_least_busy() {
        let connections = Connections::new(Duration::from_secs(1), false);
        let held: Vec<_> = (0..LANES * CALLS_PER_LANE + 3)
            .map(|_| connections.take())
            .collect();
        assert_eq!(connections.opened(), LANES);
        let loads: Vec<_> = connections
            .lanes
            .iter()
            .map(|lane| lane.calls.load(Ordering::Relaxed))
            .collect();
        assert!(loads.iter().all(|&calls| calls <= CALLS_PER_LANE + 1));
        drop(held);
        assert!(
            connections
                .lanes
                .iter()
                .all(|lane| lane.calls.load(Ordering::Relaxed) == 0)
        );
    }
}
