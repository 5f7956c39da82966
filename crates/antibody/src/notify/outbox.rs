//! The outbox worker: delivers alerts after their decision is durable, retries with backoff (honouring Retry-After),
//! resumes after a restart, and marks an alert `failed` after the last attempt. A slow channel never delays a fix.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Channel, ChannelKind};
use crate::journal::{Journal, OutboxItem};
use crate::notify::alert;

/// Attempts before an alert is marked failed for good.
pub const MAX_ATTEMPTS: i64 = 8;

/// Why a delivery did not go through.
struct Undelivered {
    message: String,
    retry_after: Option<Duration>,
}

/// Runs until the process ends: delivers due alerts, then sleeps until the next is due or `wake` fires.
pub async fn run(journal: Journal, channels: Vec<Channel>, wake: Arc<tokio::sync::Notify>) {
    // Built when the first alert is due: a process that never alerts never loads root certificates for it.
    let mut client = None;
    loop {
        let due = match journal.due_alerts(journal.clock().now_ms(), 1000).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(%err, "reading the outbox");
                Vec::new()
            }
        };
        if !due.is_empty() {
            let http = client.get_or_insert_with(|| {
                crate::http_client(Duration::from_secs(10), |builder| builder)
            });
            deliver_due(&journal, http, &channels, &due).await;
            continue;
        }
        let next = journal.next_alert_due().await.ok().flatten();
        let pause = next
            .map(|at| Duration::from_millis((at - journal.clock().now_ms()).clamp(5, 1000) as u64))
            .unwrap_or(Duration::from_secs(1));
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Delivers every alert due now, until none is left or `deadline` passes: what a stopping process does with the
/// alerts its last decisions wrote. Returns how many were still due at the end.
pub async fn flush(
    journal: &Journal,
    channels: &[Channel],
    deadline: tokio::time::Instant,
) -> usize {
    let http = crate::http_client(Duration::from_secs(5), |builder| builder);
    loop {
        let due = match journal.due_alerts(journal.clock().now_ms(), 1000).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(%err, "reading the outbox while stopping");
                return 0;
            }
        };
        if due.is_empty() {
            return 0;
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero()
            || tokio::time::timeout(remaining, deliver_due(journal, &http, channels, &due))
                .await
                .is_err()
        {
            return due.len();
        }
    }
}

/// Delivers the alerts that are due: digests for channels with many waiting, one by one otherwise.
async fn deliver_due(
    journal: &Journal,
    http: &reqwest::Client,
    channels: &[Channel],
    due: &[OutboxItem],
) {
    let mut singles = Vec::new();
    for channel in channels {
        let waiting: Vec<&OutboxItem> = due
            .iter()
            .filter(|item| item.channel == channel.name)
            .collect();
        let digestible = matches!(
            channel.kind,
            ChannelKind::Slack { .. } | ChannelKind::Webhook { .. }
        );
        if digestible && channel.digest_after > 0 && waiting.len() > channel.digest_after {
            deliver_digest(journal, http, channel, &waiting).await;
        } else {
            singles.extend(waiting);
        }
    }
    for item in due
        .iter()
        .filter(|item| !channels.iter().any(|channel| channel.name == item.channel))
    {
        singles.push(item);
    }
    for item in singles {
        deliver(journal, http, channels, item).await;
    }
}

async fn deliver(
    journal: &Journal,
    http: &reqwest::Client,
    channels: &[Channel],
    item: &OutboxItem,
) {
    let Some(channel) = channels.iter().find(|channel| channel.name == item.channel) else {
        let _ = journal
            .alert_attempt_failed(item.id, "the channel is no longer configured", None)
            .await;
        return;
    };
    match send(http, channel, item).await {
        Ok(()) => {
            if let Err(err) = journal.alert_delivered(item.id).await {
                tracing::error!(%err, "marking an alert delivered");
            }
        }
        Err(undelivered) => {
            let attempts = item.attempts + 1;
            let retry_at = retry_at(attempts, undelivered.retry_after, journal.clock().now_ms());
            tracing::warn!(channel = %item.channel, attempts, error = %undelivered.message, "alert not delivered");
            if let Err(err) = journal
                .alert_attempt_failed(item.id, &undelivered.message, retry_at)
                .await
            {
                tracing::error!(%err, "recording an alert failure");
            }
        }
    }
}

