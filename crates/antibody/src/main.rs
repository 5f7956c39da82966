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

mod cli;
use cli::state::{
    ExemptAction, JournalArgs, QuarantineAction, UndoArgs, exempt, journal, open_journal,
    quarantine, undo,
};

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
    /// Sweep whole projects (firewall rules, buckets, project IAM); report, or fix with --fix through the same gate.
    Scan(ScanArgs),
    /// Print the deployment (service account, least-privilege role, Cloud Run, Eventarc triggers) for the enabled policies.
    Plan(PlanArgs),
    /// Push recorded events (one JSON document per line) through the same pipeline as `serve`.
    Replay(ReplayArgs),
    /// Validate a configuration file and print what it means.
    CheckConfig {
        #[arg(long, short, default_value = "antibody.toml")]
        config: PathBuf,
    },
    /// List decisions (newest first), or show one with `journal show ID`.
    Journal(JournalArgs),
    /// Restore the before-state of a fix (refused if the resource changed since, unless --force).
    Undo(UndoArgs),
    /// Kill switch: keep detecting and journaling, change nothing.
    Pause {
        #[arg(long, env = "ANTIBODY_STATE", default_value = "antibody.sqlite")]
        state: PathBuf,
    },
    /// Lift the kill switch.
    Resume {
        #[arg(long, env = "ANTIBODY_STATE", default_value = "antibody.sqlite")]
        state: PathBuf,
    },
    /// The exemption registry: resources antibody must leave alone, each with an owner, a reason and an expiry.
    Exempt {
        #[arg(
            long,
            env = "ANTIBODY_STATE",
            default_value = "antibody.sqlite",
            global = true
        )]
        state: PathBuf,
        #[command(subcommand)]
        action: ExemptAction,
    },
    /// The alert outbox: delivered, pending and failed alerts.
    Alerts {
        #[arg(long, env = "ANTIBODY_STATE", default_value = "antibody.sqlite")]
        state: PathBuf,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Resources antibody stopped fixing because something keeps re-breaking them.
    Quarantine {
        #[arg(
            long,
            env = "ANTIBODY_STATE",
            default_value = "antibody.sqlite",
            global = true
        )]
        state: PathBuf,
        #[command(subcommand)]
        action: QuarantineAction,
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
    /// The state store: a SQLite file (`PATH` or `sqlite://PATH`), or `postgres://…` shared by several replicas.
    #[arg(long, env = "ANTIBODY_STATE")]
    state: Option<PathBuf>,
    /// Journal plans without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// Bearer token for Google's APIs (else from the config file).
    #[arg(long, env = "ANTIBODY_ACCESS_TOKEN", hide_env_values = true)]
    access_token: Option<String>,
    /// Act as this service account, impersonated with the Application Default Credentials.
    #[arg(long, value_name = "SERVICE_ACCOUNT_EMAIL")]
    impersonate: Option<String>,
    /// An alert channel: slack=URL, webhook=URL, pagerduty=ROUTING_KEY. Repeatable.
    #[arg(long = "notify", value_name = "KIND=VALUE")]
    notify: Vec<String>,
    /// HMAC-SHA256 secret for --notify webhook=URL.
    #[arg(long, env = "ANTIBODY_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// A principal that is antibody itself (loop guard). Repeatable.
    #[arg(long = "identity", env = "ANTIBODY_IDENTITY", value_delimiter = ',')]
    identities: Vec<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Port to listen on (default: PORT, else 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Accept pushes without verifying the sender (local use only: it listens on 127.0.0.1 unless --listen says
    /// otherwise).
    #[arg(long)]
    insecure_no_auth: bool,
    /// The address to listen on (default 0.0.0.0; 127.0.0.1 with --insecure-no-auth).
    #[arg(long)]
    listen: Option<std::net::IpAddr>,
    /// Also sweep this project on a timer (a backstop for lost events). Repeatable.
    #[arg(long = "sweep-project")]
    sweep_projects: Vec<String>,
    /// Minutes between sweeps.
    #[arg(long)]
    sweep_minutes: Option<u32>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The kind of resource in FILE: one of the registry's inputs (firewall, project-iam, bucket, bucket-iam, ...).
    #[arg(long, default_value = "firewall", value_parser = clap::builder::PossibleValuesParser::new(antibody::kinds::inputs()))]
    kind: String,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A JSON file, or - for standard input.
    file: String,
}

#[derive(clap::Args)]
struct ScanArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// A project to sweep. Repeatable.
    #[arg(long = "project", required_unless_present = "all_projects")]
    projects: Vec<String>,
    /// Sweep every active project the credentials can see (Resource Manager's projects:search).
    #[arg(long, conflicts_with = "projects")]
    all_projects: bool,
    /// Fix what is found (through the same gate, journal and alerts as events); report only without it.
    #[arg(long)]
    fix: bool,
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    format: ScanFormat,
}

