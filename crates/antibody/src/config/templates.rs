//! Alert wording (`[templates]`) and routing to owners (`[routing]`): data the user can override, with defaults.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    /// Title of a fix (default "antibody fixed {resource}").
    pub remediated: Option<String>,
    /// Title of a dry-run plan (default "antibody would fix {resource}").
    pub dry_run: Option<String>,
    /// Title of a quarantine (default "antibody stopped fixing {resource}: it keeps being re-broken").
    pub quarantined: Option<String>,
    /// Title of anything else (default "antibody: {outcome} on {resource}").
    pub other: Option<String>,
    /// E-mail subject (default "[antibody {severity}] {title}").
    pub email_subject: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// A label on the resource naming its owner: an e-mail address is added to every e-mail alert about it, anything
    /// else is taken as a Slack channel the alert is also routed to (e.g. `owner = "team-data"`). Default: none.
    pub owner_label: Option<String>,
}

/// Alert wording, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub remediated: String,
    pub dry_run: String,
    pub quarantined: String,
    pub other: String,
    pub email_subject: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            remediated: "antibody fixed {resource}".into(),
            dry_run: "antibody would fix {resource}".into(),
            quarantined: "antibody stopped fixing {resource}: it keeps being re-broken".into(),
            other: "antibody: {outcome} on {resource}".into(),
            email_subject: "[antibody {severity}] {title}".into(),
        }
    }
}
