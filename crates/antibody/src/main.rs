//! The `antibody` command line: parse, build, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod cli;
use cli::check::{CheckArgs, check};
use cli::load_config;
use cli::replay::{ReplayArgs, replay};
use cli::scan::{ScanArgs, scan};
use cli::serve::{ServeArgs, serve};
use cli::state::{
    ExemptAction, JournalArgs, QuarantineAction, StoreArgs, UndoArgs, exempt, journal, quarantine,
    undo,
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
    /// Watch antibody heal a careless user's changes in a local sandbox of Google's APIs.
    Demo,
    /// Receive audit events over HTTP and heal what they point at.
    Serve(ServeArgs),
    /// Run the local sandbox of the Google APIs antibody uses.
    Sandbox(gcp_sandbox::cli::Args),
    /// Evaluate one resource offline (exit 0 compliant, 1 violations, 2 bad input).
    Check(CheckArgs),
    /// Sweep whole projects (every enabled kind); report, or fix with --fix through the same gate.
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
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Lift the kill switch.
    Resume {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The exemption registry: resources antibody must leave alone, each with an owner, a reason and an expiry.
    Exempt {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        action: ExemptAction,
    },
    /// The alert outbox: delivered, pending and failed alerts.
    Alerts {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Resources antibody stopped fixing because something keeps re-breaking them.
    Quarantine {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        action: QuarantineAction,
    },
}

#[derive(clap::Args)]
struct PlanArgs {
    #[arg(long)]
    project: String,
    #[arg(long, default_value = "us-central1")]
    region: String,
    /// The container image to deploy (default: the script builds this repository with Cloud Build into an Artifact
    /// Registry repository it creates; Terraform takes it as the variable `image`).
    #[arg(long)]
    image: Option<String>,
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Gcloud)]
    format: PlanFormat,
    /// Where the journal lives: Firestore (shared, scales to zero; the default) or a SQLite file in the memory of one
    /// always-on instance. `--cloudsql` chooses PostgreSQL on Cloud SQL instead.
    #[arg(long, value_enum, default_value_t = PlanState::Firestore)]
    state: PlanState,
    /// The Firestore database the journal uses (created in the region, Native mode, if missing).
    #[arg(long, default_value = "(default)")]
    firestore_database: String,
    /// A Cloud SQL instance (PROJECT:REGION:INSTANCE) for a PostgreSQL journal shared by every instance of the
    /// service, its URL kept in the secret `antibody-state` (an always-on database).
    #[arg(long, value_name = "PROJECT:REGION:INSTANCE", value_parser = antibody::plan::cloudsql_instance)]
    cloudsql: Option<String>,
    /// An organization (organizations/ID or ID): the role is granted there and an aggregated organization log sink
    /// delivers every project's audit entries through Pub/Sub, instead of this project's Eventarc triggers.
    #[arg(long, value_name = "ORGANIZATION", value_parser = antibody::plan::organization_id)]
    organization: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanState {
    Firestore,
    Sqlite,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    Gcloud,
    Terraform,
    /// The filter of an organization log sink (Logging's query language) selecting what the enabled kinds watch,
    /// except the deployment's own writes.
    SinkFilter,
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
        Command::Demo => cli::demo::run().await.map(|ok| {
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
                antibody::plan::deployment(&config, &args.project, &args.region, "");
            deployment.image = args.image.clone();
            deployment.store = match (&args.cloudsql, args.state) {
                (Some(instance), _) => antibody::plan::Store::CloudSql(instance.clone()),
                (None, PlanState::Sqlite) => antibody::plan::Store::Sqlite,
                (None, PlanState::Firestore) => {
                    let database = &args.firestore_database;
                    // The database id is checked as serve will check it (the project id is Google's to check).
                    antibody::journal::FirestoreLocation::parse(&antibody::plan::firestore_state(
                        "any-project",
                        database,
                    ))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "--firestore-database {database:?}: not a Firestore database id"
                        )
                    })?;
                    antibody::plan::Store::Firestore {
                        database: database.clone(),
                    }
                }
            };
            deployment.organization = args.organization.clone();
            // The configuration reaches the service as a secret made from this file, named as the script will
            // find it from wherever it is run.
            deployment.config_file = match &args.config {
                Some(path) => Some(
                    std::path::absolute(path)
                        .map_err(|err| anyhow::anyhow!("locating {}: {err}", path.display()))?
                        .to_str()
                        .ok_or_else(|| {
                            anyhow::anyhow!("{}: the path is not UTF-8", path.display())
                        })?
                        .to_string(),
                ),
                None => None,
            };
            match args.format {
                PlanFormat::Gcloud => print!("{}", antibody::plan::gcloud(&deployment)),
                PlanFormat::Terraform => print!("{}", antibody::plan::terraform(&deployment)),
                PlanFormat::SinkFilter => println!("{}", deployment.sink_filter),
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
        Command::Pause { store } => {
            store.open().await?.set_paused(true).await?;
            println!("paused: antibody keeps detecting and journaling but changes nothing");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { store } => {
            store.open().await?.set_paused(false).await?;
            println!("resumed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Exempt { store, action } => exempt(store, action).await,
        Command::Quarantine { store, action } => quarantine(store, action).await,
        Command::Alerts { store, limit } => {
            for alert in store.open().await?.alerts(limit).await? {
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
