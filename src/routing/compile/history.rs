//! `history = { size = 50, ttl = "1h" }` on a room step.

use std::time::Duration;

use super::super::action::HistorySpec;
use super::super::file::{Node, Reader, get};
use super::super::units::parse_duration;

/// Most messages a room may keep.
const MAX_SIZE: u64 = 1000;
/// Longest a message may be kept.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

pub(super) fn compile_history(n: &Node<'_>, r: &mut Reader) -> Option<HistorySpec> {
    let t = r.table(n, "history")?;
    r.known_keys(t, &["size", "ttl"], "`history`");
    let size = match get(t, "size") {
        None => Some(50),
        Some(s) => match r.json(s, "size").and_then(|v| v.as_u64()) {
            Some(v) if (1..=MAX_SIZE).contains(&v) => Some(v as usize),
            _ => {
                r.error(
                    s.span(),
                    format!("`size` must be a whole number from 1 to {MAX_SIZE}"),
                );
                None
            }
        },
    };
    let ttl = match get(t, "ttl") {
        None => Some(Duration::from_secs(3600)),
        Some(d) => {
            let text = r.string(d, "ttl")?;
            match parse_duration(&text) {
                Ok(v) if !v.is_zero() && v <= MAX_TTL => Some(v),
                Ok(_) => {
                    r.error(
                        d.span(),
                        "`ttl` must be longer than zero and at most \"24h\"",
                    );
                    None
                }
                Err(e) => {
                    r.error(d.span(), e);
                    None
                }
            }
        }
    };
    Some(HistorySpec {
        size: size?,
        ttl: ttl?,
    })
}
