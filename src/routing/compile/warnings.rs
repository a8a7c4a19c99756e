//! Warnings: what is valid but likely a mistake. Each is located where it can be acted on.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::super::action::{Route, Step, Target};
use super::super::diag::Diagnostic;
use super::super::file::Reader;
use super::super::table::{NamespaceRoutes, RouteTable};

/// Warn of `table`'s likely mistakes; `declared` locates each namespace's name.
pub(super) fn warn_of(
    table: &RouteTable,
    declared: &BTreeMap<String, Range<usize>>,
    r: &mut Reader,
) {
    if table.namespaces.is_empty() {
        r.warnings.push(Diagnostic::new(
            0..0,
            "no namespace is declared: every connection will be refused (add [namespaces.\"/\"])",
        ));
    }
    for (name, span) in declared {
        for room in rooms_never_joined(table, name) {
            r.warnings.push(Diagnostic::new(
                span.clone(),
                format!(
                    "room `{room}` of {name} is sent to, but nothing joins it: no one will receive those messages"
                ),
            ));
        }
    }
}

/// Every step of every route of `ns`.
fn steps_of(ns: &NamespaceRoutes) -> Vec<&Step> {
    ns.events
        .values()
        .chain(&ns.catch_all)
        .chain(&ns.on_connect)
        .chain(&ns.on_disconnect)
        .flat_map(|r: &Route| &r.steps)
        .collect()
}

/// The rooms of namespace `name` that routes send to by name when no route, script,
/// backend, auth hook or server API could have anyone join them.
fn rooms_never_joined(table: &RouteTable, name: &str) -> Vec<String> {
    let Some(ns) = table.namespace(name) else {
        return Vec::new();
    };
    let own = steps_of(ns);
    let dynamic = |s: &&Step| s.script.is_some() || s.http.is_some();
    let joins_by_name_only = table.api.is_none()
        && ns
            .auth
            .as_ref()
            .is_none_or(|a| a.script.is_none() && a.hook.is_none())
        && !own.iter().any(dynamic)
        && own
            .iter()
            .all(|s| s.join.as_ref().is_none_or(|t| t.literal_text().is_some()));
    if !joins_by_name_only {
        return Vec::new();
    }
    let joined: BTreeSet<String> = own
        .iter()
        .filter_map(|s| s.join.as_ref()?.literal_text())
        .collect();
    let mut targeted = BTreeSet::new();
    for (other, other_ns) in &table.namespaces {
        for step in steps_of(other_ns) {
            let Some(deliver) = &step.deliver else {
                continue;
            };
            let into = deliver.namespace.as_deref().unwrap_or(other);
            if into != name {
                continue;
            }
            if let Target::Room { room, .. } = &deliver.target
                && let Some(room) = room.literal_text()
            {
                targeted.insert(room);
            }
        }
    }
    targeted.difference(&joined).cloned().collect()
}
