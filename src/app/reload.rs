//! Reloading: compile the file again, keep what needs a restart, swap the snapshot in one
//! store, disconnect the sockets of namespaces that are gone, and say what changed.
//!
//! Semantics: an event is routed by the snapshot it loaded when it arrived. Events that
//! arrive after the swap use the new routes; one in flight finishes on the old.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{App, LoadError, Snapshot, compile_scripts, engine_config, load, socketio_config};
use crate::adapter::{BroadcastOptions, RoomObserver};
use crate::routing::{NamespaceRoutes, RouteTable};
use crate::scripting::ScriptSet;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new routes are in force; one line per change.
    Applied(Vec<String>),
    /// The file's content is what is already in force.
    Unchanged,
    /// The file was refused; the old routes stay. Every problem, one per line.
    Rejected(String),
}

/// Reload history, as `/healthz` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    /// SHA-256 of the routes file in force.
    pub config_hash: String,
    /// Reloads applied since start.
    pub reloads: u64,
    /// Reloads refused since start.
    pub reload_failures: u64,
    /// Why the last reload was refused, if it was.
    pub last_error: Option<String>,
    /// How long the last applied reload took, in microseconds.
    pub last_reload_micros: Option<u64>,
    /// The files the routes in force name, with their hashes (not shown).
    #[serde(skip)]
    pub(super) files: Vec<(PathBuf, String)>,
}

impl ReloadStatus {
    pub(super) fn new(config_hash: String) -> Self {
        ReloadStatus {
            config_hash,
            reloads: 0,
            reload_failures: 0,
            last_error: None,
            last_reload_micros: None,
            files: Vec::new(),
        }
    }
}

impl App {
    /// Reload status.
    pub fn reload_status(&self) -> ReloadStatus {
        self.status.lock().expect("status lock").clone()
    }

    /// Read the routes file again and apply it if it changed and is valid. An empty file
    /// is taken for one being written (an editor's truncate-then-write) and ignored.
    pub fn reload(&self) -> ReloadOutcome {
        let began = Instant::now();
        let Some(source) = &self.source else {
            return ReloadOutcome::Rejected("no routes file to reload".to_owned());
        };
        if std::fs::metadata(&source.path).is_ok_and(|m| m.len() == 0) {
            tracing::debug!(config = %source.path.display(), "Routes file is empty; waiting for its content");
            return ReloadOutcome::Unchanged;
        }
        let loaded = match load(&source.path) {
            Ok(loaded) => loaded,
            Err(e) => return self.refuse(e),
        };
        if loaded.hash == self.status.lock().expect("status lock").config_hash {
            return ReloadOutcome::Unchanged;
        }
        if loaded.routes.server.listen != source.file_listen {
            tracing::warn!(
                from = %source.file_listen,
                to = %loaded.routes.server.listen,
                "`listen` changed; it applies at the next restart"
            );
        }
        let files = file_changes(
            &self.status.lock().expect("status lock").files,
            &loaded.files,
        );
        let outcome = self.apply_since(loaded.routes, loaded.scripts, loaded.hash, began, files);
        self.status.lock().expect("status lock").files = loaded.files;
        outcome
    }

    fn refuse(&self, error: LoadError) -> ReloadOutcome {
        let message = match error {
            LoadError::Invalid(report) => report.to_string(),
            other => other.to_string(),
        };
        let mut status = self.status.lock().expect("status lock");
        // The same problem seen again (another write to the folder) is not news.
        if status.last_error.as_deref() != Some(message.as_str()) {
            status.reload_failures += 1;
            status.last_error = Some(message.clone());
            tracing::error!("Reload refused; the routes in force stay:\n{message}");
            self.attempts.send_modify(|n| *n += 1);
        }
        ReloadOutcome::Rejected(message)
    }

    /// Put `routes` in force: the one swap every reload ends in, also used by golden cases.
    /// Its scripts are compiled first; any that fails refuses the whole change.
    pub fn apply(&self, routes: RouteTable, hash: String) -> ReloadOutcome {
        match compile_scripts(&routes) {
            Ok(scripts) => self.apply_since(routes, scripts, hash, Instant::now(), Vec::new()),
            Err(e) => self.refuse(e),
        }
    }

    /// `apply`, timing the reload from `began` (when the file was read); `files` says which
    /// of the files the routes name changed.
    fn apply_since(
        &self,
        routes: RouteTable,
        scripts: ScriptSet,
        hash: String,
        began: Instant,
        files: Vec<String>,
    ) -> ReloadOutcome {
        let old = self.snapshot.load_full();
        let routes = with_pinned_settings(routes, &old);
        let mut changes = describe_changes(&old.routes, &routes);
        changes.extend(files);
        self.engine.set_config(engine_config(&routes));
        self.engine.handler().set_config(socketio_config(&routes));
        self.webhooks.configure(&routes.webhooks);
        let new = Arc::new(Snapshot::new(
            routes,
            scripts,
            Some(&old),
            &self.metrics.cluster,
            &(self.observers.clone() as Arc<dyn RoomObserver>),
        ));
        self.snapshot.store(new.clone());

        // Sockets of namespaces that are gone get a server-side disconnect.
        for (name, adapter) in &old.adapters {
            if new.adapters.contains_key(name) {
                continue;
            }
            for socket in adapter.sockets(&BroadcastOptions::all()) {
                if socket.disconnect() {
                    adapter.remove(socket.id());
                }
            }
        }
        let took = began.elapsed();
        let mut status = self.status.lock().expect("status lock");
        status.reloads += 1;
        status.config_hash = hash;
        status.last_error = None;
        status.last_reload_micros = Some(micros(took));
        tracing::info!(
            hash = %short(&status.config_hash),
            reloads = status.reloads,
            took_us = micros(took),
            "Routes reloaded: {}",
            if changes.is_empty() { "no route changes".to_owned() } else { changes.join("; ") }
        );
        drop(status);
        self.attempts.send_modify(|n| *n += 1);
        ReloadOutcome::Applied(changes)
    }
}

