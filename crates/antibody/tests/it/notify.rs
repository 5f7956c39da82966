//! Alerts end to end: real HTTP receivers on loopback, signatures, PagerDuty trigger/resolve, retries, restarts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use antibody::config::Channel;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::harness::{Harness, Options, all_delivered, open_ssh};

/// A receiver that answers with `plan` in order (then 200), recording every request.
struct Receiver {
    url: String,
    seen: mpsc::UnboundedReceiver<(HeaderMap, Value, Instant)>,
}

async fn receiver(plan: Vec<(StatusCode, Option<&'static str>)>) -> Receiver {
    let (sender, seen) = mpsc::unbounded_channel();
    let plan = Arc::new(Mutex::new(plan.into_iter()));
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (sender, plan) = (sender.clone(), plan.clone());
            async move {
                let _ = sender.send((
                    headers,
                    serde_json::from_slice(&body).unwrap_or(Value::Null),
                    Instant::now(),
                ));
                let next = plan.lock().expect("plan").next();
                let (status, retry_after) = next.unwrap_or((StatusCode::ACCEPTED, None));
                let mut response = axum::response::IntoResponse::into_response(status);
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.parse().expect("a header value"));
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    Receiver { url, seen }
}

impl Receiver {
    async fn next(&mut self) -> (HeaderMap, Value, Instant) {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("an alert within 10 s")
            .expect("open")
    }
}

fn with_channels(channels: Vec<Channel>) -> Options {
    Options {
        tweak: Box::new(move |config| config.channels = channels),
        ..Options::default()
    }
}

#[tokio::test]
async fn slack_webhook_and_pagerduty_hear_about_a_fix() {
    let (mut slack, mut hook, mut pager) = (
        receiver(vec![]).await,
        receiver(vec![]).await,
        receiver(vec![]).await,
    );
    let channels = vec![
        Channel::from_flag(0, &format!("slack={}", slack.url), None).expect("slack"),
        Channel::from_flag(1, &format!("webhook={}", hook.url), Some("s3cret")).expect("webhook"),
        Channel {
            kind: antibody::config::ChannelKind::PagerDuty {
                url: pager.url.clone(),
                routing_key: "R0UTING".into(),
            },
            ..Channel::from_flag(2, "pagerduty=R0UTING", None).expect("pagerduty")
        },
    ];
    let harness = Harness::with(with_channels(channels)).await;
    harness.user_inserts(open_ssh("alerting")).await;

    let (_, message, _) = slack.next().await;
    let text = message.to_string();
    assert!(
        message["text"].as_str().is_some_and(|title| title
            .contains("antibody fixed projects/test-project/global/firewalls/alerting")),
        "{message}"
    );
    assert!(
        text.contains("user@example.com")
            && text.contains("antibody undo")
            && text.contains("console.cloud.google.com"),
        "{text}"
    );
    assert_eq!(message["attachments"][0]["color"], "#e65100");

    let (headers, body, _) = hook.next().await;
    assert_eq!(body["schema"], "antibody.alert/v1");
    assert_eq!(body["outcome"], "remediated");
    let timestamp: i64 = headers["x-antibody-timestamp"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    let signature = headers["x-antibody-signature"].to_str().expect("ascii");
    assert_eq!(
        signature,
        antibody::notify::alert::sign("s3cret", timestamp, &body.to_string()),
        "HMAC over timestamp.body"
    );

    let (_, trigger, _) = pager.next().await;
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UTING");
    assert_eq!(trigger["payload"]["severity"], "error");
    // The next change to the rule re-reads it, finds it compliant, and resolves the incident. (The insert's own
    // `last` entry may do so first, when it is claimed while the fix is still under way.)
    harness
        .user_patches("alerting", json!({"description": "reviewed"}))
        .await;
    let (_, resolve, _) = pager.next().await;
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_alert_once_it_recovers_honouring_retry_after() {
    let mut flaky = receiver(vec![
        (StatusCode::INTERNAL_SERVER_ERROR, None),
        (StatusCode::TOO_MANY_REQUESTS, Some("1")),
    ])
    .await;
    let channels =
        vec![Channel::from_flag(0, &format!("webhook={}", flaky.url), None).expect("webhook")];
    let harness = Harness::with(with_channels(channels)).await;
    harness.user_inserts(open_ssh("flaky")).await;
    assert_eq!(
        harness.rule("flaky").await["disabled"],
        true,
        "the fix does not wait for the alert"
    );
    let (_, first, _) = flaky.next().await;
    let (_, _, throttled_at) = flaky.next().await;
    let (_, third, delivered_at) = flaky.next().await;
    assert_eq!(first, third, "the same alert is retried");
    assert!(
        delivered_at - throttled_at >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    let alerts = all_delivered(&harness.cx().journal).await;
    assert_eq!(
        (alerts[0].state.as_str(), alerts[0].attempts),
        ("delivered", 3)
    );
    assert!(
        flaky.seen.try_recv().is_err(),
        "no duplicate after delivery"
    );
}

#[tokio::test]
async fn alerts_written_before_a_restart_are_delivered_after_it_exactly_once() {
    let mut hook = receiver(vec![]).await;
    let channels =
        vec![Channel::from_flag(0, &format!("webhook={}", hook.url), None).expect("webhook")];
    let harness = Harness::with(with_channels(channels.clone())).await;
    // Simulate a crash between decision and delivery: the decision and its alert are durable, nothing was sent.
    let journal = harness.cx().journal.clone();
    harness.engine.shutdown_alerts();
    harness.user_inserts(open_ssh("crash")).await;
    let pending = journal.alerts(10).await.expect("outbox");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        journal
            .alerts_for(pending[0].event_id)
            .await
            .expect("alerts of the decision"),
        pending,
        "journal show lists them"
    );
    assert_eq!(pending[0].state, "pending");
    // A new process on the same state file delivers it.
    let restarted = harness.reopen_journal().await;
    let worker = tokio::spawn(antibody::notify::outbox::run(
        restarted.clone(),
        channels,
        Arc::new(tokio::sync::Notify::new()),
    ));
    let (_, body, _) = hook.next().await;
    assert_eq!(
        body["resource"],
        "projects/test-project/global/firewalls/crash"
    );
    let alerts = all_delivered(&restarted).await;
    worker.abort();
    assert_eq!(alerts.len(), 1);
    assert!(hook.seen.try_recv().is_err(), "exactly once");
}

#[tokio::test]
async fn channels_filter_by_severity_project_and_policy() {
    let mut hook = receiver(vec![]).await;
    let mut strict =
        Channel::from_flag(0, &format!("webhook={}", hook.url), None).expect("webhook");
    strict.min_severity = antibody::policy::Severity::Critical;
    strict.policies = vec!["open-firewall".into()];
    let harness = Harness::with(with_channels(vec![strict])).await;
    harness.user_inserts(open_ssh("high-only")).await;
    harness.user_inserts(json!({"name": "everything", "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"]})).await;
    let (_, body, _) = hook.next().await;
    assert_eq!(
        body["resource"], "projects/test-project/global/firewalls/everything",
        "only the CRITICAL one"
    );
    // The filter decides when the alert is written: only the CRITICAL one is in the outbox.
    let alerts = harness.cx().journal.alerts(10).await.expect("outbox");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(hook.seen.try_recv().is_err());
}

fn golden(name: &str, actual: &Value) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(actual).expect("json") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write golden file");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{path}: {err} (run with UPDATE_GOLDEN=1)"));
    assert_eq!(
        text, expected,
        "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"
    );
}

