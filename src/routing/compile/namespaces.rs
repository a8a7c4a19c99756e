//! `[namespaces."NAME"]`: auth rules and routes.

use std::collections::{BTreeMap, BTreeSet};

use bytestring::ByteString;
use toml::de::{DeTable, DeValue};

use super::super::action::{DataSpec, Deliver, Route, ScriptRef, Step, Target};
use super::super::file::{Node, Reader, get, type_name};
use super::super::table::{NamespaceRoutes, PresenceSettings};
use super::super::template::{Template, ValueTemplate};
use super::Env;

const ROUTE_KEYS: &[&str] = &[
    "to",
    "room",
    "include_sender",
    "volatile",
    "event",
    "data",
    "join",
    "leave",
    "ack",
    "script",
    "function",
    "http",
    "timeout",
    "when",
    "namespace",
    "history",
    "replay",
    "schema",
];
const TARGETS: &str = "\"emit\", \"broadcast\", \"room\" or \"io\"";

pub(super) fn compile_namespaces(
    t: &DeTable<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> BTreeMap<String, NamespaceRoutes> {
    let mut out = BTreeMap::new();
    let declared: BTreeSet<String> = t.iter().map(|(k, _)| k.get_ref().to_string()).collect();
    for (name, node) in t.iter() {
        let name_str = name.get_ref().to_string();
        r.declared.insert(name_str.clone(), name.span());
        if !name_str.starts_with('/') {
            // Reported, and what it holds is still checked: every problem at once.
            r.error(
                name.span(),
                format!("namespace `{name_str}` must start with `/`, like \"/chat\""),
            );
        }
        let Some(ns) = r.table(node, &name_str) else {
            continue;
        };
        let what = format!("[namespaces.\"{name_str}\"]");
        r.known_keys(ns, &["auth", "events", "presence"], &what);
        let mut routes = NamespaceRoutes::default();
        if let Some(n) = get(ns, "auth")
            && let Some(a) = r.table(n, "auth")
        {
            routes.auth = super::auth::compile_auth(a, n, env, &name_str, r);
        }
        if let Some(n) = get(ns, "presence") {
            routes.presence = compile_presence(n, r);
        }
        if let Some(n) = get(ns, "events")
            && let Some(events) = r.table(n, "events")
        {
            for (event, node) in events.iter() {
                let event = event.get_ref().to_string();
                let lifecycle = event == "connect" || event == "disconnect";
                let Some(route) = compile_route(node, &event, lifecycle, &declared, env, r) else {
                    continue;
                };
                match event.as_str() {
                    "connect" => routes.on_connect = Some(route),
                    "disconnect" => routes.on_disconnect = Some(route),
                    "*" => routes.catch_all = Some(route),
                    _ => {
                        routes.events.insert(event, route);
                    }
                }
            }
        }
        if let Some(refresh) = routes
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.refresh_event.as_ref())
            && (routes.events.contains_key(refresh)
                || refresh == "connect"
                || refresh == "disconnect")
        {
            let span = get(ns, "auth").map_or(0..0, |n| n.span());
            r.error(
                span,
                format!("`refresh_event` `{refresh}` is also a route of [namespaces.\"{name_str}\".events]; the refresh takes that event"),
            );
        }
        out.insert(name_str, routes);
    }
    out
}

