//! Commands on the state store: the journal, undo, the kill switch's companions, exemptions and quarantine.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::{EngineArgs, Format, engine_config};

/// Where the state store is, and how a Firestore one is reached (the same endpoint and credentials as `serve`).
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// The state store: a SQLite file, `postgres://…`, or `firestore://PROJECT[/DATABASE]`.
    #[arg(
        long,
        env = "ANTIBODY_STATE",
        default_value = "antibody.sqlite",
        global = true
    )]
    pub state: PathBuf,
    /// Base URL replacing Google's hosts, for a `firestore://` state (e.g. the sandbox's).
    #[arg(long, env = "ANTIBODY_GOOGLE_ENDPOINT", global = true)]
    pub google_endpoint: Option<String>,
    /// Bearer token for Firestore (else Application Default Credentials, as `serve` finds them).
    #[arg(
        long,
        env = "ANTIBODY_ACCESS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub access_token: Option<String>,
    /// Act as this service account, impersonated with the Application Default Credentials.
    #[arg(long, value_name = "SERVICE_ACCOUNT_EMAIL", global = true)]
    pub impersonate: Option<String>,
}

impl StoreArgs {
    /// The configuration these flags describe: what `serve` would read the same store with.
    fn config(&self) -> anyhow::Result<antibody::config::Config> {
        let mut config = super::load_config(None)?;
        config.state = self.state.clone();
        config.google_endpoint = self
            .google_endpoint
            .as_ref()
            .map(|endpoint| endpoint.trim_end_matches('/').to_string());
        config.access_token = self
            .access_token
            .clone()
            .map(antibody::config::Secret::from);
        config.impersonate = self.impersonate.clone();
        Ok(config)
    }

    pub async fn open(&self) -> anyhow::Result<antibody::journal::Journal> {
        open_journal(&self.config()?).await
    }
}

#[derive(clap::Args)]
pub struct JournalArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    pub format: Format,
    /// Only rows whose resource matches (`*` matches any run).
    #[arg(long)]
    pub resource: Option<String>,
    #[arg(long)]
    pub policy: Option<String>,
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only rows received at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[command(subcommand)]
    pub show: Option<JournalShow>,
}

#[derive(Subcommand)]
pub enum JournalShow {
    /// One row with its before- and after-state.
    Show { id: i64 },
}

#[derive(clap::Args)]
pub struct UndoArgs {
    /// The journal id of the fix.
    pub id: i64,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Overwrite the resource even if it changed since the fix.
    #[arg(long)]
    pub force: bool,
    /// Who asks for the undo, as the journal and the alert will name them (default: ANTIBODY_OPERATOR, else the
    /// local user).
    #[arg(long, env = "ANTIBODY_OPERATOR")]
    pub operator: Option<String>,
    /// Keep antibody from fixing the restored resource again for this long (a registry entry in the operator's
    /// name, e.g. 24h, 7d, 90m; 0 for none, so the next change to it is judged like any other).
    #[arg(long, default_value = "24h")]
    pub keep_exempt: String,
}

