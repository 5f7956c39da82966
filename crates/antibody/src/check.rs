//! `antibody check`: evaluate one resource offline, for CI pipelines and for trying a policy out.

use serde::Serialize;

use crate::config::Config;
use crate::gcp::iam::Policy;
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

/// An IAM policy as `getIamPolicy` returns it, read at version 3 (a `_withcond_` read is refused).
pub(crate) fn parse_policy(text: &str) -> Result<Policy, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("the input is not valid JSON: {err}"))?;
    if value
        .get("bindings")
        .is_none_or(|bindings| !bindings.is_array())
        && value.get("etag").is_none()
    {
        return Err("the input is not an IAM policy: expected an object with 'bindings'".into());
    }
    let policy: Policy = serde_json::from_value(value)
        .map_err(|err| format!("the input is not an IAM policy: {err}"))?;
    if policy.downgraded() {
        return Err("the policy was read below version 3 (a _withcond_ role): read it with requestedPolicyVersion 3".into());
    }
    Ok(policy)
}
