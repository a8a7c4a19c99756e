//! The wire of `socket.io-msgpack-parser`: each packet is one binary message, the msgpack
//! (notepack) map `{type, data, nsp, id}`, binary values inline instead of attachments.
//! It is converted at the edge, to and from the default parser's form (JSON text with
//! placeholders, plus attachments), so routes, templates, scripts, acks and the cluster see
//! one form whichever parser the clients speak. Pure (no I/O).

use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::Value as Json;

use super::packet::{Encoded, Packet, PacketKind, ParseError};

/// Which parser the clients speak (`[server] parser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parser {
    /// socket.io's default: text packets, binary attachments after them.
    #[default]
    Default,
    /// `socket.io-msgpack-parser`: one msgpack message per packet.
    Msgpack,
}

/// A JSON value with `{"_placeholder":true,"num":N}` replaced by `bin` attachments.
pub fn json_to_mp(value: &Json, attachments: &[Bytes]) -> Mp {
    match value {
        Json::Null => Mp::Nil,
        Json::Bool(b) => Mp::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Mp::from(i)
            } else if let Some(u) = n.as_u64() {
                Mp::from(u)
            } else {
                Mp::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Mp::from(s.as_str()),
        Json::Array(items) => Mp::Array(items.iter().map(|v| json_to_mp(v, attachments)).collect()),
        Json::Object(map) => {
            if map.get("_placeholder") == Some(&Json::Bool(true))
                && let Some(bin) = map
                    .get("num")
                    .and_then(Json::as_u64)
                    .and_then(|n| attachments.get(n as usize))
            {
                return Mp::Binary(bin.to_vec());
            }
            Mp::Map(
                map.iter()
                    .map(|(k, v)| (Mp::from(k.as_str()), json_to_mp(v, attachments)))
                    .collect(),
            )
        }
    }
}

/// A msgpack value as JSON; each `bin` becomes a placeholder and is pushed to
/// `attachments`. notepack's extensions (`undefined`, `Date`) become `null` and the date's
/// ISO text is not rebuilt.
pub fn mp_to_json(value: &Mp, attachments: &mut Vec<Bytes>) -> Json {
    match value {
        Mp::Nil | Mp::Ext(..) => Json::Null,
        Mp::Boolean(b) => Json::Bool(*b),
        Mp::Integer(i) => i
            .as_i64()
            .map(Json::from)
            .or_else(|| i.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        Mp::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Mp::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Mp::String(s) => Json::String(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_owned,
        )),
        Mp::Binary(b) => {
            let num = attachments.len();
            attachments.push(Bytes::copy_from_slice(b));
            serde_json::json!({ "_placeholder": true, "num": num })
        }
        Mp::Array(items) => Json::Array(items.iter().map(|v| mp_to_json(v, attachments)).collect()),
        Mp::Map(entries) => {
            // A key given twice keeps its last value, as a JavaScript object does; only the
            // values kept are converted, so every attachment pushed has its placeholder.
            let mut kept: std::collections::BTreeMap<String, &Mp> = Default::default();
            for (k, v) in entries {
                let key = match k {
                    Mp::String(s) => s.as_str().unwrap_or_default().to_owned(),
                    other => other.to_string(),
                };
                kept.insert(key, v);
            }
            Json::Object(
                kept.into_iter()
                    .map(|(key, v)| (key, mp_to_json(v, attachments)))
                    .collect(),
            )
        }
    }
}

/// Deepest nesting of arrays and maps in a client's data.
const MAX_DEPTH: usize = 64;

/// Whether `value` nests arrays and maps deeper than `left` levels.
fn too_deep(value: &Mp, left: usize) -> bool {
    match value {
        Mp::Array(items) => left == 0 || items.iter().any(|v| too_deep(v, left - 1)),
        Mp::Map(entries) => {
            left == 0
                || entries
                    .iter()
                    .any(|(k, v)| too_deep(k, left - 1) || too_deep(v, left - 1))
        }
        _ => false,
    }
}

