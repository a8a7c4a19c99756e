//! routes.toml → [`RouteTable`], collecting every problem with its position. One file per
//! section of the file: `server`, `statics`, `namespaces` (routes) and their `auth`,
//! `cluster`, `limits`.

mod admin_ui;
mod api;
mod auth;
mod backend;
mod cluster;
mod history;
mod limits;
mod namespaces;
mod server;
mod statics;
#[cfg(test)]
mod tests;
mod warnings;
mod webhooks;
mod when;

use std::path::Path;

use toml::de::DeTable;

use super::diag::{Diagnostic, Report};
use super::file::{Reader, get};
use super::table::RouteTable;

const TOP_KEYS: &[&str] = &[
    "server",
    "static",
    "namespaces",
    "cluster",
    "limits",
    "backend",
    "api",
    "webhooks",
    "admin_ui",
];

/// Where the file's relative paths and environment come from.
pub struct Env<'a> {
    /// The folder holding routes.toml.
    pub base_dir: &'a Path,
    /// Reads an environment variable (`token_env`).
    pub var: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

/// Compile `source` (named `file` in messages).
pub fn compile(source: &str, file: &str, env: &Env<'_>) -> Result<RouteTable, Report> {
    let report = |diagnostics: Vec<Diagnostic>| Report {
        file: file.to_owned(),
        source: source.to_owned(),
        diagnostics,
    };
    let (doc, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        return Err(report(
            errors
                .iter()
                .map(|e| {
                    let span = e.span().unwrap_or(0..0);
                    Diagnostic::new(span, format!("invalid TOML: {}", e.message()))
                })
                .collect(),
        ));
    }
    let mut r = Reader::default();
    let mut table = compile_doc(doc.get_ref(), env, &mut r);
    if r.diagnostics.is_empty() {
        let declared = std::mem::take(&mut r.declared);
        warnings::warn_of(&table, &declared, &mut r);
        if !r.warnings.is_empty() {
            r.warnings.sort_by_key(|d| d.span.start);
            table.warnings = Some(report(r.warnings));
        }
        Ok(table)
    } else {
        r.diagnostics.sort_by_key(|d| d.span.start);
        Err(report(r.diagnostics))
    }
}

fn compile_doc(doc: &DeTable<'_>, env: &Env<'_>, r: &mut Reader) -> RouteTable {
    r.known_keys(doc, TOP_KEYS, "routes.toml");
    let mut table = RouteTable::default();
    if let Some(node) = get(doc, "server")
        && let Some(server) = r.table(node, "server")
    {
        table.server = server::compile_server(server, env, r);
    }
    if let Some(node) = get(doc, "static") {
        table.statics = statics::compile_statics(node, env, r);
    }
    if let Some(node) = get(doc, "namespaces")
        && let Some(namespaces) = r.table(node, "namespaces")
    {
        table.namespaces = namespaces::compile_namespaces(namespaces, env, r);
    }
    if let Some(node) = get(doc, "cluster")
        && let Some(cluster) = r.table(node, "cluster")
    {
        table.cluster = cluster::compile_cluster(node, cluster, env, r);
    }
    if let Some(node) = get(doc, "limits")
        && let Some(limits) = r.table(node, "limits")
    {
        table.limits = limits::compile_limits(limits, r);
    }
    if let Some(node) = get(doc, "backend")
        && let Some(backend) = r.table(node, "backend")
    {
        table.backend = backend::compile_backend(backend, env, r);
    }
    if let Some(node) = get(doc, "api")
        && let Some(api) = r.table(node, "api")
    {
        table.api = api::compile_api(api, node, env, r);
    }
    if let Some(node) = get(doc, "webhooks") {
        table.webhooks = webhooks::compile_webhooks(node, env, r);
    }
    if let Some(node) = get(doc, "admin_ui")
        && let Some(t) = r.table(node, "admin_ui")
    {
        table.admin_ui = admin_ui::compile_admin_ui(t, node, env, r);
        if let Some(ui) = &table.admin_ui {
            // The UI's namespace is the server's own: no routes of the file's.
            if table.namespaces.contains_key(&ui.namespace) {
                r.error(
                    node.span(),
                    format!(
                        "namespace `{}` is the admin UI's; set [admin_ui] namespace to another",
                        ui.namespace
                    ),
                );
            } else {
                table
                    .namespaces
                    .insert(ui.namespace.clone(), Default::default());
            }
        }
    }
    check_across_sections(doc, &table, r);
    table
}

/// What no single section can judge: a queue too small for one message, heartbeats the
/// stock client cannot time.
fn check_across_sections(doc: &DeTable<'_>, table: &RouteTable, r: &mut Reader) {
    let server = get(doc, "server").and_then(|n| match n.get_ref() {
        toml::de::DeValue::Table(t) => Some(t),
        _ => None,
    });
    let limits = get(doc, "limits").and_then(|n| match n.get_ref() {
        toml::de::DeValue::Table(t) => Some(t),
        _ => None,
    });
    if table.limits.queue_bytes < table.server.max_payload {
        let at = limits
            .and_then(|l| get(l, "queue_bytes"))
            .or_else(|| server.and_then(|s| get(s, "max_payload")));
        if let Some(n) = at {
            r.error(
                n.span(),
                format!(
                    "`queue_bytes` ({}) is smaller than `max_payload` ({}): one message could disconnect its recipient",
                    table.limits.queue_bytes, table.server.max_payload
                ),
            );
        }
    }
}
