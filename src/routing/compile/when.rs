//! `when = { in_room = …, equals = [A, B], exists = … }` on a route step.

use toml::de::DeTable;

use super::super::file::{Node, Reader, get};
use super::super::template::{Template, ValueTemplate};
use super::super::when::When;

pub(super) fn compile_when(
    n: &Node<'_>,
    lifecycle: bool,
    event: &str,
    r: &mut Reader,
) -> Option<When> {
    let t: &DeTable<'_> = r.table(n, "when")?;
    let before = r.diagnostics.len();
    r.known_keys(t, &["in_room", "equals", "exists"], "`when`");
    let reads_args = |tpl: &Template| lifecycle && tpl.reads_args();
    let mut when = When::default();
    if let Some(n) = get(t, "in_room")
        && let Some(text) = r.string(n, "in_room")
    {
        match Template::parse(&text) {
            Ok(tpl) if reads_args(&tpl) => r.error(
                n.span(),
                format!("`{text}` reads event arguments, which a `{event}` route never has"),
            ),
            Ok(tpl) => when.in_room = Some(tpl),
            Err(e) => r.error(n.span(), e),
        }
    }
    if let Some(n) = get(t, "equals") {
        match r.json(n, "equals") {
            Some(serde_json::Value::Array(pair)) if pair.len() == 2 => {
                match (
                    ValueTemplate::compile(&pair[0]),
                    ValueTemplate::compile(&pair[1]),
                ) {
                    (Ok(a), Ok(b)) if lifecycle && (a.reads_args() || b.reads_args()) => r.error(
                        n.span(),
                        format!(
                            "`equals` reads event arguments, which a `{event}` route never has"
                        ),
                    ),
                    (Ok(a), Ok(b)) => when.equals = Some((a, b)),
                    (Err(e), _) | (_, Err(e)) => r.error(n.span(), e),
                }
            }
            Some(_) => r.error(
                n.span(),
                "`equals` is a pair of values, like [\"{socket.data.role}\", \"host\"]",
            ),
            None => {}
        }
    }
    if let Some(n) = get(t, "exists")
        && let Some(value) = r.json(n, "exists")
    {
        match ValueTemplate::compile(&value) {
            Ok(v) if lifecycle && v.reads_args() => r.error(
                n.span(),
                format!("`exists` reads event arguments, which a `{event}` route never has"),
            ),
            Ok(v) => when.exists = Some(v),
            Err(e) => r.error(n.span(), e),
        }
    }
    if r.diagnostics.len() > before {
        return None;
    }
    if when == When::default() {
        r.error(
            n.span(),
            "`when` needs at least one of in_room, equals, exists",
        );
        return None;
    }
    Some(when)
}
