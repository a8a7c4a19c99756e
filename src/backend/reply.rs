//! The backend's answer to an HTTP route step: a route, as in routes.toml but in JSON and
//! already resolved — one table or a list of them with `to`, `room`, `include_sender`,
//! `event`, `data`, `volatile`, `join`, `leave`, `ack`, plus `disconnect: true`,
//! `set_data: {…}` (merged into `socket.data`) and `continue: false` (the rest of the
//! routes.toml list is skipped). Binary values travel as `{"$binary": "<base64>"}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use bytestring::ByteString;
use serde_json::{Map, Value, json};

use crate::routing::{Action, Args, Recipients};

/// What the backend decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// Keys merged into `socket.data`.
    pub set_data: Option<Map<String, Value>>,
    /// Whether the rest of the routes.toml list runs.
    pub stop: bool,
}

const KEYS: &[&str] = &[
    "to",
    "room",
    "include_sender",
    "event",
    "data",
    "volatile",
    "join",
    "leave",
    "ack",
    "disconnect",
    "set_data",
    "continue",
];

/// Read an answer body for event `event`; an empty body is an answer of nothing.
pub fn parse(body: &[u8], event: &str) -> Result<Reply, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Reply::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let tables = match value {
        Value::Object(t) => vec![t],
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::Object(t) => Ok(t),
                _ => Err("a list of routes holds something else than a table".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("neither a route table nor a list of them".to_owned()),
    };
    let mut reply = Reply::default();
    for table in tables {
        table_actions(table, event, &mut reply)?;
        if reply.stop {
            break;
        }
    }
    Ok(reply)
}

fn table_actions(mut t: Map<String, Value>, event: &str, reply: &mut Reply) -> Result<(), String> {
    if let Some(key) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key `{key}`"));
    }
    let text = |key: &str, t: &mut Map<String, Value>| -> Result<Option<String>, String> {
        match t.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{key}` is not a string")),
        }
    };
    let flag = |key: &str, t: &mut Map<String, Value>| -> Result<Option<bool>, String> {
        match t.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(format!("`{key}` is not true or false")),
        }
    };
    if let Some(room) = text("join", &mut t)? {
        reply.actions.push(Action::Join(room));
    }
    if let Some(room) = text("leave", &mut t)? {
        reply.actions.push(Action::Leave(room));
    }
    let to = text("to", &mut t)?;
    let room = text("room", &mut t)?;
    let include_sender = flag("include_sender", &mut t)?.unwrap_or(false);
    let name = text("event", &mut t)?;
    let volatile = flag("volatile", &mut t)?.unwrap_or(false);
    let data = t.remove("data");
    let recipients = match (to.as_deref(), room) {
        (None, None) => None,
        (Some("emit"), None) => Some(Recipients::Sender),
        (Some("broadcast"), None) => Some(Recipients::Namespace {
            include_sender: false,
        }),
        (Some("io"), None) => Some(Recipients::Namespace {
            include_sender: true,
        }),
        (Some("room"), Some(room)) => Some(Recipients::Room {
            room,
            include_sender,
        }),
        (Some("room"), None) => return Err("`to: \"room\"` needs `room`".to_owned()),
        (_, Some(_)) => return Err("`room` only goes with `to: \"room\"`".to_owned()),
        (Some(other), None) => return Err(format!("unknown target `{other}`")),
    };
    match recipients {
        Some(to) => reply.actions.push(Action::Deliver {
            to,
            event: name.map_or_else(|| event.into(), ByteString::from),
            args: match data {
                None => Args::Forward,
                Some(Value::Array(items)) => args(items),
                Some(one) => args(vec![one]),
            },
            volatile,
        }),
        None if name.is_some() || data.is_some() => {
            return Err("`event` and `data` need `to`".to_owned());
        }
        None => {}
    }
    if let Some(ack) = t.remove("ack") {
        reply.actions.push(Action::Ack(args(vec![ack])));
    }
    if flag("disconnect", &mut t)? == Some(true) {
        reply.actions.push(Action::Disconnect);
    }
    match t.remove("set_data") {
        None => {}
        Some(Value::Object(more)) => reply.set_data.get_or_insert_with(Map::new).extend(more),
        Some(_) => return Err("`set_data` is not a table".to_owned()),
    }
    if flag("continue", &mut t)? == Some(false) {
        reply.stop = true;
    }
    Ok(())
}

/// Values with `{"$binary": "…"}` in them as arguments with attachments.
pub fn args(mut values: Vec<Value>) -> Args {
    let mut attachments = Vec::new();
    for v in &mut values {
        take_binary(v, &mut attachments);
    }
    if attachments.is_empty() {
        Args::Values(values)
    } else {
        Args::Binary(values, attachments)
    }
}