#[test]
fn rendered_messages_match_their_golden_files() {
    use antibody::event::{AuditEvent, Transport};
    use antibody::journal::Record;
    use antibody::kinds::Fix;
    use antibody::pipeline::Outcome;
    use antibody::policy::{Finding, Severity};
    let entry = json!({"insertId": "x", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": "2026-11-26T10:00:00Z", "resource": {"labels": {"project_id": "acme-prod"}},
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.insert",
            "resourceName": "projects/acme-prod/global/firewalls/debug-ssh",
            "authenticationInfo": {"principalEmail": "dev@acme.example"},
            "requestMetadata": {"callerIp": "203.0.113.7", "callerSuppliedUserAgent": "gcloud"}}});
    let event = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("event");
    let fix = Fix::Firewall(antibody::kinds::firewall::Fix::DisableFirewall {
        project: "acme-prod".into(),
        name: "debug-ssh".into(),
    });
    let record = Record {
        findings: vec![Finding {
            policy: "open-firewall".into(),
            category: "OPEN_SSH_PORT".into(),
            severity: Severity::High,
            message: "rule debug-ssh opens SSH (tcp/22) to 0.0.0.0/0".into(),
        }],
        before: Some(json!({"name": "debug-ssh", "disabled": false})),
        after: Some(json!({"name": "debug-ssh", "disabled": true})),
        resource_key: Some("projects/acme-prod/global/firewalls/debug-ssh".into()),
        ..Record::default()
    };
    let templates = antibody::config::Templates::default();
    let alert = antibody::notify::alert::Alert::new(
        &templates,
        42,
        Severity::High,
        &event,
        &Outcome::Remediated { fix },
        &record,
    );
    golden("alert.slack.json", &alert.slack());
    golden("alert.webhook.json", &alert.webhook());
    golden("alert.pagerduty.json", &alert.pagerduty("ROUTING-KEY"));
    golden("alert.email.json", &alert.email(&templates.email_subject));
}