#[derive(Subcommand)]
pub enum ExemptAction {
    /// Register an exemption: RESOURCE is a resource's audit-log name (the journal's `resource`); a trailing *
    /// matches any suffix.
    Add {
        resource: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        reason: String,
        /// When it stops applying: RFC 3339 time, or a duration like 12h or 30d.
        #[arg(long)]
        expires: Option<String>,
    },
    List,
    Remove {
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum QuarantineAction {
    List,
    /// Let antibody fix this resource again.
    Release {
        resource: String,
    },
}

/// Opens the journal `config` names, as `serve` would (a missing SQLite file is an error, not a new journal).
pub async fn open_journal(
    config: &antibody::config::Config,
) -> anyhow::Result<antibody::journal::Journal> {
    let state = &config.state;
    if !antibody::journal::names_a_server(state) && !state.exists() {
        anyhow::bail!("no journal at {}", state.display());
    }
    let access = match antibody::journal::names_firestore(state) {
        true => Some(antibody::journal_access(config)?),
        false => None,
    };
    Ok(antibody::journal::Journal::open_using(
        state,
        antibody::clock::Clock::system(),
        access.as_ref(),
    )
    .await?)
}

pub async fn journal(args: JournalArgs) -> anyhow::Result<ExitCode> {
    let journal = args.store.open().await?;
    if let Some(JournalShow::Show { id }) = args.show {
        let entry = journal
            .entry(id)
            .await?
            .with_context(|| format!("journal entry #{id} does not exist"))?;
        let alerts: Vec<serde_json::Value> = journal
            .alerts_for(id)
            .await?
            .into_iter()
            .map(|alert| {
                serde_json::json!({"id": alert.id, "channel": alert.channel, "action": alert.action, "state": alert.state,
                    "attempts": alert.attempts, "last_error": alert.last_error})
            })
            .collect();
        let mut shown = serde_json::to_value(&entry)?;
        shown["alerts"] = serde_json::Value::Array(alerts);
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let entries: Vec<_> = journal
        .entries(usize::MAX >> 1)
        .await?
        .into_iter()
        .filter(|entry| {
            args.resource
                .as_ref()
                .is_none_or(|pattern| antibody::policy::glob_match(pattern, &entry.resource))
        })
        .filter(|entry| {
            args.policy
                .as_ref()
                .is_none_or(|policy| entry.policy.as_ref() == Some(policy))
        })
        .filter(|entry| {
            args.outcome
                .as_ref()
                .is_none_or(|outcome| entry.outcome.as_ref() == Some(outcome))
        })
        .filter(|entry| {
            args.since
                .as_ref()
                .is_none_or(|since| entry.time.as_str() >= since.as_str())
        })
        .take(args.limit)
        .collect();
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    for entry in entries {
        println!(
            "#{:<5} {} {:<12} {:<14} {:<50} {}",
            entry.id,
            entry.time,
            entry.outcome.as_deref().unwrap_or(&entry.state),
            entry.policy.as_deref().unwrap_or("-"),
            entry.resource,
            entry.reason.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn undo(args: UndoArgs) -> anyhow::Result<ExitCode> {
    let config = engine_config(&args.engine)?;
    let journal = open_journal(&config).await?;
    let client = antibody::gcp::Client::with_credentials(
        antibody::gcp::Endpoints::new(config.google_endpoint.as_deref())
            .speaking_http2(config.google_http2),
        antibody::credentials(&config)?,
    );
    let operator = args.operator.clone().unwrap_or_else(|| {
        format!(
            "local user {}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let keep_exempt_secs = match args.keep_exempt.as_str() {
        "0" => None,
        text => Some(duration(text).with_context(|| {
            format!("--keep-exempt {text}: expected a duration like 24h, 7d or 90m, or 0")
        })?),
    };
    let request = antibody::undo::Request {
        id: args.id,
        force: args.force,
        operator,
        keep_exempt_secs,
    };
    let notify = (&config.templates, config.channels.as_slice());
    match antibody::undo::undo(&journal, &client, notify, &request).await {
        Ok(undone) => {
            println!(
                "undone: restored {} of {} (journal #{})",
                undone.restored, undone.resource, undone.journal_id
            );
            println!(
                "{}",
                serde_json::json!({"severity": "WARNING", "message": format!("antibody undo #{}: restored {}", args.id, undone.resource)})
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `12h`, `30d`, `90m` → seconds.
fn duration(text: &str) -> anyhow::Result<i64> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("'{text}' is not a duration like 12h, 30d or 90m"),
    };
    let count: i64 = number
        .parse()
        .ok()
        .filter(|count| *count > 0)
        .with_context(|| format!("'{text}' is not a duration like 12h, 30d or 90m"))?;
    Ok(count.saturating_mul(seconds))
}

/// `12h`, `30d`, `90m` or an RFC 3339 time → seconds since the epoch.
fn expiry(text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(seconds) = duration(text) {
        return Ok(now + seconds);
    }
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("--expires {text}: expected an RFC 3339 time or a duration like 12h or 30d")
        })?;
    Ok(time.unix_timestamp())
}

pub async fn exempt(store: StoreArgs, action: ExemptAction) -> anyhow::Result<ExitCode> {
    let journal = match antibody::journal::names_a_server(&store.state) {
        true => store.open().await?,
        // Registering an exemption ahead of the first `serve` creates the journal file.
        false => antibody::journal::Journal::open(&store.state).await?,
    };
    match action {
        ExemptAction::Add {
            resource,
            owner,
            reason,
            expires,
        } => {
            let now = journal.clock().now_secs();
            let expires = expires
                .as_deref()
                .map(|text| expiry(text, now))
                .transpose()?;
            let id = journal
                .add_exemption(&resource, &owner, &reason, expires)
                .await?;
            println!("exemption #{id} added for {resource}");
        }
        ExemptAction::List => {
            let now = journal.clock().now_secs();
            for exemption in journal.exemptions().await? {
                let status = match exemption.expires_epoch {
                    Some(epoch) if epoch <= now => "expired".to_string(),
                    Some(epoch) => format!(
                        "until {}",
                        time::OffsetDateTime::from_unix_timestamp(epoch)
                            .map(|time| time.to_string())
                            .unwrap_or_default()
                    ),
                    None => "no expiry".to_string(),
                };
                println!(
                    "#{:<4} {:<50} {:<30} {:<20} {}",
                    exemption.id, exemption.resource, exemption.owner, status, exemption.reason
                );
            }
        }
        ExemptAction::Remove { id } => {
            if !journal.remove_exemption(id).await? {
                eprintln!("error: no exemption #{id}");
                return Ok(ExitCode::from(1));
            }
            println!("exemption #{id} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn quarantine(store: StoreArgs, action: QuarantineAction) -> anyhow::Result<ExitCode> {
    let journal = store.open().await?;
    match action {
        QuarantineAction::List => {
            for entry in journal.quarantined().await? {
                println!(
                    "{:<50} since {}  competing: {}  ({})",
                    entry.resource_key, entry.since, entry.principals, entry.reason
                );
            }
        }
        QuarantineAction::Release { resource } => {
            if !journal.release(&resource).await? {
                eprintln!("error: {resource} is not quarantined");
                return Ok(ExitCode::from(1));
            }
            println!("released {resource}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
