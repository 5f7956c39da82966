//! The journal's writer thread: the jobs that arrived together run in one transaction, committed (and synced, under
//! `synchronous=FULL`) once for all of them before any of their callers hears back (group commit).

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::exec;
use crate::journal::Error;

/// What a caller hears once its commit is known: `None` when durable, or why it failed.
pub(super) type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// One unit of work for the writer thread: runs inside the shared transaction and returns what to do once the
/// transaction's commit is known, or `None` when it has already replied.
pub(super) type Job = Box<dyn FnOnce(&Connection) -> Option<Reply> + Send>;

/// Most jobs one commit carries; bounds the latency a large batch adds to its first job.
const GROUP: usize = 256;

/// Longest a transaction holding only answered jobs (new claims) waits for a job that needs it durable. Holding
/// it open keeps other processes' writes to the file waiting (their busy timeout is longer), nothing else.
const LINGER: Duration = Duration::from_millis(50);

/// Starts the writer thread on `connection`; jobs sent to the returned queue run on it.
pub(super) fn start(connection: Connection) -> Result<Sender<Job>, Error> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("journal-writer".into())
        .spawn(move || write_batches(&connection, &queue))
        .map_err(|err| Error::Worker(format!("starting the journal writer: {err}")))?;
    Ok(jobs)
}

/// The writer: one transaction per batch of jobs. A transaction whose jobs were all answered already is left open
/// for the next job that needs a commit, for at most `LINGER`: a claim costs no sync of its own on the way to the
/// write that needs it durable (the announced fix, the outcome), which commits it too.
fn write_batches(connection: &Connection, queue: &Receiver<Job>) {
    // When the open transaction began, if one is open.
    let mut open: Option<Instant> = None;
    loop {
        let first = match open {
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Some(began) => match queue.recv_timeout(LINGER.saturating_sub(began.elapsed())) {
                Ok(job) => job,
                Err(timeout_or_closed) => {
                    commit(connection, Vec::new());
                    open = None;
                    match timeout_or_closed {
                        RecvTimeoutError::Timeout => continue,
                        RecvTimeoutError::Disconnected => return,
                    }
                }
            },
        };
        let mut batch = vec![first];
        while batch.len() < GROUP {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if open.is_none() {
            if let Err(err) = exec(connection, "BEGIN", []) {
                // Dropping the batch drops its reply channels: every caller gets an error and answers 503.
                tracing::error!(%err, "the journal cannot begin a transaction");
                continue;
            }
            open = Some(Instant::now());
        }
        let replies: Vec<Reply> = batch
            .into_iter()
            .filter_map(|job| job(connection))
            .collect();
        if replies.is_empty() && open.is_some_and(|began| began.elapsed() < LINGER) {
            continue;
        }
        commit(connection, replies);
        open = None;
    }
}

/// Commits the open transaction and answers its jobs' callers: with `None` once durable, or with why the commit
/// failed (the transaction is then rolled back).
fn commit(connection: &Connection, replies: Vec<Reply>) {
    let failed = exec(connection, "COMMIT", []).err().map(|err| {
        let _ = exec(connection, "ROLLBACK", []);
        tracing::error!(%err, "the journal could not commit");
        format!("commit failed: {err}")
    });
    for reply in replies {
        reply(failed.as_deref());
    }
}
