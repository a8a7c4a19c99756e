//! routes.toml → [`RouteTable`], collecting every problem with its position.

use std::collections::BTreeMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::action::{DataSpec, Deliver, Route, ScriptRef, Step, Target};
use super::diag::{Diagnostic, Report};
use super::file::{Node, Reader, get, type_name};
use super::table::{
    AuthRule, ClusterSettings, CookieSettings, CorsSettings, NamespaceRoutes, RouteTable,
    ServerSettings, StaticMount,
};
use super::template::{Template, ValueTemplate};
use super::units::{parse_duration, parse_size};

const TOP_KEYS: &[&str] = &["server", "static", "namespaces", "cluster"];
const CLUSTER_KEYS: &[&str] = &["adapter", "url", "url_env", "key", "request_timeout"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "path",
    "serve_client",
    "transports",
    "ping_interval",
    "ping_timeout",
    "max_payload",
    "connect_timeout",
    "cors",
    "admin_listen",
    "cookie",
];
const ROUTE_KEYS: &[&str] = &[
    "to",
    "room",
    "include_sender",
    "event",
    "data",
    "join",
    "leave",
    "ack",
    "script",
    "function",
];
const TARGETS: &str = "\"emit\", \"broadcast\", \"room\" or \"io\"";

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
    let table = compile_doc(doc.get_ref(), env, &mut r);
    if r.diagnostics.is_empty() {
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
        table.server = compile_server(server, r);
    }
    if let Some(node) = get(doc, "static") {
        table.statics = compile_statics(node, env, r);
    }
    if let Some(node) = get(doc, "namespaces")
        && let Some(namespaces) = r.table(node, "namespaces")
    {
        table.namespaces = compile_namespaces(namespaces, env, r);
    }
    if let Some(node) = get(doc, "cluster")
        && let Some(cluster) = r.table(node, "cluster")
    {
        table.cluster = compile_cluster(node, cluster, env, r);
    }
    table
}

fn compile_cluster(
    node: &Node<'_>,
    t: &DeTable<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<ClusterSettings> {
    r.known_keys(t, CLUSTER_KEYS, "[cluster]");
    let mut ok = true;
    match get(t, "adapter") {
        None => {
            r.error(node.span(), "[cluster] needs `adapter`; expected \"redis\"");
            ok = false;
        }
        Some(n) => match r.string(n, "adapter").as_deref() {
            Some("redis") => {}
            Some(other) => {
                r.error(
                    n.span(),
                    format!("unknown adapter `{other}`; expected \"redis\""),
                );
                ok = false;
            }
            None => ok = false,
        },
    }
    let mut url = get(t, "url").and_then(|n| r.string(n, "url"));
    if let Some(n) = get(t, "url_env")
        && let Some(name) = r.string(n, "url_env")
    {
        match (env.var)(&name) {
            Some(v) if !v.trim().is_empty() => url = Some(v.trim().to_owned()),
            _ if url.is_some() => {}
            _ => {
                r.error(
                    n.span(),
                    format!("environment variable `{name}` is not set"),
                );
                ok = false;
            }
        }
    }
    let url = url.unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        // The URL may hold a password: only its scheme is shown.
        let span = get(t, "url")
            .or_else(|| get(t, "url_env"))
            .map_or(node.span(), |n| n.span());
        r.error(
            span,
            "the Redis URL must start with `redis://`, `rediss://` or `unix://`",
        );
        ok = false;
    }
    let key = match get(t, "key") {
        Some(n) => match r.string(n, "key") {
            Some(k) if !k.is_empty() && !k.contains(['*', '?', '[', ']']) => k,
            Some(k) => {
                r.error(
                    n.span(),
                    format!("`{k}` is not a channel prefix; expected text without `*?[]`, like \"socket.io\""),
                );
                ok = false;
                String::new()
            }
            None => {
                ok = false;
                String::new()
            }
        },
        None => "socket.io".to_owned(),
    };
    let mut request_timeout = std::time::Duration::from_secs(5);
    if let Some(n) = get(t, "request_timeout")
        && let Some(v) = r.string(n, "request_timeout")
    {
        match parse_duration(&v) {
            Ok(d) if !d.is_zero() => request_timeout = d,
            Ok(_) => {
                r.error(n.span(), "`request_timeout` must be longer than zero");
                ok = false;
            }
            Err(e) => {
                r.error(n.span(), e);
                ok = false;
            }
        }
    }
    ok.then_some(ClusterSettings {
        url,
        key,
        request_timeout,
    })
}

