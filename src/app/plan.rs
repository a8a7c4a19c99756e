//! `switchboard plan NEW.toml`: what a reload from the routes in force to NEW would do —
//! the `terraform plan` of realtime routing. Read from the files alone, as a reload reads
//! them: no server is needed.

use std::path::{Path, PathBuf};

use super::reload::describe_changes;
use super::{LoadError, Loaded, load};
use crate::routing::RouteTable;

/// What a reload to a new routes file would do (as JSON too: the admin port's `POST /plan`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// One line per namespace, event, route, setting or named file added, removed or changed.
    pub changes: Vec<String>,
    /// Namespaces whose sockets the reload disconnects (they are gone from the new file).
    pub disconnects: Vec<String>,
    /// Settings the new file changes that apply only at the next restart.
    pub restart: Vec<String>,
    /// The new `config_hash`.
    pub hash: String,
}

/// The plan from the routes at `old` to those at `new`; `new` must be valid (its problems
/// are the error), `old` too.
pub fn plan(old: &Path, new: &Path) -> Result<Plan, LoadError> {
    let before = load(old)?;
    let after = load(new)?;
    Ok(between(&before.routes, &before.files, after))
}

/// The plan from routes `a` (naming `a_files`, with their hashes) to `after`.
pub(super) fn between(a: &RouteTable, a_files: &[(PathBuf, String)], after: Loaded) -> Plan {
    let b = &after.routes;
    let mut changes = describe_changes(a, b);
    for (path, hash) in &after.files {
        let was = a_files.iter().find(|(p, _)| p == path);
        match was {
            Some((_, old_hash)) if old_hash != hash => {
                changes.push(format!("`{}` changed", path.display()));
            }
            None => changes.push(format!("`{}` added", path.display())),
            _ => {}
        }
    }
    let disconnects = a
        .namespaces
        .keys()
        .filter(|name| !b.namespaces.contains_key(*name))
        .cloned()
        .collect();
    let mut restart = Vec::new();
    for (what, changed) in [
        ("`listen`", a.server.listen != b.server.listen),
        ("`path`", a.server.path != b.server.path),
        (
            "`admin_listen`",
            a.server.admin_listen != b.server.admin_listen,
        ),
        ("`[cluster]`", a.cluster != b.cluster),
    ] {
        if changed {
            restart.push(format!("{what} changed: it applies at the next restart"));
        }
    }
    Plan {
        changes,
        disconnects,
        restart,
        hash: after.hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-plan-{}-{tag}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_plan_lists_changes_disconnects_and_what_needs_a_restart() {
        let d = dir("lists");
        let old = d.join("old.toml");
        let new = d.join("new.toml");
        std::fs::write(
            &old,
            "[namespaces.\"/\".events]\nhi = \"io\"\nbye = \"io\"\n[namespaces.\"/admin\".events]\nx = \"emit\"\n",
        )
        .unwrap();
        std::fs::write(
            &new,
            "[server]\nlisten = \"127.0.0.1:4000\"\n[namespaces.\"/\".events]\nhi = \"broadcast\"\nnew = \"io\"\n",
        )
        .unwrap();
        let p = plan(&old, &new).unwrap();
        assert_eq!(
            p.changes,
            vec![
                "[server] settings changed",
                "/ event `bye` removed",
                "/ event `hi` changed",
                "/ event `new` added",
                "namespace /admin removed",
            ]
        );
        assert_eq!(p.disconnects, vec!["/admin"]);
        assert_eq!(
            p.restart,
            vec!["`listen` changed: it applies at the next restart"]
        );
        assert_eq!(p.hash.len(), 64);
        let same = plan(&old, &old).unwrap();
        assert!(same.changes.is_empty() && same.disconnects.is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }
}
