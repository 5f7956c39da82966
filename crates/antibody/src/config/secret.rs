//! `Secret`: a string that never prints — access tokens, shared secrets, Slack webhook URLs, PagerDuty routing keys,
//! SMTP passwords. `Debug` and `Display` say `[redacted]`; only `expose` gives the text, where it is used.

use serde::Deserialize;

#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret(text.to_string())
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Secret {
        Secret(text)
    }
}

/// A URL as it may appear in a message: a password in it replaced by `***`, and anything unreadable withheld.
pub fn redact_url(text: &str) -> String {
    match reqwest::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "(an unreadable URL, not shown)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::from("hunter2-hunter2");
        assert_eq!(
            format!("{secret:?} {secret} {:#?}", Some(&secret)),
            "[redacted] [redacted] Some(\n    [redacted],\n)"
        );
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }

    #[test]
    fn urls_lose_their_passwords() {
        let shown = redact_url("smtp://alerts:p4ssw0rd@mail.example.com:587/?to=a@b.c");
        assert!(
            !shown.contains("p4ssw0rd") && shown.contains("alerts:***@mail.example.com"),
            "{shown}"
        );
    }
}