#[derive(clap::Args)]
struct PlanArgs {
    #[arg(long)]
    project: String,
    #[arg(long, default_value = "us-central1")]
    region: String,
    /// The container image to deploy.
    #[arg(long, default_value = "ghcr.io/antibody/antibody:latest")]
    image: String,
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Gcloud)]
    format: PlanFormat,
    /// A Cloud SQL instance (PROJECT:REGION:INSTANCE) for a PostgreSQL journal shared by every instance of the
    /// service, its URL kept in the secret `antibody-state`; without it the service runs as one instance with a
    /// SQLite journal in memory.
    #[arg(long, value_name = "PROJECT:REGION:INSTANCE", value_parser = antibody::plan::cloudsql_instance)]
    cloudsql: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    Gcloud,
    Terraform,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScanFormat {
    Table,
    Json,
    Sarif,
    Markdown,
}

/// A progress bar on a terminal, plain lines otherwise.
struct ScanProgress(Option<indicatif::ProgressBar>);

impl antibody::scan::Progress for ScanProgress {
    fn step(&self, message: &str) {
        match &self.0 {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(message.to_string());
            }
            None => eprintln!("{message}"),
        }
    }
}

#[derive(clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// A JSONL file of LogEntries, Pub/Sub envelopes or structured CloudEvents.
    file: PathBuf,
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
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Sandbox(_) | Command::Demo | Command::Replay(_)
    ) {
        // A command that prints for a pipe (`antibody journal | head`) ends quietly when the reader goes away,
        // as Unix tools do, instead of panicking on the failed write. The servers keep Rust's default (ignored).
        // SAFETY: called before any thread is started; SIG_DFL is a valid disposition for SIGPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
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
        Command::Scan(args) => scan(args).await,
        Command::Plan(args) => {
            let config = load_config(args.config.as_ref())?;
            let mut deployment =
                antibody::plan::deployment(&config, &args.project, &args.region, &args.image);
            deployment.cloudsql = args.cloudsql.clone();
            match args.format {
                PlanFormat::Gcloud => print!("{}", antibody::plan::gcloud(&deployment)),
                PlanFormat::Terraform => print!("{}", antibody::plan::terraform(&deployment)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            // Secrets print as [redacted] (`config::Secret`).
            let config = load_config(Some(&config))?;
            println!("configuration is valid\n{config:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal(args) => journal(args).await,
        Command::Undo(args) => undo(args).await,
        Command::Pause { state } => {
            open_journal(&state).await?.set_paused(true).await?;
            println!("paused: antibody keeps detecting and journaling but changes nothing");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { state } => {
            open_journal(&state).await?.set_paused(false).await?;
            println!("resumed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Exempt { state, action } => exempt(state, action).await,
        Command::Quarantine { state, action } => quarantine(state, action).await,
        Command::Alerts { state, limit } => {
            for alert in open_journal(&state).await?.alerts(limit).await? {
                println!(
                    "#{:<5} event #{:<5} {:<12} {:<8} {:<10} attempts {:<2} {}",
                    alert.id,
                    alert.event_id,
                    alert.channel,
                    alert.action,
                    alert.state,
                    alert.attempts,
                    alert.last_error.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
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
    let report = match antibody::check::resource(&config, &args.kind, &text) {
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

async fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let mut config = engine_config(&args.engine)?;
    // A report-only sweep writes nothing: its journal is thrown away unless a state file was named.
    let scratch = tempfile::tempdir()?;
    if !args.fix {
        config.dry_run = true;
        if args.engine.state.is_none() {
            config.state = scratch.path().join("scan.sqlite");
        }
    }
    let context = antibody::build(
        config,
        if args.fix {
            LogSink::Stdout
        } else {
            LogSink::Silent
        },
    )
    .await?;
    let projects = if args.all_projects {
        let found = context.gcp.visible_projects().await?;
        eprintln!("{} projects visible to these credentials", found.len());
        found
    } else {
        args.projects.clone()
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(projects.len() as u64 * 2);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = ScanProgress(bar);
    let report = antibody::scan::sweep(&context, &projects, args.fix, &progress).await;
    if let Some(bar) = &progress.0 {
        bar.finish_and_clear();
    }
    match args.format {
        ScanFormat::Table => print!("{}", antibody::scan::table(&report)),
        ScanFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ScanFormat::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&antibody::scan::sarif(&report))?
        ),
        ScanFormat::Markdown => print!("{}", antibody::scan::markdown(&report)),
    }
    Ok(
        match (report.errors.is_empty(), report.violations.is_empty()) {
            (false, _) => ExitCode::from(2),
            (true, true) => ExitCode::SUCCESS,
            (true, false) => ExitCode::from(1),
        },
    )
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = engine_config(&args.engine)?;
    let context = antibody::build(config, LogSink::Stdout).await?;
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
