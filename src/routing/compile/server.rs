//! `[server]`: listen address, Engine.IO settings, CORS, cookie, connection state recovery.

use toml::de::{DeTable, DeValue};

use super::super::file::{Node, Reader, get};
use super::super::table::{CookieSettings, CorsSettings, RecoverySettings, ServerSettings};
use super::super::tls::TlsSettings;

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
    "recovery",
    "tls",
    "parser",
];

pub(super) fn compile_server(
    t: &DeTable<'_>,
    env: &super::Env<'_>,
    r: &mut Reader,
) -> ServerSettings {
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
    if let Some(n) = get(t, "parser")
        && let Some(v) = r.string(n, "parser")
    {
        match v.as_str() {
            "default" => s.msgpack = false,
            "msgpack" => s.msgpack = true,
            other => r.error(
                n.span(),
                format!("unknown parser `{other}`; expected \"default\" or \"msgpack\""),
            ),
        }
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
            && let Some(d) = super::limits::timeout(n, key, r)
        {
            *field = d;
        }
    }
    if let Some(n) = get(t, "max_payload")
        && let Some(v) = super::limits::size(n, "max_payload", r)
    {
        s.max_payload = v;
    }
    if let Some(n) = get(t, "cors")
        && let Some(c) = r.table(n, "cors")
    {
        r.known_keys(c, &["origins", "credentials"], "[server].cors");
        let origins: Vec<String> = get(c, "origins")
            .and_then(|o| r.strings(o, "origins"))
            .map(|v| v.into_iter().map(|s| s.into_inner()).collect())
            .unwrap_or_default();
        let credentials = get(c, "credentials")
            .and_then(|b| r.boolean(b, "credentials"))
            .unwrap_or(false);
        if credentials && origins.iter().any(|o| o == "*") {
            r.error(
                n.span(),
                "`origins = [\"*\"]` with `credentials = true` would let any site make credentialed requests; list the origins",
            );
        }
        s.cors = Some(CorsSettings {
            origins,
            credentials,
        });
    }
    if let Some(n) = get(t, "cookie") {
        s.cookie = compile_cookie(n, r);
    }
    if let Some(n) = get(t, "recovery")
        && let Some(t) = r.table(n, "recovery")
    {
        s.recovery = compile_recovery(t, r);
    }
    if let Some(n) = get(t, "tls")
        && let Some(table) = r.table(n, "tls")
    {
        s.tls = compile_tls(n, table, env, r);
    }
    s
}

/// `[server.recovery]`: socket.io's connection state recovery.
fn compile_recovery(t: &DeTable<'_>, r: &mut Reader) -> Option<RecoverySettings> {
    r.known_keys(
        t,
        &["max_disconnection", "skip_auth", "buffer"],
        "[server.recovery]",
    );
    let defaults = RecoverySettings::default();
    // Each key is read (and its error reported) before any failure counts.
    let max_disconnection = get(t, "max_disconnection")
        .map_or(Some(defaults.max_disconnection), |n| {
            super::limits::timeout(n, "max_disconnection", r)
        });
    let skip_auth =
        get(t, "skip_auth").map_or(Some(defaults.skip_auth), |n| r.boolean(n, "skip_auth"));
    let buffer = get(t, "buffer").map_or(Some(defaults.buffer), |n| {
        super::limits::size(n, "buffer", r)
    });
    Some(RecoverySettings {
        max_disconnection: max_disconnection?,
        skip_auth: skip_auth?,
        buffer: buffer?,
    })
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

/// `tls = { cert = "cert.pem", key = "key.pem" }`, paths relative to the routes file.
fn compile_tls(
    node: &Node<'_>,
    t: &DeTable<'_>,
    env: &super::Env<'_>,
    r: &mut Reader,
) -> Option<TlsSettings> {
    r.known_keys(t, &["cert", "key"], "tls");
    let mut read = |key: &str| {
        let Some(n) = get(t, key) else {
            r.error(
                node.span(),
                format!("`tls` needs `{key}`, a PEM file like \"{key}.pem\""),
            );
            return None;
        };
        let name = r.string(n, key)?;
        let path = env.base_dir.join(&name);
        match std::fs::read(&path) {
            Ok(pem) => Some((path, pem, n.span())),
            Err(e) => {
                r.error(
                    n.span(),
                    format!("cannot read `{name}`: {e} (paths are relative to the routes file)"),
                );
                None
            }
        }
    };
    let (cert, key) = (read("cert"), read("key"));
    let ((cert_path, cert_pem, _), (key_path, key_pem, _)) = (cert?, key?);
    match TlsSettings::new(cert_path, cert_pem, key_path, key_pem) {
        Ok(tls) => Some(tls),
        Err(e) => {
            r.error(node.span(), e);
            None
        }
    }
}
