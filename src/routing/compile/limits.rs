//! `[limits]`: caps, rates, buffer sizes and timeouts, each checked against what the
//! protocol and the stock client can hold.

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::super::file::{Node, Reader, get, type_name};
use super::super::limits::LimitSettings;
use super::super::units::{parse_duration, parse_size};
use crate::limits::Rate;

const LIMIT_KEYS: &[&str] = &[
    "max_connections",
    "max_connections_per_ip",
    "trusted_proxies",
    "handshakes_per_ip",
    "events_per_socket",
    "events_excess_disconnect",
    "namespaces_per_session",
    "rooms_per_socket",
    "room_name_bytes",
    "pending_acks",
    "queue_bytes",
    "volatile_bytes",
    "write_timeout",
    "header_timeout",
    "body_timeout",
    "upgrade_timeout",
    "handshake_headers_bytes",
    "script_operations",
    "script_output_bytes",
    "script_timeout",
];

/// The longest timeout accepted: beyond a day a timeout protects nothing.
pub(super) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The largest buffer size accepted.
pub(super) const MAX_BYTES: usize = 1 << 30;

pub(super) fn compile_limits(t: &DeTable<'_>, r: &mut Reader) -> LimitSettings {
    r.known_keys(t, LIMIT_KEYS, "[limits]");
    let mut l = LimitSettings::default();
    if let Some(n) = get(t, "max_connections") {
        l.max_connections = count(n, "max_connections", 1_000_000_000, false, r).flatten();
    }
    if let Some(n) = get(t, "max_connections_per_ip")
        && let Some(v) = count(n, "max_connections_per_ip", 1_000_000_000, true, r)
    {
        l.max_connections_per_ip = v;
    }
    for (key, field) in [
        ("namespaces_per_session", &mut l.namespaces_per_session),
        ("rooms_per_socket", &mut l.rooms_per_socket),
        ("pending_acks", &mut l.pending_acks),
    ] {
        if let Some(n) = get(t, key)
            && let Some(Some(v)) = count(n, key, 1_000_000, false, r)
        {
            *field = v;
        }
    }
    if let Some(n) = get(t, "script_operations")
        && let Some(Some(v)) = count(n, "script_operations", 1_000_000_000, false, r)
    {
        l.script_operations = v as u64;
    }
    for (key, field) in [
        ("queue_bytes", &mut l.queue_bytes),
        ("volatile_bytes", &mut l.volatile_bytes),
        ("room_name_bytes", &mut l.room_name_bytes),
        ("handshake_headers_bytes", &mut l.handshake_headers_bytes),
        ("script_output_bytes", &mut l.script_output_bytes),
    ] {
        if let Some(n) = get(t, key)
            && let Some(v) = size(n, key, r)
        {
            *field = v;
        }
    }
    if l.volatile_bytes > l.queue_bytes
        && let Some(n) = get(t, "volatile_bytes").or_else(|| get(t, "queue_bytes"))
    {
        r.error(
            n.span(),
            format!(
                "`volatile_bytes` ({}) must not exceed `queue_bytes` ({}): volatile messages are dropped before the queue is full",
                l.volatile_bytes, l.queue_bytes
            ),
        );
    }
    for (key, field) in [
        ("events_excess_disconnect", &mut l.events_excess_disconnect),
        ("write_timeout", &mut l.write_timeout),
        ("header_timeout", &mut l.header_timeout),
        ("body_timeout", &mut l.body_timeout),
        ("upgrade_timeout", &mut l.upgrade_timeout),
        ("script_timeout", &mut l.script_timeout),
    ] {
        if let Some(n) = get(t, key)
            && let Some(d) = timeout(n, key, r)
        {
            *field = d;
        }
    }
    for (key, field) in [
        ("handshakes_per_ip", &mut l.handshakes_per_ip),
        ("events_per_socket", &mut l.events_per_socket),
    ] {
        if let Some(n) = get(t, key)
            && let Some(v) = rate(n, key, r)
        {
            *field = v;
        }
    }
    if let Some(n) = get(t, "trusted_proxies")
        && let Some(list) = r.strings(n, "trusted_proxies")
    {
        for item in list {
            let text = item.get_ref();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => l.trusted_proxies.push(net),
                Err(_) => r.error(
                    item.span(),
                    format!("`{text}` is not an address or network; expected e.g. \"10.0.0.0/8\" or \"127.0.0.1\""),
                ),
            }
        }
    }
    l
}

