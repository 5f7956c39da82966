//! The public-bucket policy: every way a bucket becomes public (IAM on any role, bucket ACL, default object ACL), an
//! outsider granted a role on it (by the project policy's rules), and the guards that keep it private (public access
//! prevention, uniform bucket-level access).

use serde::{Deserialize, Serialize};

use super::Fix;
use crate::gcp::iam::{Grant, Policy};
use crate::gcp::storage::Bucket;
use crate::policy::{Finding, Severity, glob_match};

pub const POLICY_ID: &str = "public-bucket";
/// An outsider granted a role on the bucket (the project policy's category for the same grant on a project).
pub const EXTERNAL_MEMBER: &str = "EXTERNAL_MEMBER";

/// When to set `publicAccessPrevention: enforced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreventionMode {
    Never,
    /// On every bucket antibody found public (and not exempt), so it cannot happen again.
    WhenPublic,
    Always,
}

/// The validated settings (see `RawBucketPolicy` for each field's meaning).
#[derive(Debug, Clone)]
pub struct BucketPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    /// Seconds to wait before enforcing; the live state is decided again when they are up.
    pub grace_secs: u32,
    pub exempt_label: String,
    pub allow_buckets: Vec<String>,
    /// Whose changes may rely on `exempt_label` and `allow_buckets`: a label (and a new bucket's name) is written
    /// by whoever can change the bucket, so it counts only when that is someone trusted to grant exemptions.
    pub marker_principals: Vec<String>,
    pub flag_public_access_prevention: Option<Severity>,
    pub enforce_public_access_prevention: PreventionMode,
    pub flag_uniform_access: Option<Severity>,
    pub enable_uniform_access: bool,
}

impl Default for BucketPolicy {
    fn default() -> Self {
        BucketPolicy {
            enabled: true,
            dry_run: false,
            grace_secs: 0,
            exempt_label: String::new(),
            allow_buckets: Vec::new(),
            marker_principals: Vec::new(),
            flag_public_access_prevention: None,
            enforce_public_access_prevention: PreventionMode::WhenPublic,
            flag_uniform_access: None,
            enable_uniform_access: false,
        }
    }
}

pub fn is_public(member: &str) -> bool {
    member == "allUsers" || member == "allAuthenticatedUsers"
}

/// Roles that let the public change or own data are worse than those that let it read.
fn role_severity(role: &str) -> Severity {
    let read_only = ["Viewer", "Reader", "viewer", "reader"]
        .iter()
        .any(|word| role.ends_with(word));
    if read_only {
        Severity::High
    } else {
        Severity::Critical
    }
}

impl BucketPolicy {
    /// Why this bucket is meant to be public, if it is: a label or name exemption counts only for a change made by
    /// one of `marker_principals`, so that whoever makes a bucket public cannot exempt it themselves.
    pub fn exemption(&self, bucket: &Bucket, principal: &str) -> Option<String> {
        let trusted = self
            .marker_principals
            .iter()
            .find(|pattern| !principal.is_empty() && glob_match(pattern, principal))?;
        let by = format!("changed by {principal} (marker_principals entry '{trusted}')");
        if !self.exempt_label.is_empty()
            && let Some(value) = bucket.labels.get(&self.exempt_label)
        {
            return Some(format!("label {}={value}, {by}", self.exempt_label));
        }
        self.allow_buckets
            .iter()
            .find(|pattern| glob_match(pattern, &bucket.name))
            .map(|pattern| format!("bucket name matches allow_buckets entry '{pattern}', {by}"))
    }

    /// The public IAM grants, leaving out legacy bucket roles that merely mirror an ACL entry (reported as ACL).
    fn public_grants(&self, bucket: &Bucket, policy: &Policy) -> Vec<Grant> {
        policy
            .grants()
            .filter(|grant| is_public(&grant.member))
            .filter(|grant| {
                let mirrored = grant.role.starts_with("roles/storage.legacyBucket")
                    && bucket
                        .acl
                        .iter()
                        .any(|control| control.entity == grant.member);
                !mirrored
            })
            .collect()
    }

    pub fn evaluate(&self, bucket: &Bucket, policy: &Policy) -> Vec<Finding> {
        self.evaluate_with(bucket, policy, &|_| false)
    }

