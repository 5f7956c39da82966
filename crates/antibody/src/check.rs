//! `antibody check`: evaluate one resource offline, for CI pipelines and for trying a policy out.

use serde::Serialize;

use crate::config::Config;
use crate::gcp::compute::Firewall;
use crate::gcp::iam::Policy;
use crate::gcp::storage::Bucket;
use crate::policy::{self, Finding, Fix, Resource};

/// What `check --format json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub compliant: bool,
    pub findings: Vec<Finding>,
    pub fix: Option<Fix>,
}

/// Evaluates a firewall rule given as Compute REST JSON. `Err` is a sentence about the input.
pub fn firewall(config: &Config, text: &str) -> Result<Report, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("the input is not valid JSON: {err}"))?;
    if !value.is_object() {
        return Err("the input must be a JSON object in Compute's firewall shape".into());
    }
    let firewall: Firewall = serde_json::from_value(value)
        .map_err(|err| format!("the input is not a Compute firewall rule: {err}"))?;
    if firewall.name.is_empty() {
        return Err("the firewall rule has no name".into());
    }
    // The project appears only in selfLink / network URLs; a bare rule has none.
    let project = [firewall.network.as_deref(), firewall.id.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|url| url.split("projects/").nth(1))
        .filter_map(|rest| rest.split('/').next())
        .next()
        .unwrap_or("-")
        .to_string();
    let plan = policy::evaluate(config, &Resource::Firewall { project, firewall });
    Ok(Report {
        compliant: plan.compliant(),
        findings: plan.findings,
        fix: plan.fix,
    })
}

/// Evaluates a project IAM policy given as Resource Manager's `getIamPolicy` JSON.
pub fn project_iam(config: &Config, text: &str) -> Result<Report, String> {
    let policy = parse_policy(text)?;
    Ok(report(
        config,
        Resource::ProjectIam {
            project: "-".into(),
            policy,
        },
    ))
}

/// Evaluates a bucket given as the JSON API's `projection=full` resource (its IAM policy unknown: ACLs only).
pub fn bucket(config: &Config, text: &str) -> Result<Report, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("the input is not valid JSON: {err}"))?;
    if value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("the input is not a bucket: expected an object with a 'name'".into());
    }
    let bucket: Bucket =
        serde_json::from_value(value).map_err(|err| format!("the input is not a bucket: {err}"))?;
    Ok(report(
        config,
        Resource::Bucket {
            project: "-".into(),
            bucket,
            policy: Policy::default(),
        },
    ))
}

/// Evaluates a bucket IAM policy given as `GET /storage/v1/b/{bucket}/iam` returns it.
pub fn bucket_iam(config: &Config, text: &str) -> Result<Report, String> {
    let policy = parse_policy(text)?;
    let name = policy
        .extra
        .get("resourceId")
        .and_then(serde_json::Value::as_str)
        .and_then(|id| id.rsplit('/').next())
        .unwrap_or("-")
        .to_string();
    let bucket = Bucket {
        name,
        ..Bucket::default()
    };
    Ok(report(
        config,
        Resource::Bucket {
            project: "-".into(),
            bucket,
            policy,
        },
    ))
}

fn parse_policy(text: &str) -> Result<Policy, String> {
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

fn report(config: &Config, resource: Resource) -> Report {
    let plan = policy::evaluate(config, &resource);
    Report {
        compliant: plan.compliant(),
        findings: plan.findings,
        fix: plan.fix,
    }
}
