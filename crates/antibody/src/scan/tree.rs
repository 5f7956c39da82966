//! An organization as `scan --organization` sees it: its folders (walked with `folders.list`, breadth first, an
//! excluded folder's subtree never entered), which of those containers `[scope]` allows, and the projects directly
//! under the allowed ones (`projects:search` by parent).

use std::collections::VecDeque;

use crate::gcp;
use crate::pipeline::Context;

/// What a walk found.
#[derive(Debug, Default)]
pub(super) struct Tree {
    /// The organization and folders whose own policies are swept, and whose projects are.
    pub containers: Vec<String>,
    /// Active projects directly under `containers`.
    pub projects: Vec<String>,
    /// Why containers were left alone, one line each.
    pub left_alone: Vec<String>,
}

/// Folders deeper than this are not walked (Google allows ten levels).
const MAX_DEPTH: usize = 12;

pub(super) async fn walk(cx: &Context, organization: &str) -> Result<Tree, gcp::Error> {
    let scope = &cx.config.scope;
    let mut tree = Tree::default();
    // Each container with its ancestors, itself first, as `[scope]`'s rules read them.
    let mut queue: VecDeque<Vec<String>> = VecDeque::from([vec![organization.to_string()]]);
    while let Some(chain) = queue.pop_front() {
        let container = &chain[0];
        if let Some(folder) = chain
            .iter()
            .find(|ancestor| scope.exclude_folders.contains(ancestor))
        {
            // The subtree is never entered: its folders and projects are not even listed.
            tree.left_alone.push(format!(
                "{container} and everything under it: {folder} is in [scope] exclude_folders"
            ));
            continue;
        }
        if scope.excludes_by_ancestry(container, &chain).is_none() {
            tree.containers.push(container.clone());
        }
        if chain.len() > MAX_DEPTH {
            tree.left_alone.push(format!(
                "the folders under {container}: deeper than {MAX_DEPTH} levels"
            ));
            continue;
        }
        for folder in cx.gcp.folders_under(container).await? {
            let mut below = Vec::with_capacity(chain.len() + 1);
            below.push(folder);
            below.extend(chain.iter().cloned());
            queue.push_back(below);
        }
    }
    tree.projects = cx.gcp.projects_under(&tree.containers).await?;
    Ok(tree)
}
