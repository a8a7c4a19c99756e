//! `[[webhooks]]`.

use std::time::Duration;

use toml::de::DeValue;

use super::super::file::{Node, Reader, get, type_name};
use super::super::units::parse_duration;
use super::super::webhooks::{HookEvent, WebhookSettings};
use super::Env;
use super::backend::{backend_timeout, http_url, signing_secret};
use super::limits::size;

/// Most events in one batch a webhook may ask for.
const MAX_BATCH: usize = 10_000;
/// Longest a batch may wait to fill.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

pub(super) fn compile_webhooks(
    node: &Node<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Vec<WebhookSettings> {
    let DeValue::Array(items) = node.get_ref() else {
        r.error(
            node.span(),
            format!(
                "`webhooks` is {}, expected [[webhooks]] tables",
                type_name(node.get_ref())
            ),
        );
        return Vec::new();
    };
    let mut out: Vec<WebhookSettings> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in items.iter() {
        let Some(t) = r.table(item, "webhooks") else {
            continue;
        };
        r.known_keys(
            t,
            &["url", "events", "secret_env", "batch", "queue", "timeout"],
            "[[webhooks]]",
        );
        let Some(url) = (match get(t, "url") {
            Some(n) => http_url(n, "url", r),
            None => {
                r.error(item.span(), "[[webhooks]] needs `url`, where batches go");
                None
            }
        }) else {
            continue;
        };
        if !seen.insert(url.clone()) {
            r.error(
                item.span(),
                format!("a [[webhooks]] table for `{url}` comes earlier; list its events there"),
            );
            continue;
        }
        let events = match get(t, "events") {
            None => {
                r.error(
                    item.span(),
                    "[[webhooks]] needs `events`, e.g. [\"connect\", \"disconnect\"]",
                );
                continue;
            }
            Some(n) => match r.strings(n, "events") {
                Some(names)
                    if !names.is_empty() && names.iter().all(|s| !s.get_ref().is_empty()) =>
                {
                    names
                        .iter()
                        .map(|s| HookEvent::parse(s.get_ref()))
                        .collect()
                }
                Some(_) => {
                    r.error(
                        n.span(),
                        "`events` must name at least one event, none empty",
                    );
                    continue;
                }
                None => continue,
            },
        };
        let secret = get(t, "secret_env").and_then(|n| signing_secret(n, env, r));
        let (batch_max, batch_interval) = match get(t, "batch") {
            None => (100, Duration::from_secs(1)),
            Some(n) => match batch(n, r) {
                Some(b) => b,
                None => continue,
            },
        };
        let queue_bytes = match get(t, "queue") {
            None => 8_000_000,
            Some(n) => match size(n, "queue", r) {
                Some(q) => q,
                None => continue,
            },
        };
        let Some(timeout) = backend_timeout(get(t, "timeout"), Duration::from_secs(5), r) else {
            continue;
        };
        out.push(WebhookSettings {
            url,
            events,
            secret,
            batch_max,
            batch_interval,
            queue_bytes,
            timeout,
        });
    }
    out
}

/// `batch = { max = 100, interval = "1s" }`.
fn batch(n: &Node<'_>, r: &mut Reader) -> Option<(usize, Duration)> {
    let t = r.table(n, "batch")?;
    r.known_keys(t, &["max", "interval"], "`batch`");
    let max = match get(t, "max") {
        None => 100,
        Some(m) => match r.json(m, "max").and_then(|v| v.as_u64()) {
            Some(v) if (1..=MAX_BATCH as u64).contains(&v) => v as usize,
            _ => {
                r.error(
                    m.span(),
                    format!("`max` must be a whole number from 1 to {MAX_BATCH}"),
                );
                return None;
            }
        },
    };
    let interval = match get(t, "interval") {
        None => Duration::from_secs(1),
        Some(i) => {
            let text = r.string(i, "interval")?;
            match parse_duration(&text) {
                Ok(d) if d <= MAX_INTERVAL => d,
                Ok(_) => {
                    r.error(i.span(), "`interval` must be at most \"60s\"");
                    return None;
                }
                Err(e) => {
                    r.error(i.span(), e);
                    return None;
                }
            }
        }
    };
    Some((max, interval))
}
