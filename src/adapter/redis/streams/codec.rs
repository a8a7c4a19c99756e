//! The `@socket.io/redis-streams-adapter` 0.3 wire format, pure (no I/O). Messages are
//! socket.io-adapter's `ClusterAdapter` messages `{uid, nsp, type, data}`:
//!
//! - on the stream, an entry's fields are `uid`, `nsp`, `type` (decimal text) and `data`:
//!   JSON text, or base64 of msgpack when the data holds binary;
//! - on pub/sub (requests that want answers, and the answers), the whole message is msgpack;
//! - a socket saved for recovery is base64 of msgpack `{sid, pid, rooms, data}` (its rooms
//!   include its own id, as socket.io's `socket.rooms`).
//!
//! Binary travels as msgpack `bin`; on this side it is Socket.IO placeholders plus
//! attachments, as in the classic codec.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::{Value as Json, json};

use super::super::codec::{field, from_bytes, json_to_mp, mp_to_json, to_bytes};
use crate::adapter::{BroadcastOptions, Keep, SavedSocket};
use crate::engineio::Sid;
use crate::socketio::Encoded;

/// socket.io-adapter's `MessageType`s that switchboard sends or serves.
pub mod kind {
    /// A broadcast (with `requestId`: one whose recipients ack).
    pub const BROADCAST: u64 = 3;
    /// `socketsJoin`.
    pub const SOCKETS_JOIN: u64 = 4;
    /// `socketsLeave`.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// `disconnectSockets`.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// `fetchSockets`.
    pub const FETCH_SOCKETS: u64 = 7;
    /// The answer to `fetchSockets`.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// `serverSideEmit`.
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// The answer to an acked `serverSideEmit`.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients a node sent a broadcast-with-ack to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's ack of a broadcast-with-ack.
    pub const BROADCAST_ACK: u64 = 12;
}

/// A message of another node, its `data` as JSON with placeholders and the binary apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The sender's uid (`emitter` for an emitter).
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// Its [`kind`].
    pub kind: u64,
    /// Its data (`Null` when it has none).
    pub data: Json,
    /// The binary its placeholders point at.
    pub attachments: Vec<Bytes>,
}

/// A stream entry's fields, as XREAD and XRANGE return them.
pub fn decode_entry(fields: &[(String, Vec<u8>)]) -> Option<Message> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    let uid = String::from_utf8(get("uid")?.to_vec()).ok()?;
    let nsp = String::from_utf8(get("nsp")?.to_vec()).ok()?;
    let kind = std::str::from_utf8(get("type")?).ok()?.parse().ok()?;
    let mut attachments = Vec::new();
    let data = match get("data") {
        None | Some([]) => Json::Null,
        Some(text @ [b'{', ..]) => serde_json::from_slice(text).ok()?,
        Some(base64) => {
            let packed = BASE64.decode(base64).ok()?;
            mp_to_json(&from_bytes(&packed)?, &mut attachments)
        }
    };
    Some(Message {
        uid,
        nsp,
        kind,
        data,
        attachments,
    })
}

/// A message published on a channel (msgpack `{uid, nsp, type, data}`).
pub fn decode_published(bytes: &[u8]) -> Option<Message> {
    let value = from_bytes(bytes)?;
    let text = |name: &str| field(&value, name)?.as_str().map(str::to_owned);
    let mut attachments = Vec::new();
    let data = field(&value, "data").map_or(Json::Null, |d| mp_to_json(d, &mut attachments));
    Some(Message {
        uid: text("uid")?,
        nsp: text("nsp")?,
        kind: field(&value, "type")?.as_u64()?,
        data,
        attachments,
    })
}

/// The fields of a stream entry whose data is JSON without binary.
pub fn entry(uid: &str, nsp: &str, kind: u64, data: &Json) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("uid", uid.as_bytes().to_vec()),
        ("nsp", nsp.as_bytes().to_vec()),
        ("type", kind.to_string().into_bytes()),
        (
            "data",
            serde_json::to_vec(data).expect("JSON values serialize"),
        ),
    ]
}

/// A message for a channel: msgpack `{uid, nsp, type, data}`.
pub fn published(uid: &str, nsp: &str, kind: u64, data: Mp) -> Vec<u8> {
    to_bytes(&Mp::Map(vec![
        (Mp::from("uid"), Mp::from(uid)),
        (Mp::from("nsp"), Mp::from(nsp)),
        (Mp::from("type"), Mp::from(kind)),
        (Mp::from("data"), data),
    ]))
}

