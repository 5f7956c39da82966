//! The gate: may a planned fix run? Loop guard, failed calls, exemptions, dry-run, kill switch, flap quarantine and
//! blast-radius caps, each decision with its reason. Pure: the state store's counters come in as `Safety`.

use crate::config::Config;
use crate::event::AuditEvent;
use crate::journal::Safety;
use crate::kinds::Plan;
use crate::kinds::{Fix, Resource};
use crate::outcome::HeldBy;

/// How long a fix held by the circuit breaker waits at most: Google's trouble is usually shorter than a cap.
pub const BREAKER_RECHECK_SECS: u32 = 60;

/// What the gate decided about an event before anything is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Early {
    /// Our own write coming back: recorded, never acted on.
    OwnWrite,
    /// The audited call failed, so it changed nothing.
    FailedCall(i64),
}

/// Checks that need only the event.
/// `own_operation`: the event belongs to an operation antibody itself started (the write's fingerprint), which
/// recognises our own writes even when they are logged under another principal (impersonation, a renamed account).
pub fn screen(config: &Config, event: &AuditEvent, own_operation: bool) -> Option<Early> {
    let own_principal = !event.principal.is_empty()
        && config
            .identities
            .iter()
            .any(|identity| identity == &event.principal);
    if own_principal || own_operation {
        return Some(Early::OwnWrite);
    }
    if event.status_code != 0 {
        return Some(Early::FailedCall(event.status_code));
    }
    None
}

/// The verdict on a plan for a freshly read resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Apply(Fix),
    DryRun(Fix),
    Exempt(String),
    /// Findings that call for no change (report-only checks).
    Detected,
    /// A safety control holds the fix back (kill switch, blast-radius cap); it is journaled and alerted, and
    /// decided again on the live state after `recheck_secs` (none for a hold that waits on a person: IaC).
    Held {
        fix: Fix,
        by: HeldBy,
        reason: String,
        recheck_secs: Option<u32>,
    },
    /// Enforcement waits out the policy's grace period; the live state is decided again then.
    Deferred {
        seconds: u32,
    },
    /// The resource is being fought over: antibody stops fixing it. `new` is true the first time.
    Quarantined {
        fix: Fix,
        reason: String,
        principals: Vec<String>,
        new: bool,
    },
    Nothing,
}

/// The budget a fix is charged to under `max_fixes_per_project_per_hour`: the project's slots, counted apart for each
/// policy and for CRITICAL findings, so that a burst of cheap violations of one kind (decoys healed in milliseconds)
/// cannot spend the slots a different, graver hole needs. The journal counts slots by this key.
pub fn cap_budget(project: &str, findings: &[crate::policy::Finding]) -> String {
    format!("{project} {}", budget_class(findings))
}

/// Why the project's cap holds a fix: `count` fixes already charged to the fix's budget within the hour, `cap`
/// allowed. The gate's words, and the pipeline's when another handling took the budget's last slot first.
pub fn project_cap_reason(
    project: &str,
    findings: &[crate::policy::Finding],
    count: u32,
    cap: u32,
) -> String {
    let class = budget_class(findings);
    let open = match class.ends_with(" CRITICAL") {
        true => "THE HOLE IS STILL OPEN: ",
        false => "",
    };
    format!(
        "{open}blast-radius cap: {count} fixes of {class} findings in project {project} within the last hour \
         (max_fixes_per_project_per_hour = {cap}, counted per policy and for CRITICAL findings apart)"
    )
}

/// A policy's name, with ` CRITICAL` when the fix closes a CRITICAL finding: decoys of another policy, or milder
/// ones of the same, never spend its slots.
fn budget_class(findings: &[crate::policy::Finding]) -> String {
    let critical = findings
        .iter()
        .find(|finding| finding.severity == crate::policy::Severity::Critical);
    match critical.or(findings.first()) {
        Some(finding) if critical.is_some() => format!("{} CRITICAL", finding.policy),
        Some(finding) => finding.policy.clone(),
        None => "other".into(),
    }
}

