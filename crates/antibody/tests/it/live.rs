//! A smoke test against a real Google Cloud project, run by hand:
//!
//! ```text
//! gcloud auth application-default login          # or GOOGLE_APPLICATION_CREDENTIALS=key.json
//! ANTIBODY_LIVE_PROJECT=my-project cargo test -p antibody --test it live -- --ignored
//! ```
//!
//! Read-only: a report-only sweep (dry-run, throwaway journal) lists the project's firewall rules and buckets and reads
//! its IAM policy through Google's real endpoints with Application Default Credentials; it changes nothing.

use antibody::config::Config;
use antibody::notify::LogSink;
use antibody::scan::{self, Progress};

struct Printed;

impl Progress for Printed {
    fn step(&self, message: &str) {
        eprintln!("{message}");
    }
}

#[tokio::test]
#[ignore = "needs a real Google Cloud project and credentials (ANTIBODY_LIVE_PROJECT)"]
async fn a_report_only_sweep_of_a_real_project_reads_everything_and_changes_nothing() {
    let project = std::env::var("ANTIBODY_LIVE_PROJECT")
        .expect("set ANTIBODY_LIVE_PROJECT to a project these credentials can read");
    let dir = tempfile::tempdir().expect("dir");
    let config = Config {
        state: dir.path().join("live.sqlite"),
        google_endpoint: None,
        dry_run: true,
        ..Config::default()
    };
    let context = antibody::build(config, LogSink::Silent)
        .await
        .expect("Application Default Credentials are available");
    let report = scan::sweep(&context, &[project], false, &Printed).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    eprintln!(
        "swept {:?}, {} violations",
        report.swept,
        report.violations.len()
    );
}
