//! The `audit-config` policy (CIS 2.1, Security Health Analytics' `AUDIT_LOGGING_DISABLED`): an IAM policy's
//! `auditConfigs` must keep the log types the configuration requires and those a change just removed, and gain no
//! exempted members. It lives in the IAM-policy room because `auditConfigs` are part of the same policy, written by
//! the same `setIamPolicy`: one event, one re-read, one guarded write. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::AuditConfigDelta;
use crate::gcp::iam::Policy;
use crate::policy::{Finding, Severity};

pub const POLICY: &str = "audit-config";
pub const DISABLED: &str = "AUDIT_LOGGING_DISABLED";
pub const EXEMPTED: &str = "AUDIT_LOGGING_EXEMPTION";

/// A service and the log types it must keep (`allServices` for all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Required {
    pub service: String,
    pub log_types: Vec<String>,
}

/// The validated `[policies.project_iam.audit_config]` section.
#[derive(Debug, Clone, Serialize)]
pub struct AuditConfigPolicy {
    pub enabled: bool,
    /// Restore (default) or only report.
    pub restore: bool,
    /// Put back what a change removed, as its audit entry reports it (default on).
    pub keep_removed: bool,
    pub required: Vec<Required>,
    /// An exempted member added to a log type is a finding, and removed again (default on).
    pub forbid_exemptions: bool,
    pub severity: Severity,
}

impl Default for AuditConfigPolicy {
    fn default() -> Self {
        AuditConfigPolicy {
            enabled: true,
            restore: true,
            keep_removed: true,
            required: Vec::new(),
            forbid_exemptions: true,
            severity: Severity::High,
        }
    }
}

/// What a fix changes in `auditConfigs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRepair {
    /// (service, log type) to turn back on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore: Vec<(String, String)>,
    /// (service, log type, member) exemptions to take away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexempt: Vec<(String, String, String)>,
}

fn log_config<'a>(configs: &'a [Value], service: &str, log_type: &str) -> Option<&'a Value> {
    configs
        .iter()
        .filter(|config| config["service"] == service)
        .flat_map(|config| config["auditLogConfigs"].as_array().into_iter().flatten())
        .find(|log| log["logType"] == log_type)
}

fn exempted(configs: &[Value], service: &str, log_type: &str, member: &str) -> bool {
    log_config(configs, service, log_type).is_some_and(|log| {
        log["exemptedMembers"]
            .as_array()
            .is_some_and(|members| members.iter().any(|candidate| candidate == member))
    })
}

impl AuditRepair {
    pub fn is_empty(&self) -> bool {
        self.restore.is_empty() && self.unexempt.is_empty()
    }

    /// Applies the repair to a freshly read policy; `false` when there was nothing left to do.
    pub fn apply_to(&self, policy: &mut Policy) -> bool {
        let mut changed = false;
        for (service, log_type) in &self.restore {
            if log_config(&policy.audit_configs, service, log_type).is_some() {
                continue;
            }
            changed = true;
            let entry = json!({"logType": log_type});
            match policy
                .audit_configs
                .iter_mut()
                .find(|config| config["service"] == service.as_str())
            {
                Some(config) => match config["auditLogConfigs"].as_array_mut() {
                    Some(logs) => logs.push(entry),
                    None => config["auditLogConfigs"] = json!([entry]),
                },
                None => policy
                    .audit_configs
                    .push(json!({"service": service, "auditLogConfigs": [entry]})),
            }
        }
        for (service, log_type, member) in &self.unexempt {
            for config in policy
                .audit_configs
                .iter_mut()
                .filter(|config| config["service"] == service.as_str())
            {
                for log in config["auditLogConfigs"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if log["logType"] != log_type.as_str() {
                        continue;
                    }
                    if let Some(members) = log["exemptedMembers"].as_array_mut() {
                        let before = members.len();
                        members.retain(|candidate| candidate != member.as_str());
                        changed |= members.len() != before;
                        if members.is_empty() {
                            log.as_object_mut()
                                .map(|fields| fields.remove("exemptedMembers"));
                        }
                    }
                }
            }
        }
        changed
    }
}