fn compile_server(t: &DeTable<'_>, r: &mut Reader) -> ServerSettings {
    r.known_keys(t, SERVER_KEYS, "[server]");
    let mut s = ServerSettings::default();
    if let Some(n) = get(t, "listen")
        && let Some(v) = r.string(n, "listen")
    {
        if v.parse::<std::net::SocketAddr>().is_ok() {
            s.listen = v;
        } else {
            r.error(
                n.span(),
                format!("`{v}` is not an address; expected IP:PORT like \"0.0.0.0:3000\""),
            );
        }
    }
    if let Some(n) = get(t, "admin_listen")
        && let Some(v) = r.string(n, "admin_listen")
    {
        if v.parse::<std::net::SocketAddr>().is_ok() {
            s.admin_listen = Some(v);
        } else {
            r.error(
                n.span(),
                format!("`{v}` is not an address; expected IP:PORT like \"127.0.0.1:9090\""),
            );
        }
    }
    if let Some(n) = get(t, "path")
        && let Some(v) = r.string(n, "path")
    {
        if v.starts_with('/') && !v.contains(['?', '#']) {
            s.path = v.trim_end_matches('/').to_owned();
            if s.path.is_empty() {
                s.path = "/".to_owned();
            }
        } else {
            r.error(
                n.span(),
                format!("`{v}` is not a path; expected one starting with `/`, like \"/socket.io\""),
            );
        }
    }
    if let Some(n) = get(t, "serve_client")
        && let Some(v) = r.boolean(n, "serve_client")
    {
        s.serve_client = v;
    }
    if let Some(n) = get(t, "transports")
        && let Some(list) = r.strings(n, "transports")
    {
        s.polling = false;
        s.websocket = false;
        for item in &list {
            match item.get_ref().as_str() {
                "polling" => s.polling = true,
                "websocket" => s.websocket = true,
                other => r.error(
                    item.span(),
                    format!("unknown transport `{other}`; expected \"polling\" or \"websocket\""),
                ),
            }
        }
        if list.is_empty() {
            r.error(
                n.span(),
                "`transports` is empty; expected \"polling\", \"websocket\" or both",
            );
        }
    }
    for (key, field) in [
        ("ping_interval", &mut s.ping_interval),
        ("ping_timeout", &mut s.ping_timeout),
        ("connect_timeout", &mut s.connect_timeout),
    ] {
        if let Some(n) = get(t, key)
            && let Some(v) = r.string(n, key)
        {
            match parse_duration(&v) {
                Ok(d) if !d.is_zero() => *field = d,
                Ok(_) => r.error(n.span(), format!("`{key}` must be longer than zero")),
                Err(e) => r.error(n.span(), e),
            }
        }
    }
    if let Some(n) = get(t, "max_payload") {
        let size = match n.get_ref() {
            DeValue::Integer(i) => i
                .to_string()
                .replace('_', "")
                .parse::<usize>()
                .map_err(|_| "expected a positive number of bytes".to_owned()),
            DeValue::String(text) => parse_size(text),
            other => Err(format!(
                "`max_payload` is {}, expected bytes or a size like \"1MB\"",
                type_name(other)
            )),
        };
        match size {
            Ok(0) => r.error(n.span(), "`max_payload` must be larger than zero"),
            Ok(v) => s.max_payload = v,
            Err(e) => r.error(n.span(), e),
        }
    }
    if let Some(n) = get(t, "cors")
        && let Some(c) = r.table(n, "cors")
    {
        r.known_keys(c, &["origins", "credentials"], "[server].cors");
        let origins = get(c, "origins")
            .and_then(|o| r.strings(o, "origins"))
            .map(|v| v.into_iter().map(|s| s.into_inner()).collect())
            .unwrap_or_default();
        let credentials = get(c, "credentials")
            .and_then(|b| r.boolean(b, "credentials"))
            .unwrap_or(false);
        s.cors = Some(CorsSettings {
            origins,
            credentials,
        });
    }
    if let Some(n) = get(t, "cookie") {
        s.cookie = compile_cookie(n, r);
    }
    s
}

