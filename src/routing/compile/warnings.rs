//! Warnings: what is valid but likely a mistake. Each is located where it can be acted on.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::super::action::{DataSpec, Route, Step, Target};
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
        if let Some(ns) = table.namespace(name) {
            let admin = table
                .admin_ui
                .as_ref()
                .is_some_and(|ui| &ui.namespace == name);
            if ns.auth.is_none() && !admin && reaches_others(ns) {
                r.warnings.push(Diagnostic::new(
                    span.clone(),
                    format!(
                        "{name} delivers to other clients and has no `auth`: anyone who connects can message everyone there (fine for a public chat; add [namespaces.\"{name}\".auth] otherwise)"
                    ),
                ));
            }
            for warning in near_miss_events(ns) {
                r.warnings
                    .push(Diagnostic::new(span.clone(), format!("{name}: {warning}")));
            }
            for warning in reads_beyond_schema(ns) {
                r.warnings
                    .push(Diagnostic::new(span.clone(), format!("{name}: {warning}")));
            }
        }
        for room in rooms_never_joined(table, name) {
            r.warnings.push(Diagnostic::new(
                span.clone(),
                format!(
                    "room `{room}` of {name} is sent to, but nothing joins it: no one will receive those messages"
                ),
            ));
        }
        for room in rooms_never_sent_to(table, name) {
            r.warnings.push(Diagnostic::new(
                span.clone(),
                format!(
                    "room `{room}` of {name} is joined, but nothing sends to it: joining it changes nothing"
                ),
            ));
        }
    }
}

/// The rooms of namespace `name` that routes join by name when nothing could send to them:
/// no route targets them (by name or template), and no script, backend, server API or
/// admin UI could; no presence or history is told of them.
fn rooms_never_sent_to(table: &RouteTable, name: &str) -> Vec<String> {
    let Some(ns) = table.namespace(name) else {
        return Vec::new();
    };
    if table.api.is_some() || table.admin_ui.is_some() || ns.presence.is_some() {
        return Vec::new();
    }
    let mut targeted = BTreeSet::new();
    for (other, other_ns) in &table.namespaces {
        for step in steps_of(other_ns) {
            if step.script.is_some() || step.http.is_some() {
                return Vec::new();
            }
            let Some(deliver) = &step.deliver else {
                continue;
            };
            if deliver.namespace.as_deref().unwrap_or(other) != name {
                continue;
            }
            if let Target::Room { room, .. } = &deliver.target {
                match room.literal_text() {
                    Some(room) => {
                        targeted.insert(room);
                    }
                    // A template may name any room.
                    None => return Vec::new(),
                }
            }
        }
    }
    let joined: BTreeSet<String> = steps_of(ns)
        .iter()
        .filter(|s| !s.replay)
        .filter_map(|s| s.join.as_ref()?.literal_text())
        .collect();
    joined.difference(&targeted).cloned().collect()
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

/// Whether a route of `ns` reaches clients other than the sender.
fn reaches_others(ns: &NamespaceRoutes) -> bool {
    steps_of(ns).iter().any(|s| {
        s.deliver
            .as_ref()
            .is_some_and(|d| !matches!(d.target, Target::Emit) || d.namespace.is_some())
    })
}

/// Templates of an event's route that read an argument, or a field of one, that the event's
/// schema does not allow: they can never resolve.
fn reads_beyond_schema(ns: &NamespaceRoutes) -> Vec<String> {
    let mut out = Vec::new();
    for (event, route) in &ns.events {
        let Some(schema) = &route.schema else {
            continue;
        };
        let mut reads = BTreeSet::new();
        for step in &route.steps {
            for t in step.join.iter().chain(&step.leave) {
                reads.extend(t.args_read());
            }
            if let Some(d) = &step.deliver {
                if let Target::Room { room, .. } = &d.target {
                    reads.extend(room.args_read());
                }
                reads.extend(data_reads(&d.data));
            }
            if let Some(ack) = &step.ack {
                reads.extend(data_reads(ack));
            }
        }
        for (index, path) in reads {
            if let Some(why) = unreachable(&schema.value, index, &path) {
                let at = std::iter::once(index.to_string())
                    .chain(path.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(".");
                out.push(format!(
                    "the route of `{event}` reads `{{{at}}}`, which its schema `{}` {why}: that template never resolves",
                    schema.name
                ));
            }
        }
    }
    out
}

fn data_reads(data: &DataSpec) -> Vec<(usize, Vec<String>)> {
    match data {
        DataSpec::Forward => Vec::new(),
        DataSpec::List(t) => t.args_read(),
        DataSpec::Values(values) => values.iter().flat_map(|v| v.args_read()).collect(),
    }
}

/// Why argument `index` (and `path` in it) cannot exist under `schema` (the arguments'
/// array); `None` when it can, or the schema does not say.
fn unreachable(schema: &serde_json::Value, index: usize, path: &[String]) -> Option<String> {
    let prefix = schema.get("prefixItems").and_then(|p| p.as_array());
    let mut item = match prefix.and_then(|p| p.get(index)) {
        Some(item) => item,
        None => match schema.get("items") {
            Some(serde_json::Value::Bool(false)) => {
                let n = prefix.map_or(0, Vec::len);
                return Some(format!("allows {n} argument(s)"));
            }
            Some(items) => items,
            None => return None,
        },
    };
    for (depth, field) in path.iter().enumerate() {
        let props = item.get("properties").and_then(|p| p.as_object());
        match props.and_then(|p| p.get(field)) {
            Some(inner) => item = inner,
            None if item.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) => {
                let at = std::iter::once(index.to_string())
                    .chain(path[..depth].iter().cloned())
                    .collect::<Vec<_>>()
                    .join(".");
                return Some(format!("gives `{at}` no field `{field}`"));
            }
            None => return None,
        }
    }
    None
}

/// Events a route delivers under a name spelt close to, but not as, an event of the
/// namespace: likely a typo (`chat mesage` for `chat message`).
fn near_miss_events(ns: &NamespaceRoutes) -> Vec<String> {
    let declared: BTreeSet<&str> = ns.events.keys().map(String::as_str).collect();
    let mut out = BTreeSet::new();
    for (event, route) in &ns.events {
        for deliver in route.steps.iter().filter_map(|s| s.deliver.as_ref()) {
            let Some(name) = deliver.event.as_deref() else {
                continue;
            };
            if declared.contains(name) || deliver.namespace.is_some() {
                continue;
            }
            // Closer than `did_you_mean` asks: a delivered name may differ on purpose
            // (`notification` for `notify`); one or two letters off is a typo.
            let close = declared
                .iter()
                .map(|d| (strsim::levenshtein(name, d), *d))
                .filter(|(distance, _)| *distance <= 2)
                .min_by_key(|(distance, _)| *distance)
                .map(|(_, d)| d);
            if let Some(close) = close
                && name.chars().count() >= 4
            {
                out.insert(format!(
                    "the route of `{event}` delivers `{name}`; did you mean `{close}` (an event of this namespace)?"
                ));
            }
        }
    }
    out.into_iter().collect()
}
