//! antibody: self-healing security for Google Cloud. Receives audit events, re-reads the resource, decides with
//! pure policies, gates, applies a fix through Google's API, verifies it, and journals everything.

pub(crate) mod apply;
pub mod check;
pub mod clock;
pub mod config;
pub mod event;
pub(crate) mod gate;
pub mod gcp;
pub mod journal;
pub mod kinds;
pub mod names;
pub mod notify;
pub(crate) mod outcome;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod receive;
pub mod scan;
pub mod undo;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::notify::LogSink;
use crate::pipeline::Context;

/// TLS in antibody goes through rustls with the ring provider, installed process-wide once (again is a no-op).
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every HTTP client antibody builds (to Google, to alert receivers, for Google's signing keys): antibody's user
/// agent and a total timeout; `more` adds what one client needs besides.
pub(crate) fn http_client(
    timeout: std::time::Duration,
    more: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    install_tls_provider();
    more(
        reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("antibody/", env!("CARGO_PKG_VERSION"))),
    )
    .build()
    .expect("an HTTP client with the ring provider installed")
}

/// Builds the engine from validated configuration: opens the journal and the Google client.
pub async fn build(config: Config, log: LogSink) -> Result<Arc<Context>, journal::Error> {
    build_with(config, log, clock::Clock::system()).await
}

/// `build`, on the given clock (tests move a manual one through grace periods and windows).
pub async fn build_with(
    config: Config,
    log: LogSink,
    clock: clock::Clock,
) -> Result<Arc<Context>, journal::Error> {
    let access = journal_access(&config)?;
    let journal = journal::Journal::open_using(&config.state, clock, Some(&access)).await?;
    let client = gcp::Client::with_shared_credentials(access.endpoints, access.credentials)
        .with_rate_limit(config.max_requests_per_second_per_project);
    Ok(Arc::new(Context::new(config, client, journal, log)))
}

/// Bytes in lowercase hex (digests, signatures).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// How a `firestore://` journal is reached: the configured endpoint and credentials, the ones every Google call uses.
pub fn journal_access(config: &Config) -> Result<journal::Access, journal::Error> {
    let credentials =
        credentials(config).map_err(|err| journal::Error::Unavailable(err.to_string()))?;
    Ok(journal::Access {
        endpoints: gcp::Endpoints::new(config.google_endpoint.as_deref())
            .speaking_http2(config.google_http2),
        credentials: Arc::new(credentials),
    })
}

/// Which credentials to use: an explicit token wins; then the metadata server named in the config; then, against
/// Google (or when `GOOGLE_APPLICATION_CREDENTIALS` or impersonation is set), Application Default Credentials;
/// against the sandbox, none.
pub fn credentials(config: &Config) -> Result<gcp::auth::Credentials, gcp::auth::SetupError> {
    use gcp::auth::Credentials;
    if let Some(token) = &config.access_token {
        return Ok(Credentials::Token(token.expose().to_string()));
    }
    if let Some(host) = &config.metadata_host {
        return Credentials::metadata(host);
    }
    let adc_named = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some();
    if config.google_endpoint.is_none() || adc_named || config.impersonate.is_some() {
        return Credentials::application_default(config.impersonate.as_deref());
    }
    Ok(Credentials::Anonymous)
}

/// A receiver listening on a socket.
pub struct Server {
    pub addr: SocketAddr,
    pub context: Arc<Context>,
    task: tokio::task::JoinHandle<()>,
    /// The timers beside the receiver: the outbox worker and the re-checks (none with `serve.cpu = "request"`).
    alerts: Option<tokio::task::JoinHandle<()>>,
    rechecks: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops the alert worker only (as a crash between decision and delivery would).
    pub fn shutdown_alerts(&self) {
        if let Some(alerts) = &self.alerts {
            alerts.abort();
        }
    }

    pub fn shutdown(self) {
        self.task.abort();
        for timer in [self.alerts, self.rechecks].into_iter().flatten() {
            timer.abort();
        }
    }

    /// Stops as Cloud Run asks (SIGTERM, then `grace` before SIGKILL): new deliveries are answered 503 at once (and
    /// redelivered to another instance), the events being handled finish, and the alerts they wrote are delivered,
    /// all within the grace period. Whatever is left stays in the journal for the next instance.
    pub async fn stop_gracefully(self, grace: std::time::Duration) -> Stopped {
        let started = tokio::time::Instant::now();
        // A tenth of the grace is kept for the process to exit.
        let deadline = started + grace.mul_f64(0.9);
        // Re-checks and sweeps hold work-in-flight permits like deliveries, so the drain waits for them too; the
        // timer loop is stopped once it is idle.
        let finished = self.context.drain(deadline).await;
        if let Some(rechecks) = self.rechecks {
            rechecks.abort();
        }
        // The worker stops between deliveries of its own; the flush below takes what is due.
        if let Some(alerts) = self.alerts {
            alerts.abort();
            let _ = alerts.await;
        }
        let undelivered = pipeline::deliver_due(&self.context, deadline).await;
        self.task.abort();
        Stopped {
            in_flight_finished: finished,
            alerts_left: undelivered,
            took: started.elapsed(),
        }
    }
}

/// How a graceful stop went.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// Every event being handled when the stop began was finished.
    pub in_flight_finished: bool,
    /// Alerts still due when the grace period ran out (delivered by the next instance).
    pub alerts_left: usize,
    pub took: std::time::Duration,
}

/// Serves the receiver on `addr` in the background.
pub async fn start(context: Arc<Context>, addr: SocketAddr) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    // The HTTP client to Google loads the system's root certificates; it does so beside the listening socket.
    let gcp = context.gcp.clone();
    tokio::task::spawn_blocking(move || gcp.warm());
    let app = receive::router(context.clone());
    let task = tokio::spawn(receive::listen::serve(
        listener,
        app,
        receive::listen::MAX_CONNECTIONS,
        receive::unverified_per_peer(context.config.max_in_flight),
    ));
    // Timers only where the process has CPU between requests; otherwise `POST /tick` runs what is due.
    let timers = context.config.cpu == config::Cpu::Always;
    let alerts = timers.then(|| {
        tokio::spawn(notify::outbox::run(
            context.journal.clone(),
            context.config.channels.clone(),
            context.alerts_waiting.clone(),
        ))
    });
    let rechecks = timers.then(|| tokio::spawn(pipeline::rechecks(context.clone())));
    Ok(Server {
        addr,
        context,
        task,
        alerts,
        rechecks,
    })
}