/// How long a quarantined resource waits before antibody closes it again: a minute after the quarantine begins,
/// doubling with every fix since, at most a flap window.
pub fn quarantine_backoff_secs(config: &Config, recent_fixes_of_resource: u32) -> i64 {
    let doublings = recent_fixes_of_resource
        .saturating_sub(config.safety.flap_threshold)
        .min(20);
    (60_i64 << doublings).clamp(60, config.safety.flap_window_secs.max(60))
}

/// How much this process has fixed lately (the per-instance cap).
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    pub instance_fixes_last_hour: u32,
    /// Failed share of this process's recent Google calls, once there are enough of them to judge.
    pub google_failure_rate: Option<f64>,
}

pub fn admit(
    config: &Config,
    event: &AuditEvent,
    resource: &Resource,
    plan: &Plan,
    safety: &Safety,
    load: Load,
) -> Verdict {
    let Some(fix) = &plan.fix else {
        return if plan.findings.is_empty() {
            Verdict::Nothing
        } else {
            Verdict::Detected
        };
    };
    let exempt = resource.exemption(config, &event.principal);
    if let Some(reason) = exempt {
        return Verdict::Exempt(reason);
    }
    if let Some(exemption) = &safety.exemption {
        let until = exemption
            .expires_epoch
            .map(|epoch| format!(" until {epoch} (unix time)"))
            .unwrap_or_default();
        return Verdict::Exempt(format!(
            "registered exemption #{} for {} by {}: {}{until}",
            exemption.id, exemption.resource, exemption.owner, exemption.reason
        ));
    }
    if plan.dry_run {
        return Verdict::DryRun(fix.clone());
    }
    if config.safety.iac_hold
        && let Some(agent) = iac_user_agent(config, &event.user_agent)
        && let Some(pipeline) = config
            .safety
            .iac_principals
            .iter()
            .find(|pattern| crate::policy::glob_match(pattern, &event.principal))
    {
        // Only the pipeline's own accounts, never a user agent alone; and the hold ends: at its re-check the
        // synthetic event carries no user agent, so a hole the code did not close by then is fixed.
        return Verdict::Held {
            fix: fix.clone(),
            by: HeldBy::Iac,
            recheck_secs: Some(config.safety.held_recheck_secs),
            reason: format!(
                "made through infrastructure as code (by {} matching safety.iac_principals \"{pipeline}\", user \
                 agent \"{agent}\"): the next apply would undo a fix, so the code is what needs the change; \
                 decided again in {} s (safety.iac = \"hold\")",
                event.principal, config.safety.held_recheck_secs
            ),
        };
    }
    let grace = resource.kind().common(config).grace_secs;
    if grace > 0 && event.transport != crate::event::Transport::Recheck {
        return Verdict::Deferred { seconds: grace };
    }
    let held = |by: HeldBy, reason: String, recheck_secs: u32| Verdict::Held {
        fix: fix.clone(),
        by,
        reason,
        recheck_secs: Some(recheck_secs),
    };
    if config.safety.paused || safety.paused {
        return held(
            HeldBy::KillSwitch,
            "antibody is paused (kill switch); resume with `antibody resume`".into(),
            config.safety.held_recheck_secs,
        );
    }
    // A quarantine slows antibody down, never stops it: events about a quarantined resource wait, and the re-check
    // a quarantine schedules (after a backoff that doubles with every re-break) closes the hole again. Only an
    // operator stops it for good (an exemption, or `antibody quarantine release` once the fight is settled).
    let rechecking = event.transport == crate::event::Transport::Recheck;
    if let Some(quarantine) = safety.quarantined.as_ref().filter(|_| !rechecking) {
        return Verdict::Quarantined {
            fix: fix.clone(),
            reason: format!(
                "quarantined since {}: {}",
                quarantine.since, quarantine.reason
            ),
            principals: quarantine
                .principals
                .split(", ")
                .map(str::to_string)
                .collect(),
            new: false,
        };
    }
    let limits = &config.safety;
    if limits.flap_threshold > 0
        && safety.recent_fixes_of_resource >= limits.flap_threshold
        && !(rechecking && safety.quarantined.is_some())
    {
        let mut principals: Vec<String> = Vec::new();
        for principal in std::iter::once(&event.principal).chain(&safety.recent_breakers) {
            if !principal.is_empty() && !principals.contains(principal) {
                principals.push(principal.clone());
            }
        }
        return Verdict::Quarantined {
            fix: fix.clone(),
            reason: format!(
                "re-broken after {} fixes within {} minutes; competing with {}",
                safety.recent_fixes_of_resource,
                limits.flap_window_secs / 60,
                principals.join(", ")
            ),
            principals,
            new: true,
        };
    }
    if limits.max_fixes_per_project_per_hour > 0
        && safety.recent_fixes_in_project >= limits.max_fixes_per_project_per_hour
    {
        return held(
            HeldBy::ProjectCap,
            project_cap_reason(
                resource.target().project(),
                &plan.findings,
                safety.recent_fixes_in_project,
                limits.max_fixes_per_project_per_hour,
            ),
            config.safety.held_recheck_secs,
        );
    }
    if let Some(rate) = load
        .google_failure_rate
        .filter(|rate| limits.breaker_failure_rate > 0.0 && *rate >= limits.breaker_failure_rate)
    {
        return held(
            HeldBy::Breaker,
            format!(
                "circuit breaker open: {:.0}% of recent Google API calls failed (breaker_failure_rate = {})",
                rate * 100.0,
                limits.breaker_failure_rate
            ),
            BREAKER_RECHECK_SECS.min(config.safety.held_recheck_secs),
        );
    }
    if limits.max_fixes_per_instance_per_hour > 0
        && load.instance_fixes_last_hour >= limits.max_fixes_per_instance_per_hour
    {
        return held(
            HeldBy::InstanceCap,
            format!(
                "blast-radius cap: {} fixes by this instance within the last hour (max_fixes_per_instance_per_hour = {})",
                load.instance_fixes_last_hour, limits.max_fixes_per_instance_per_hour
            ),
            config.safety.held_recheck_secs,
        );
    }
    Verdict::Apply(fix.clone())
}