fn take_binary(value: &mut Value, out: &mut Vec<Bytes>) {
    match value {
        Value::Object(map) if map.len() == 1 => {
            if let Some(Value::String(b64)) = map.get("$binary")
                && let Ok(bytes) = STANDARD.decode(b64)
            {
                out.push(Bytes::from(bytes));
                *value = json!({ "_placeholder": true, "num": out.len() - 1 });
                return;
            }
            for v in map.values_mut() {
                take_binary(v, out);
            }
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                take_binary(v, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                take_binary(v, out);
            }
        }
        _ => {}
    }
}

/// Event arguments for the backend: attachment placeholders replaced by
/// `{"$binary": "<base64>"}`.
pub fn with_binary(mut values: Vec<Value>, attachments: &[Bytes]) -> Vec<Value> {
    fn put(value: &mut Value, attachments: &[Bytes]) {
        match value {
            Value::Object(map)
                if map.get("_placeholder") == Some(&Value::Bool(true)) && map.len() == 2 =>
            {
                if let Some(bytes) = map
                    .get("num")
                    .and_then(Value::as_u64)
                    .and_then(|n| attachments.get(n as usize))
                {
                    *value = json!({ "$binary": STANDARD.encode(bytes) });
                }
            }
            Value::Object(map) => map.values_mut().for_each(|v| put(v, attachments)),
            Value::Array(items) => items.iter_mut().for_each(|v| put(v, attachments)),
            _ => {}
        }
    }
    if !attachments.is_empty() {
        values.iter_mut().for_each(|v| put(v, attachments));
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_becomes_actions_in_route_order() {
        let reply = parse(
            br#"{"to":"io","event":"chat message","data":["ann: hi"],"ack":"stored","join":"r","set_data":{"n":1}}"#,
            "chat",
        )
        .unwrap();
        assert_eq!(
            reply.actions,
            vec![
                Action::Join("r".into()),
                Action::Deliver {
                    to: Recipients::Namespace {
                        include_sender: true
                    },
                    event: "chat message".into(),
                    args: Args::Values(vec![json!("ann: hi")]),
                    volatile: false,
                },
                Action::Ack(Args::Values(vec![json!("stored")])),
            ]
        );
        assert_eq!(
            reply.set_data,
            Some(json!({"n": 1}).as_object().unwrap().clone())
        );
        assert!(!reply.stop);
    }

    #[test]
    fn lists_stop_at_continue_false_and_data_may_be_forwarded_or_binary() {
        let reply = parse(
            br#"[{"to":"room","room":"g1","include_sender":true},{"to":"emit","data":{"$binary":"AQID"},"continue":false},{"to":"io"}]"#,
            "move",
        )
        .unwrap();
        assert!(reply.stop);
        assert_eq!(reply.actions.len(), 2);
        assert_eq!(
            reply.actions[0],
            Action::Deliver {
                to: Recipients::Room {
                    room: "g1".into(),
                    include_sender: true
                },
                event: "move".into(),
                args: Args::Forward,
                volatile: false,
            }
        );
        assert_eq!(
            reply.actions[1],
            Action::Deliver {
                to: Recipients::Sender,
                event: "move".into(),
                args: Args::Binary(
                    vec![json!({"_placeholder": true, "num": 0})],
                    vec![Bytes::from_static(&[1, 2, 3])]
                ),
                volatile: false,
            }
        );
    }

    #[test]
    fn nothing_and_mistakes() {
        assert_eq!(parse(b"", "e").unwrap(), Reply::default());
        assert_eq!(parse(b"{}", "e").unwrap(), Reply::default());
        assert_eq!(
            parse(br#"{"disconnect":true}"#, "e").unwrap().actions,
            vec![Action::Disconnect]
        );
        for bad in [
            &br#"{"to":"everyone"}"#[..],
            br#"{"to":"room"}"#,
            br#"{"room":"r"}"#,
            br#"{"data":[1]}"#,
            br#"{"colour":"red"}"#,
            br#"{"join":1}"#,
            br#"{"set_data":[1]}"#,
            br#"[1]"#,
            b"42",
            b"<html>",
        ] {
            assert!(parse(bad, "e").is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn attachments_go_out_as_base64() {
        let args = with_binary(
            vec![json!({"file": {"_placeholder": true, "num": 0}}), json!(2)],
            &[Bytes::from_static(&[1, 2, 3])],
        );
        assert_eq!(args, vec![json!({"file": {"$binary": "AQID"}}), json!(2)]);
    }
}
