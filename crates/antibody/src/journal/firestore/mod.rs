//! Firestore journal, for deployments that scale to zero: the rows SQLite keeps, as documents, through Firestore's
//! REST API v1 (`documents:commit` with preconditions and server-time transforms, transactions, `runQuery`,
//! `batchGet`) on antibody's own HTTP client and Google credentials.
//!
//! Designed for Firestore's limits: every query is served by the single-field indexes Firestore keeps by itself (no
//! composite index to create); a hot global count is spread over [`SHARDS`] counter documents; contention (`ABORTED`,
//! a failed precondition) is retried with backoff; a state too large for one document is stored in pieces; TTL
//! deletion is lazy, so expiry times are compared in code.

mod claims;
mod events;
mod outbox;
mod safety;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Error;
use crate::clock::Clock;
use crate::gcp::auth::Credentials;
pub(crate) use wire::Fault;
use wire::{Doc, Write};

/// Every journal call finishes within this, or fails: an outage answers 503 (the event is redelivered), never a
/// request that hangs.
const CALL_BOUND: Duration = Duration::from_secs(10);

/// Counter documents a count is spread over: Firestore sustains about one write per second per document.
const SHARDS: u32 = 8;

/// Each replica proves it is alive this often; a claim whose replica has been silent for [`INSTANCE_SILENCE`] (by
/// Firestore's clock) was abandoned by a replica that died, and a redelivery takes it over.
const HEARTBEAT: Duration = Duration::from_secs(5);
const INSTANCE_SILENCE_MICROS: i64 = 15_000_000;

/// How long journal rows, their dedup keys and their alerts are kept (the TTL policy's field is `expireAt`).
pub const DEFAULT_RETENTION_DAYS: i64 = 400;

/// Where the documents live: `firestore://PROJECT[/DATABASE][?retention_days=N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub project: String,
    pub database: String,
    pub retention_days: i64,
}

impl Location {
    /// Parses a `firestore://` state URL strictly: a project id, an optional database id, one optional parameter.
    pub fn parse(url: &str) -> Result<Location, String> {
        let rest = url
            .strip_prefix("firestore://")
            .ok_or_else(|| format!("{url}: a Firestore state starts with firestore://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parts = path.trim_end_matches('/').split('/');
        let project = parts.next().unwrap_or_default().to_string();
        let database = parts.next().unwrap_or("(default)").to_string();
        if parts.next().is_some() {
            return Err(format!(
                "{url}: expected firestore://PROJECT[/DATABASE], with nothing after the database"
            ));
        }
        // Project ids as every other name antibody reads; a database id is a lowercase name of 4 to 63 characters.
        crate::names::project(&project).map_err(|err| format!("{url}: {err}"))?;
        let database_ok = database == "(default)"
            || (database.len() >= 4 && crate::names::compute(&database).is_ok());
        if !database_ok {
            return Err(format!(
                "{url}: {database:?} is not a Firestore database id"
            ));
        }
        let mut retention_days = DEFAULT_RETENTION_DAYS;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("retention_days", days)) => {
                    retention_days = days
                        .parse()
                        .ok()
                        .filter(|days| (1..=36_500).contains(days))
                        .ok_or_else(|| {
                            format!("{url}: retention_days is a number of days from 1 to 36500")
                        })?;
                }
                _ => {
                    return Err(format!(
                        "{url}: unknown parameter {pair:?} (retention_days=N)"
                    ));
                }
            }
        }
        Ok(Location {
            project,
            database,
            retention_days,
        })
    }
}

/// How the journal reaches Firestore: Google's host or one base URL (the sandbox), and the credentials `serve` uses.
#[derive(Debug, Clone)]
pub struct Access {
    /// The same endpoints, and the same HTTP/2 choice, as every other Google call.
    pub endpoints: crate::gcp::Endpoints,
    pub credentials: Arc<Credentials>,
}

#[derive(Clone)]
pub struct Firestore {
    inner: Arc<Inner>,
}

struct Inner {
    database: crate::gcp::firestore::Database,
    /// `projects/P/databases/D/documents`
    root: String,
    /// This replica's identity in `claimedBy` and `antibody_instances`.
    instance: String,
    clock: Clock,
    retention_secs: i64,
    last_id: AtomicI64,
    /// This replica's last three digits of new ids.
    salt: i64,
}

