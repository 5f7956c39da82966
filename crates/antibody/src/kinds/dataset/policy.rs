//! The `public-dataset` policy, pure: which access entries open a dataset to everyone.

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

impl DatasetPolicy {
    /// One finding per public entry, and the entries to remove.
    pub fn evaluate(&self, dataset: &str, read: &Dataset) -> (Vec<Finding>, Vec<Value>) {
        let public: Vec<Value> = read
            .access
            .iter()
            .filter(|entry| is_public(entry))
            .cloned()
            .collect();
        let findings = public
            .iter()
            .map(|entry| Finding {
                policy: POLICY.to_string(),
                category: CATEGORY.to_string(),
                severity: self.severity,
                message: format!(
                    "dataset {dataset} gives {} to {}",
                    entry["role"].as_str().unwrap_or("a role"),
                    entry["iamMember"]
                        .as_str()
                        .or(entry["specialGroup"].as_str())
                        .unwrap_or("everyone")
                ),
            })
            .collect();
        (findings, if self.remove { public } else { Vec::new() })
    }
}