/// `{rooms, except, flags}` as the adapter encodes a broadcast's options.
pub fn opts_json(opts: &BroadcastOptions) -> Json {
    let flags = if opts.volatile {
        json!({ "volatile": true })
    } else {
        json!({})
    };
    json!({ "rooms": opts.rooms, "except": opts.except, "flags": flags })
}

/// The stream entry of a broadcast: `{packet, opts}` as JSON, or base64 msgpack when it has
/// attachments; `None` for anything but an event.
pub fn broadcast_entry(
    uid: &str,
    packet: &Encoded,
    opts: &BroadcastOptions,
) -> Option<Vec<(&'static str, Vec<u8>)>> {
    kept_broadcast_entry(uid, packet, opts, None)
}

/// As [`broadcast_entry`], for a room that keeps the message: `opts.kept` is
/// `{room, size, ttl}` (ttl in ms) — a key Node peers do not read, and switchboard nodes do.
pub fn kept_broadcast_entry(
    uid: &str,
    packet: &Encoded,
    opts: &BroadcastOptions,
    keep: Option<&Keep>,
) -> Option<Vec<(&'static str, Vec<u8>)>> {
    let (nsp, id, data) = super::super::codec::event_parts(packet)?;
    let mut object = json!({ "type": 2, "data": data, "nsp": nsp });
    if let Some(id) = id {
        object["id"] = json!(id);
    }
    let mut opts = opts_json(opts);
    if let Some(keep) = keep {
        opts["kept"] = json!({
            "room": keep.room,
            "size": keep.size,
            "ttl": keep.ttl.as_millis() as u64,
        });
    }
    let message = json!({ "packet": object, "opts": opts });
    let mut fields = entry(uid, &nsp, kind::BROADCAST, &message);
    if !packet.attachments.is_empty() {
        let packed = to_bytes(&json_to_mp(&message, &packet.attachments));
        fields[3].1 = BASE64.encode(packed).into_bytes();
    }
    Some(fields)
}

