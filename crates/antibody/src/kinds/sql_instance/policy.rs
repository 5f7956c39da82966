//! The `public-sql` policy, pure: which authorised networks open an instance to the internet (each broad by itself, or
//! only together), and whether it accepts connections without SSL.

use super::{POLICY, PUBLIC, SSL, SqlPolicy};
use crate::gcp::sql::{AclEntry, SqlInstance};
use crate::policy::cidr::{is_broad, together_broad};
use crate::policy::{Finding, Severity};

impl SqlPolicy {
    /// The findings, and the networks to remove: each one broad by itself, or — when only their union is — every
    /// network that reaches public space.
    pub fn evaluate(&self, instance: &SqlInstance) -> (Vec<Finding>, Vec<AclEntry>) {
        let mut findings = Vec::new();
        let (v4, v6) = (self.broad_prefix_v4, self.broad_prefix_v6);
        let mut broad: Vec<AclEntry> = instance
            .networks
            .iter()
            .filter(|network| is_broad(&network.value, v4, v6))
            .cloned()
            .collect();
        if broad.is_empty()
            && together_broad(
                instance
                    .networks
                    .iter()
                    .map(|network| network.value.as_str()),
                v4,
                v6,
            )
        {
            broad = instance
                .networks
                .iter()
                .filter(|network| is_broad(&network.value, 32, 128))
                .cloned()
                .collect();
        }
        if instance.ipv4_enabled && !broad.is_empty() {
            let ranges: Vec<&str> = broad.iter().map(|network| network.value.as_str()).collect();
            findings.push(Finding {
                policy: POLICY.to_string(),
                category: PUBLIC.to_string(),
                severity: self.severity,
                message: format!(
                    "instance {} accepts connections from {}",
                    instance.name,
                    ranges.join(", ")
                ),
            });
        }
        let ssl_enforced = instance.require_ssl
            || matches!(
                instance.ssl_mode.as_str(),
                "ENCRYPTED_ONLY" | "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
            );
        if self.report_ssl && instance.ipv4_enabled && !ssl_enforced {
            findings.push(Finding {
                policy: POLICY.to_string(),
                category: SSL.to_string(),
                severity: Severity::Medium,
                message: format!("instance {} accepts unencrypted connections", instance.name),
            });
        }
        let remove = if self.remove && instance.ipv4_enabled {
            broad
        } else {
            Vec::new()
        };
        (findings, remove)
    }
}
