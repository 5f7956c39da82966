//! `antibody replay`: push recorded events (LogEntries, envelopes, structured CloudEvents) through the pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use antibody::notify::LogSink;
use antibody::receive::{self, Decoded};
use anyhow::Context as _;

use super::{EngineArgs, engine_config};

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A JSONL file of LogEntries, Pub/Sub envelopes or structured CloudEvents.
    pub file: PathBuf,
}

pub(crate) async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
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
