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
    /// Minutes between sweeps.
    #[arg(long)]
    pub sweep_minutes: Option<u32>,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = engine_config(&args.engine)?;
    if let Some(port) = args.port {
        config.port = port;
    }
    config.insecure_no_auth |= args.insecure_no_auth;
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
    let sweep = (!config.sweep_projects.is_empty() && config.sweep_minutes > 0).then(|| {
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
    tokio::signal::ctrl_c().await?;
    Ok(())
}
