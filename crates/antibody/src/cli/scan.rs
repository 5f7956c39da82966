//! `antibody scan`: sweep projects and report (table, JSON, SARIF, Markdown), or fix with `--fix`.

use std::process::ExitCode;

use antibody::notify::LogSink;
use clap::ValueEnum;

use super::{EngineArgs, engine_config};

#[derive(clap::Args)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A project to sweep. Repeatable.
    #[arg(long = "project", required_unless_present_any = ["all_projects", "organization"])]
    pub projects: Vec<String>,
    /// Sweep every active project the credentials can see (Resource Manager's projects:search).
    #[arg(long, conflicts_with = "projects")]
    pub all_projects: bool,
    /// Sweep this organization (`organizations/N`, or its number): its folders are walked, every active project under
    /// them and their own IAM policies swept; `[scope]` folders and exclusions apply (an excluded folder is listed as
    /// not swept, with the reason, and never entered).
    #[arg(long, conflicts_with = "projects", value_name = "ORGANIZATION")]
    pub organization: Option<String>,
    /// Fix what is found (through the same gate, journal and alerts as events); report only without it.
    #[arg(long)]
    pub fix: bool,
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// With --fix: allow up to N fixes per project and per instance in this sweep, above the blast-radius caps
    /// meant for events (0: no cap). Journaled as the operator's decision.
    #[arg(long, requires = "fix", value_name = "N")]
    pub max_fixes: Option<u32>,
    /// Who runs the sweep, as the journal names them (default: ANTIBODY_OPERATOR, else the local user).
    #[arg(long, env = "ANTIBODY_OPERATOR")]
    pub operator: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScanFormat {
    Table,
    Json,
    Sarif,
    Markdown,
}

/// A progress bar on a terminal, plain lines otherwise.
pub(crate) struct ScanProgress(Option<indicatif::ProgressBar>);

impl antibody::scan::Progress for ScanProgress {
    fn total(&self, steps: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(steps as u64);
        }
    }

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

pub(crate) async fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let mut config = engine_config(&args.engine)?;
    if let Some(organization) = &args.organization {
        let name = if organization.starts_with("organizations/") {
            organization.clone()
        } else {
            format!("organizations/{organization}")
        };
        let number = name.trim_start_matches("organizations/");
        anyhow::ensure!(
            !number.is_empty()
                && number.len() <= 20
                && number.bytes().all(|byte| byte.is_ascii_digit()),
            "--organization {organization}: expected organizations/NUMBER or the number"
        );
        config.scope.organization = Some(name);
    }
    if let Some(cap) = args.max_fixes {
        config.safety.max_fixes_per_project_per_hour = cap;
        config.safety.max_fixes_per_instance_per_hour = cap;
    }
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
        // Standard output carries the report; the decisions of a fixing sweep go to standard error.
        if args.fix {
            LogSink::Stderr
        } else {
            LogSink::Silent
        },
    )
    .await?;
    if let Some(cap) = args.max_fixes {
        let operator = args.operator.clone().unwrap_or_else(|| {
            format!(
                "local user {}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            )
        });
        let id = context
            .journal
            .begin_action("override", "projects/*", "", &operator)
            .await?;
        let record = antibody::journal::Record {
            outcome: "override".into(),
            reason: format!(
                "{operator} raised the blast-radius caps to {cap} fixes per project and per instance for one sweep \
                 (scan --fix --max-fixes {cap})"
            ),
            ..antibody::journal::Record::default()
        };
        context.journal.finish_with(id, &record, Vec::new()).await?;
    }
    let projects = if args.all_projects {
        let found = context.gcp.visible_projects().await?;
        eprintln!("{} projects visible to these credentials", found.len());
        found
    } else {
        args.projects.clone()
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = ScanProgress(bar);
    let report = match &context.config.scope.organization {
        Some(organization) if args.organization.is_some() => {
            antibody::scan::sweep_organization(&context, organization, args.fix, &progress).await
        }
        _ => antibody::scan::sweep(&context, &projects, args.fix, &progress).await,
    };
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