/// `cookie = "io"`, `cookie = true`, or a table `{name, path, httpOnly, sameSite}` as
/// socket.io's `cookie` option (engine.io's defaults: `io`, `/`, HttpOnly, `Lax`).
fn compile_cookie(n: &Node<'_>, r: &mut Reader) -> Option<CookieSettings> {
    let mut c = CookieSettings {
        name: "io".to_owned(),
        path: Some("/".to_owned()),
        http_only: true,
        same_site: Some("Lax".to_owned()),
    };
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b))
    };
    match n.get_ref() {
        DeValue::Boolean(false) => return None,
        DeValue::Boolean(true) => {}
        DeValue::String(name) if valid_name(name) => c.name = name.to_string(),
        DeValue::Table(t) => {
            r.known_keys(
                t,
                &["name", "path", "httpOnly", "sameSite"],
                "[server].cookie",
            );
            if let Some(v) = get(t, "name") {
                match r.string(v, "name") {
                    Some(name) if valid_name(&name) => c.name = name,
                    Some(name) => r.error(v.span(), format!("`{name}` is not a cookie name")),
                    None => {}
                }
            }
            let mut http_only = None;
            if let Some(v) = get(t, "httpOnly") {
                http_only = r.boolean(v, "httpOnly");
            }
            if let Some(v) = get(t, "path") {
                match v.get_ref() {
                    DeValue::Boolean(false) => c.path = None,
                    DeValue::String(p) if p.starts_with('/') && !p.contains([';', ' ']) => {
                        c.path = Some(p.to_string());
                    }
                    _ => r.error(v.span(), "`path` must be a path like \"/\", or false"),
                }
            }
            c.http_only = http_only.unwrap_or(c.path.is_some());
            if let Some(v) = get(t, "sameSite") {
                match v.get_ref() {
                    DeValue::Boolean(false) => c.same_site = None,
                    DeValue::Boolean(true) => c.same_site = Some("Strict".to_owned()),
                    DeValue::String(s) => match s.to_ascii_lowercase().as_str() {
                        "lax" => c.same_site = Some("Lax".to_owned()),
                        "strict" => c.same_site = Some("Strict".to_owned()),
                        "none" => c.same_site = Some("None".to_owned()),
                        _ => r.error(
                            v.span(),
                            format!(
                                "unknown sameSite `{s}`; expected \"lax\", \"strict\" or \"none\""
                            ),
                        ),
                    },
                    _ => r.error(
                        v.span(),
                        "`sameSite` must be \"lax\", \"strict\", \"none\" or false",
                    ),
                }
            }
        }
        _ => {
            r.error(
                n.span(),
                "`cookie` must be a cookie name like \"io\", true, or a table {name, path, httpOnly, sameSite}",
            );
            return None;
        }
    }
    Some(c)
}

