//! `switchboard explain`: what the routes do with one event — which route matches, what each
//! step does with its templates expanded (or why it is skipped), who receives what, and the
//! ack — without a server, from the routes file alone.

use std::fmt::Write as _;

use serde_json::Value;

use super::action::{Action, Args, Recipients};
use super::table::{RouteTable, StepOutcome};
use super::template::Scope;

/// The sender as the explanation names it (its socket id is not known offline).
pub const SENDER: &str = "<sender>";

/// The event to explain and the sender's state.
#[derive(Debug, Clone, Default)]
pub struct Question {
    /// The namespace.
    pub namespace: String,
    /// The event's name.
    pub event: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// The sender's `socket.data`.
    pub socket_data: Value,
    /// The rooms the sender is in (its own aside).
    pub rooms: Vec<String>,
}

impl Scope for Question {
    fn args(&self) -> Option<&[Value]> {
        Some(&self.args)
    }
    fn socket_id(&self) -> &str {
        SENDER
    }
    fn socket_data(&self) -> Option<&Value> {
        (!self.socket_data.is_null()).then_some(&self.socket_data)
    }
    fn auth(&self) -> Option<&Value> {
        None
    }
    fn query(&self, _key: &str) -> Option<&str> {
        None
    }
    fn in_room(&self, room: &str) -> bool {
        room == SENDER || self.rooms.iter().any(|r| r == room)
    }
}

/// The explanation, one line per fact; `Err` when the namespace is not declared.
pub fn explain(table: &RouteTable, q: &Question) -> Result<String, String> {
    let ns = table.namespace(&q.namespace).ok_or_else(|| {
        format!(
            "namespace `{}` is not declared: a CONNECT to it is refused",
            q.namespace
        )
    })?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "event `{}` in {} with {}",
        q.event,
        q.namespace,
        Value::Array(q.args.clone())
    );
    let (route, how) = match ns.events.get(&q.event) {
        Some(route) => (route, format!("its route `{}`", q.event)),
        None => match &ns.catch_all {
            Some(route) => (route, "the catch-all route `\"*\"`".to_owned()),
            None => {
                let _ = writeln!(out, "no route: the event is dropped (no ack is sent)");
                return Ok(out);
            }
        },
    };
    let _ = writeln!(out, "matched by {how}");
    if let Some(schema) = &route.schema {
        if let Err(why) = schema.check(&Value::Array(q.args.clone())) {
            let _ = writeln!(
                out,
                "refused by its schema `{}` ({why}): routed nowhere; an ack gets {{\"error\": \"invalid arguments\", …}}",
                schema.name
            );
            return Ok(out);
        }
        let _ = writeln!(out, "the arguments satisfy its schema `{}`", schema.name);
    }
    let mut acked = false;
    let event = bytestring::ByteString::from(q.event.as_str());
    for (i, step) in route.trace(&event, q).into_iter().enumerate() {
        let n = i + 1;
        match step {
            StepOutcome::WhenFalse => {
                let _ = writeln!(out, "step {n}: skipped, its `when` does not hold");
            }
            StepOutcome::Unresolved => {
                let _ = writeln!(
                    out,
                    "step {n}: skipped, a template reads an argument or field the event does not have"
                );
            }
            StepOutcome::Ran {
                actions,
                ack_unresolved,
            } => {
                if actions.is_empty() && !ack_unresolved {
                    let _ = writeln!(out, "step {n}: does nothing");
                }
                for action in &actions {
                    acked |= matches!(action, Action::Ack(_));
                    let _ = writeln!(out, "step {n}: {}", describe(action, &q.namespace));
                }
                if ack_unresolved {
                    let _ = writeln!(
                        out,
                        "step {n}: no ack: its template reads what the event does not have"
                    );
                }
            }
        }
    }
    if !acked {
        let _ = writeln!(out, "no ack is sent (a client waiting for one times out)");
    }
    Ok(out)
}