/// Sends a rendered e-mail (`{"subject", "text", "html"}`) with a plain-text and an HTML part.
async fn send_email(smtp: &crate::config::Smtp, body: &str) -> Result<(), Undelivered> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let failed = |message: String| Undelivered {
        message,
        retry_after: None,
    };
    let rendered: serde_json::Value = serde_json::from_str(body)
        .map_err(|err| failed(format!("unreadable e-mail body: {err}")))?;
    let text = |key: &str| rendered[key].as_str().unwrap_or_default().to_string();
    let mailbox = |address: &str| {
        address
            .parse::<Mailbox>()
            .map_err(|err| failed(format!("bad address {address}: {err}")))
    };
    let mut message = Message::builder()
        .from(mailbox(&smtp.from)?)
        .subject(text("subject"));
    let extra: Vec<String> = rendered["extra_to"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|to| to.as_str().map(str::to_string))
        .collect();
    for to in smtp.to.iter().chain(&extra) {
        message = message.to(mailbox(to)?);
    }
    let message = message
        .multipart(MultiPart::alternative_plain_html(
            text("text"),
            text("html"),
        ))
        .map_err(|err| failed(format!("building the e-mail: {err}")))?;
    let builder = match smtp.tls {
        crate::config::SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        crate::config::SmtpTls::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
        }
        crate::config::SmtpTls::None => Ok(
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        ),
    }
    .map_err(|err| failed(format!("SMTP relay {}: {err}", smtp.host)))?;
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(10)));
    if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(
            username.clone(),
            password.expose().to_string(),
        ));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|err| failed(format!("SMTP {}: {err}", smtp.host)))
}

/// When to try again after `attempts` failures (exponential, at least `Retry-After`); `None` gives up.
fn retry_at(attempts: i64, retry_after: Option<Duration>, now_ms: i64) -> Option<i64> {
    (attempts < MAX_ATTEMPTS).then(|| {
        let backoff = Duration::from_millis((200u64 << attempts.min(9)).min(60_000));
        now_ms
            + retry_after
                .unwrap_or(Duration::ZERO)
                .max(backoff)
                .as_millis() as i64
    })
}

/// A flood becomes one message: the count and the alerts themselves (webhook) or their titles (Slack).
async fn deliver_digest(
    journal: &Journal,
    http: &reqwest::Client,
    channel: &Channel,
    items: &[&OutboxItem],
) {
    let bodies: Vec<serde_json::Value> = items
        .iter()
        .filter_map(|item| serde_json::from_str(&item.body).ok())
        .collect();
    let body = match &channel.kind {
        ChannelKind::Slack { .. } => {
            let titles: Vec<String> = bodies
                .iter()
                .take(20)
                .filter_map(|body| body["text"].as_str().map(|title| format!("• {title}")))
                .collect();
            let more = items.len().saturating_sub(titles.len());
            let mut text = titles.join("\n");
            if more > 0 {
                text.push_str(&format!("\n… and {more} more (see `antibody journal`)"));
            }
            serde_json::json!({
                "text": format!("antibody: {} alerts", items.len()),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": format!("antibody: {} alerts", items.len())}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                ],
            })
        }
        _ => {
            serde_json::json!({"schema": "antibody.digest/v1", "count": items.len(), "alerts": bodies})
        }
    };
    let digest = OutboxItem {
        body: body.to_string(),
        ..items[0].clone()
    };
    match send(http, channel, &digest).await {
        Ok(()) => {
            for item in items {
                if let Err(err) = journal.alert_delivered(item.id).await {
                    tracing::error!(%err, "marking a digested alert delivered");
                }
            }
        }
        Err(undelivered) => {
            let attempts = items.iter().map(|item| item.attempts).max().unwrap_or(0) + 1;
            let retry_at = retry_at(attempts, undelivered.retry_after, journal.clock().now_ms());
            for item in items {
                if let Err(err) = journal
                    .alert_attempt_failed(item.id, &undelivered.message, retry_at)
                    .await
                {
                    tracing::error!(%err, "recording a digest failure");
                }
            }
        }
    }
}

async fn send(
    http: &reqwest::Client,
    channel: &Channel,
    item: &OutboxItem,
) -> Result<(), Undelivered> {
    let request = match &channel.kind {
        ChannelKind::Email(smtp) => return send_email(smtp, &item.body).await,
        ChannelKind::Slack { url } => http.post(url.expose()),
        ChannelKind::PagerDuty { url, .. } => http.post(url),
        ChannelKind::Webhook { url, secret } => {
            // The receiver checks this against its own clock: the real time, whatever clock the engine runs on.
            let timestamp = crate::clock::Clock::system().now_secs();
            let request = http
                .post(url)
                .header("X-Antibody-Timestamp", timestamp.to_string());
            match secret {
                Some(secret) => request.header(
                    "X-Antibody-Signature",
                    alert::sign(secret.expose(), timestamp, &item.body),
                ),
                None => request,
            }
        }
    };
    let response = request
        .header("content-type", "application/json")
        .header("X-Antibody-Delivery", item.id.to_string())
        .body(item.body.clone())
        .send()
        .await
        .map_err(|err| Undelivered {
            message: format!("cannot reach {}: {err}", channel.name),
            retry_after: None,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds.min(300)));
    Err(Undelivered {
        message: format!("{} answered {status}", channel.name),
        retry_after,
    })
}
