//! Apply: the one door to the code that mutates the cloud (each kind's `apply`), for a fix the gate admitted; and the
//! guarded read-modify-write loop every kind's fix shares. Verifies by re-reading.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::{self, Client};
use crate::kinds::Fix;

/// Why an applied fix did not stick.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Google(#[from] gcp::Error),
    #[error("the fix was applied but the resource still violates: {0}")]
    NotFixed(String),
    /// Applying the fix would do harm; nothing was written.
    #[error("refused: {0}")]
    Refused(String),
}

/// Runs the fix, re-reads the resource, and returns its state afterwards (`None` once deleted). Each kind's room
/// holds how its fixes are applied; this is the one door to them.
pub async fn run(config: &Config, client: &Client, fix: &Fix) -> Result<Option<Value>, Error> {
    fix.apply(config, client).await
}

/// What one read-modify-write attempt concluded.
pub(crate) enum Attempt<T> {
    Done(T),
    /// A concurrent change won (409/412): read again and redo.
    Raced(String),
}

/// Runs `attempt` until it is done, re-running it after a lost race a bounded number of times with backoff and jitter.
pub(crate) async fn until_settled<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>, Error>>,
{
    const ATTEMPTS: u32 = 5;
    let mut backoff = Duration::from_millis(50);
    for round in 1..=ATTEMPTS {
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Raced(message) if round < ATTEMPTS => {
                tracing::info!(what, round, %message, "concurrent change; re-reading");
                tokio::time::sleep(gcp::jittered(backoff)).await;
                backoff *= 2;
            }
            Attempt::Raced(message) => {
                return Err(gcp::Error::Retryable {
                    status: 409,
                    message: format!("{what} kept changing: {message}"),
                    after: None,
                }
                .into());
            }
        }
    }
    unreachable!("the last round returns")
}

/// A write that lost a race becomes `Raced`; any other failure stops.
pub(crate) fn raced<T>(result: Result<T, gcp::Error>) -> Result<Attempt<T>, Error> {
    match result {
        Ok(value) => Ok(Attempt::Done(value)),
        Err(gcp::Error::Conflict(message)) => Ok(Attempt::Raced(message)),
        Err(err) => Err(err.into()),
    }
}

/// Removes `grants` from a policy read at version 3; refuses a downgraded read. `None` when nothing was there.
pub(crate) fn remove_grants(policy: &Policy, grants: &[Grant]) -> Result<Option<Policy>, Error> {
    if policy.downgraded() {
        return Err(Error::Refused("the policy was read below version 3 (a _withcond_ role); writing it would drop conditions".into()));
    }
    let (mut updated, removed) = policy.without(grants);
    updated.version = 3;
    Ok((removed > 0).then_some(updated))
}