fn describe(action: &Action, nsp: &str) -> String {
    match action {
        Action::Join(room) => format!("the sender joins room `{room}`"),
        Action::Leave(room) => format!("the sender leaves room `{room}`"),
        Action::Replay(room) => format!("the sender gets room `{room}`'s history"),
        Action::Remember { room, spec } => format!(
            "room `{room}` keeps it (last {} for {:?})",
            spec.size, spec.ttl
        ),
        Action::Deliver {
            to,
            event,
            args,
            volatile,
        } => format!(
            "`{event}` {} to {}{}",
            args_text(args),
            recipients(to, nsp),
            if *volatile { " (volatile)" } else { "" }
        ),
        Action::Ack(args) => format!("ack {}", args_text(args)),
        Action::Script(script) => format!(
            "script `{}` function `{}` decides (run it on a server to see what it does)",
            script.name, script.function
        ),
        Action::Http(call) => format!(
            "the backend at {} decides (within {:?})",
            call.url, call.timeout
        ),
        Action::Disconnect => "the sender is disconnected".to_owned(),
    }
}

fn recipients(to: &Recipients, nsp: &str) -> String {
    match to {
        Recipients::Sender => "the sender".to_owned(),
        Recipients::Namespace {
            include_sender: true,
        } => format!("everyone in {nsp}"),
        Recipients::Namespace {
            include_sender: false,
        } => format!("everyone in {nsp} but the sender"),
        Recipients::Room {
            room,
            include_sender: true,
        } => format!("room `{room}` of {nsp}"),
        Recipients::Room {
            room,
            include_sender: false,
        } => format!("room `{room}` of {nsp} but the sender"),
        Recipients::Elsewhere {
            namespace,
            room: Some(room),
        } => format!("room `{room}` of {namespace}"),
        Recipients::Elsewhere {
            namespace,
            room: None,
        } => format!("everyone in {namespace}"),
    }
}

fn args_text(args: &Args) -> String {
    match args {
        Args::Forward => "with the event's own arguments".to_owned(),
        Args::Values(values) | Args::Binary(values, _) => {
            format!("with {}", Value::Array(values.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::routing::{Env, compile};

    fn table(text: &str) -> RouteTable {
        let env = Env {
            base_dir: Path::new("."),
            var: &|_| None,
        };
        compile(text, "routes.toml", &env).unwrap()
    }

    fn ask(text: &str, event: &str, args: Value) -> String {
        let q = Question {
            namespace: "/".to_owned(),
            event: event.to_owned(),
            args: args.as_array().cloned().unwrap_or_default(),
            ..Question::default()
        };
        explain(&table(text), &q).unwrap()
    }

    #[test]
    fn each_step_says_what_it_does_with_templates_expanded() {
        let routes = r#"
[namespaces."/".events]
post = [
  { join = "{0.room}" },
  { to = "room", room = "{0.room}", data = ["{0.text}"] },
  { to = "emit", event = "hosts", when = { equals = ["{socket.data.role}", "host"] } },
  { ack = "ok" },
]
"#;
        let got = ask(
            routes,
            "post",
            serde_json::json!([{"room": "r1", "text": "hi"}]),
        );
        assert_eq!(
            got,
            "event `post` in / with [{\"room\":\"r1\",\"text\":\"hi\"}]\n\
             matched by its route `post`\n\
             step 1: the sender joins room `r1`\n\
             step 2: `post` with [\"hi\"] to room `r1` of / but the sender\n\
             step 3: skipped, its `when` does not hold\n\
             step 4: ack with [\"ok\"]\n"
        );
        let missing = ask(routes, "post", serde_json::json!(["no fields"]));
        assert!(
            missing.contains("step 1: skipped, a template reads"),
            "{missing}"
        );
    }

    #[test]
    fn no_route_and_undeclared_namespaces_are_said() {
        let routes = "[namespaces.\"/\".events]\nhi = \"io\"\n";
        let got = ask(routes, "other", serde_json::json!([]));
        assert!(got.contains("no route: the event is dropped"), "{got}");
        let q = Question {
            namespace: "/nope".to_owned(),
            ..Question::default()
        };
        assert!(
            explain(&table(routes), &q)
                .unwrap_err()
                .contains("not declared")
        );
    }
}