/// `packet` as one msgpack message, as socket.io's server sends it with the msgpack parser:
/// `{type, data, nsp, id}` (an event or ack with binary keeps type 2 or 3; `data` absent for
/// DISCONNECT, `id` only when there is one). `None` if `packet` is not a packet.
pub fn encode(packet: &Encoded) -> Option<Bytes> {
    let parsed = Packet::parse(packet.text.clone(), usize::MAX).ok()?;
    let kind = match parsed.kind {
        PacketKind::Connect => 0,
        PacketKind::Disconnect => 1,
        PacketKind::Event | PacketKind::BinaryEvent => 2,
        PacketKind::Ack | PacketKind::BinaryAck => 3,
        PacketKind::ConnectError => 4,
    };
    let mut map = vec![(Mp::from("type"), Mp::from(kind))];
    if let Some(data) = &parsed.data {
        let json: Json = serde_json::from_slice(data).ok()?;
        map.push((Mp::from("data"), json_to_mp(&json, &packet.attachments)));
    }
    let nsp = std::str::from_utf8(&parsed.nsp).ok()?;
    map.push((Mp::from("nsp"), Mp::from(nsp)));
    if let Some(id) = parsed.id {
        map.push((Mp::from("id"), Mp::from(id)));
    }
    let mut out = Vec::with_capacity(packet.text.len() + 16);
    rmpv::encode::write_value(&mut out, &Mp::Map(map)).expect("writing to a Vec cannot fail");
    Some(Bytes::from(out))
}

