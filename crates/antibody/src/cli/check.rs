//! `antibody check`: evaluate one resource given as JSON, offline.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Format, load_config};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The kind of resource in FILE: one of the registry's inputs (firewall, project-iam, bucket, bucket-iam, ...).
    #[arg(long, default_value = "firewall", value_parser = clap::builder::PossibleValuesParser::new(antibody::kinds::inputs()))]
    pub kind: String,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// A JSON file, or - for standard input.
    pub file: String,
}

pub(crate) fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
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