impl AuditConfigPolicy {
    /// The findings about `policy`'s audit-log configuration, given what the change that led here did (`deltas`; none
    /// for a sweep or a re-check), and the repair.
    pub fn evaluate(
        &self,
        policy: &Policy,
        deltas: &[AuditConfigDelta],
    ) -> (Vec<Finding>, AuditRepair) {
        let mut findings = Vec::new();
        let mut repair = AuditRepair::default();
        if !self.enabled {
            return (findings, repair);
        }
        let mut wanted: Vec<(String, String)> = self
            .required
            .iter()
            .flat_map(|required| {
                required
                    .log_types
                    .iter()
                    .map(|log_type| (required.service.clone(), log_type.clone()))
            })
            .collect();
        if self.keep_removed {
            wanted.extend(
                deltas
                    .iter()
                    .filter(|delta| delta.action == "REMOVE" && delta.exempted_member.is_empty())
                    .map(|delta| (delta.service.clone(), delta.log_type.clone())),
            );
        }
        wanted.sort();
        wanted.dedup();
        for (service, log_type) in wanted {
            if service.is_empty()
                || log_type.is_empty()
                || log_config(&policy.audit_configs, &service, &log_type).is_some()
            {
                continue;
            }
            findings.push(Finding {
                policy: POLICY.to_string(),
                category: DISABLED.to_string(),
                severity: self.severity,
                message: format!("{log_type} audit logs of {service} are turned off"),
            });
            repair.restore.push((service, log_type));
        }
        if self.forbid_exemptions {
            for delta in deltas
                .iter()
                .filter(|delta| delta.action == "ADD" && !delta.exempted_member.is_empty())
            {
                if !exempted(
                    &policy.audit_configs,
                    &delta.service,
                    &delta.log_type,
                    &delta.exempted_member,
                ) {
                    continue;
                }
                findings.push(Finding {
                    policy: POLICY.to_string(),
                    category: EXEMPTED.to_string(),
                    severity: self.severity,
                    message: format!(
                        "{} was exempted from {} audit logs of {}",
                        delta.exempted_member, delta.log_type, delta.service
                    ),
                });
                repair.unexempt.push((
                    delta.service.clone(),
                    delta.log_type.clone(),
                    delta.exempted_member.clone(),
                ));
            }
        }
        if !self.restore {
            repair = AuditRepair::default();
        }
        (findings, repair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(configs: Value) -> Policy {
        serde_json::from_value(
            json!({"version": 3, "etag": "BwX=", "bindings": [], "auditConfigs": configs}),
        )
        .expect("policy")
    }

    fn delta(action: &str, service: &str, log_type: &str, member: &str) -> AuditConfigDelta {
        AuditConfigDelta {
            action: action.into(),
            service: service.into(),
            log_type: log_type.into(),
            exempted_member: member.into(),
        }
    }

    #[test]
    fn what_a_change_removed_is_put_back_and_nothing_else() {
        let audit = AuditConfigPolicy::default();
        let now = policy(
            json!([{"service": "allServices", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}]),
        );
        let removed = [
            delta("REMOVE", "allServices", "DATA_READ", ""),
            delta("REMOVE", "allServices", "DATA_WRITE", ""),
        ];
        let (findings, repair) = audit.evaluate(&now, &removed);
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|finding| finding.category == DISABLED));
        assert_eq!(
            repair.restore,
            [
                ("allServices".to_string(), "DATA_READ".to_string()),
                ("allServices".to_string(), "DATA_WRITE".to_string())
            ]
        );
        let mut fixed = now.clone();
        assert!(repair.apply_to(&mut fixed));
        assert_eq!(
            fixed.audit_configs,
            vec![json!({"service": "allServices", "auditLogConfigs": [
            {"logType": "ADMIN_READ"}, {"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]})]
        );
        assert!(
            !repair.apply_to(&mut fixed),
            "a second application changes nothing"
        );
        assert_eq!(
            audit.evaluate(&fixed, &removed).0.len(),
            0,
            "restored: compliant"
        );
        // Adding a log type, or removing an exemption, turns nothing off.
        let more = [
            delta("ADD", "allServices", "DATA_READ", ""),
            delta("REMOVE", "allServices", "DATA_READ", "user:x@example.com"),
        ];
        assert_eq!(audit.evaluate(&now, &more).0.len(), 0);
        // A sweep knows no change: only what the configuration requires.
        assert_eq!(audit.evaluate(&policy(json!([])), &[]).0.len(), 0);
        let strict = AuditConfigPolicy {
            required: vec![Required {
                service: "storage.googleapis.com".into(),
                log_types: vec!["DATA_WRITE".into()],
            }],
            ..AuditConfigPolicy::default()
        };
        let (findings, repair) = strict.evaluate(&policy(json!([])), &[]);
        assert_eq!((findings.len(), repair.restore.len()), (1, 1));
        let mut fixed = policy(json!([]));
        repair.apply_to(&mut fixed);
        assert_eq!(
            fixed.audit_configs,
            vec![
                json!({"service": "storage.googleapis.com", "auditLogConfigs": [{"logType": "DATA_WRITE"}]})
            ]
        );
    }

    #[test]
    fn an_added_exemption_is_taken_away_and_others_kept() {
        let audit = AuditConfigPolicy::default();
        let now = policy(json!([{"service": "allServices", "auditLogConfigs": [
            {"logType": "DATA_READ", "exemptedMembers": ["user:intruder@example.com", "serviceAccount:etl@p.iam.gserviceaccount.com"]}]}]));
        let added = [delta(
            "ADD",
            "allServices",
            "DATA_READ",
            "user:intruder@example.com",
        )];
        let (findings, repair) = audit.evaluate(&now, &added);
        assert_eq!(findings[0].category, EXEMPTED);
        let mut fixed = now.clone();
        assert!(repair.apply_to(&mut fixed));
        assert_eq!(
            fixed.audit_configs[0]["auditLogConfigs"][0]["exemptedMembers"],
            json!(["serviceAccount:etl@p.iam.gserviceaccount.com"])
        );
        let report_only = AuditConfigPolicy {
            restore: false,
            ..AuditConfigPolicy::default()
        };
        let (findings, repair) = report_only.evaluate(&now, &added);
        assert_eq!((findings.len(), repair.is_empty()), (1, true));
    }
}
