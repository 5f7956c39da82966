//! Google's grammar for the names antibody acts on. A pushed event's resource name is written by whoever can reach
//! the receiver, so a name is accepted only if it is exactly what Google would have written: no second spelling of
//! one resource (`%77eb`, `web#`, `web?alt=json`) can reach it under another key, past an exemption or a lock.

/// Why a resource name was refused, in one sentence.
pub type NameError = String;

/// The longest name echoed back in a reason; the rest is cut, so a hostile name cannot bloat the journal.
const ECHO: usize = 120;

/// A name fit to quote in a reason: control characters escaped, and cut at `ECHO` characters.
pub fn printable(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(ECHO)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().count() > ECHO {
        out.push('…');
    }
    out
}

/// A project id (`my-project-123`: 6 to 30 characters, a lowercase letter first, no hyphen last), a legacy
/// domain-scoped id (`example.com:my-project`), or a project number.
pub fn project(text: &str) -> Result<&str, NameError> {
    let valid = match text.split_once(':') {
        Some((domain, id)) => is_domain(domain) && is_project_id(id),
        None => is_project_id(text) || is_project_number(text),
    };
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a Google Cloud project id or number",
            printable(text)
        ))
    }
}

fn is_project_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (6..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

fn is_project_number(number: &str) -> bool {
    (1..=19).contains(&number.len())
        && number.bytes().all(|byte| byte.is_ascii_digit())
        && !number.starts_with('0')
}

fn is_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A Compute Engine resource name (RFC 1035): `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`.
pub fn compute(text: &str) -> Result<&str, NameError> {
    let bytes = text.as_bytes();
    let valid = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes[bytes.len() - 1] != b'-';
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a Compute Engine resource name ([a-z]([-a-z0-9]{{0,61}}[a-z0-9])?)",
            printable(text)
        ))
    }
}

/// A service account as IAM paths name it: its unique id (digits) or its email, `LOCAL@DOMAIN` with a lowercase
/// local part and a domain ending in `.gserviceaccount.com` (`NAME@PROJECT.iam.…`, `NUMBER-compute@developer.…`,
/// `PROJECT@appspot.…`, service agents' `service-NUMBER@gcp-sa-….iam.…`).
pub fn service_account(text: &str) -> Result<&str, NameError> {
    let numeric = (1..=30).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit());
    let email = text.len() <= 254
        && text.split_once('@').is_some_and(|(local, domain)| {
            (1..=64).contains(&local.len())
                && local
                    .bytes()
                    .next()
                    .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
                && local
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
                && domain
                    .strip_suffix(".gserviceaccount.com")
                    .is_some_and(|prefix| {
                        prefix.split('.').all(|label| {
                            !label.is_empty()
                                && label.bytes().all(|byte| {
                                    byte.is_ascii_lowercase()
                                        || byte.is_ascii_digit()
                                        || byte == b'-'
                                })
                        })
                    })
        });
    if numeric || email {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a service account (a unique id or NAME@….gserviceaccount.com)",
            printable(text)
        ))
    }
}

/// A Compute Engine zone: `REGION-LETTER`, the region a word, a dash and a word ending in digits
/// (`us-central1-a`, `europe-west4-b`, `me-central2-c`).
pub fn zone(text: &str) -> Result<&str, NameError> {
    let word = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_lowercase());
    let parts: Vec<&str> = text.split('-').collect();
    let valid = text.len() <= 63
        && match parts.as_slice() {
            [area, place, letter] => {
                let place_word = place.trim_end_matches(|c: char| c.is_ascii_digit());
                word(area)
                    && word(place_word)
                    && place_word.len() < place.len()
                    && letter.len() == 1
                    && word(letter)
            }
            _ => false,
        };
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a Compute Engine zone (like us-central1-a)",
            printable(text)
        ))
    }
}

/// A Compute method without the API surface Compute puts first (`v1.`, `beta.`, `alpha.`, or none):
/// (collection, verb), or `None` for another service's method.
pub fn compute_method(method: &str) -> Option<(&str, &str)> {
    let bare = ["v1.", "beta.", "alpha."]
        .iter()
        .find_map(|surface| method.strip_prefix(surface))
        .unwrap_or(method);
    let mut parts = bare.strip_prefix("compute.")?.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(collection), Some(verb), None) => Some((collection, verb)),
        _ => None,
    }
}

