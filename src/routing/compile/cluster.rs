//! `[cluster]`: the Redis link to other nodes.

use toml::de::DeTable;

use super::super::file::{Node, Reader, get};
use super::super::table::{ClusterSettings, StreamSettings};
use super::Env;

const CLUSTER_KEYS: &[&str] = &[
    "adapter",
    "url",
    "url_env",
    "key",
    "request_timeout",
    "stream",
    "max_len",
    "heartbeat",
];
/// Bounds of `heartbeat`: often enough to notice a dead node, seldom enough to cost nothing.
const MIN_HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(100);
const MAX_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);
/// The adapters `[cluster]` knows.
const ADAPTERS: &str = "\"redis\" or \"redis-streams\"";

pub(super) fn compile_cluster(
    node: &Node<'_>,
    t: &DeTable<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<ClusterSettings> {
    r.known_keys(t, CLUSTER_KEYS, "[cluster]");
    let mut ok = true;
    let mut streams = false;
    match get(t, "adapter") {
        None => {
            r.error(
                node.span(),
                format!("[cluster] needs `adapter`; expected {ADAPTERS}"),
            );
            ok = false;
        }
        Some(n) => match r.string(n, "adapter").as_deref() {
            Some("redis") => {}
            Some("redis-streams") => streams = true,
            Some(other) => {
                r.error(
                    n.span(),
                    format!("unknown adapter `{other}`; expected {ADAPTERS}"),
                );
                ok = false;
            }
            None => ok = false,
        },
    }
    let stream = compile_stream(t, streams, r);
    ok &= stream.is_some() || !streams;
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
    if let Some(n) = get(t, "request_timeout") {
        match super::limits::timeout(n, "request_timeout", r) {
            Some(d) => request_timeout = d,
            None => ok = false,
        }
    }
    let mut heartbeat = std::time::Duration::from_secs(5);
    if let Some(n) = get(t, "heartbeat") {
        match super::limits::timeout(n, "heartbeat", r) {
            Some(d) if d < MIN_HEARTBEAT || d > MAX_HEARTBEAT => {
                r.error(n.span(), "`heartbeat` must be between \"100ms\" and \"1m\"");
                ok = false;
            }
            Some(d) => heartbeat = d,
            None => ok = false,
        }
    }
    ok.then_some(ClusterSettings {
        url,
        key,
        request_timeout,
        heartbeat,
        streams: stream,
    })
}

/// `stream` and `max_len`, which only `redis-streams` has.
fn compile_stream(t: &DeTable<'_>, streams: bool, r: &mut Reader) -> Option<StreamSettings> {
    let mut settings = StreamSettings {
        name: "socket.io".to_owned(),
        max_len: 10_000,
    };
    let mut ok = true;
    for key in ["stream", "max_len"] {
        if let Some(n) = get(t, key)
            && !streams
        {
            r.error(
                n.span(),
                format!("`{key}` needs `adapter = \"redis-streams\"`"),
            );
            ok = false;
        }
    }
    if let Some(n) = get(t, "stream") {
        match r.string(n, "stream") {
            Some(name) if !name.is_empty() => settings.name = name,
            Some(_) => {
                r.error(
                    n.span(),
                    "`stream` names no stream; expected a key like \"socket.io\"",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(n) = get(t, "max_len") {
        match super::limits::count(n, "max_len", 100_000_000, false, r) {
            Some(Some(len)) => settings.max_len = len as u64,
            _ => ok = false,
        }
    }
    (ok && streams).then_some(settings)
}
