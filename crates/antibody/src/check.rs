//! `antibody check`: evaluate one resource offline, for CI pipelines and for trying a policy out.

use serde::Serialize;

use crate::config::Config;
use crate::kinds::{self, Fix};
use crate::policy::Finding;

/// What `check --format json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub compliant: bool,
    pub findings: Vec<Finding>,
    pub fix: Option<Fix>,
}

/// Evaluates one resource given as `input` (a name from `kinds::inputs()`) in its
/// REST JSON shape. `Err` is a sentence about the input.
pub fn resource(config: &Config, input: &str, text: &str) -> Result<Report, String> {
    let resource = kinds::parse_input(input, text)?;
    let plan = resource.evaluate(config);
    Ok(Report {
        compliant: plan.compliant(),
        findings: plan.findings,
        fix: plan.fix,
    })
}