/// A route: a target name, a table, or a list of those.
fn compile_route(
    node: &Node<'_>,
    event: &str,
    lifecycle: bool,
    declared: &BTreeSet<String>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<Route> {
    let mut route = Route {
        schema: compile_schema(node, event, lifecycle, env, r),
        ..Route::default()
    };
    match node.get_ref() {
        DeValue::Array(items) => {
            for item in items.iter() {
                if matches!(item.get_ref(), DeValue::Array(_)) {
                    r.error(
                        item.span(),
                        format!("route of `{event}`: a list of routes cannot nest lists"),
                    );
                    continue;
                }
                if let Some(step) = compile_step(item, event, lifecycle, declared, env, r) {
                    route.steps.push(step);
                }
            }
        }
        _ => route
            .steps
            .push(compile_step(node, event, lifecycle, declared, env, r)?),
    }
    Some(route)
}

/// The `schema` of an event: on one table of its route (the event's, not a step's).
fn compile_schema(
    node: &Node<'_>,
    event: &str,
    lifecycle: bool,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<super::super::schema::EventSchema> {
    let tables: Vec<&DeTable<'_>> = match node.get_ref() {
        DeValue::Table(t) => vec![t],
        DeValue::Array(items) => items
            .iter()
            .filter_map(|i| match i.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut found = None;
    for n in tables.into_iter().filter_map(|t| get(t, "schema")) {
        if found.is_some() {
            r.error(
                n.span(),
                format!(
                    "route of `{event}`: one `schema` per event (it checks the event's arguments)"
                ),
            );
            continue;
        }
        if lifecycle {
            r.error(
                n.span(),
                format!("`{event}` has no arguments to check: no `schema`"),
            );
            continue;
        }
        let name = r.string(n, "schema")?;
        match super::super::schema::EventSchema::load(&env.base_dir.join(&name), &name) {
            Ok(schema) => found = Some(schema),
            Err(e) => r.error(n.span(), e),
        }
    }
    found
}

fn compile_step(
    node: &Node<'_>,
    event: &str,
    lifecycle: bool,
    declared: &BTreeSet<String>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<Step> {
    let span = node.span();
    match node.get_ref() {
        DeValue::String(target) => {
            let target = match target.as_ref() {
                "emit" => Target::Emit,
                "broadcast" => Target::Broadcast,
                "io" => Target::Io,
                "room" => {
                    r.error(span, format!("route of `{event}`: a `room` target needs a room: write {{ to = \"room\", room = \"NAME\" }}"));
                    return None;
                }
                other => {
                    r.error(
                        span,
                        format!(
                            "route of `{event}`: unknown target `{other}`; {}expected {TARGETS}",
                            target_hint(other)
                        ),
                    );
                    return None;
                }
            };
            Some(Step {
                deliver: Some(Deliver {
                    target,
                    event: None,
                    data: DataSpec::Forward,
                    volatile: false,
                    namespace: None,
                    history: None,
                }),
                ..Step::default()
            })
        }
        DeValue::Table(t) => {
            let when = get(t, "when").map(|n| super::when::compile_when(n, lifecycle, event, r));
            let mut step = compile_table_step(t, span, event, lifecycle, declared, env, r)?;
            step.when = match when {
                None => None,
                Some(compiled) => Some(compiled?),
            };
            Some(step)
        }
        other => {
            r.error(span, format!("route of `{event}` is {}, expected a target ({TARGETS}), a table or a list of routes", type_name(other)));
            None
        }
    }
}

fn compile_table_step(
    t: &DeTable<'_>,
    span: std::ops::Range<usize>,
    event: &str,
    lifecycle: bool,
    declared: &BTreeSet<String>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<Step> {
    let before = r.diagnostics.len();
    r.known_keys(t, ROUTE_KEYS, &format!("the route of `{event}`"));
    let template = |r: &mut Reader, key: &str| -> Option<Template> {
        let n = get(t, key)?;
        let text = r.string(n, key)?;
        match Template::parse(&text) {
            Ok(tpl) if lifecycle && tpl.reads_args() => {
                r.error(
                    n.span(),
                    format!("`{text}` reads event arguments, which a `{event}` route never has"),
                );
                None
            }
            Ok(tpl) => Some(tpl),
            Err(e) => {
                r.error(n.span(), e);
                None
            }
        }
    };
    let data = |r: &mut Reader, key: &str, list: bool| -> Option<DataSpec> {
        let n = get(t, key)?;
        let value = r.json(n, key)?;
        let compiled = match (&value, list) {
            (serde_json::Value::Array(items), true) => {
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match ValueTemplate::compile(item) {
                        Ok(v) => values.push(v),
                        Err(e) => {
                            // The caret goes under the element at fault, not the whole list.
                            let span = match n.get_ref() {
                                DeValue::Array(nodes) => {
                                    nodes.get(i).map_or(n.span(), |e| e.span())
                                }
                                _ => n.span(),
                            };
                            r.error(span, e);
                            return None;
                        }
                    }
                }
                Ok(DataSpec::Values(values))
            }
            _ => ValueTemplate::compile(&value).map(|v| {
                if v.is_args() {
                    DataSpec::List(v)
                } else {
                    DataSpec::Values(vec![v])
                }
            }),
        };
        match compiled {
            Ok(d) if lifecycle && reads_args(&d) => {
                r.error(
                    n.span(),
                    format!("`{key}` reads event arguments, which a `{event}` route never has"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                r.error(n.span(), e);
                None
            }
        }
    };

    let mut step = Step {
        join: template(r, "join"),
        leave: template(r, "leave"),
        ..Step::default()
    };
    if let Some(n) = get(t, "script") {
        let function = get(t, "function")
            .and_then(|f| r.string(f, "function"))
            .unwrap_or_else(|| "on_event".to_owned());
        for (key, other) in t.iter() {
            if !matches!(
                key.get_ref().as_ref(),
                "script" | "function" | "when" | "schema"
            ) {
                r.error(
                    key.span(),
                    format!(
                        "`{}` cannot go with `script`: the script decides the whole route",
                        key.get_ref()
                    ),
                );
            }
            let _ = other;
        }
        if r.diagnostics.len() > before {
            return None;
        }
        return script_ref(n, &function, env, r).map(|script| Step {
            script: Some(script),
            ..Step::default()
        });
    }
    if let Some(n) = get(t, "http") {
        for (key, _) in t.iter() {
            if !matches!(key.get_ref().as_ref(), "http" | "timeout" | "when") {
                r.error(
                    key.span(),
                    format!(
                        "`{}` cannot go with `http`: the backend's answer decides this step (put other steps in a list)",
                        key.get_ref()
                    ),
                );
            }
        }
        let call = super::backend::http_call(n, get(t, "timeout"), r);
        if r.diagnostics.len() > before {
            return None;
        }
        return call.map(|call| Step {
            http: Some(call),
            ..Step::default()
        });
    }
    if let Some(n) = get(t, "timeout") {
        r.error(
            n.span(),
            "`timeout` applies to an `http` step, which is missing",
        );
    }
    if let Some(n) = get(t, "function") {
        r.error(
            n.span(),
            "`function` names a function of `script`, which is missing",
        );
    }
    if let Some(n) = get(t, "ack") {
        if lifecycle {
            r.error(n.span(), format!("a `{event}` route has no ack to answer"));
        } else {
            step.ack = data(r, "ack", false);
        }
    }
    let to = get(t, "to").and_then(|n| Some((n, r.string(n, "to")?)));
    let room = template(r, "room");
    let include_sender =
        get(t, "include_sender").and_then(|n| Some((n, r.boolean(n, "include_sender")?)));
    let target = match to.as_ref().map(|(n, s)| (n, s.as_str())) {
        None => None,
        Some((_, "emit")) => Some(Target::Emit),
        Some((_, "broadcast")) => Some(Target::Broadcast),
        Some((_, "io")) => Some(Target::Io),
        Some((n, "room")) => match room {
            Some(room) => Some(Target::Room {
                room,
                include_sender: include_sender.as_ref().is_some_and(|(_, b)| *b),
            }),
            None => {
                if get(t, "room").is_none() {
                    r.error(n.span(), format!("route of `{event}`: `to = \"room\"` needs `room`, the room name or a template like \"{{0.room}}\""));
                }
                None
            }
        },
        Some((n, other)) => {
            r.error(
                n.span(),
                format!(
                    "route of `{event}`: unknown target `{other}`; {}expected {TARGETS}",
                    target_hint(other)
                ),
            );
            None
        }
    };
    if !matches!(target, Some(Target::Room { .. })) && to.as_ref().is_none_or(|(_, s)| s != "room")
    {
        if let Some(n) = get(t, "room") {
            r.error(n.span(), "`room` only applies with `to = \"room\"`");
        }
        if let Some((n, _)) = include_sender {
            r.error(
                n.span(),
                "`include_sender` only applies with `to = \"room\"`",
            );
        }
    }
    let namespace = get(t, "namespace").and_then(|n| {
        let name = r.string(n, "namespace")?;
        if !declared.contains(&name) {
            let hint = super::super::file::did_you_mean(&name, declared.iter().map(String::as_str))
                .map(|d| format!("; did you mean `{d}`?"))
                .unwrap_or_default();
            r.error(
                n.span(),
                format!("`namespace` `{name}` is not declared in [namespaces]{hint}"),
            );
            return None;
        }
        if !matches!(target, Some(Target::Io | Target::Room { .. })) {
            r.error(
                n.span(),
                "`namespace` applies with `to = \"io\"` or `to = \"room\"` (in that namespace)",
            );
            return None;
        }
        Some(name)
    });
    let history = get(t, "history").and_then(|n| {
        let spec = super::history::compile_history(n, r)?;
        if !matches!(target, Some(Target::Room { .. })) || namespace.is_some() {
            r.error(
                n.span(),
                "`history` applies with `to = \"room\"` in this namespace: the room keeps what it gets",
            );
            return None;
        }
        Some(spec)
    });
    if let Some(n) = get(t, "replay")
        && let Some(replay) = r.boolean(n, "replay")
    {
        if step.join.is_none() {
            r.error(
                n.span(),
                "`replay` applies with `join`: the joined room's history is sent",
            );
        }
        step.replay = replay;
    }
    let event_name = get(t, "event").and_then(|n| r.string(n, "event"));
    let payload = data(r, "data", true);
    let volatile = get(t, "volatile")
        .and_then(|n| r.boolean(n, "volatile"))
        .unwrap_or(false);
    match target {
        Some(target) => {
            step.deliver = Some(Deliver {
                target,
                event: event_name.map(ByteString::from),
                data: payload.unwrap_or(DataSpec::Forward),
                volatile,
                namespace,
                history,
            });
        }
        None if to.is_none() => {
            for key in ["event", "data", "volatile"] {
                if let Some(n) = get(t, key) {
                    r.error(
                        n.span(),
                        format!("`{key}` needs `to`, the target that receives the event"),
                    );
                }
            }
        }
        None => {}
    }
    step.reads_room = step
        .deliver
        .as_ref()
        .is_some_and(|d| data_reads_room(&d.data))
        || step.ack.as_ref().is_some_and(data_reads_room);
    let names_room = step.join.is_some()
        || step.leave.is_some()
        || matches!(
            step.deliver.as_ref().map(|d| &d.target),
            Some(Target::Room { .. })
        );
    if step.reads_room && !names_room {
        r.error(
            span.clone(),
            format!("route of `{event}`: `{{room.size}}` and `{{room.members}}` need a step that names a room (`join`, `leave` or `to = \"room\"`)"),
        );
    }
    if r.diagnostics.len() == before
        && step.deliver.is_none()
        && step.join.is_none()
        && step.leave.is_none()
        && step.ack.is_none()
        && get(t, "script").is_none()
        && get(t, "http").is_none()
    {
        r.error(
            span,
            format!(
                "route of `{event}` does nothing; expected at least one of to, join, leave, ack"
            ),
        );
    }
    (r.diagnostics.len() == before).then_some(step)
}

/// A script file and function; the file must exist (it is compiled by the app layer).
pub(super) fn script_ref(
    node: &Node<'_>,
    function: &str,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<ScriptRef> {
    let path = r.string(node, "script")?;
    let full = env.base_dir.join(&path);
    if !full.is_file() {
        r.error(
            node.span(),
            format!("script file `{path}` not found (paths are relative to the routes file)"),
        );
        return None;
    }
    Some(ScriptRef {
        path: full,
        name: path,
        function: function.to_owned(),
    })
}

fn data_reads_room(d: &DataSpec) -> bool {
    match d {
        DataSpec::Forward => false,
        DataSpec::List(v) => v.reads_room(),
        DataSpec::Values(vs) => vs.iter().any(ValueTemplate::reads_room),
    }
}

fn reads_args(d: &DataSpec) -> bool {
    match d {
        DataSpec::Forward => true,
        DataSpec::List(t) => t.reads_args(),
        DataSpec::Values(vs) => vs.iter().any(ValueTemplate::reads_args),
    }
}

/// `presence = { event = "presence", data = ["name"] }`.
fn compile_presence(n: &Node<'_>, r: &mut Reader) -> Option<PresenceSettings> {
    let t = r.table(n, "presence")?;
    r.known_keys(t, &["event", "data"], "`presence`");
    let event = match get(t, "event") {
        None => "presence".to_owned(),
        Some(e) => {
            let name = r.string(e, "event")?;
            if name.is_empty() {
                r.error(e.span(), "`event` names the event the room receives");
                return None;
            }
            name
        }
    };
    let data = match get(t, "data") {
        None => Vec::new(),
        Some(d) => r
            .strings(d, "data")?
            .into_iter()
            .map(|s| s.into_inner())
            .collect(),
    };
    Some(PresenceSettings { event, data })
}

/// "did you mean `room`? " for a target spelt close to one, else nothing.
fn target_hint(typed: &str) -> String {
    super::super::file::did_you_mean(typed, ["emit", "broadcast", "room", "io"])
        .map(|t| format!("did you mean `{t}`? "))
        .unwrap_or_default()
}