fn compile_statics(node: &Node<'_>, env: &Env<'_>, r: &mut Reader) -> Vec<StaticMount> {
    let DeValue::Array(items) = node.get_ref() else {
        r.error(
            node.span(),
            format!(
                "`static` is {}, expected [[static]] tables",
                type_name(node.get_ref())
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let Some(t) = r.table(item, "static") else {
            continue;
        };
        r.known_keys(t, &["mount", "dir", "index"], "[[static]]");
        let mount = match get(t, "mount").map(|n| (n, r.string(n, "mount"))) {
            Some((_, Some(m))) if m.starts_with('/') => m,
            Some((n, Some(m))) => {
                r.error(n.span(), format!("mount `{m}` must start with `/`"));
                continue;
            }
            Some((_, None)) => continue,
            None => {
                r.error(
                    item.span(),
                    "[[static]] needs `mount`, the URL prefix, like \"/\"",
                );
                continue;
            }
        };
        let Some(dir_node) = get(t, "dir") else {
            r.error(
                item.span(),
                "[[static]] needs `dir`, the folder to serve, like \"public\"",
            );
            continue;
        };
        let Some(dir) = r.string(dir_node, "dir") else {
            continue;
        };
        let path = env.base_dir.join(&dir);
        if !path.is_dir() {
            r.error(
                dir_node.span(),
                format!("folder `{dir}` does not exist (paths are relative to the routes file)"),
            );
            continue;
        }
        let index = get(t, "index").and_then(|n| r.string(n, "index"));
        let mount = if mount.len() > 1 {
            mount.trim_end_matches('/').to_owned()
        } else {
            mount
        };
        out.push(StaticMount {
            mount,
            dir: path,
            index,
        });
    }
    out
}

fn compile_namespaces(
    t: &DeTable<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> BTreeMap<String, NamespaceRoutes> {
    let mut out = BTreeMap::new();
    for (name, node) in t.iter() {
        let name_str = name.get_ref().to_string();
        if !name_str.starts_with('/') {
            r.error(
                name.span(),
                format!("namespace `{name_str}` must start with `/`, like \"/chat\""),
            );
            continue;
        }
        let Some(ns) = r.table(node, &name_str) else {
            continue;
        };
        let what = format!("[namespaces.\"{name_str}\"]");
        r.known_keys(ns, &["auth", "events"], &what);
        let mut routes = NamespaceRoutes::default();
        if let Some(n) = get(ns, "auth")
            && let Some(a) = r.table(n, "auth")
        {
            routes.auth = compile_auth(a, n, env, &name_str, r);
        }
        if let Some(n) = get(ns, "events")
            && let Some(events) = r.table(n, "events")
        {
            for (event, node) in events.iter() {
                let event = event.get_ref().to_string();
                let lifecycle = event == "connect" || event == "disconnect";
                let Some(route) = compile_route(node, &event, lifecycle, env, r) else {
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
        out.insert(name_str, routes);
    }
    out
}

fn compile_auth(
    a: &DeTable<'_>,
    node: &Node<'_>,
    env: &Env<'_>,
    nsp: &str,
    r: &mut Reader,
) -> Option<AuthRule> {
    r.known_keys(
        a,
        &["token", "token_env", "script", "message"],
        &format!("[namespaces.\"{nsp}\".auth]"),
    );
    let mut tokens: Vec<String> = Vec::new();
    if let Some(n) = get(a, "token") {
        match n.get_ref() {
            DeValue::String(s) => tokens.push(s.to_string()),
            _ => tokens.extend(
                r.strings(n, "token")
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.into_inner()),
            ),
        }
    }
    if let Some(n) = get(a, "token_env")
        && let Some(var) = r.string(n, "token_env")
    {
        match (env.var)(&var) {
            Some(list) => tokens.extend(list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)),
            None => r.error(n.span(), format!("environment variable `{var}` is not set; expected a comma-separated list of tokens")),
        }
    }
    let script = get(a, "script").and_then(|n| script_ref(n, "authorize", env, r));
    if let Some(n) = get(a, "script")
        && (get(a, "token").is_some() || get(a, "token_env").is_some())
    {
        r.error(
            n.span(),
            "an auth `script` decides alone: remove `token` and `token_env`, or the script",
        );
    }
    let message = get(a, "message")
        .and_then(|n| r.string(n, "message"))
        .unwrap_or_else(|| "unauthorized".to_owned());
    if tokens.is_empty() && get(a, "token").is_some() {
        r.error(node.span(), "`token` lists no tokens: nobody could connect");
    }
    if ["token", "token_env", "script"]
        .iter()
        .all(|k| get(a, k).is_none())
    {
        r.error(node.span(), "auth needs `token`, `token_env` or `script`");
    }
    Some(AuthRule {
        tokens,
        message,
        script,
    })
}

/// A route: a target name, a table, or a list of those.
fn compile_route(
    node: &Node<'_>,
    event: &str,
    lifecycle: bool,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<Route> {
    let mut route = Route::default();
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
                if let Some(step) = compile_step(item, event, lifecycle, env, r) {
                    route.steps.push(step);
                }
            }
        }
        _ => route
            .steps
            .push(compile_step(node, event, lifecycle, env, r)?),
    }
    Some(route)
}

fn compile_step(
    node: &Node<'_>,
    event: &str,
    lifecycle: bool,
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
                        format!("route of `{event}`: unknown target `{other}`; expected {TARGETS}"),
                    );
                    return None;
                }
            };
            Some(Step {
                deliver: Some(Deliver {
                    target,
                    event: None,
                    data: DataSpec::Forward,
                }),
                ..Step::default()
            })
        }
        DeValue::Table(t) => compile_table_step(t, span, event, lifecycle, env, r),
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
            (serde_json::Value::Array(items), true) => items
                .iter()
                .map(ValueTemplate::compile)
                .collect::<Result<Vec<_>, _>>()
                .map(DataSpec::Values),
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
            if !matches!(key.get_ref().as_ref(), "script" | "function") {
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
                format!("route of `{event}`: unknown target `{other}`; expected {TARGETS}"),
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
    let event_name = get(t, "event").and_then(|n| r.string(n, "event"));
    let payload = data(r, "data", true);
    match target {
        Some(target) => {
            step.deliver = Some(Deliver {
                target,
                event: event_name,
                data: payload.unwrap_or(DataSpec::Forward),
            });
        }
        None if to.is_none() => {
            for key in ["event", "data"] {
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
    if r.diagnostics.len() == before
        && step.deliver.is_none()
        && step.join.is_none()
        && step.leave.is_none()
        && step.ack.is_none()
        && get(t, "script").is_none()
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
fn script_ref(node: &Node<'_>, function: &str, env: &Env<'_>, r: &mut Reader) -> Option<ScriptRef> {
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

fn reads_args(d: &DataSpec) -> bool {
    match d {
        DataSpec::Forward => true,
        DataSpec::List(t) => t.reads_args(),
        DataSpec::Values(vs) => vs.iter().any(ValueTemplate::reads_args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::action::{Action, Args, Recipients};
    use crate::routing::template::Scope;
    use serde_json::{Value, json};

    fn env_var(name: &str) -> Option<String> {
        match name {
            "CHAT_TOKENS" => Some("a, b,,c".to_owned()),
            "REDIS_URL" => Some("redis://:secret@10.0.0.1:6380/0".to_owned()),
            _ => None,
        }
    }

    fn compile_str(src: &str) -> Result<RouteTable, Report> {
        let env = Env {
            base_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
            var: &env_var,
        };
        compile(src, "routes.toml", &env)
    }

    fn errors(src: &str) -> Vec<String> {
        let report = compile_str(src).unwrap_err();
        report
            .diagnostics
            .iter()
            .map(|d| format!("{} {}", report.location(d), d.message))
            .collect()
    }

    struct Args0(Vec<Value>);
    impl Scope for Args0 {
        fn args(&self) -> Option<&[Value]> {
            Some(&self.0)
        }
        fn socket_id(&self) -> &str {
            "S1"
        }
        fn socket_data(&self) -> Option<&Value> {
            None
        }
        fn auth(&self) -> Option<&Value> {
            None
        }
        fn query(&self, _: &str) -> Option<&str> {
            None
        }
    }

    #[test]
    fn cluster_defaults_url_env_and_errors() {
        assert_eq!(compile_str("").unwrap().cluster, None);
        let c = compile_str("[cluster]\nadapter = \"redis\"\n")
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(
            (c.url.as_str(), c.key.as_str(), c.request_timeout),
            (
                "redis://127.0.0.1:6379",
                "socket.io",
                std::time::Duration::from_secs(5)
            )
        );
        let c = compile_str(
            "[cluster]\nadapter = \"redis\"\nurl_env = \"REDIS_URL\"\nkey = \"app\"\nrequest_timeout = \"2s\"\n",
        )
        .unwrap()
        .cluster
        .unwrap();
        assert_eq!(
            (c.url.as_str(), c.key.as_str(), c.request_timeout),
            (
                "redis://:secret@10.0.0.1:6380/0",
                "app",
                std::time::Duration::from_secs(2)
            )
        );
        assert_eq!(
            errors(
                "[cluster]\nadapter = \"kafka\"\nurl = \"http://x\"\nkey = \"a*\"\nurl_env = \"NOPE\"\nretries = 3\n"
            ),
            vec![
                "routes.toml:2:11 unknown adapter `kafka`; expected \"redis\"",
                "routes.toml:3:7 the Redis URL must start with `redis://`, `rediss://` or `unix://`",
                "routes.toml:4:7 `a*` is not a channel prefix; expected text without `*?[]`, like \"socket.io\"",
                "routes.toml:6:1 unknown key `retries` in [cluster]; expected one of: adapter, url, url_env, key, request_timeout",
            ]
        );
        assert_eq!(
            errors("[cluster]\nurl_env = \"NOPE\"\n"),
            vec![
                "routes.toml:1:1 [cluster] needs `adapter`; expected \"redis\"",
                "routes.toml:2:11 environment variable `NOPE` is not set",
            ]
        );
    }

    #[test]
    fn defaults_when_the_file_is_empty() {
        let t = compile_str("").unwrap();
        assert_eq!(t.server, ServerSettings::default());
        assert!(t.namespaces.is_empty());
    }

    #[test]
    fn server_settings_are_read_with_units() {
        let t = compile_str(
            r#"[server]
listen = "127.0.0.1:4000"
path = "/rt/"
serve_client = false
transports = ["websocket"]
ping_interval = "100ms"
ping_timeout = "2s"
max_payload = "64KB"
connect_timeout = "1m"
cors = { origins = ["http://x.test"], credentials = true }
"#,
        )
        .unwrap();
        let s = t.server;
        assert_eq!(s.listen, "127.0.0.1:4000");
        assert_eq!(s.path, "/rt");
        assert!(!s.serve_client && !s.polling && s.websocket);
        assert_eq!(s.ping_interval, std::time::Duration::from_millis(100));
        assert_eq!(s.max_payload, 64_000);
        assert_eq!(s.connect_timeout, std::time::Duration::from_secs(60));
        assert_eq!(s.cors.unwrap().origins, vec!["http://x.test"]);
        assert_eq!(
            compile_str("[server]\nmax_payload = 2048\n")
                .unwrap()
                .server
                .max_payload,
            2048
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_place() {
        let errs = errors(
            r#"[server]
pingInterval = "1s"
ping_timeout = 5
transports = ["carrier-pigeon"]

[namespaces.nochat.events]
x = "io"

[namespaces."/".events]
a = "everyone"
b = { to = "room" }
c = { to = "emit", colour = "red" }
d = { join = "{nope}" }
e = "room"
f = {}
"#,
        );
        assert_eq!(
            errs,
            vec![
                "routes.toml:2:1 unknown key `pingInterval` in [server]; expected one of: listen, path, serve_client, transports, ping_interval, ping_timeout, max_payload, connect_timeout, cors, admin_listen, cookie",
                "routes.toml:3:16 `ping_timeout` is an integer, expected a string",
                "routes.toml:4:15 unknown transport `carrier-pigeon`; expected \"polling\" or \"websocket\"",
                "routes.toml:6:13 namespace `nochat` must start with `/`, like \"/chat\"",
                "routes.toml:10:5 route of `a`: unknown target `everyone`; expected \"emit\", \"broadcast\", \"room\" or \"io\"",
                "routes.toml:11:12 route of `b`: `to = \"room\"` needs `room`, the room name or a template like \"{0.room}\"",
                "routes.toml:12:20 unknown key `colour` in the route of `c`; expected one of: to, room, include_sender, event, data, join, leave, ack, script, function",
                "routes.toml:13:14 unknown template `{nope}`; expected {N}, {N.field}, {args}, {socket.id}, {socket.data.KEY}, {handshake.auth.KEY} or {handshake.query.KEY}",
                "routes.toml:14:5 route of `e`: a `room` target needs a room: write { to = \"room\", room = \"NAME\" }",
                "routes.toml:15:5 route of `f` does nothing; expected at least one of to, join, leave, ack",
            ]
        );
    }

    #[test]
    fn bad_toml_is_located() {
        let errs = errors("[server\nlisten = 1\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("routes.toml:1:"), "{errs:?}");
        assert!(errs[0].contains("invalid TOML"), "{errs:?}");
    }

    #[test]
    fn lifecycle_routes_cannot_read_arguments_or_ack() {
        let errs = errors(
            "[namespaces.\"/\".events]\nconnect = { to = \"broadcast\", data = \"{0}\" }\ndisconnect = { ack = \"x\" }\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("reads event arguments, which a `connect` route never has"));
        assert!(errs[1].contains("a `disconnect` route has no ack to answer"));
    }

    #[test]
    fn script_routes_need_their_file_and_nothing_else() {
        // Cargo.toml exists beside the test's base dir; x.rhai does not.
        let t = compile_str(
            "[namespaces.\"/\".events]\np = { script = \"Cargo.toml\", function = \"go\" }\n",
        )
        .unwrap();
        let step = &t.namespace("/").unwrap().events["p"].steps[0];
        let script = step.script.as_ref().unwrap();
        assert!(script.path.ends_with("Cargo.toml"));
        assert_eq!(script.function, "go");
        let errs = errors(
            "[namespaces.\"/\".events]\nq = { script = \"x.rhai\" }\nr = { script = \"Cargo.toml\", to = \"io\" }\ns = { function = \"f\", to = \"io\" }\n",
        );
        assert!(
            errs[0].contains("script file `x.rhai` not found"),
            "{errs:?}"
        );
        assert!(errs[1].contains("`to` cannot go with `script`"), "{errs:?}");
        assert!(
            errs[2].contains("`function` names a function of `script`"),
            "{errs:?}"
        );
    }

    #[test]
    fn auth_tokens_from_the_file_and_the_environment() {
        let t = compile_str(
            "[namespaces.\"/\".auth]\ntoken = [\"123\"]\ntoken_env = \"CHAT_TOKENS\"\nmessage = \"go away\"\n",
        )
        .unwrap();
        let auth = t.namespace("/").unwrap().auth.clone().unwrap();
        assert_eq!(auth.tokens, vec!["123", "a", "b", "c"]);
        assert_eq!(auth.message, "go away");
        let errs = errors("[namespaces.\"/\".auth]\ntoken_env = \"UNSET_VAR\"\n");
        assert!(
            errs[0].contains("environment variable `UNSET_VAR` is not set"),
            "{errs:?}"
        );
    }

    #[test]
    fn routes_resolve_to_actions() {
        let t = compile_str(
            r#"[namespaces."/".events]
"chat message" = "io"
typing = "broadcast"
"room message" = { to = "room", room = "{0.room}" }
shout = { to = "room", room = "{0}", include_sender = true }
ping = { to = "emit", event = "pong" }
join = { join = "{0}" }
echo = { ack = "{args}" }
hello = [ { to = "emit", event = "welcome", data = "hi {socket.id}" }, { to = "broadcast" } ]
"*" = { to = "emit", event = "unknown", data = ["no route", "{args}"] }
"#,
        )
        .unwrap();
        let ns = t.namespace("/").unwrap();
        let run = |event: &str, args: Value| {
            let Value::Array(args) = args else {
                unreachable!()
            };
            ns.route(event)
                .unwrap()
                .resolve(event, &Args0(args))
                .actions
        };
        let deliver = |to, event: &str, args| Action::Deliver {
            to,
            event: event.to_owned(),
            args,
        };
        assert_eq!(
            run("chat message", json!(["x"])),
            vec![deliver(
                Recipients::Namespace {
                    include_sender: true
                },
                "chat message",
                Args::Forward
            )]
        );
        assert_eq!(
            run("typing", json!([])),
            vec![deliver(
                Recipients::Namespace {
                    include_sender: false
                },
                "typing",
                Args::Forward
            )]
        );
        assert_eq!(
            run("room message", json!([{"room": "r1"}])),
            vec![deliver(
                Recipients::Room {
                    room: "r1".into(),
                    include_sender: false
                },
                "room message",
                Args::Forward
            )]
        );
        assert_eq!(run("room message", json!(["no room field"])), vec![]);
        assert_eq!(
            run("shout", json!(["r2"])),
            vec![deliver(
                Recipients::Room {
                    room: "r2".into(),
                    include_sender: true
                },
                "shout",
                Args::Forward
            )]
        );
        assert_eq!(
            run("ping", json!([])),
            vec![deliver(Recipients::Sender, "pong", Args::Forward)]
        );
        assert_eq!(
            run("join", json!(["lobby"])),
            vec![Action::Join("lobby".into())]
        );
        assert_eq!(
            run("echo", json!([1, "a"])),
            vec![Action::Ack(Args::Forward)]
        );
        assert_eq!(
            run("hello", json!([])),
            vec![
                deliver(
                    Recipients::Sender,
                    "welcome",
                    Args::Values(vec![json!("hi S1")])
                ),
                deliver(
                    Recipients::Namespace {
                        include_sender: false
                    },
                    "hello",
                    Args::Forward
                ),
            ]
        );
        assert_eq!(
            run("anything", json!([7])),
            vec![deliver(
                Recipients::Sender,
                "unknown",
                Args::Values(vec![json!("no route"), json!([7])])
            )]
        );
    }
}
