//! The `public-dataset` policy, pure: which access entries open a dataset to everyone, or give it to an outsider.

use serde_json::Value;

use super::{CATEGORY, DatasetPolicy, POLICY};
use crate::gcp::bigquery::Dataset;
use crate::policy::Finding;

/// An access entry that opens the dataset to everyone: `iamMember` `allUsers`/`allAuthenticatedUsers`, or the
/// `allAuthenticatedUsers` special group.
pub fn is_public(entry: &Value) -> bool {
    let public = |field: &str| {
        entry[field]
            .as_str()
            .is_some_and(|member| member == "allUsers" || member == "allAuthenticatedUsers")
    };
    public("iamMember") || public("specialGroup")
}

/// An access entry's member as IAM writes members (`userByEmail` → `user:…`, `groupByEmail` → `group:…`, `domain` →
/// `domain:…`, `iamMember` as it is), for the project policy's outsider rules.
pub fn member(entry: &Value) -> Option<String> {
    let field = |name: &str| entry[name].as_str().filter(|value| !value.is_empty());
    if let Some(member) = field("iamMember") {
        return Some(member.to_string());
    }
    [
        ("userByEmail", "user"),
        ("groupByEmail", "group"),
        ("domain", "domain"),
    ]
    .into_iter()
    .find_map(|(name, kind)| field(name).map(|value| format!("{kind}:{value}")))
}

/// An outsider's entry in a dataset's access list.
pub const OUTSIDER: &str = "EXTERNAL_MEMBER";

impl DatasetPolicy {
    /// One finding per public entry, and the entries to remove.
    pub fn evaluate(&self, dataset: &str, read: &Dataset) -> (Vec<Finding>, Vec<Value>) {
        self.evaluate_with(dataset, read, &|_| false)
    }

    /// `evaluate`, with `outsider` judging members by the project policy's rules: an outsider's entry is
    /// `EXTERNAL_MEMBER`, removed like a public one.
    pub fn evaluate_with(
        &self,
        dataset: &str,
        read: &Dataset,
        outsider: &dyn Fn(&str) -> bool,
    ) -> (Vec<Finding>, Vec<Value>) {
        let foreign = |entry: &Value| {
            !is_public(entry) && member(entry).is_some_and(|member| outsider(&member))
        };
        let offending: Vec<Value> = read
            .access
            .iter()
            .filter(|entry| is_public(entry) || foreign(entry))
            .cloned()
            .collect();
        let findings = offending
            .iter()
            .map(|entry| Finding {
                policy: POLICY.to_string(),
                category: if foreign(entry) { OUTSIDER } else { CATEGORY }.to_string(),
                severity: self.severity,
                message: format!(
                    "dataset {dataset} gives {} to {}",
                    entry["role"].as_str().unwrap_or("a role"),
                    member(entry)
                        .or(entry["specialGroup"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "everyone".to_string())
                ),
            })
            .collect();
        (findings, if self.remove { offending } else { Vec::new() })
    }
}
