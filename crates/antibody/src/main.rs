//! The `antibody` command line: parse, build, run.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use antibody::config::{Config, RawConfig};
use antibody::notify::LogSink;
use antibody::receive::{self, Decoded};
use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "antibody",
    version,
    about = "Self-healing security for Google Cloud"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch antibody heal a careless user's firewall changes in a local sandbox of Google's API.
    Demo,
    /// Receive audit events over HTTP and heal what they point at.
    Serve(ServeArgs),
    /// Run the local sandbox of the Google APIs antibody uses.
    Sandbox(gcp_sandbox::cli::Args),
    /// Evaluate one resource offline (exit 0 compliant, 1 violations, 2 bad input).
    Check(CheckArgs),
    /// Push recorded events (one JSON document per line) through the same pipeline as `serve`.
    Replay(ReplayArgs),
    /// Validate a configuration file and print what it means.
    CheckConfig {
        #[arg(long, short, default_value = "antibody.toml")]
        config: PathBuf,
    },
    /// Show the newest journal rows.
    Journal {
        #[arg(long, default_value = "antibody.sqlite")]
        state: PathBuf,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(clap::Args)]
struct EngineArgs {
    /// Configuration file (antibody.toml); flags override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Base URL replacing every Google API host (e.g. the sandbox's).
    #[arg(long)]
    google_endpoint: Option<String>,
    /// The SQLite journal file.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Journal plans without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// Bearer token for Google's APIs (else from the config file).
    #[arg(long, env = "ANTIBODY_ACCESS_TOKEN", hide_env_values = true)]
    access_token: Option<String>,
    /// A principal that is antibody itself (loop guard). Repeatable.
    #[arg(long = "identity")]
    identities: Vec<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Port to listen on (default: PORT, else 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Accept pushes without verifying the sender (local use only).
    #[arg(long)]
    insecure_no_auth: bool,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The kind of resource in FILE.
    #[arg(long, value_enum, default_value_t = Kind::Firewall)]
    kind: Kind,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A JSON file, or - for standard input.
    file: String,
}

#[derive(clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// A JSONL file of LogEntries, Pub/Sub envelopes or structured CloudEvents.
    file: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Firewall,
    ProjectIam,
    Bucket,
    BucketIam,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo => antibody::demo::run().await.map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Command::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Sandbox(args) => args.run().await.map(|()| ExitCode::SUCCESS),
        Command::Check(args) => check(args),
        Command::Replay(args) => replay(args).await,
        Command::CheckConfig { config } => {
            let config = load_config(Some(&config))?;
            println!("configuration is valid\n{config:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal {
            state,
            limit,
            format,
        } => journal(state, limit, format).await,
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Config::parse(&text)?)
        }
        None => Ok(Config::validate(RawConfig::default())?),
    }
}

fn engine_config(args: &EngineArgs) -> anyhow::Result<Config> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(endpoint) = &args.google_endpoint {
        config.google_endpoint = Some(endpoint.trim_end_matches('/').to_string());
    }
    if let Some(state) = &args.state {
        config.state = state.clone();
    }
    if args.dry_run {
        config.dry_run = true;
    }
    if args.access_token.is_some() {
        config.access_token = args.access_token.clone();
    }
    config.identities.extend(args.identities.iter().cloned());
    Ok(config)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = engine_config(&args.engine)?;
    if let Some(port) = args.port {
        config.port = port;
    }
    config.insecure_no_auth |= args.insecure_no_auth;
    if config.insecure_no_auth {
        tracing::warn!(
            "serving WITHOUT verifying who posts events (--insecure-no-auth); use only on a trusted network"
        );
    }
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
    let context = antibody::build(config, LogSink::Stdout)?;
    let server = antibody::start(context, addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    eprintln!("antibody listening on {}", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_ref())?;
    let mut text = String::new();
    let read = if args.file == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(&args.file).map(|read| text = read)
    };
    if let Err(err) = read {
        eprintln!("error: cannot read {}: {err}", args.file);
        return Ok(ExitCode::from(2));
    }
    let report = match args.kind {
        Kind::Firewall => antibody::check::firewall(&config, &text),
        Kind::ProjectIam => antibody::check::project_iam(&config, &text),
        Kind::Bucket => antibody::check::bucket(&config, &text),
        Kind::BucketIam => antibody::check::bucket_iam(&config, &text),
    };
    let report = match report {
        Ok(report) => report,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.compliant {
        println!("compliant");
    } else {
        for finding in &report.findings {
            println!(
                "{:?} {} {}: {}",
                finding.severity, finding.policy, finding.category, finding.message
            );
        }
        if let Some(fix) = &report.fix {
            println!("fix: {}", serde_json::to_string(fix)?);
        }
    }
    Ok(if report.compliant {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = engine_config(&args.engine)?;
    let context = antibody::build(config, LogSink::Stdout)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut rejected = 0;
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let decoded = receive::decode(&Default::default(), line.as_bytes());
        match decoded {
            Ok(Decoded::Event(event)) => {
                let mut event = *event;
                event.transport = antibody::event::Transport::Replay;
                let handled = antibody::pipeline::handle(&context, &event).await?;
                println!(
                    "line {}: #{} {}",
                    index + 1,
                    handled.id,
                    handled.outcome.name()
                );
            }
            Ok(Decoded::NotAudit(reason)) => println!("line {}: ignored ({reason})", index + 1),
            Err(rejection) => {
                rejected += 1;
                eprintln!("line {}: rejected: {}", index + 1, rejection.message);
            }
        }
    }
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn journal(state: PathBuf, limit: usize, format: Format) -> anyhow::Result<ExitCode> {
    if !state.exists() {
        anyhow::bail!("no journal at {}", state.display());
    }
    let journal = antibody::journal::Journal::open(&state)?;
    let entries = journal.entries(limit).await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    for entry in entries {
        println!(
            "#{:<5} {} {:<12} {:<32} {:<50} {}",
            entry.id,
            entry.received_at,
            entry.outcome.as_deref().unwrap_or(&entry.state),
            entry.method_name,
            entry.resource_name,
            entry.reason.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