/// The configured infrastructure-as-code marker found in a caller's user agent, if any.
pub fn iac_user_agent<'a>(config: &'a Config, user_agent: &str) -> Option<&'a str> {
    config
        .safety
        .iac_user_agents
        .iter()
        .map(String::as_str)
        .find(|agent| !agent.is_empty() && user_agent.contains(agent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Transport;
    use crate::journal::Safety;
    use crate::kinds::firewall::FirewallRule;
    use serde_json::json;

    fn open_rule() -> (AuditEvent, Resource) {
        let entry = json!({"insertId": "i", "protoPayload": {"serviceName": "compute.googleapis.com",
            "methodName": "v1.compute.firewalls.patch", "resourceName": "projects/my-project/global/firewalls/fw",
            "authenticationInfo": {"principalEmail": "someone@example.com"}}});
        let event = AuditEvent::from_log_entry(&entry, Transport::LogEntry, None).expect("event");
        let firewall = serde_json::from_value(json!({"name": "fw", "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}))
        .expect("firewall");
        (
            event,
            Resource::Firewall(FirewallRule {
                project: "my-project".into(),
                firewall,
            }),
        )
    }

    #[test]
    fn the_breaker_holds_fixes_while_google_keeps_failing() {
        let config = Config::default();
        let (event, resource) = open_rule();
        let plan = crate::kinds::evaluate(&config, &resource);
        let verdict = |rate| {
            admit(
                &config,
                &event,
                &resource,
                &plan,
                &Safety::default(),
                Load {
                    instance_fixes_last_hour: 0,
                    google_failure_rate: rate,
                },
            )
        };
        assert!(matches!(verdict(None), Verdict::Apply(_)));
        assert!(matches!(verdict(Some(0.2)), Verdict::Apply(_)));
        let Verdict::Held { reason, .. } = verdict(Some(0.8)) else {
            panic!("expected the breaker to hold the fix")
        };
        assert!(reason.contains("circuit breaker open: 80%"), "{reason}");
    }

    #[test]
    fn a_change_made_through_infrastructure_as_code_is_held_when_asked() {
        let terraform = "Terraform/1.9.5 (+https://www.terraform.io) Terraform-Plugin-SDK/2.33.0 \
                         terraform-provider-google/6.8.0";
        let (mut event, resource) = open_rule();
        let mut config = Config::default();
        let plan = crate::kinds::evaluate(&config, &resource);
        let verdict = |config: &Config, event: &AuditEvent| {
            admit(
                config,
                event,
                &resource,
                &plan,
                &Safety::default(),
                Load::default(),
            )
        };
        event.user_agent = terraform.into();
        assert!(
            matches!(verdict(&config, &event), Verdict::Apply(_)),
            "fixed by default"
        );
        config.safety.iac_hold = true;
        // Issue 35: anyone could write Terraform's name into their own user agent; only the pipeline's accounts
        // are held.
        assert!(
            matches!(verdict(&config, &event), Verdict::Apply(_)),
            "a user agent alone holds nothing"
        );
        config.safety.iac_principals = vec!["terraform@*.iam.gserviceaccount.com".into()];
        assert!(
            matches!(verdict(&config, &event), Verdict::Apply(_)),
            "{} is not the pipeline",
            event.principal
        );
        event.principal = "terraform@ops.iam.gserviceaccount.com".into();
        let Verdict::Held {
            reason,
            recheck_secs,
            ..
        } = verdict(&config, &event)
        else {
            panic!("expected the fix to be held")
        };
        assert!(reason.contains("terraform-provider-google"), "{reason}");
        assert_eq!(
            recheck_secs,
            Some(config.safety.held_recheck_secs),
            "and decided again"
        );
        let mut recheck = event.clone();
        recheck.transport = Transport::Recheck;
        recheck.user_agent = String::new();
        assert!(
            matches!(verdict(&config, &recheck), Verdict::Apply(_)),
            "a hole the code left open is fixed at the re-check"
        );
        event.user_agent =
            "kcc/1.120.1 (+https://github.com/GoogleCloudPlatform/k8s-config-connector)".into();
        assert!(matches!(verdict(&config, &event), Verdict::Held { .. }));
        event.user_agent = "google-cloud-sdk gcloud/450.0.0".into();
        assert!(
            matches!(verdict(&config, &event), Verdict::Apply(_)),
            "a person's change is fixed"
        );
    }

    /// Each safety control names itself in its hold, so that what counts holds (a sweep's `held_by_caps`) reads the
    /// verdict, never its wording.
    #[test]
    fn every_hold_names_the_control_that_holds() {
        let (event, resource) = open_rule();
        let held_by = |config: &Config, safety: &Safety, load: Load| {
            let plan = crate::kinds::evaluate(config, &resource);
            match admit(config, &event, &resource, &plan, safety, load) {
                Verdict::Held { by, .. } => Some(by),
                _ => None,
            }
        };
        let config = Config::default();
        assert_eq!(held_by(&config, &Safety::default(), Load::default()), None);
        let paused = Safety {
            paused: true,
            ..Safety::default()
        };
        assert_eq!(
            held_by(&config, &paused, Load::default()),
            Some(HeldBy::KillSwitch)
        );
        let spent = Safety {
            recent_fixes_in_project: config.safety.max_fixes_per_project_per_hour,
            ..Safety::default()
        };
        assert_eq!(
            held_by(&config, &spent, Load::default()),
            Some(HeldBy::ProjectCap)
        );
        let busy = Load {
            instance_fixes_last_hour: config.safety.max_fixes_per_instance_per_hour,
            google_failure_rate: None,
        };
        assert_eq!(
            held_by(&config, &Safety::default(), busy),
            Some(HeldBy::InstanceCap)
        );
        let failing = Load {
            instance_fixes_last_hour: 0,
            google_failure_rate: Some(0.9),
        };
        assert_eq!(
            held_by(&config, &Safety::default(), failing),
            Some(HeldBy::Breaker)
        );
        assert!(HeldBy::ProjectCap.is_cap() && HeldBy::InstanceCap.is_cap());
        assert!(!HeldBy::KillSwitch.is_cap() && !HeldBy::Breaker.is_cap() && !HeldBy::Iac.is_cap());
    }

    #[test]
    fn our_own_operations_are_recognised_whatever_principal_they_show() {
        let config = Config::default();
        let (event, _) = open_rule();
        assert_eq!(screen(&config, &event, false), None);
        assert_eq!(screen(&config, &event, true), Some(Early::OwnWrite));
    }
}
