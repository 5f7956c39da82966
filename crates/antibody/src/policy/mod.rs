//! Policies: pure functions from a freshly read resource to findings and a planned fix. No I/O, no clock.

pub mod bucket;
pub mod cidr;
pub mod firewall;
pub mod ports;
pub mod project_iam;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::gcp::compute::Firewall;
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::storage::Bucket;

/// A resource as it was just read from Google.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one value per event, never stored in bulk: boxing would buy nothing
pub enum Resource {
    Firewall {
        project: String,
        firewall: Firewall,
    },
    ProjectIam {
        project: String,
        policy: Policy,
    },
    /// A bucket (with its ACLs) and its IAM policy, read together.
    Bucket {
        project: String,
        bucket: Bucket,
        policy: Policy,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// One thing wrong with a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub policy: String,
    /// Security Health Analytics' category name where one exists (`OPEN_SSH_PORT`).
    pub category: String,
    pub severity: Severity,
    pub message: String,
}

/// A fix as data: what `apply` will do, what dry-run journals, what tests compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// `PATCH {"disabled": true}`: the rule stays, unenforced, and can be re-enabled.
    DisableFirewall { project: String, name: String },
    /// Keep the rule working for everything but the risky exposure: optionally create `split` (the world-wide
    /// sources with only safe ports) first, then merge-patch the original with `patch`.
    NarrowFirewall {
        project: String,
        name: String,
        patch: Value,
        split: Option<Box<Firewall>>,
    },
    /// Remove the rule (only when configured).
    DeleteFirewall { project: String, name: String },
    /// Remove exactly these grants by a version-3, etag-checked read-modify-write of the project policy.
    RemoveProjectMembers { project: String, grants: Vec<Grant> },
    /// Close a public bucket: public ACL entries go (metageneration-checked), public IAM grants go (etag-checked,
    /// version 3, conditions kept), and optionally public access prevention and uniform access are switched on.
    SecureBucket {
        bucket: String,
        remove_members: Vec<Grant>,
        remove_acl: Vec<String>,
        remove_default_object_acl: Vec<String>,
        enforce_public_access_prevention: bool,
        enable_uniform_access: bool,
    },
}

impl Fix {
    /// A short phrase for tables and alerts.
    pub fn describe(&self) -> String {
        match self {
            Fix::DisableFirewall { .. } => "disabled the rule".to_string(),
            Fix::NarrowFirewall {
                split: Some(split), ..
            } => {
                format!(
                    "removed world-wide sources; safe ports moved to {}",
                    split.name
                )
            }
            Fix::NarrowFirewall { .. } => {
                "removed the risky ports from the world-wide rule".to_string()
            }
            Fix::DeleteFirewall { .. } => "deleted the rule".to_string(),
            Fix::SecureBucket {
                remove_members,
                remove_acl,
                remove_default_object_acl,
                enforce_public_access_prevention,
                enable_uniform_access,
                ..
            } => {
                let mut done = Vec::new();
                if !remove_members.is_empty()
                    || !remove_acl.is_empty()
                    || !remove_default_object_acl.is_empty()
                {
                    done.push("removed public access".to_string());
                }
                if *enforce_public_access_prevention {
                    done.push("enforced public access prevention".to_string());
                }
                if *enable_uniform_access {
                    done.push("enabled uniform access".to_string());
                }
                done.join(", ")
            }
            Fix::RemoveProjectMembers { grants, .. } => format!(
                "removed {}",
                grants
                    .iter()
                    .map(|grant| format!("{} from {}", grant.member, grant.role))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// What the policies concluded about one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub findings: Vec<Finding>,
    pub fix: Option<Fix>,
    /// Every policy that found something runs in dry-run.
    pub dry_run: bool,
}

impl Plan {
    pub fn compliant(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Runs every enabled policy that understands the resource.
pub fn evaluate(config: &Config, resource: &Resource) -> Plan {
    let nothing = || Plan {
        findings: Vec::new(),
        fix: None,
        dry_run: false,
    };
    match resource {
        Resource::Firewall { project, firewall } => {
            let policy = &config.firewall;
            if !policy.enabled {
                return nothing();
            }
            let findings = policy.evaluate(firewall);
            let fix = (!findings.is_empty()).then(|| policy.plan_fix(project, firewall));
            Plan {
                findings,
                fix,
                dry_run: policy.dry_run || config.dry_run,
            }
        }
        Resource::Bucket {
            bucket,
            policy: iam,
            ..
        } => {
            let policy = &config.bucket;
            if !policy.enabled {
                return nothing();
            }
            let findings = policy.evaluate(bucket, iam);
            let fix = policy.plan_fix(bucket, iam, &findings);
            Plan {
                findings,
                fix,
                dry_run: policy.dry_run || config.dry_run,
            }
        }
        Resource::ProjectIam {
            project,
            policy: iam,
        } => {
            let policy = &config.project_iam;
            if !policy.enabled {
                return nothing();
            }
            let (findings, grants): (Vec<Finding>, Vec<Grant>) =
                policy.evaluate(iam).into_iter().unzip();
            let fix = (!grants.is_empty()).then(|| policy.plan_fix(project, grants));
            Plan {
                findings,
                fix,
                dry_run: policy.dry_run || config.dry_run,
            }
        }
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(tail) = text.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len())
                .filter(|at| tail.is_char_boundary(*at))
                .any(|at| glob_match(rest, &tail[at..]))
        }
    }
}
