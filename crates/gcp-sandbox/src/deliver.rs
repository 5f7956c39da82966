//! Delivery of audit entries to subscribers as Eventarc does it: CloudEvents over HTTP POST, at least once,
//! redelivered with exponential backoff until a 2xx (102/200/201/202/204) arrives; or as Pub/Sub push envelopes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

pub const AUDIT_EVENT_TYPE: &str = "google.cloud.audit.log.v1.written";
pub const AUDIT_DATASCHEMA: &str = "https://googleapis.github.io/google-cloudevents/jsonschema/google/events/cloud/audit/v1/LogEntryData.json";

/// How an event travels to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Eventarc to Cloud Run: CloudEvents binary content mode, `ce-*` headers, the LogEntry as the body.
    EventarcBinary,
    /// CloudEvents structured content mode (`application/cloudevents+json`).
    EventarcStructured,
    /// A log sink's Pub/Sub topic with a push subscription: the wrapped envelope, `data` in base64.
    PubSubPush,
}

/// One subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub mode: DeliveryMode,
    /// Sign every push with an OIDC token for this identity, as an authenticated push subscription does.
    pub identity: Option<crate::oidc::PushIdentity>,
    /// A log sink's filter: only entries it matches reach this subscriber (`None`: every entry).
    pub filter: Option<Arc<crate::logquery::Query>>,
}

impl Delivery {
    pub fn eventarc(url: impl Into<String>) -> Self {
        Delivery {
            url: url.into(),
            mode: DeliveryMode::EventarcBinary,
            identity: None,
            filter: None,
        }
    }

    /// Whether the entry passes this subscriber's sink filter.
    fn wants(&self, entry: &Value) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|query| query.matches(entry))
    }
}

/// Redelivery schedule: Eventarc's is 10 s doubling to 600 s; the sandbox default is scaled down.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub max_attempts: u32,
    /// A push that has not answered by then counts as failed, like a missed ack deadline.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            max_attempts: 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One push attempt and how it was answered (`status` 0 for a connection error or timeout).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub url: String,
    pub event_id: String,
    pub status: u16,
}

/// The queue of entries waiting for delivery.
pub(crate) struct Outbox {
    sender: mpsc::UnboundedSender<Arc<Value>>,
    inner: Arc<Inner>,
}

struct Inner {
    subscribers: Mutex<Vec<Delivery>>,
    pending: AtomicUsize,
    idle: Notify,
    /// The most recent attempts (`SandboxConfig::history`).
    attempts: Mutex<crate::history::History<Attempt>>,
    retry: RetryPolicy,
    client: reqwest::Client,
    sequence: AtomicU64,
}

impl Outbox {
    pub(crate) fn start(
        subscribers: Vec<Delivery>,
        retry: RetryPolicy,
        history: usize,
        http2: bool,
    ) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Arc<Value>>();
        let inner = Arc::new(Inner {
            subscribers: Mutex::new(subscribers),
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            attempts: Mutex::new(crate::history::History::new(history)),
            client: crate::client_speaking(retry.timeout, http2),
            retry,
            sequence: AtomicU64::new(0),
        });
        let dispatcher = inner.clone();
        tokio::spawn(async move {
            while let Some(entry) = receiver.recv().await {
                let subscribers = dispatcher
                    .subscribers
                    .lock()
                    .expect("subscribers lock poisoned")
                    .clone();
                let sequence = dispatcher.sequence.fetch_add(1, Ordering::Relaxed);
                for subscriber in subscribers {
                    if !subscriber.wants(&entry) {
                        continue;
                    }
                    dispatcher.pending.fetch_add(1, Ordering::SeqCst);
                    let inner = dispatcher.clone();
                    let entry = entry.clone();
                    tokio::spawn(async move {
                        inner.deliver(&subscriber, &entry, sequence).await;
                        inner.finish_one();
                    });
                }
                dispatcher.finish_one();
            }
        });
        Outbox { sender, inner }
    }

    pub(crate) fn send(&self, entry: Arc<Value>) {
        self.inner.pending.fetch_add(1, Ordering::SeqCst);
        if self.sender.send(entry).is_err() {
            self.inner.finish_one();
        }
    }

    pub(crate) fn add(&self, delivery: Delivery) {
        self.inner
            .subscribers
            .lock()
            .expect("subscribers lock poisoned")
            .push(delivery);
    }

    /// Stops delivering to everyone: what changes from now on is only in the audit log.
    pub(crate) fn unsubscribe_all(&self) {
        self.inner
            .subscribers
            .lock()
            .expect("subscribers lock poisoned")
            .clear();
    }

    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.inner
            .attempts
            .lock()
            .expect("attempts lock poisoned")
            .to_vec()
    }

    pub(crate) async fn settled(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Inner {
    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn deliver(&self, subscriber: &Delivery, entry: &Value, sequence: u64) {
        let event = CloudEvent::from_entry(entry, sequence);
        let mut backoff = self.retry.initial;
        for _ in 0..self.retry.max_attempts.max(1) {
            let mut request = match subscriber.mode {
                DeliveryMode::EventarcBinary => event.binary(&self.client, &subscriber.url, entry),
                DeliveryMode::EventarcStructured => {
                    event.structured(&self.client, &subscriber.url, entry)
                }
                DeliveryMode::PubSubPush => event.pubsub(&self.client, &subscriber.url, entry),
            };
            if let Some(identity) = &subscriber.identity {
                request = request.bearer_auth(crate::oidc::mint_now(identity));
            }
            let status = match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            self.attempts
                .lock()
                .expect("attempts lock poisoned")
                .push(Attempt {
                    url: subscriber.url.clone(),
                    event_id: event.id.clone(),
                    status,
                });
            if matches!(status, 102 | 200 | 201 | 202 | 204) {
                return;
            }
            tracing::debug!(url = %subscriber.url, status, "delivery not acknowledged; will redeliver");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max);
        }
        tracing::warn!(url = %subscriber.url, id = %event.id, "delivery abandoned after the last attempt");
    }
}

