//! `[api]`.

use std::time::Duration;

use toml::de::DeTable;

use super::super::api::ApiSettings;
use super::super::file::{Node, Reader, get};
use super::Env;
use super::limits::size;
use crate::limits::Rate;

/// Shortest API key: a guessable key is no key.
const MIN_KEY_BYTES: usize = 16;

pub(super) fn compile_api(
    t: &DeTable<'_>,
    node: &Node<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<ApiSettings> {
    r.known_keys(t, &["keys_env", "listen", "rate", "max_body"], "[api]");
    let keys = match get(t, "keys_env") {
        None => {
            r.error(
                node.span(),
                "`keys_env` is required: the environment variable holding the API keys",
            );
            return None;
        }
        Some(n) => {
            let var = r.string(n, "keys_env")?;
            let Some(list) = (env.var)(&var) else {
                r.error(
                    n.span(),
                    format!(
                        "environment variable `{var}` is not set; expected comma-separated API keys"
                    ),
                );
                return None;
            };
            let keys: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
            if keys.is_empty() || keys.iter().any(|k| k.len() < MIN_KEY_BYTES) {
                r.error(
                    n.span(),
                    format!("`{var}` must list keys of at least {MIN_KEY_BYTES} bytes each"),
                );
                return None;
            }
            keys
        }
    };
    let listen = get(t, "listen").and_then(|n| {
        let text = r.string(n, "listen")?;
        if text.parse::<std::net::SocketAddr>().is_err() {
            r.error(
                n.span(),
                format!("`{text}` is not an address like \"127.0.0.1:9091\""),
            );
            return None;
        }
        Some(text)
    });
    let rate = match get(t, "rate") {
        None => Some(Rate::new(100, Duration::from_secs(1), Some(200))),
        Some(n) => super::limits::rate(n, "rate", r)?,
    };
    let max_body = match get(t, "max_body") {
        None => 1_000_000,
        Some(n) => size(n, "max_body", r)?,
    };
    Some(ApiSettings {
        keys,
        listen,
        rate,
        max_body,
    })
}