/// The collections, one per table of the SQL schema (plus dedup keys, resources, projects, counters and pieces).
pub mod collection {
    pub const EVENTS: &str = "antibody_events";
    pub const KEYS: &str = "antibody_keys";
    pub const OUTBOX: &str = "antibody_outbox";
    pub const EXEMPTIONS: &str = "antibody_exemptions";
    pub const QUARANTINE: &str = "antibody_quarantine";
    pub const RESOURCES: &str = "antibody_resources";
    pub const PROJECTS: &str = "antibody_projects";
    pub const DEFERRED: &str = "antibody_deferred";
    pub const LEASES: &str = "antibody_leases";
    pub const INSTANCES: &str = "antibody_instances";
    pub const SETTINGS: &str = "antibody_settings";
    pub const COUNTERS: &str = "antibody_counters";
    /// Under an event: the before/after states too large for its document.
    pub const PIECES: &str = "antibody_pieces";
    /// The collection groups the TTL policy covers (field `expireAt`): the journal's rows, their keys, alerts and
    /// pieces after the retention, and a replica's heartbeat a day after it stopped.
    pub const EXPIRING: [&str; 5] = [EVENTS, KEYS, OUTBOX, PIECES, INSTANCES];
}

/// A document id for an arbitrary key (a resource name, a delivery id): its SHA-256 in hex, so that no key can
/// name another collection or a reserved id.
pub(crate) fn hashed(key: &str) -> String {
    crate::hex(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref())
}

