//! Safety limits in the configuration: the `[safety]` table (kill switch, flap detection, blast-radius caps, the
//! circuit breaker, infrastructure as code).

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafety {
    /// The kill switch: detect and journal, change nothing (also `antibody pause` / `antibody resume`).
    #[serde(default)]
    pub paused: bool,
    /// Fixes of one resource within the window after which it is quarantined (default 3; 0 turns flap detection off).
    pub flap_threshold: Option<u32>,
    /// The flap window in minutes (default 60).
    pub flap_window_minutes: Option<u32>,
    /// At most this many fixes per project per hour (default 10; 0 = unlimited).
    pub max_fixes_per_project_per_hour: Option<u32>,
    /// At most this many fixes per antibody instance per hour (default 50; 0 = unlimited).
    pub max_fixes_per_instance_per_hour: Option<u32>,
    /// Stop mutating while at least this share of the last 50 Google API calls failed (default 0.5; 0 = off).
    pub breaker_failure_rate: Option<f64>,
    /// Changes whose caller-supplied user agent contains one of these came from infrastructure as code (default:
    /// Terraform's Google provider and Config Connector).
    pub iac_user_agents: Option<Vec<String>>,
    /// What to do with a violation made through infrastructure as code: "fix" it like any other (default; the next
    /// apply may re-open it, and flap detection then quarantines the resource), or "hold" it: alert, change nothing,
    /// and let the code be fixed.
    pub iac: Option<String>,
    /// The principals (globs) of the infrastructure-as-code pipeline, e.g. its Terraform service account. A user
    /// agent is written by the caller, so `iac = "hold"` holds only changes made by one of these; required with it.
    #[serde(default)]
    pub iac_principals: Vec<String>,
    /// Seconds after which a fix held by the kill switch or a blast-radius cap is decided again on the live state
    /// (default 300): a held fix is a hole left open, never forgotten.
    pub held_recheck_seconds: Option<u32>,
}

/// Validated safety limits.
#[derive(Debug, Clone)]
pub struct SafetyLimits {
    pub paused: bool,
    pub flap_threshold: u32,
    pub flap_window_secs: i64,
    pub max_fixes_per_project_per_hour: u32,
    pub max_fixes_per_instance_per_hour: u32,
    pub breaker_failure_rate: f64,
    pub iac_user_agents: Vec<String>,
    /// Hold (alert, change nothing) violations made through infrastructure as code instead of fixing them.
    pub iac_hold: bool,
    /// Whose changes count as infrastructure as code (globs).
    pub iac_principals: Vec<String>,
    /// When a fix held by the kill switch or a cap is decided again.
    pub held_recheck_secs: u32,
}

/// User agents of infrastructure as code writing to Google's APIs: Terraform's Google providers
/// (`… terraform-provider-google/6.0.0`, `terraform-provider-google-beta`) and Config Connector (`kcc/1.120.1 …`).
pub const DEFAULT_IAC_USER_AGENTS: &[&str] = &["terraform-provider-google", "kcc/"];

/// `[safety]` validated: every problem is pushed with its key.
pub(super) fn validate_safety(raw: RawSafety, problems: &mut Vec<String>) -> SafetyLimits {
    let window = raw.flap_window_minutes.unwrap_or(60);
    if window == 0 {
        problems.push("safety.flap_window_minutes: must be at least 1".into());
    }
    let iac_hold = match raw.iac.as_deref() {
        None | Some("fix") => false,
        Some("hold") => true,
        Some(other) => {
            problems.push(format!("safety.iac: '{other}' must be \"fix\" or \"hold\""));
            false
        }
    };
    if iac_hold && raw.iac_principals.is_empty() {
        problems.push(
            "safety.iac = \"hold\" needs safety.iac_principals (the pipeline's own accounts): a user agent is \
             written by the caller, so on its own it would let anyone hold a fix"
                .into(),
        );
    }
    if raw
        .iac_principals
        .iter()
        .any(|principal| principal.trim().is_empty() || principal.trim() == "*")
    {
        problems.push(
            "safety.iac_principals: an empty entry or \"*\" would match every principal".into(),
        );
    }
    if raw
        .iac_user_agents
        .iter()
        .flatten()
        .any(|agent| agent.trim().is_empty())
    {
        problems.push("safety.iac_user_agents: an empty entry would match every change".into());
    }
    let breaker_failure_rate = raw.breaker_failure_rate.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&breaker_failure_rate) {
        problems.push(format!(
            "safety.breaker_failure_rate: {breaker_failure_rate} is not a share between 0 and 1 (0 turns the breaker off)"
        ));
    }
    SafetyLimits {
        paused: raw.paused,
        flap_threshold: raw.flap_threshold.unwrap_or(3),
        flap_window_secs: i64::from(window) * 60,
        max_fixes_per_project_per_hour: raw.max_fixes_per_project_per_hour.unwrap_or(10),
        max_fixes_per_instance_per_hour: raw.max_fixes_per_instance_per_hour.unwrap_or(50),
        breaker_failure_rate,
        held_recheck_secs: raw.held_recheck_seconds.unwrap_or(300).max(1),
        iac_user_agents: raw.iac_user_agents.unwrap_or_else(|| {
            DEFAULT_IAC_USER_AGENTS
                .iter()
                .map(|agent| agent.to_string())
                .collect()
        }),
        iac_hold,
        iac_principals: raw.iac_principals,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn the_infrastructure_as_code_keys_are_checked() {
        let config = Config::parse(
            "[safety]\niac = \"hold\"\niac_principals = [\"terraform@ops.iam.gserviceaccount.com\"]\n",
        )
        .expect("valid");
        assert!(config.safety.iac_hold);
        assert_eq!(config.safety.iac_user_agents, DEFAULT_IAC_USER_AGENTS);
        let err = Config::parse("[safety]\niac = \"maybe\"\niac_user_agents = [\" \"]\n")
            .expect_err("two problems");
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].contains("safety.iac"), "{err}");
        assert!(err.problems[1].contains("safety.iac_user_agents"), "{err}");
    }
}