/// "`s.rhai` changed" for each file named before and now whose content differs.
fn file_changes(old: &[(PathBuf, String)], new: &[(PathBuf, String)]) -> Vec<String> {
    new.iter()
        .filter(|(path, hash)| old.iter().any(|(p, h)| p == path && h != hash))
        .map(|(path, _)| format!("`{}` changed", path.display()))
        .collect()
}

/// `listen` and `path` need a restart: keep the ones in force.
fn with_pinned_settings(mut routes: RouteTable, old: &Snapshot) -> RouteTable {
    if routes.server.path != old.routes.server.path {
        tracing::warn!(
            from = %old.routes.server.path,
            to = %routes.server.path,
            "`path` changed; it applies at the next restart"
        );
    }
    if routes.server.admin_listen != old.routes.server.admin_listen {
        tracing::warn!("`admin_listen` changed; it applies at the next restart");
    }
    routes.server.listen = old.routes.server.listen.clone();
    routes.server.path = old.routes.server.path.clone();
    routes.server.admin_listen = old.routes.server.admin_listen.clone();
    routes
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// One line per namespace or event added, removed or changed, and per setting changed.
pub(super) fn describe_changes(old: &RouteTable, new: &RouteTable) -> Vec<String> {
    let mut out = Vec::new();
    if old.server != new.server {
        out.push("[server] settings changed".to_owned());
    }
    if old.statics != new.statics {
        out.push("[[static]] mounts changed".to_owned());
    }
    if old.limits != new.limits {
        out.push("[limits] changed".to_owned());
    }
    let names: BTreeSet<&String> = old.namespaces.keys().chain(new.namespaces.keys()).collect();
    for name in names {
        match (old.namespaces.get(name), new.namespaces.get(name)) {
            (None, Some(_)) => out.push(format!("namespace {name} added")),
            (Some(_), None) => out.push(format!("namespace {name} removed")),
            (Some(a), Some(b)) => describe_namespace(name, a, b, &mut out),
            (None, None) => unreachable!("name comes from one of the maps"),
        }
    }
    out
}

fn describe_namespace(
    name: &str,
    old: &NamespaceRoutes,
    new: &NamespaceRoutes,
    out: &mut Vec<String>,
) {
    if old.auth != new.auth {
        out.push(format!("namespace {name}: auth changed"));
    }
    let events: BTreeSet<&String> = old.events.keys().chain(new.events.keys()).collect();
    for event in events {
        match (old.events.get(event), new.events.get(event)) {
            (None, Some(_)) => out.push(format!("{name} event `{event}` added")),
            (Some(_), None) => out.push(format!("{name} event `{event}` removed")),
            (Some(a), Some(b)) if a != b => out.push(format!("{name} event `{event}` changed")),
            _ => {}
        }
    }
    for (label, a, b) in [
        ("connect", &old.on_connect, &new.on_connect),
        ("disconnect", &old.on_disconnect, &new.on_disconnect),
        ("*", &old.catch_all, &new.catch_all),
    ] {
        match (a, b) {
            (None, Some(_)) => out.push(format!("{name} route `{label}` added")),
            (Some(_), None) => out.push(format!("{name} route `{label}` removed")),
            (Some(a), Some(b)) if a != b => out.push(format!("{name} route `{label}` changed")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table(src: &str) -> RouteTable {
        let env = crate::routing::Env {
            base_dir: Path::new("."),
            var: &|_| None,
        };
        crate::routing::compile(src, "routes.toml", &env).unwrap()
    }

    #[test]
    fn changes_are_listed_per_namespace_and_event() {
        let old = table(
            "[namespaces.\"/\".events]\na = \"io\"\nb = \"emit\"\nconnect = { to = \"emit\", event = \"hi\" }\n[namespaces.\"/old\".events]\nx = \"io\"\n",
        );
        let new = table(
            "[server]\nping_interval = \"1s\"\n[namespaces.\"/\".events]\na = \"broadcast\"\nc = \"io\"\n[namespaces.\"/new\".events]\nx = \"io\"\n",
        );
        assert_eq!(
            describe_changes(&old, &new),
            vec![
                "[server] settings changed",
                "/ event `a` changed",
                "/ event `b` removed",
                "/ event `c` added",
                "/ route `connect` removed",
                "namespace /new added",
                "namespace /old removed",
            ]
        );
        assert!(describe_changes(&old, &old).is_empty());
    }
}
