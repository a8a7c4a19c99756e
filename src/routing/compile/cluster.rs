//! `[cluster]`: the Redis link to other nodes.

use toml::de::DeTable;

use super::super::file::{Node, Reader, get};
use super::super::table::ClusterSettings;
use super::Env;

const CLUSTER_KEYS: &[&str] = &["adapter", "url", "url_env", "key", "request_timeout"];

pub(super) fn compile_cluster(
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
    if let Some(n) = get(t, "request_timeout") {
        match super::limits::timeout(n, "request_timeout", r) {
            Some(d) => request_timeout = d,
            None => ok = false,
        }
    }
    ok.then_some(ClusterSettings {
        url,
        key,
        request_timeout,
    })
}