/// What a broadcast message carries: the packet for this node's clients (`None` when it is
/// no event), who gets it, and whether its sender meant it for itself only (`local`).
pub fn broadcast_of(message: &Message) -> Option<(Encoded, BroadcastOptions, bool)> {
    let packet = message.data.get("packet")?;
    let items = packet.get("data")?.as_array()?;
    if !matches!(items.first(), Some(Json::String(_) | Json::Number(_))) {
        return None;
    }
    let nsp = packet
        .get("nsp")
        .and_then(Json::as_str)
        .unwrap_or(&message.nsp);
    let data = packet.get("data")?;
    // Only a message with binary has placeholders to renumber (and a copy to make).
    let (text, attachments) = if message.attachments.is_empty() {
        (serde_json::to_vec(data).ok()?, Vec::new())
    } else {
        let mut data = data.clone();
        let attachments = referenced(&mut data, &message.attachments);
        (serde_json::to_vec(&data).ok()?, attachments)
    };
    let encoded = Encoded::event_data(nsp, &text, Arc::from(attachments));
    let opts = message.data.get("opts");
    let flag = |name: &str| {
        opts.and_then(|o| o.get("flags"))
            .and_then(|f| f.get(name))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    let mut options = super::super::codec::json_opts(opts);
    options.volatile = flag("volatile");
    Some((encoded, options, flag("local")))
}

/// `opts.kept` of a broadcast message: the room that keeps it and its bounds.
pub fn kept_of(message: &Message) -> Option<Keep> {
    let kept = message.data.get("opts")?.get("kept")?;
    Some(Keep {
        room: kept.get("room")?.as_str()?.to_owned(),
        size: usize::try_from(kept.get("size")?.as_u64()?).ok()?,
        ttl: std::time::Duration::from_millis(kept.get("ttl")?.as_u64()?),
    })
}

/// The attachments `data`'s placeholders point at, in their order, the placeholders
/// renumbered to match: binary elsewhere in a message (its options) is not the packet's.
fn referenced(data: &mut Json, attachments: &[Bytes]) -> Vec<Bytes> {
    fn walk(value: &mut Json, attachments: &[Bytes], out: &mut Vec<Bytes>) {
        match value {
            Json::Array(items) => items.iter_mut().for_each(|v| walk(v, attachments, out)),
            Json::Object(map) => {
                let bin = (map.get("_placeholder") == Some(&Json::Bool(true)))
                    .then(|| map.get("num").and_then(Json::as_u64))
                    .flatten()
                    .and_then(|n| attachments.get(usize::try_from(n).ok()?));
                if let Some(bin) = bin {
                    map.insert("num".to_owned(), json!(out.len()));
                    out.push(bin.clone());
                } else {
                    map.values_mut().for_each(|v| walk(v, attachments, out));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, attachments, &mut out);
    out
}

/// A saved socket as the adapter stores it: base64 of msgpack `{sid, pid, rooms, data}`.
pub fn encode_session(saved: &SavedSocket) -> String {
    let mut rooms: Vec<Mp> = vec![Mp::from(saved.sid.as_str())];
    rooms.extend(saved.rooms.iter().map(|r| Mp::from(r.as_str())));
    let value = Mp::Map(vec![
        (Mp::from("sid"), Mp::from(saved.sid.as_str())),
        (Mp::from("pid"), Mp::from(saved.pid.as_str())),
        (Mp::from("rooms"), Mp::Array(rooms)),
        (Mp::from("data"), json_to_mp(&saved.data, &[])),
    ]);
    BASE64.encode(to_bytes(&value))
}

/// A saved socket read back; its own room is left out of `rooms`. `None` when it is not
/// one (or its id is not one switchboard can serve).
pub fn decode_session(text: &[u8]) -> Option<SavedSocket> {
    let value = from_bytes(&BASE64.decode(text).ok()?)?;
    let sid_text = field(&value, "sid")?.as_str()?;
    let sid: Sid = sid_text.parse().ok()?;
    let rooms = field(&value, "rooms")
        .and_then(Mp::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|r| r.as_str())
                .filter(|r| *r != sid_text)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut attachments = Vec::new();
    Some(SavedSocket {
        sid,
        pid: field(&value, "pid")?.as_str()?.to_owned(),
        rooms,
        data: field(&value, "data").map_or(Json::Null, |d| mp_to_json(d, &mut attachments)),
        missed: Vec::new(),
    })
}

/// Whether a broadcast to `opts` reaches a socket in `rooms` (its own id among them), as
/// the adapter's `shouldIncludePacket`.
pub fn reaches(opts: &BroadcastOptions, rooms: &[String]) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.contains(r));
    included && !rooms.iter().any(|r| opts.except.contains(r))
}

/// The entry id right after `id` (XRANGE's start is inclusive).
pub fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(format!("{ms}-{}", seq.checked_add(1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(entry: Vec<(&'static str, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
        entry.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn a_broadcast_entry_is_json_as_the_node_adapter_writes_it() {
        let packet = Encoded::event_data("/chat", br#"["m",{"a":1}]"#, Arc::from([]));
        let opts = BroadcastOptions {
            rooms: vec!["r".to_owned()],
            except: vec!["x".to_owned()],
            volatile: false,
        };
        let entry = broadcast_entry("abc", &packet, &opts).unwrap();
        let data: Json = serde_json::from_slice(&entry[3].1).unwrap();
        assert_eq!(
            data,
            json!({
                "packet": { "type": 2, "data": ["m", {"a": 1}], "nsp": "/chat" },
                "opts": { "rooms": ["r"], "except": ["x"], "flags": {} }
            })
        );
        assert_eq!(entry[2], ("type", b"3".to_vec()));
        let message = decode_entry(&fields(entry)).unwrap();
        assert_eq!(
            (message.uid.as_str(), message.nsp.as_str()),
            ("abc", "/chat")
        );
        let (back, back_opts, local) = broadcast_of(&message).unwrap();
        assert_eq!(back.text, packet.text);
        assert_eq!(back_opts, opts);
        assert!(!local);
        assert_eq!(kept_of(&message), None);

        // A room that keeps the message: `opts.kept`, which Node peers do not read.
        let keep = Keep {
            room: "r".to_owned(),
            size: 3,
            ttl: std::time::Duration::from_millis(1500),
        };
        let entry = kept_broadcast_entry("abc", &packet, &opts, Some(&keep)).unwrap();
        let data: Json = serde_json::from_slice(&entry[3].1).unwrap();
        assert_eq!(
            data["opts"]["kept"],
            json!({ "room": "r", "size": 3, "ttl": 1500 })
        );
        let message = decode_entry(&fields(entry)).unwrap();
        assert_eq!(kept_of(&message), Some(keep));
        assert_eq!(broadcast_of(&message).unwrap().1, opts);
    }

    #[test]
    fn binary_broadcasts_are_base64_msgpack_and_come_back_as_attachments() {
        let bin = Bytes::from_static(b"\x00\x01\xff");
        let packet = Encoded::event_data(
            "/",
            br#"["f",{"_placeholder":true,"num":0}]"#,
            Arc::from([bin.clone()]),
        );
        let entry = broadcast_entry("abc", &packet, &BroadcastOptions::all()).unwrap();
        assert_ne!(entry[3].1.first(), Some(&b'{'));
        let packed = BASE64.decode(&entry[3].1).unwrap();
        let value = from_bytes(&packed).unwrap();
        let data = field(field(&value, "packet").unwrap(), "data").unwrap();
        assert_eq!(data.as_array().unwrap()[1], Mp::Binary(bin.to_vec()));
        let message = decode_entry(&fields(entry)).unwrap();
        let (back, _, _) = broadcast_of(&message).unwrap();
        assert_eq!(back.text, packet.text);
        assert_eq!(&back.attachments[..], &[bin][..]);
    }

    #[test]
    fn only_the_binary_of_the_packet_is_its_attachments() {
        // Found by fuzzing: a bin in the options is no attachment of the packet.
        let message = Message {
            uid: "u".to_owned(),
            nsp: "/".to_owned(),
            kind: kind::BROADCAST,
            data: json!({
                "packet": { "type": 2, "data": ["e", {"_placeholder": true, "num": 1}], "nsp": "/" },
                "opts": { "rooms": [{"_placeholder": true, "num": 0}], "except": [] }
            }),
            attachments: vec![Bytes::from_static(b"opts"), Bytes::from_static(b"data")],
        };
        let (packet, _, _) = broadcast_of(&message).unwrap();
        assert_eq!(
            &packet.text[..],
            br#"51-["e",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(&packet.attachments[..], &[Bytes::from_static(b"data")][..]);
    }

    #[test]
    fn a_node_entry_decodes_with_its_flags() {
        // As @socket.io/redis-streams-adapter writes `io.local.volatile.emit("e", 1)`.
        let node = vec![
            ("uid".to_owned(), b"0123456789abcdef".to_vec()),
            ("nsp".to_owned(), b"/".to_vec()),
            ("type".to_owned(), b"3".to_vec()),
            (
                "data".to_owned(),
                br#"{"packet":{"type":2,"data":["e",1],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{"volatile":true,"local":true}}}"#.to_vec(),
            ),
        ];
        let message = decode_entry(&node).unwrap();
        assert_eq!(message.kind, kind::BROADCAST);
        let (packet, opts, local) = broadcast_of(&message).unwrap();
        assert_eq!(&packet.text[..], br#"2["e",1]"#);
        assert!(opts.volatile && local);
    }

    #[test]
    fn published_messages_are_whole_msgpack_maps() {
        let bytes = published(
            "u1",
            "/",
            kind::FETCH_SOCKETS,
            json_to_mp(&json!({"requestId": "q", "opts": {"rooms": []}}), &[]),
        );
        let message = decode_published(&bytes).unwrap();
        assert_eq!(message.kind, kind::FETCH_SOCKETS);
        assert_eq!(message.data["requestId"], "q");
        assert!(decode_published(b"\xc1").is_none());
    }

    #[test]
    fn sessions_round_trip_with_their_own_room_aside() {
        let saved = SavedSocket {
            sid: Sid::random(),
            pid: "p".to_owned(),
            rooms: vec!["a".to_owned(), "b".to_owned()],
            data: json!({"user": "ann", "n": 2}),
            missed: Vec::new(),
        };
        let text = encode_session(&saved);
        let value = from_bytes(&BASE64.decode(&text).unwrap()).unwrap();
        let rooms = field(&value, "rooms").unwrap().as_array().unwrap();
        assert_eq!(
            rooms[0].as_str(),
            Some(saved.sid.as_str()),
            "as socket.rooms"
        );
        assert_eq!(decode_session(text.as_bytes()), Some(saved));
        assert_eq!(decode_session(b"not base64!"), None);
    }

    #[test]
    fn recipients_and_offsets_follow_the_node_adapter() {
        let to = |rooms: &[&str], except: &[&str]| BroadcastOptions {
            rooms: rooms.iter().map(|s| s.to_string()).collect(),
            except: except.iter().map(|s| s.to_string()).collect(),
            volatile: false,
        };
        let mine = ["me".to_owned(), "r".to_owned()];
        assert!(reaches(&to(&[], &[]), &mine));
        assert!(reaches(&to(&["r"], &[]), &mine));
        assert!(!reaches(&to(&["s"], &[]), &mine));
        assert!(!reaches(&to(&[], &["me"]), &mine));
        assert_eq!(
            next_id("1700000000000-5").as_deref(),
            Some("1700000000000-6")
        );
        assert_eq!(next_id("nope"), None);
    }
}
