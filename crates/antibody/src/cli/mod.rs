//! Command implementations that only the `antibody` binary uses, one file per subcommand family, and the flags and
//! configuration loading they share.

use std::path::PathBuf;

use antibody::config::{Config, Environment, RawConfig, Secret};
use anyhow::Context as _;
use clap::ValueEnum;

pub mod check;
pub mod demo;
pub mod replay;
pub mod scan;
pub mod serve;
pub mod state;

#[derive(clap::Args)]
pub(crate) struct EngineArgs {
    /// Configuration file (antibody.toml); flags override it. Also `ANTIBODY_CONFIG` (the deployment `plan` prints
    /// mounts the configuration it was made from there).
    #[arg(long, short, env = "ANTIBODY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Base URL replacing every Google API host (e.g. the sandbox's).
    #[arg(long, env = "ANTIBODY_GOOGLE_ENDPOINT")]
    pub google_endpoint: Option<String>,
    /// Speak HTTP/2 without TLS to an `http://` --google-endpoint (the sandbox serves it); `https://` negotiates it.
    #[arg(long, env = "ANTIBODY_GOOGLE_HTTP2")]
    pub google_http2: bool,
    /// The state store: a SQLite file (`PATH` or `sqlite://PATH`), or `postgres://…` shared by several replicas.
    #[arg(long, env = "ANTIBODY_STATE")]
    pub state: Option<PathBuf>,
    /// Journal plans without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Bearer token for Google's APIs (else from the config file).
    #[arg(long, env = "ANTIBODY_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: Option<String>,
    /// Act as this service account, impersonated with the Application Default Credentials.
    #[arg(long, value_name = "SERVICE_ACCOUNT_EMAIL")]
    pub impersonate: Option<String>,
    /// An alert channel: slack=URL, webhook=URL, pagerduty=ROUTING_KEY. Repeatable.
    #[arg(long = "notify", value_name = "KIND=VALUE")]
    pub notify: Vec<String>,
    /// HMAC-SHA256 secret for --notify webhook=URL.
    #[arg(long, env = "ANTIBODY_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// A principal that is antibody itself (loop guard). Repeatable.
    #[arg(long = "identity", env = "ANTIBODY_IDENTITY", value_delimiter = ',')]
    pub identities: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

/// What the process environment adds to the configuration: read here, so that the library's validation stays pure.
pub(crate) fn environment() -> Environment {
    let var = |name: &str| std::env::var(name).ok();
    Environment {
        port: var("PORT"),
        metadata_host: var("GCE_METADATA_HOST"),
        push_audience: var("ANTIBODY_PUSH_AUDIENCE"),
        push_emails: var("ANTIBODY_PUSH_EMAILS"),
        push_secret: var("ANTIBODY_PUSH_SECRET").map(Secret::from),
        cpu: var("ANTIBODY_CPU"),
    }
}

pub(crate) fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Config::parse_in(&text, &environment())?)
        }
        None => Ok(Config::validate_in(RawConfig::default(), &environment())?),
    }
}

pub(crate) fn engine_config(args: &EngineArgs) -> anyhow::Result<Config> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(endpoint) = &args.google_endpoint {
        config.google_endpoint = Some(endpoint.trim_end_matches('/').to_string());
    }
    config.google_http2 |= args.google_http2;
    if let Some(state) = &args.state {
        config.state = state.clone();
    }
    if args.dry_run {
        config.dry_run = true;
    }
    if args.access_token.is_some() {
        config.access_token = args
            .access_token
            .clone()
            .map(antibody::config::Secret::from);
    }
    if args.impersonate.is_some() {
        config.impersonate = args.impersonate.clone();
    }
    config.identities.extend(args.identities.iter().cloned());
    for flag in &args.notify {
        let index = config.channels.len();
        let channel =
            antibody::config::Channel::from_flag(index, flag, args.webhook_secret.as_deref())
                .map_err(anyhow::Error::msg)?;
        config.channels.push(channel);
    }
    Ok(config)
}