/// A positive whole number up to `max`; with `off_allowed`, `"off"` gives `Some(None)`.
pub(super) fn count(
    n: &Node<'_>,
    key: &str,
    max: usize,
    off_allowed: bool,
    r: &mut Reader,
) -> Option<Option<usize>> {
    let expected = if off_allowed {
        "a positive number, or \"off\""
    } else {
        "a positive number"
    };
    match n.get_ref() {
        DeValue::String(s) if off_allowed && s.as_ref() == "off" => Some(None),
        DeValue::Integer(i) => match i.to_string().replace('_', "").parse::<usize>() {
            Ok(v) if (1..=max).contains(&v) => Some(Some(v)),
            _ => {
                r.error(n.span(), format!("`{key}` must be between 1 and {max}"));
                None
            }
        },
        other => {
            r.error(
                n.span(),
                format!("`{key}` is {}, expected {expected}", type_name(other)),
            );
            None
        }
    }
}

/// Bytes, or a size like "4MB"; more than zero, at most 1 GiB.
pub(super) fn size(n: &Node<'_>, key: &str, r: &mut Reader) -> Option<usize> {
    let parsed = match n.get_ref() {
        DeValue::Integer(i) => i
            .to_string()
            .replace('_', "")
            .parse::<usize>()
            .map_err(|_| "expected a positive number of bytes".to_owned()),
        DeValue::String(text) => parse_size(text),
        other => Err(format!(
            "`{key}` is {}, expected bytes or a size like \"1MB\"",
            type_name(other)
        )),
    };
    match parsed {
        Ok(0) => r.error(n.span(), format!("`{key}` must be larger than zero")),
        Ok(v) if v > MAX_BYTES => r.error(
            n.span(),
            format!("`{key}` must be at most 1GiB ({MAX_BYTES} bytes)"),
        ),
        Ok(v) => return Some(v),
        Err(e) => r.error(n.span(), e),
    }
    None
}

/// A duration longer than zero and at most a day.
pub(super) fn timeout(n: &Node<'_>, key: &str, r: &mut Reader) -> Option<Duration> {
    let text = r.string(n, key)?;
    match parse_duration(&text) {
        Ok(d) if d.is_zero() => r.error(n.span(), format!("`{key}` must be longer than zero")),
        Ok(d) if d > MAX_TIMEOUT => r.error(n.span(), format!("`{key}` must be at most \"24h\"")),
        Ok(d) => return Some(d),
        Err(e) => r.error(n.span(), e),
    }
    None
}

/// `"N/s"` (or `/m`, `/h`), `"off"`, or `{ rate = "N/s", burst = M }`.
pub(super) fn rate(n: &Node<'_>, key: &str, r: &mut Reader) -> Option<Option<Rate>> {
    const EXPECTED: &str = "a rate like \"50/s\", \"off\", or { rate = \"50/s\", burst = 100 }";
    let (text_node, burst) = match n.get_ref() {
        DeValue::String(s) if s.as_ref() == "off" => return Some(None),
        DeValue::String(_) => (n, None),
        DeValue::Table(t) => {
            r.known_keys(t, &["rate", "burst"], &format!("`{key}`"));
            let Some(rate) = get(t, "rate") else {
                r.error(
                    n.span(),
                    format!("`{key}` needs `rate`; expected {EXPECTED}"),
                );
                return None;
            };
            let burst = match get(t, "burst") {
                None => None,
                Some(b) => Some(count(b, "burst", 1_000_000, false, r)??),
            };
            (rate, burst)
        }
        other => {
            r.error(
                n.span(),
                format!("`{key}` is {}, expected {EXPECTED}", type_name(other)),
            );
            return None;
        }
    };
    let text = r.string(text_node, key)?;
    let parsed = text.split_once('/').and_then(|(count, unit)| {
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate::new(count, period, burst.map(|b| b as u32)))
    });
    match parsed {
        Some(rate) => Some(Some(rate)),
        None => {
            r.error(
                text_node.span(),
                format!("`{text}` is not a rate; expected {EXPECTED}"),
            );
            None
        }
    }
}