#[tokio::test]
async fn a_flood_of_alerts_goes_out_as_one_digest() {
    let mut hook = receiver(vec![]).await;
    let channels =
        vec![Channel::from_flag(0, &format!("webhook={}", hook.url), None).expect("webhook")];
    let seed: Vec<Value> = (0..15)
        .map(|index| open_ssh(&format!("flood-{index}")))
        .collect();
    let options = Options {
        seed,
        tweak: Box::new({
            let channels = channels.clone();
            move |config| {
                config.channels = channels;
                config.safety.max_fixes_per_project_per_hour = 0;
            }
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    // A sweep fixes fifteen rules while the alert worker is down; when it comes back, the backlog is one message.
    harness.engine.shutdown_alerts();
    let report = antibody::scan::sweep(
        harness.cx(),
        &[crate::harness::PROJECT.to_string()],
        true,
        &antibody::scan::Quiet,
    )
    .await;
    assert_eq!(report.violations.len(), 15);
    let worker = tokio::spawn(antibody::notify::outbox::run(
        harness.cx().journal.clone(),
        channels,
        Arc::new(tokio::sync::Notify::new()),
    ));
    let (_, digest, _) = hook.next().await;
    assert_eq!(digest["schema"], "antibody.digest/v1");
    assert_eq!(digest["count"], 15);
    assert_eq!(digest["alerts"].as_array().map(Vec::len), Some(15));
    all_delivered(&harness.cx().journal).await;
    worker.abort();
    assert!(hook.seen.try_recv().is_err(), "nothing else is sent");
    assert!(
        harness
            .cx()
            .journal
            .alerts(100)
            .await
            .expect("outbox")
            .iter()
            .all(|alert| alert.state == "delivered")
    );
}

/// aiosmtpd (`scripts/test` installs it) prints every message it receives: a real SMTP peer that is not ours.
#[tokio::test]
async fn email_alerts_reach_a_real_smtp_server_with_text_and_html_parts() {
    use std::io::BufRead;
    let python = std::env::var("ANTIBODY_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../../target/test-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let has_server = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        has_server,
        "{python} cannot import aiosmtpd; `scripts/test` (the README's test command) installs it"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = std::process::Command::new(&python)
        .args([
            "-u",
            "-W",
            "ignore",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the SMTP server starts");
    let stdout = server.stdout.take().expect("stdout");
    let (lines, mut received) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let channel = Channel::from_flag(
        0,
        &format!(
            "smtp://127.0.0.1:{port}/?to=secops@example.com&from=antibody@example.com&tls=none"
        ),
        None,
    )
    .expect("email channel");
    let harness = Harness::with(with_channels(vec![channel])).await;
    harness.user_inserts(open_ssh("mailed")).await;
    let mut message = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !message.contains("END MESSAGE") {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some(line)) => {
                message.push_str(&line);
                message.push('\n');
            }
            _ => break,
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    // Long headers are folded; the server prints each physical line.
    assert!(
        message.contains("Subject: [antibody High] antibody fixed"),
        "{message}"
    );
    assert!(
        message.contains("projects/test-project/global/firewalls/mailed"),
        "{message}"
    );
    assert!(message.contains("To: secops@example.com"), "{message}");
    assert!(
        message.contains("text/plain") && message.contains("text/html"),
        "{message}"
    );
    assert!(message.contains("antibody undo"), "{message}");
}

#[tokio::test]
async fn templates_reword_alerts_and_owner_labels_route_them() {
    let mut slack = receiver(vec![]).await;
    let channel = Channel::from_flag(0, &format!("slack={}", slack.url), None).expect("slack");
    let options = Options {
        buckets: vec![json!({"name": "team-bucket", "labels": {"owner": "team-data"}})],
        tweak: Box::new(move |config| {
            config.channels = vec![channel];
            config.owner_label = Some("owner".into());
            config.templates.remediated =
                "{severity}: closed {resource} opened by {principal}".into();
        }),
        ..Options::default()
    };
    let harness = Harness::with(options).await;
    assert_eq!(
        harness
            .user_grants_on_bucket("team-bucket", "roles/storage.objectViewer", "allUsers")
            .await,
        200
    );
    let (_, message, _) = slack.next().await;
    assert_eq!(
        message["text"],
        "High: closed projects/_/buckets/team-bucket opened by user@example.com"
    );
    assert_eq!(
        message["channel"], "#team-data",
        "the owner's channel hears too"
    );
}

/// Every string in a JSON value.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(fields) => fields.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

// Issue 17, item 5: the caller's user agent went into Slack mrkdwn unescaped, so a change made with
// `<http://evil.example|Approve fix> <!channel>` as its user agent put a link and an @channel ping into antibody's own
// alert. Every channel renders the same hostile strings harmlessly.
#[test]
fn hostile_caller_text_cannot_link_ping_or_add_headers_in_any_channel() {
    use antibody::event::{AuditEvent, Transport};
    use antibody::journal::Record;
    use antibody::kinds::Fix;
    use antibody::pipeline::Outcome;
    use antibody::policy::{Finding, Severity};
    let hostile_agent = "<http://evil.example|Approve fix> <!channel> <@U024BE7LH> &lt;b&gt; ```x";
    let hostile_principal = "dev@acme.example\r\nBcc: victim@example.com";
    let entry = json!({"insertId": "x", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": "2026-11-26T10:00:00Z", "resource": {"labels": {"project_id": "acme-prod"}},
        "protoPayload": {"serviceName": "compute.googleapis.com", "methodName": "v1.compute.firewalls.insert",
            "resourceName": "projects/acme-prod/global/firewalls/debug-ssh",
            "authenticationInfo": {"principalEmail": hostile_principal},
            "requestMetadata": {"callerIp": "<!here>", "callerSuppliedUserAgent": hostile_agent}}});
    let event = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("event");
    let record = Record {
        findings: vec![Finding {
            policy: "open-firewall".into(),
            category: "OPEN_SSH_PORT".into(),
            severity: Severity::High,
            message: "rule debug-ssh opens SSH (tcp/22) to 0.0.0.0/0".into(),
        }],
        before: Some(json!({"name": "debug-ssh", "description": hostile_agent})),
        after: Some(json!({"name": "debug-ssh", "description": hostile_agent, "disabled": true})),
        resource_key: Some("projects/acme-prod/global/firewalls/debug-ssh".into()),
        ..Record::default()
    };
    let templates = antibody::config::Templates {
        remediated: "{principal} changed {resource}".into(),
        email_subject: "[antibody] {title}".into(),
        ..Default::default()
    };
    let fix = Fix::Firewall(antibody::kinds::firewall::Fix::DisableFirewall {
        project: "acme-prod".into(),
        name: "debug-ssh".into(),
    });
    let alert = antibody::notify::alert::Alert::new(
        &templates,
        42,
        Severity::High,
        &event,
        &Outcome::Remediated { fix },
        &record,
    );
    for text in strings(&alert.slack()) {
        for (at, _) in text.match_indices('<') {
            assert!(
                text[at..].starts_with("<https://console.cloud.google.com/"),
                "an unescaped '<' in Slack text: {text}"
            );
        }
        assert!(
            !text.contains("&lt;b&gt;"),
            "'&' must be escaped too: {text}"
        );
    }
    let email = alert.email(&templates.email_subject);
    let subject = email["subject"].as_str().expect("subject");
    assert!(!subject.contains(['\r', '\n']), "{subject}");
    let html = email["html"].as_str().expect("html");
    assert!(
        !html.contains("<http") && !html.contains("<!channel>"),
        "{html}"
    );
    // JSON channels carry the strings verbatim: a receiver sees exactly what the caller sent, as data.
    let webhook = alert.webhook();
    assert_eq!(webhook["user_agent"], hostile_agent);
    assert_eq!(webhook["principal"], hostile_principal);
    let pagerduty = alert.pagerduty("KEY");
    assert_eq!(
        pagerduty["payload"]["custom_details"]["principal"],
        hostile_principal
    );
}

// Issue 17, item 7: an alert about a fix antibody did not make must say plainly that the hole is open, and why.
#[test]
fn alerts_about_unmade_fixes_say_the_hole_is_open() {
    use antibody::event::{AuditEvent, Transport};
    use antibody::journal::Record;
    use antibody::pipeline::Outcome;
    use antibody::policy::Severity;
    let entry = json!({"insertId": "x", "protoPayload": {"serviceName": "compute.googleapis.com",
        "methodName": "v1.compute.firewalls.insert", "resourceName": "projects/acme-prod/global/firewalls/ssh"}});
    let event = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("event");
    let templates = antibody::config::Templates::default();
    for outcome in [
        Outcome::Held {
            by: antibody::pipeline::HeldBy::ProjectCap,
            reason: "blast-radius cap".into(),
        },
        Outcome::Quarantined {
            reason: "re-broken".into(),
            new: true,
        },
        Outcome::Failed {
            error: "403".into(),
        },
        Outcome::Refused {
            reason: "last owner".into(),
        },
    ] {
        let alert = antibody::notify::alert::Alert::new(
            &templates,
            7,
            Severity::Critical,
            &event,
            &outcome,
            &Record::default(),
        );
        let webhook = alert.webhook();
        let action = webhook["action"].as_str().expect("action");
        assert!(action.starts_with("THE HOLE IS STILL OPEN"), "{action}");
    }
}
