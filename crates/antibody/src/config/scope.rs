//! The `[scope]` table: the projects antibody may act on and those it must leave alone — project-id globs, and the
//! organization and folders a project must (not) be under, read from Resource Manager's ancestry.

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
    /// The organization (`organizations/N`) a project must be in.
    pub organization: Option<String>,
    /// Act only on projects under one of these folders (`folders/N`, at any depth); empty: anywhere.
    #[serde(default)]
    pub folders: Vec<String>,
    /// Leave alone every project under one of these folders (e.g. a sandbox folder).
    #[serde(default)]
    pub exclude_folders: Vec<String>,
    /// How long a project's ancestry is trusted before it is read again (default 300: a project moved between folders
    /// is seen within five minutes).
    pub ancestry_cache_seconds: Option<u32>,
}

/// Validated scope. An event about a project outside it is journaled as ignored and its resource never re-read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub projects: Vec<String>,
    pub exclude_projects: Vec<String>,
    pub organization: Option<String>,
    pub folders: Vec<String>,
    pub exclude_folders: Vec<String>,
    pub ancestry_cache_secs: u32,
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

    /// Whether project-id globs decide anything (`projects` or `exclude_projects`): a project named by its number
    /// must then be read for its id first.
    pub fn has_project_globs(&self) -> bool {
        !self.projects.is_empty() || !self.exclude_projects.is_empty()
    }

    /// Whether deciding needs the project's ancestry (organization or folder rules).
    pub fn needs_ancestry(&self) -> bool {
        self.organization.is_some() || !self.folders.is_empty() || !self.exclude_folders.is_empty()
    }

    /// Why antibody must leave `project` (or an organization or folder), whose ancestors (`folders/N`,
    /// `organizations/N`, nearest first; a folder or organization listing itself first) are given, alone. Pure.
    pub fn excludes_by_ancestry(&self, project: &str, ancestors: &[String]) -> Option<String> {
        if let Some(folder) = ancestors
            .iter()
            .find(|ancestor| self.exclude_folders.contains(ancestor))
        {
            return Some(format!(
                "'{project}' is under {folder}, which [scope] exclude_folders leaves alone"
            ));
        }
        if !self.folders.is_empty()
            && !ancestors
                .iter()
                .any(|ancestor| self.folders.contains(ancestor))
        {
            return Some(format!(
                "project '{project}' is under none of [scope] folders"
            ));
        }
        if let Some(organization) = &self.organization
            && !ancestors.contains(organization)
        {
            return Some(format!("'{project}' is not in {organization}"));
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
    let numbered = |name: &str, prefix: &str| {
        name.strip_prefix(prefix).is_some_and(|id| {
            !id.is_empty() && id.len() <= 20 && id.bytes().all(|byte| byte.is_ascii_digit())
        })
    };
    if let Some(organization) = &raw.organization
        && !numbered(organization, "organizations/")
    {
        problems.push(format!(
            "scope.organization: '{}' is not organizations/NUMBER",
            organization.escape_debug()
        ));
    }
    for (key, folders) in [
        ("folders", &raw.folders),
        ("exclude_folders", &raw.exclude_folders),
    ] {
        for folder in folders
            .iter()
            .filter(|folder| !numbered(folder, "folders/"))
        {
            problems.push(format!(
                "scope.{key}: '{}' is not folders/NUMBER",
                folder.escape_debug()
            ));
        }
    }
    Scope {
        projects: raw.projects,
        exclude_projects: raw.exclude_projects,
        organization: raw.organization,
        folders: raw.folders,
        exclude_folders: raw.exclude_folders,
        ancestry_cache_secs: raw.ancestry_cache_seconds.unwrap_or(300),
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
                ..RawScope::default()
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

    #[test]
    fn the_hierarchy_decides_after_the_globs() {
        let mut problems = Vec::new();
        let scope = validate_scope(
            RawScope {
                organization: Some("organizations/123".into()),
                folders: vec!["folders/10".into()],
                exclude_folders: vec!["folders/11".into()],
                ..RawScope::default()
            },
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(scope.needs_ancestry());
        let ancestors = |names: &[&str]| {
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            scope.excludes_by_ancestry("p", &ancestors(&["folders/10", "organizations/123"])),
            None
        );
        assert!(
            scope
                .excludes_by_ancestry(
                    "p",
                    &ancestors(&["folders/11", "folders/10", "organizations/123"])
                )
                .is_some_and(|reason| reason.contains("folders/11")),
            "an excluded subfolder wins"
        );
        assert!(
            scope
                .excludes_by_ancestry("p", &ancestors(&["folders/12", "organizations/123"]))
                .is_some()
        );
        assert!(
            scope
                .excludes_by_ancestry("p", &ancestors(&["folders/10", "organizations/999"]))
                .is_some(),
            "another organization"
        );
        let mut problems = Vec::new();
        validate_scope(
            RawScope {
                organization: Some("123".into()),
                folders: vec!["folders/x".into()],
                ..RawScope::default()
            },
            &mut problems,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(!Scope::default().needs_ancestry());
    }
}
