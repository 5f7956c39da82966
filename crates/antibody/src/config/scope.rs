//! The `[scope]` table: the projects antibody may act on and those it must leave alone, as project-id globs.

use serde::Deserialize;

use crate::policy::glob_match;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// Project-id globs (`*` matches any run of characters) antibody may act on; empty: every project it can reach.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Project-id globs antibody must leave alone even when `projects` matches them (e.g. `*-playground`).
    #[serde(default)]
    pub exclude_projects: Vec<String>,
}

/// Validated scope. An event about a project outside it is journaled as ignored and its resource never re-read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub projects: Vec<String>,
    pub exclude_projects: Vec<String>,
}

impl Scope {
    /// Why antibody must leave `project` alone, or `None` when it may act there. A project that cannot be told
    /// (an empty id) is outside any list of projects.
    pub fn excludes(&self, project: &str) -> Option<String> {
        if let Some(pattern) = self
            .exclude_projects
            .iter()
            .find(|pattern| glob_match(pattern, project))
        {
            return Some(format!(
                "project '{project}' is excluded by [scope] exclude_projects '{pattern}'"
            ));
        }
        if !self.projects.is_empty()
            && !self
                .projects
                .iter()
                .any(|pattern| glob_match(pattern, project))
        {
            return Some(if project.is_empty() {
                "the event names no project, and [scope] projects limits antibody to named ones"
                    .to_string()
            } else {
                format!("project '{project}' is outside [scope] projects")
            });
        }
        None
    }
}

/// A glob of Google project ids: lowercase letters, digits, hyphens and `*`, at most 30 characters.
fn valid_glob(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern.len() <= 30
        && pattern.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'*'
        })
}

pub(super) fn validate_scope(raw: RawScope, problems: &mut Vec<String>) -> Scope {
    for (key, patterns) in [
        ("projects", &raw.projects),
        ("exclude_projects", &raw.exclude_projects),
    ] {
        for pattern in patterns.iter().filter(|pattern| !valid_glob(pattern)) {
            problems.push(format!(
                "scope.{key}: '{}' is not a project-id glob (lowercase letters, digits, '-' and '*')",
                pattern.escape_debug()
            ));
        }
    }
    Scope {
        projects: raw.projects,
        exclude_projects: raw.exclude_projects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(projects: &[&str], exclude: &[&str]) -> Scope {
        let mut problems = Vec::new();
        let scope = validate_scope(
            RawScope {
                projects: projects.iter().map(|p| p.to_string()).collect(),
                exclude_projects: exclude.iter().map(|p| p.to_string()).collect(),
            },
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        scope
    }

    #[test]
    fn an_empty_scope_covers_every_project() {
        assert_eq!(Scope::default().excludes("acme-prod"), None);
        assert_eq!(Scope::default().excludes(""), None);
    }

    #[test]
    fn exclusions_win_over_inclusions() {
        let scope = scope(&["acme-*"], &["*-playground"]);
        assert_eq!(scope.excludes("acme-prod"), None);
        assert_eq!(
            scope.excludes("acme-playground").as_deref(),
            Some(
                "project 'acme-playground' is excluded by [scope] exclude_projects '*-playground'"
            )
        );
        assert_eq!(
            scope.excludes("other-prod").as_deref(),
            Some("project 'other-prod' is outside [scope] projects")
        );
        assert!(scope.excludes("").is_some());
    }

    #[test]
    fn malformed_globs_are_refused_with_their_key() {
        for (key, raw) in [
            (
                "scope.projects",
                RawScope {
                    projects: vec!["Acme".into()],
                    ..RawScope::default()
                },
            ),
            (
                "scope.exclude_projects",
                RawScope {
                    exclude_projects: vec!["".into()],
                    ..RawScope::default()
                },
            ),
            (
                "scope.projects",
                RawScope {
                    projects: vec!["a b".into()],
                    ..RawScope::default()
                },
            ),
        ] {
            let mut problems = Vec::new();
            validate_scope(raw, &mut problems);
            assert!(
                problems.len() == 1 && problems[0].starts_with(key),
                "{problems:?}"
            );
        }
    }
}
