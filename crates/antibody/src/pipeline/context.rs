//! `Context`: everything a handler needs, built once per process — the configuration, the Google client, the journal,
//! the per-resource locks and this instance's counters (its recent fixes, its recent Google calls).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::locks::ResourceLocks;
use crate::config::Config;
use crate::gcp::{self, Client};
use crate::journal::Journal;
use crate::notify::LogSink;

/// Everything a handler needs; built once per process.
pub struct Context {
    pub config: Config,
    pub gcp: Client,
    pub journal: Journal,
    pub log: LogSink,
    pub(super) locks: ResourceLocks,
    /// When this process applied its recent fixes (the per-instance cap).
    fixes: Mutex<std::collections::VecDeque<Instant>>,
    /// Whether each of the recent Google calls failed (the circuit breaker).
    google_calls: Mutex<std::collections::VecDeque<bool>>,
    /// Wakes the outbox worker when a decision wrote alerts.
    pub alerts_waiting: Arc<tokio::sync::Notify>,
    /// Held while this process delivers alerts outside the worker (`serve.cpu = "request"`), one delivery at a time.
    pub(super) delivering: tokio::sync::Mutex<()>,
    /// Each project's ancestry and when (engine-clock milliseconds) it is to be read again.
    ancestry: Mutex<std::collections::HashMap<String, (Vec<String>, i64)>>,
    /// Events being handled now, at most `serve.max_in_flight`: every permit back means none is.
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    /// Set when the process is asked to stop (SIGTERM): new deliveries are answered 503 and redelivered elsewhere.
    draining: std::sync::atomic::AtomicBool,
}

impl Context {
    pub fn new(config: Config, gcp: Client, journal: Journal, log: LogSink) -> Context {
        let config_in_flight = config.max_in_flight;
        Context {
            config,
            gcp,
            journal,
            log,
            locks: ResourceLocks::default(),
            fixes: Mutex::new(std::collections::VecDeque::new()),
            alerts_waiting: Arc::new(tokio::sync::Notify::new()),
            delivering: tokio::sync::Mutex::new(()),
            google_calls: Mutex::new(std::collections::VecDeque::new()),
            ancestry: Mutex::new(std::collections::HashMap::new()),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config_in_flight)),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the process is stopping: it takes no new events.
    pub fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops taking events and waits, until `deadline`, for those being handled to finish; `true` when none is left.
    pub async fn drain(&self, deadline: tokio::time::Instant) -> bool {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        loop {
            if self.in_flight.available_permits() >= self.config.max_in_flight {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A project's folders and organization, nearest first (for a folder: itself, then its parents; for an
    /// organization: itself): read from Resource Manager, trusted for `[scope] ancestry_cache_seconds`.
    pub async fn ancestry(&self, project: &str) -> Result<Vec<String>, gcp::Error> {
        let now = self.clock().now_ms();
        if let Some((ancestors, until)) = self
            .ancestry
            .lock()
            .expect("ancestry cache poisoned")
            .get(project)
            && *until > now
        {
            return Ok(ancestors.clone());
        }
        let ancestors = match project.strip_prefix("organizations/") {
            Some(_) => vec![project.to_string()],
            None if project.starts_with("folders/") => {
                // A folder is under itself for the scope's rules, then each parent up to the organization.
                let mut chain = vec![project.to_string()];
                while let Some(last) = chain.last().filter(|name| name.starts_with("folders/"))
                    && chain.len() < 24
                {
                    let parent = self.gcp.folder_parent(last).await?;
                    if parent.is_empty() {
                        break;
                    }
                    chain.push(parent);
                }
                chain
            }
            None => self.gcp.ancestry(project).await?,
        };
        let until = now + i64::from(self.config.scope.ancestry_cache_secs) * 1000;
        let mut cache = self.ancestry.lock().expect("ancestry cache poisoned");
        if cache.len() >= 100_000 {
            cache.retain(|_, (_, expires)| *expires > now);
        }
        cache.insert(project.to_string(), (ancestors.clone(), until));
        Ok(ancestors)
    }

    /// The engine's wall clock (the journal's: windows are written and compared on one clock).
    pub fn clock(&self) -> &crate::clock::Clock {
        self.journal.clock()
    }

    pub(super) fn instance_fixes_last_hour(&self) -> u32 {
        let mut fixes = self.fixes.lock().expect("fix counter poisoned");
        let hour_ago = Instant::now().checked_sub(std::time::Duration::from_secs(3600));
        while fixes
            .front()
            .is_some_and(|at| hour_ago.is_some_and(|hour_ago| *at < hour_ago))
        {
            fixes.pop_front();
        }
        fixes.len() as u32
    }

    /// Remembers whether a Google call failed for a reason other than "not found" or "changed meanwhile".
    pub(super) fn count_google_call<T>(&self, result: &Result<T, gcp::Error>) {
        let failed = matches!(
            result,
            Err(gcp::Error::Retryable { .. } | gcp::Error::Permanent { .. })
        );
        let mut calls = self.google_calls.lock().expect("call history poisoned");
        if calls.len() == 50 {
            calls.pop_front();
        }
        calls.push_back(failed);
    }

    /// The failed share of the last 50 Google calls, once there are at least 10.
    pub(super) fn google_failure_rate(&self) -> Option<f64> {
        let calls = self.google_calls.lock().expect("call history poisoned");
        (calls.len() >= 10)
            .then(|| calls.iter().filter(|failed| **failed).count() as f64 / calls.len() as f64)
    }

    pub(super) fn count_fix(&self) {
        self.fixes
            .lock()
            .expect("fix counter poisoned")
            .push_back(Instant::now());
    }
}