/// One message of a msgpack client as the packet and attachments the default parser would
/// have given: the same checks follow (types, namespace, event names, ack ids, placeholders).
pub fn decode(message: &[u8], max_attachments: usize) -> Result<(Packet, Vec<Bytes>), ParseError> {
    let mut rest = message;
    let value = rmpv::decode::read_value(&mut rest).map_err(|_| ParseError::InvalidPayload)?;
    if !rest.is_empty() {
        return Err(ParseError::InvalidPayload);
    }
    let Mp::Map(entries) = value else {
        return Err(ParseError::InvalidPayload);
    };
    let get = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    let kind = match get("type").and_then(Mp::as_u64) {
        Some(0) => PacketKind::Connect,
        Some(1) => PacketKind::Disconnect,
        Some(2 | 5) => PacketKind::Event,
        Some(3 | 6) => PacketKind::Ack,
        Some(4) => PacketKind::ConnectError,
        _ => return Err(ParseError::UnknownType),
    };
    let nsp = match get("nsp") {
        Some(Mp::String(s)) => s.as_str().ok_or(ParseError::InvalidPayload)?,
        _ => return Err(ParseError::InvalidPayload),
    };
    // In text a `,` ends the namespace: one inside it would change what the packet says.
    if nsp.contains(',') {
        return Err(ParseError::InvalidPayload);
    }
    let id = match get("id") {
        None | Some(Mp::Nil) => None,
        Some(id) => Some(id.as_u64().ok_or(ParseError::InvalidId)?),
    };
    let mut attachments = Vec::new();
    let data = match get("data") {
        None | Some(Mp::Ext(..)) => None,
        // Deeper than JSON can be read back (serde_json stops at 128): refused here, not
        // found out when the packet is sent on.
        Some(data) if too_deep(data, MAX_DEPTH) => return Err(ParseError::InvalidPayload),
        Some(data) => Some(mp_to_json(data, &mut attachments)),
    };
    if attachments.len() > max_attachments {
        return Err(ParseError::TooManyAttachments);
    }
    let kind = match (kind, attachments.is_empty()) {
        (PacketKind::Event, false) => PacketKind::BinaryEvent,
        (PacketKind::Ack, false) => PacketKind::BinaryAck,
        (kind, true) => kind,
        // As with the default parser, only events and acks carry binary.
        (_, false) => return Err(ParseError::InvalidPayload),
    };
    let mut text = super::packet::header(kind, nsp, id, attachments.len(), 64);
    if let Some(data) = data {
        serde_json::to_writer(bytes::BufMut::writer(&mut text), &data)
            .map_err(|_| ParseError::InvalidPayload)?;
    }
    let packet = Packet::parse(text.freeze(), max_attachments)?;
    Ok((packet, attachments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn mp(value: &Mp) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    fn map(entries: Vec<(&str, Mp)>) -> Mp {
        Mp::Map(entries.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
    }

    #[test]
    fn a_client_event_with_binary_becomes_a_binary_event_with_its_attachment() {
        let message = mp(&map(vec![
            ("type", Mp::from(2)),
            (
                "data",
                Mp::Array(vec![
                    Mp::from("file"),
                    map(vec![
                        ("name", Mp::from("a")),
                        ("bytes", Mp::Binary(vec![0, 1, 255])),
                    ]),
                ]),
            ),
            ("nsp", Mp::from("/chat")),
            ("id", Mp::from(7)),
        ]));
        let (packet, attachments) = decode(&message, 10).unwrap();
        assert_eq!(packet.kind, PacketKind::BinaryEvent);
        assert_eq!((&packet.nsp[..], packet.id), (&b"/chat"[..], Some(7)));
        assert_eq!(packet.event.as_ref().unwrap().name, "file");
        assert_eq!(attachments, [Bytes::from_static(&[0, 1, 255])]);
        let data: Json = serde_json::from_slice(packet.data.as_ref().unwrap()).unwrap();
        assert_eq!(
            data,
            serde_json::json!(["file", {"name": "a", "bytes": {"_placeholder": true, "num": 0}}])
        );
    }

    #[test]
    fn what_the_server_sends_is_one_map_with_binary_inline() {
        let packet = Encoded::event(
            "/",
            "file",
            super::super::packet::Args::Raw(br#"{"_placeholder":true,"num":0},2.5"#),
            Arc::from([Bytes::from_static(b"\x00\xff")]),
            Some(3),
        );
        let bytes = encode(&packet).unwrap();
        let value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        assert_eq!(
            value,
            map(vec![
                ("type", Mp::from(2)),
                (
                    "data",
                    Mp::Array(vec![
                        Mp::from("file"),
                        Mp::Binary(vec![0, 255]),
                        Mp::F64(2.5)
                    ])
                ),
                ("nsp", Mp::from("/")),
                ("id", Mp::from(3)),
            ])
        );
        let connect = encode(&Encoded::connect("/", "abc", None)).unwrap();
        assert_eq!(
            rmpv::decode::read_value(&mut &connect[..]).unwrap(),
            map(vec![
                ("type", Mp::from(0)),
                ("data", map(vec![("sid", Mp::from("abc"))])),
                ("nsp", Mp::from("/")),
            ])
        );
        let disconnect = encode(&Encoded::disconnect("/x")).unwrap();
        assert_eq!(
            rmpv::decode::read_value(&mut &disconnect[..]).unwrap(),
            map(vec![("type", Mp::from(1)), ("nsp", Mp::from("/x"))])
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let refused = |value: Mp| decode(&mp(&value), 10).map(|_| ()).unwrap_err();
        assert_eq!(refused(Mp::from("2[\"x\"]")), ParseError::InvalidPayload);
        assert_eq!(
            refused(map(vec![("type", Mp::from(9)), ("nsp", Mp::from("/"))])),
            ParseError::UnknownType
        );
        assert_eq!(
            refused(map(vec![
                ("type", Mp::from(2)),
                ("data", Mp::Array(vec![Mp::from("x")]))
            ])),
            ParseError::InvalidPayload,
            "no namespace"
        );
        assert_eq!(
            refused(map(vec![
                ("type", Mp::from(2)),
                ("nsp", Mp::from("/")),
                ("data", Mp::Array(vec![Mp::from("x")])),
                ("id", Mp::from(-1)),
            ])),
            ParseError::InvalidId
        );
        let many = Mp::Array(
            std::iter::once(Mp::from("x"))
                .chain((0..11).map(|_| Mp::Binary(vec![1])))
                .collect(),
        );
        assert_eq!(
            refused(map(vec![
                ("type", Mp::from(2)),
                ("nsp", Mp::from("/")),
                ("data", many)
            ])),
            ParseError::TooManyAttachments
        );
        // An event must be a non-empty array whose first element names it.
        assert!(
            decode(
                &mp(&map(vec![
                    ("type", Mp::from(2)),
                    ("nsp", Mp::from("/")),
                    ("data", Mp::Array(vec![]))
                ])),
                10
            )
            .is_err()
        );
        // Binary only in events and acks (fuzz/artifacts: a CONNECT whose auth held some).
        let auth = map(vec![("key", Mp::Binary(vec![1, 2]))]);
        assert_eq!(
            refused(map(vec![
                ("type", Mp::from(0)),
                ("nsp", Mp::from("/")),
                ("data", auth)
            ])),
            ParseError::InvalidPayload
        );
        let mut trailing = mp(&map(vec![("type", Mp::from(1)), ("nsp", Mp::from("/"))]));
        trailing.push(0);
        assert!(decode(&trailing, 10).is_err());
        assert!(decode(b"\xde\xff\xff", 10).is_err(), "a truncated map");
        // Nested deeper than the server could read back (fuzz/artifacts: 150 levels).
        let mut deep = Mp::from(1);
        for _ in 0..150 {
            deep = Mp::Array(vec![deep]);
        }
        let deep = map(vec![
            ("type", Mp::from(2)),
            ("nsp", Mp::from("/")),
            ("data", Mp::Array(vec![Mp::from("x"), deep])),
        ]);
        assert_eq!(refused(deep), ParseError::InvalidPayload);
    }
}
