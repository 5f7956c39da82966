//! `antibody serve`: the receiver, with push authentication required unless explicitly turned off.

use std::net::{Ipv4Addr, SocketAddr};

use antibody::notify::LogSink;
use anyhow::Context as _;

use super::{EngineArgs, engine_config};

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Port to listen on (default: PORT, else 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Accept pushes without verifying the sender (local use only: it listens on 127.0.0.1 unless --listen says
    /// otherwise).
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// The address to listen on (default 0.0.0.0; 127.0.0.1 with --insecure-no-auth).
    #[arg(long)]
    pub listen: Option<std::net::IpAddr>,
    /// Also sweep this project on a timer (a backstop for lost events). Repeatable.
    #[arg(long = "sweep-project")]
    pub sweep_projects: Vec<String>,
    /// Minutes between sweeps (0: no timer, e.g. when Cloud Scheduler calls /sweep).
    #[arg(long, env = "ANTIBODY_SWEEP_MINUTES")]
    pub sweep_minutes: Option<u32>,
    /// Seconds between SIGTERM and the end of the process: Cloud Run's grace period (10 s) before it kills an
    /// instance. Events being handled finish and their alerts go out within it; new deliveries get 503.
    #[arg(long, default_value_t = 10)]
    pub stop_grace_seconds: u64,
    /// When the process has CPU (over `serve.cpu` and `ANTIBODY_CPU`): `always`, or `request` — Cloud Run's
    /// request-based billing, where nothing runs on a timer and `POST /tick` does what is due.
    #[arg(long, value_enum)]
    pub cpu: Option<antibody::config::Cpu>,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = engine_config(&args.engine)?;
    if let Some(port) = args.port {
        config.port = port;
    }
    config.insecure_no_auth |= args.insecure_no_auth;
    if let Some(cpu) = args.cpu {
        config.cpu = cpu;
    }
    if config.insecure_no_auth {
        config.push_audience = None;
        config.push_secret = None;
        tracing::warn!(
            "serving WITHOUT verifying who posts events (--insecure-no-auth); use only on a trusted network"
        );
        eprintln!("WARNING: antibody is serving without push authentication (--insecure-no-auth)");
    } else if config.push_secret.is_none()
        && (config.push_audience.is_none() || config.push_emails.is_empty())
    {
        anyhow::bail!(
            "push authentication is not configured: set serve.push_audience and serve.push_emails (or \
             ANTIBODY_PUSH_AUDIENCE and ANTIBODY_PUSH_EMAILS), or serve.push_secret, or pass --insecure-no-auth for local use"
        );
    }
    // Without authentication, only this machine may push unless the operator says otherwise.
    let host = args.listen.unwrap_or(if config.insecure_no_auth {
        Ipv4Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    });
    let addr = SocketAddr::from((host, config.port));
    config
        .sweep_projects
        .extend(args.sweep_projects.iter().cloned());
    if let Some(minutes) = args.sweep_minutes {
        config.sweep_minutes = minutes;
    }
    // Without CPU between requests a timer would never fire: Cloud Scheduler calls /sweep instead.
    let timers = config.cpu == antibody::config::Cpu::Always;
    let sweep =
        (timers && !config.sweep_projects.is_empty() && config.sweep_minutes > 0).then(|| {
            (
                config.sweep_projects.clone(),
                std::time::Duration::from_secs(u64::from(config.sweep_minutes) * 60),
            )
        });
    let context = antibody::build(config, LogSink::Stdout).await?;
    if let Some((projects, every)) = sweep {
        tokio::spawn(antibody::scan::periodically(
            context.clone(),
            projects,
            every,
        ));
    }
    let server = antibody::start(context, addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    eprintln!("antibody listening on {}", server.url());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => {}
        stopped = tokio::signal::ctrl_c() => stopped?,
    }
    let stopped = server
        .stop_gracefully(std::time::Duration::from_secs(args.stop_grace_seconds))
        .await;
    tracing::info!(?stopped, "stopped");
    eprintln!(
        "antibody stopped in {} ms: in-flight events {}, {} alert(s) left for the next instance",
        stopped.took.as_millis(),
        if stopped.in_flight_finished {
            "finished"
        } else {
            "NOT all finished"
        },
        stopped.alerts_left
    );
    Ok(())
}