/// A Compute Engine region: a word, a dash and a word ending in digits (`us-central1`, `europe-west4`).
pub fn region(text: &str) -> Result<&str, NameError> {
    // A region is a zone without its letter.
    match zone(&format!("{text}-a")) {
        Ok(_) => Ok(text),
        Err(_) => Err(format!(
            "'{}' is not a Compute Engine region (like us-central1)",
            printable(text)
        )),
    }
}

/// A Cloud Storage bucket name: 3 to 63 characters of lowercase letters, digits, `-`, `_` and `.` (up to 222 with
/// dots, each dot-separated part at most 63), beginning and ending with a letter or digit, not an IPv4 address,
/// not starting with `goog`.
pub fn bucket(text: &str) -> Result<&str, NameError> {
    let bytes = text.as_bytes();
    let max = if text.contains('.') { 222 } else { 63 };
    let alnum = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let valid = (3..=max).contains(&bytes.len())
        && bytes
            .iter()
            .all(|byte| alnum(byte) || matches!(byte, b'-' | b'_' | b'.'))
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.len() <= 63)
        && text.parse::<std::net::Ipv4Addr>().is_err()
        && !text.starts_with("goog");
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "'{}' is not a Cloud Storage bucket name",
            printable(text)
        ))
    }
}

/// The part of a resource name after the API host, when the name is written as a URL
/// (`https://www.googleapis.com/compute/v1/projects/…`), else the name itself. Only Google's own hosts are read so.
pub fn relative(name: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "https://www.googleapis.com/compute/v1/",
        "https://www.googleapis.com/compute/beta/",
        "https://compute.googleapis.com/compute/v1/",
        "https://compute.googleapis.com/compute/beta/",
        "//compute.googleapis.com/",
    ];
    PREFIXES
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name)
}

/// `organizations/N` or `folders/N` (N digits): Resource Manager containers above projects, whose `SetIamPolicy`
/// entries carry the same bare method name as a project's.
pub fn organization_or_folder(resource_name: &str) -> Option<&str> {
    let (_, id) = resource_name
        .strip_prefix("organizations/")
        .map(|id| ("organizations", id))
        .or_else(|| {
            resource_name
                .strip_prefix("folders/")
                .map(|id| ("folders", id))
        })?;
    (!id.is_empty() && id.len() <= 20 && id.bytes().all(|byte| byte.is_ascii_digit()))
        .then_some(resource_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_follow_googles_grammar() {
        for good in [
            "my-project",
            "abcdef",
            "p-123456",
            "example.com:my-proj",
            "123456789012",
        ] {
            assert_eq!(project(good), Ok(good), "{good}");
        }
        for bad in [
            "",
            "p",
            "short",
            "My-Project",
            "ends-with-",
            "1starts-with-digit",
            "has_underscore",
            "x/../y",
            "proj%65ct",
            "project?alt=json",
            "0123",
            ":my-project",
            "a..b:my-project",
            "thirty-one-characters-long-abcd",
        ] {
            assert!(project(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compute_names_follow_rfc_1035() {
        for good in ["a", "web-ssh", "a1", &"a".repeat(63)] {
            assert!(compute(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "web-ssh#",
            "web-ssh?alt=json",
            "%77eb-ssh",
            "Web",
            "1web",
            "web-",
            "web_ssh",
            "web ssh",
            "web/ssh",
            "web.ssh",
            &"a".repeat(64),
        ] {
            assert!(compute(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_names_follow_cloud_storages_rules() {
        for good in ["abc", "my_bucket-1", "a.b.c", "www.example.com"] {
            assert!(bucket(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "192.168.5.4",
            "google",
            "goog-x",
            "a/b",
            "a#b",
            "a%62c",
            &"a".repeat(64),
        ] {
            assert!(bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hostile_name_is_quoted_short_and_escaped() {
        let long = format!("{}\n\u{1b}[31m", "x".repeat(500));
        let shown = printable(&long);
        assert!(shown.chars().count() <= ECHO + 1, "{shown}");
        assert!(!printable("a\nb\u{1b}").contains(['\n', '\u{1b}']));
    }
}