    /// `evaluate`, with `outsider` judging members by the project policy's rules: an outsider's IAM grant on the
    /// bucket is `EXTERNAL_MEMBER`.
    pub fn evaluate_with(
        &self,
        bucket: &Bucket,
        policy: &Policy,
        outsider: &dyn Fn(&str) -> bool,
    ) -> Vec<Finding> {
        let finding = |category: &str, severity, message: String| Finding {
            policy: POLICY_ID.into(),
            category: category.into(),
            severity,
            message,
        };
        let name = &bucket.name;
        let mut findings = Vec::new();
        for grant in self.public_grants(bucket, policy) {
            findings.push(finding(
                "PUBLIC_BUCKET_IAM",
                role_severity(&grant.role),
                format!("bucket {name} grants {} to {}", grant.role, grant.member),
            ));
        }
        for grant in policy
            .grants()
            .filter(|grant| !is_public(&grant.member) && outsider(&grant.member))
        {
            findings.push(finding(
                EXTERNAL_MEMBER,
                role_severity(&grant.role),
                format!(
                    "bucket {name} grants {} to {}, outside the organisation",
                    grant.role, grant.member
                ),
            ));
        }
        for control in bucket
            .acl
            .iter()
            .filter(|control| is_public(&control.entity))
        {
            let severity = if control.role == "READER" {
                Severity::High
            } else {
                Severity::Critical
            };
            findings.push(finding(
                "PUBLIC_BUCKET_ACL",
                severity,
                format!(
                    "bucket {name} ACL gives {} to {}",
                    control.role, control.entity
                ),
            ));
        }
        for control in bucket
            .default_object_acl
            .iter()
            .filter(|control| is_public(&control.entity))
        {
            findings.push(finding(
                "PUBLIC_DEFAULT_OBJECT_ACL",
                Severity::High,
                format!(
                    "bucket {name} gives new objects {} for {}",
                    control.role, control.entity
                ),
            ));
        }
        let prevention = bucket
            .iam_configuration
            .public_access_prevention
            .as_deref()
            .unwrap_or("inherited");
        if let Some(severity) = self
            .flag_public_access_prevention
            .filter(|_| prevention != "enforced")
        {
            findings.push(finding(
                "PUBLIC_ACCESS_PREVENTION_NOT_ENFORCED",
                severity,
                format!("bucket {name} does not enforce public access prevention"),
            ));
        }
        if let Some(severity) = self
            .flag_uniform_access
            .filter(|_| !bucket.iam_configuration.uniform_bucket_level_access.enabled)
        {
            findings.push(finding(
                "UNIFORM_ACCESS_DISABLED",
                severity,
                format!("bucket {name} uses fine-grained ACLs"),
            ));
        }
        findings
    }

    pub fn plan_fix(&self, bucket: &Bucket, policy: &Policy, findings: &[Finding]) -> Option<Fix> {
        self.plan_fix_with(bucket, policy, findings, &|_| false)
    }

    /// `plan_fix`, removing outsiders' grants too (`outsider` as for `evaluate_with`); public access prevention
    /// answers only the public.
    pub fn plan_fix_with(
        &self,
        bucket: &Bucket,
        policy: &Policy,
        findings: &[Finding],
        outsider: &dyn Fn(&str) -> bool,
    ) -> Option<Fix> {
        let public = findings.iter().any(|finding| {
            finding.category.starts_with("PUBLIC_")
                && finding.category != "PUBLIC_ACCESS_PREVENTION_NOT_ENFORCED"
        });
        let prevention = bucket
            .iam_configuration
            .public_access_prevention
            .as_deref()
            .unwrap_or("inherited");
        let enforce_public_access_prevention = prevention != "enforced"
            && match self.enforce_public_access_prevention {
                PreventionMode::Never => false,
                PreventionMode::WhenPublic => public,
                PreventionMode::Always => true,
            };
        let enable_uniform_access = self.enable_uniform_access
            && !bucket.iam_configuration.uniform_bucket_level_access.enabled;
        let entities = |controls: &[crate::gcp::storage::AccessControl]| -> Vec<String> {
            controls
                .iter()
                .filter(|control| is_public(&control.entity))
                .map(|control| control.entity.clone())
                .collect()
        };
        // Every public grant goes, the ACL mirrors included: removing the legacy role is how IAM drops the ACL entry.
        let remove_members: Vec<Grant> = policy
            .grants()
            .filter(|grant| is_public(&grant.member) || outsider(&grant.member))
            .collect();
        let remove_acl = entities(&bucket.acl);
        let remove_default_object_acl = entities(&bucket.default_object_acl);
        let anything = !remove_members.is_empty()
            || !remove_acl.is_empty()
            || !remove_default_object_acl.is_empty()
            || enforce_public_access_prevention
            || enable_uniform_access;
        anything.then(|| Fix::SecureBucket {
            bucket: bucket.name.clone(),
            remove_members,
            remove_acl,
            remove_default_object_acl,
            enforce_public_access_prevention,
            enable_uniform_access,
        })
    }
}

#[cfg(test)]
mod tests;