/// The CloudEvent attributes Eventarc derives from a LogEntry.
struct CloudEvent {
    id: String,
    source: String,
    subject: String,
    time: String,
    recorded_time: String,
    method_name: String,
    service_name: String,
    resource_name: String,
}

impl CloudEvent {
    fn from_entry(entry: &Value, sequence: u64) -> Self {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let payload = &entry["protoPayload"];
        let log_name = text(&entry["logName"]);
        let project = log_name.split('/').nth(1).unwrap_or_default().to_string();
        let log = if log_name.ends_with("%2Fdata_access") {
            "data_access"
        } else {
            "activity"
        };
        let service_name = text(&payload["serviceName"]);
        let resource_name = text(&payload["resourceName"]);
        CloudEvent {
            // Eventarc builds the id from the entry's logName, insertId and timestamp (google-cloudevents' example:
            // `projects/test-project/logs/cloudaudit.googleapis.com%2Fdata_access1234567…`), so every delivery of
            // one entry carries the same id. The sequence keeps entries without a timestamp apart.
            id: {
                let digits: String = text(&entry["timestamp"])
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                let stamp = if digits.is_empty() {
                    sequence.to_string()
                } else {
                    digits
                };
                format!("{log_name}{}{stamp}", text(&entry["insertId"]))
            },
            source: format!("//cloudaudit.googleapis.com/projects/{project}/logs/{log}"),
            subject: format!("{service_name}/{resource_name}"),
            time: text(&entry["receiveTimestamp"]),
            recorded_time: text(&entry["timestamp"]),
            method_name: text(&payload["methodName"]),
            service_name,
            resource_name,
        }
    }

    fn binary(
        &self,
        client: &reqwest::Client,
        url: &str,
        entry: &Value,
    ) -> reqwest::RequestBuilder {
        client
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("ce-specversion", "1.0")
            .header("ce-type", AUDIT_EVENT_TYPE)
            .header("ce-id", &self.id)
            .header("ce-source", &self.source)
            .header("ce-subject", &self.subject)
            .header("ce-time", &self.time)
            .header("ce-dataschema", AUDIT_DATASCHEMA)
            .header("ce-methodname", &self.method_name)
            .header("ce-servicename", &self.service_name)
            .header("ce-resourcename", &self.resource_name)
            .header("ce-recordedtime", &self.recorded_time)
            .body(entry.to_string())
    }

    fn structured(
        &self,
        client: &reqwest::Client,
        url: &str,
        entry: &Value,
    ) -> reqwest::RequestBuilder {
        let body = json!({
            "specversion": "1.0",
            "type": AUDIT_EVENT_TYPE,
            "id": self.id,
            "source": self.source,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": "application/json; charset=utf-8",
            "dataschema": AUDIT_DATASCHEMA,
            // Extension attributes are lowercase, as the CloudEvents spec requires and Eventarc sends.
            "methodname": self.method_name,
            "servicename": self.service_name,
            "resourcename": self.resource_name,
            "recordedtime": self.recorded_time,
            "data": entry,
        });
        client
            .post(url)
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .body(body.to_string())
    }

    fn pubsub(
        &self,
        client: &reqwest::Client,
        url: &str,
        entry: &Value,
    ) -> reqwest::RequestBuilder {
        let project = self.source.split('/').nth(4).unwrap_or_default();
        let message_id = format!("{}", fnv1a(&self.id));
        let body = json!({
            "message": {
                "attributes": {"logging.googleapis.com/timestamp": self.recorded_time},
                "data": STANDARD.encode(entry.to_string()),
                "messageId": message_id,
                "message_id": message_id,
                "publishTime": self.time,
                "publish_time": self.time,
            },
            "subscription": format!("projects/{project}/subscriptions/antibody-audit-push"),
        });
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
    }
}

/// A stable numeric message id per event, like Pub/Sub's decimal ids.
fn fnv1a(text: &str) -> u64 {
    crate::digest(text)
}