impl Firestore {
    /// Connects (lazily: the first call authenticates) and starts this replica's heartbeat.
    pub async fn open(
        location: &Location,
        access: &Access,
        clock: Clock,
    ) -> Result<Firestore, Error> {
        let root = format!(
            "projects/{}/databases/{}/documents",
            location.project, location.database
        );
        let store = Firestore {
            inner: Arc::new(Inner {
                database: crate::gcp::firestore::Database::new(
                    access.endpoints.base.as_deref(),
                    access.endpoints.http2,
                    access.credentials.clone(),
                    &location.project,
                    &location.database,
                    CALL_BOUND,
                ),
                root,
                instance: uuid::Uuid::new_v4().to_string(),
                clock,
                retention_secs: location.retention_days * 86_400,
                last_id: AtomicI64::new(0),
                salt: (uuid::Uuid::new_v4().as_u128() % 1000) as i64,
            }),
        };
        store.heartbeat().await?;
        let beating = Arc::downgrade(&store.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let Some(inner) = beating.upgrade() else {
                    return;
                };
                if let Err(err) = (Firestore { inner }).heartbeat().await {
                    tracing::warn!(%err, "the replica heartbeat failed");
                }
            }
        });
        Ok(store)
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// A document's full name.
    fn name(&self, collection: &str, id: &str) -> String {
        format!("{}/{collection}/{id}", self.inner.root)
    }

    /// A new row id, increasing within this process. Uniqueness across replicas comes from creating the row with an
    /// `exists: false` precondition (a collision retries with a new id).
    fn next_id(&self) -> i64 {
        // Milliseconds, then this replica's own three digits: two replicas rarely meet on one id.
        let wall = self
            .clock()
            .now_ms()
            .saturating_mul(1000)
            .saturating_add(self.inner.salt);
        let mut last = self.inner.last_id.load(Ordering::Relaxed);
        loop {
            let next = wall.max(last + 1);
            match self.inner.last_id.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Now, as the journal's text times read.
    fn now_text(&self) -> String {
        wire::text_at(self.clock().now_ms())
    }

    /// When a row written now expires (the TTL policy deletes it some time after).
    fn expire_at(&self) -> Value {
        wire::timestamp_value(self.clock().now_secs() + self.inner.retention_secs)
    }

    /// Whether a row's `expireAt` has passed: TTL deletion is lazy, so expired rows may still be read.
    fn expired(&self, doc: &Doc) -> bool {
        doc.time("expireAt")
            .is_some_and(|micros| micros / 1_000_000 < self.clock().now_secs())
    }

    async fn post(&self, suffix: &str, body: &Value) -> Result<Value, Fault> {
        self.inner.database.post(suffix, body).await
    }

    async fn commit(&self, writes: Vec<Write>, transaction: Option<&str>) -> Result<Value, Fault> {
        let mut body =
            json!({"writes": writes.into_iter().map(Write::into_value).collect::<Vec<_>>()});
        if let Some(transaction) = transaction {
            body["transaction"] = json!(transaction);
        }
        self.post(":commit", &body).await
    }

    /// Reads documents by name (in a transaction if given): each found or `None`, and Firestore's read time.
    async fn get_all(
        &self,
        names: &[String],
        transaction: Option<&Tx>,
    ) -> Result<(Vec<Option<Doc>>, i64), Fault> {
        let answers = self
            .read(":batchGet", json!({"documents": names}), transaction)
            .await?;
        let mut found: std::collections::HashMap<String, Doc> = Default::default();
        let mut read_time = 0;
        for answer in answers.as_array().into_iter().flatten() {
            if let Some(time) = answer["readTime"].as_str().and_then(wire::parse_time) {
                read_time = read_time.max(time);
            }
            if let Some(doc) = Doc::from_value(&answer["found"]) {
                found.insert(doc.name.clone(), doc);
            }
        }
        Ok((
            names.iter().map(|name| found.remove(name)).collect(),
            read_time,
        ))
    }

    /// A read (`:batchGet`, `:runQuery`), inside `transaction` if given: the first read begins it.
    async fn read(
        &self,
        verb: &str,
        mut body: Value,
        transaction: Option<&Tx>,
    ) -> Result<Value, Fault> {
        if let Some(transaction) = transaction {
            transaction.attach(&mut body);
        }
        let answers = self.post(verb, &body).await?;
        if let Some(transaction) = transaction {
            transaction.adopt(&answers);
        }
        Ok(answers)
    }

    async fn get(&self, name: String, transaction: Option<&Tx>) -> Result<Option<Doc>, Fault> {
        Ok(self.get_all(&[name], transaction).await?.0.pop().flatten())
    }

    /// Runs a structured query over `collection` (in a transaction if given).
    async fn query(
        &self,
        collection: &str,
        mut query: Map<String, Value>,
        transaction: Option<&Tx>,
    ) -> Result<Vec<Doc>, Fault> {
        query.insert("from".into(), json!([{"collectionId": collection}]));
        let answers = self
            .read(":runQuery", json!({"structuredQuery": query}), transaction)
            .await?;
        Ok(answers
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|answer| Doc::from_value(&answer["document"]))
            .collect())
    }

    /// Runs `work` until it succeeds, retrying contention and transient failures with jittered backoff, all within
    /// [`CALL_BOUND`].
    async fn retrying<T, Fut>(&self, what: &str, mut work: impl FnMut() -> Fut) -> Result<T, Error>
    where
        Fut: Future<Output = Result<T, Fault>>,
    {
        let deadline = tokio::time::Instant::now() + CALL_BOUND;
        let mut pause = Duration::from_millis(20);
        loop {
            let failure = match tokio::time::timeout_at(deadline, work()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(fault)) => fault,
                Err(_) => {
                    return Err(Error::Unavailable(format!(
                        "Firestore: {what} did not finish within {} s",
                        CALL_BOUND.as_secs()
                    )));
                }
            };
            if !failure.is_retryable() {
                return Err(Error::Unavailable(format!("Firestore: {what}: {failure}")));
            }
            let wait = crate::gcp::jittered(pause);
            if tokio::time::Instant::now() + wait >= deadline {
                return Err(Error::Unavailable(format!(
                    "Firestore: {what}: still failing after {} s: {failure}",
                    CALL_BOUND.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// A read-write transaction: `work` reads through the transaction it is given (its first read begins it, with
    /// `newTransaction`: no round trip of its own) and returns the writes to commit and its answer; a conflicting
    /// write (`ABORTED`) runs it again. A failed attempt is rolled back, so that no lock outlives it.
    async fn transaction<T, Fut>(
        &self,
        what: &str,
        work: impl Fn(Arc<Tx>) -> Fut,
    ) -> Result<T, Error>
    where
        Fut: Future<Output = Result<(Vec<Write>, T), Fault>>,
    {
        self.retrying(what, || async {
            let transaction = Arc::new(Tx::default());
            let done = work(transaction.clone()).await;
            match (done, transaction.id()) {
                (Ok((writes, answer)), begun) => {
                    if !writes.is_empty() || begun.is_some() {
                        // Everything the writes depend on was read in the transaction: a failed precondition at
                        // commit (a document created or changed meanwhile, a row id taken by another replica) is a
                        // lost race.
                        self.commit(writes, begun.as_deref())
                            .await
                            .map_err(Fault::raced)?;
                    }
                    Ok(answer)
                }
                (Err(fault), Some(begun)) => {
                    let _ = self.post(":rollback", &json!({"transaction": begun})).await;
                    Err(fault)
                }
                (Err(fault), None) => Err(fault),
            }
        })
        .await
    }

    /// Takes each document with its own write, conditioned on the version read, so that of several replicas taking
    /// the same documents exactly one takes each: the documents this one took. A failure part-way returns what was
    /// taken (the rest stay for the next round); a failure before any is an error.
    async fn take_each(
        &self,
        docs: Vec<Doc>,
        what: &str,
        write: impl Fn(&Doc) -> Write,
    ) -> Result<Vec<Doc>, Error> {
        let mut taken = Vec::new();
        for doc in docs {
            match self.commit(vec![write(&doc)], None).await {
                Ok(_) => taken.push(doc),
                Err(Fault::Precondition(_) | Fault::NotFound(_)) => {}
                Err(err) if taken.is_empty() => {
                    return Err(Error::Unavailable(format!("Firestore: {what}: {err}")));
                }
                Err(_) => break,
            }
        }
        Ok(taken)
    }

    /// Proves this replica alive (`antibody_instances/ID`, stamped with Firestore's time).
    async fn heartbeat(&self) -> Result<(), Error> {
        let name = self.name(collection::INSTANCES, &hashed(self.instance()));
        self.retrying("heartbeat", || {
            let name = name.clone();
            async move {
                let mut fields = Map::new();
                fields.insert(
                    "expireAt".into(),
                    wire::timestamp_value(self.clock().now_secs() + 86_400),
                );
                let write = Write::update(&name, fields)
                    .mask(&["expireAt"])
                    .transform(json!({"fieldPath": "seenAt", "setToServerValue": "REQUEST_TIME"}));
                self.commit(vec![write], None).await.map(drop)
            }
        })
        .await
    }
}

/// A read-write transaction as its reads carry it: begun by the first (`newTransaction`), named by the rest.
#[derive(Debug, Default)]
pub(super) struct Tx(std::sync::Mutex<Option<String>>);

impl Tx {
    /// The transaction id, once a read has begun it.
    fn id(&self) -> Option<String> {
        self.0.lock().map(|id| id.clone()).unwrap_or(None)
    }

    /// Names the transaction in a read, or asks the read to begin it.
    fn attach(&self, body: &mut Value) {
        match self.id() {
            Some(id) => body["transaction"] = json!(id),
            None => body["newTransaction"] = json!({"readWrite": {}}),
        }
    }

    /// Keeps the id a read that began the transaction answered with.
    fn adopt(&self, answers: &Value) {
        let began = answers.as_array().and_then(|answers| {
            answers
                .iter()
                .find_map(|answer| answer["transaction"].as_str())
        });
        if let (Some(began), Ok(mut id)) = (began, self.0.lock())
            && id.is_none()
        {
            *id = Some(began.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_urls_are_parsed_strictly() {
        let location = Location::parse("firestore://my-project").expect("a project");
        assert_eq!(
            (location.database.as_str(), location.retention_days),
            ("(default)", DEFAULT_RETENTION_DAYS)
        );
        let location =
            Location::parse("firestore://my-project/antibody-db?retention_days=30").expect("all");
        assert_eq!(
            (location.database.as_str(), location.retention_days),
            ("antibody-db", 30)
        );
        for bad in [
            "firestore://",
            "firestore://My_Project",
            "firestore://my-project/db/extra",
            "firestore://my-project/../x",
            "firestore://my-project?retention_days=0",
            "firestore://my-project?ttl=3",
            "firestore://my-project/(other)",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn keys_become_fixed_length_hex_ids() {
        let id = hashed("projects/p/things/../../x");
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, hashed("projects/p/things/x"));
    }
}
