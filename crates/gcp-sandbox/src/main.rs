//! The standalone `gcp-sandbox` binary: a local copy of Google's APIs for tests, demos and other tools.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "gcp-sandbox",
    version,
    about = "A local sandbox of the Google Cloud APIs antibody uses"
)]
struct Cli {
    #[command(flatten)]
    args: gcp_sandbox::cli::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    Cli::parse().args.run().await
}
