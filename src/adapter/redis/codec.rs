//! The `@socket.io/redis-adapter` 8.x wire format, pure (no I/O): broadcasts as notepack
//! msgpack `[uid, packet, opts]`, requests and responses as JSON (broadcast-with-ack as
//! msgpack). Binary arguments travel as msgpack `bin`; on this side they are Socket.IO
//! placeholders plus attachments.

use std::sync::Arc;

use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::Value as Json;

use crate::adapter::{BroadcastOptions, Keep};
use crate::socketio::Encoded;
pub use crate::socketio::msgpack::{json_to_mp, mp_to_json};
use crate::socketio::packet::{Packet, PacketKind};

/// socket.io-parser's EVENT type, as the adapter publishes it (binary or not).
const EVENT: i64 = 2;

/// Request types of the classic adapter.
pub mod request {
    /// `1`: the rooms of every node.
    pub const ALL_ROOMS: u64 = 1;
    /// `2`: `socketsJoin`.
    pub const REMOTE_JOIN: u64 = 2;
    /// `3`: `socketsLeave`.
    pub const REMOTE_LEAVE: u64 = 3;
    /// `4`: `disconnectSockets`.
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// `5`: `fetchSockets`.
    pub const REMOTE_FETCH: u64 = 5;
    /// `6`: `serverSideEmit`.
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// `7`: a broadcast whose recipients ack.
    pub const BROADCAST: u64 = 7;
    /// `8`: how many clients a node sent a broadcast-with-ack to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// `9`: one client's ack.
    pub const BROADCAST_ACK: u64 = 9;
}

/// Serialize a msgpack value.
pub fn to_bytes(value: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).expect("writing to a Vec cannot fail");
    out
}

/// Parse msgpack bytes.
pub fn from_bytes(bytes: &[u8]) -> Option<Mp> {
    rmpv::decode::read_value(&mut &bytes[..]).ok()
}

/// `map[key]` of a msgpack map with string keys.
pub fn field<'a>(map: &'a Mp, key: &str) -> Option<&'a Mp> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn strings_mp(items: &[String]) -> Mp {
    Mp::Array(items.iter().map(|s| Mp::from(s.as_str())).collect())
}

fn strings_of(value: Option<&Mp>) -> Vec<String> {
    value
        .and_then(Mp::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| match v {
                    Mp::String(s) => s.as_str().map(str::to_owned),
                    // socket.io allows numeric room names
                    Mp::Integer(i) => Some(i.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An encoded event's parts as the adapters publish them: its namespace, ack id and data
/// array (placeholders for its attachments); `None` for anything but an event.
pub fn event_parts(packet: &Encoded) -> Option<(String, Option<u64>, Json)> {
    let parsed = Packet::parse(packet.text.clone(), packet.attachments.len()).ok()?;
    if !matches!(parsed.kind, PacketKind::Event | PacketKind::BinaryEvent) {
        return None;
    }
    let data: Json = serde_json::from_slice(parsed.data.as_deref()?).ok()?;
    Some((parsed.nsp_str().to_owned(), parsed.id, data))
}

/// The packet object `{type: 2, data: [event, ...args], nsp}` of an encoded event; `None`
/// for anything but an event.
pub fn packet_object(packet: &Encoded) -> Option<Mp> {
    let (nsp, id, data) = event_parts(packet)?;
    let mut fields = vec![
        (Mp::from("type"), Mp::from(EVENT)),
        (Mp::from("data"), json_to_mp(&data, &packet.attachments)),
        (Mp::from("nsp"), Mp::from(nsp)),
    ];
    if let Some(id) = id {
        fields.push((Mp::from("id"), Mp::from(id)));
    }
    Some(Mp::Map(fields))
}

/// `{rooms, except, flags: {}}` (`flags: {volatile: true}` for a volatile broadcast).
pub fn opts_object(opts: &BroadcastOptions) -> Mp {
    let flags = if opts.volatile {
        vec![(Mp::from("volatile"), Mp::Boolean(true))]
    } else {
        Vec::new()
    };
    Mp::Map(vec![
        (Mp::from("rooms"), strings_mp(&opts.rooms)),
        (Mp::from("except"), strings_mp(&opts.except)),
        (Mp::from("flags"), Mp::Map(flags)),
    ])
}

/// The broadcast message `[uid, packet, opts]`; `None` when `packet` is not an event.
pub fn encode_broadcast(uid: &str, packet: &Encoded, opts: &BroadcastOptions) -> Option<Vec<u8>> {
    encode_kept_broadcast(uid, packet, opts, None)
}

/// As [`encode_broadcast`], for a room that keeps the message: `opts.kept` is
/// `{room, size, ttl}` (ttl in ms) — a key Node peers do not read, and switchboard nodes do.
pub fn encode_kept_broadcast(
    uid: &str,
    packet: &Encoded,
    opts: &BroadcastOptions,
    keep: Option<&Keep>,
) -> Option<Vec<u8>> {
    let object = packet_object(packet)?;
    let mut opts = opts_object(opts);
    if let (Some(keep), Mp::Map(entries)) = (keep, &mut opts) {
        entries.push((
            Mp::from("kept"),
            Mp::Map(vec![
                (Mp::from("room"), Mp::from(keep.room.as_str())),
                (Mp::from("size"), Mp::from(keep.size as u64)),
                (Mp::from("ttl"), Mp::from(keep.ttl.as_millis() as u64)),
            ]),
        ));
    }
    Some(to_bytes(&Mp::Array(vec![Mp::from(uid), object, opts])))
}

/// `opts.kept` of a broadcast: the room that keeps it and its bounds.
fn keep_of(opts: Option<&Mp>) -> Option<Keep> {
    let kept = field(opts?, "kept")?;
    Some(Keep {
        room: field(kept, "room")?.as_str()?.to_owned(),
        size: usize::try_from(field(kept, "size")?.as_u64()?).ok()?,
        ttl: std::time::Duration::from_millis(field(kept, "ttl")?.as_u64()?),
    })
}

/// A broadcast received from another node (or an emitter).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteBroadcast {
    /// The sender's uid (`"emitter"` for `@socket.io/redis-emitter`).
    pub uid: String,
    /// The namespace (`/` when the packet has none).
    pub nsp: String,
    /// The packet, ready for this node's clients.
    pub packet: Encoded,
    /// Who receives it.
    pub opts: BroadcastOptions,
    /// The `local` flag: the sender meant it for itself only.
    pub local: bool,
    /// The room keeps it (`opts.kept`, switchboard's own key).
    pub keep: Option<Keep>,
}

/// The event packet of a msgpack packet object, encoded for Socket.IO clients.
pub fn decode_packet(packet: &Mp) -> Option<(String, Encoded)> {
    let nsp = match field(packet, "nsp") {
        Some(Mp::String(s)) => s.as_str()?.to_owned(),
        _ => "/".to_owned(),
    };
    let data = field(packet, "data")?;
    let items = data.as_array()?;
    // An event needs a name: a string, or a number as socket.io allows.
    if !matches!(items.first(), Some(Mp::String(_) | Mp::Integer(_))) {
        return None;
    }
    let mut attachments = Vec::new();
    let json = mp_to_json(data, &mut attachments);
    let text = serde_json::to_vec(&json).ok()?;
    let encoded = Encoded::event_data(&nsp, &text, Arc::from(attachments));
    Some((nsp, encoded))
}

/// Read options `{rooms, except, flags}`; the flag `local` is returned apart.
pub fn decode_opts(opts: Option<&Mp>) -> (BroadcastOptions, bool) {
    let Some(opts) = opts else {
        return (BroadcastOptions::all(), false);
    };
    let flag = |name: &str| {
        field(opts, "flags")
            .and_then(|f| field(f, name))
            .and_then(Mp::as_bool)
            .unwrap_or(false)
    };
    (
        BroadcastOptions {
            rooms: strings_of(field(opts, "rooms")),
            except: strings_of(field(opts, "except")),
            volatile: flag("volatile"),
        },
        flag("local"),
    )
}

/// Parse a broadcast message.
pub fn decode_broadcast(bytes: &[u8]) -> Option<RemoteBroadcast> {
    let value = from_bytes(bytes)?;
    let items = value.as_array()?;
    let uid = items.first()?.as_str()?.to_owned();
    let (nsp, packet) = decode_packet(items.get(1)?)?;
    let (opts, local) = decode_opts(items.get(2));
    Some(RemoteBroadcast {
        uid,
        nsp,
        packet,
        opts,
        local,
        keep: keep_of(items.get(2)),
    })
}

/// `{rooms, except}` of a JSON request's `opts`.
pub fn json_opts(opts: Option<&Json>) -> BroadcastOptions {
    let strings = |key: &str| -> Vec<String> {
        opts.and_then(|o| o.get(key))
            .and_then(Json::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| match v {
                        Json::String(s) => Some(s.clone()),
                        Json::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    BroadcastOptions {
        rooms: strings("rooms"),
        except: strings("except"),
        volatile: false,
    }
}

/// A request: JSON when it starts with `{`, else msgpack (broadcast-with-ack), as JSON
/// with placeholders (its attachments apart).
pub fn decode_request(bytes: &[u8]) -> Option<(Json, Vec<Bytes>)> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).ok().map(|v| (v, Vec::new()));
    }
    let value = from_bytes(bytes)?;
    value.as_map()?;
    let mut attachments = Vec::new();
    let json = mp_to_json(&value, &mut attachments);
    Some((json, attachments))
}

/// The first of a client's ack arguments (`args` as the client sent them,
/// comma-separated), `null` when there is none.
pub fn first_arg(args: &[u8]) -> Json {
    let mut text = Vec::with_capacity(args.len() + 2);
    text.push(b'[');
    text.extend_from_slice(args);
    text.push(b']');
    serde_json::from_slice::<Vec<Json>>(&text)
        .ok()
        .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)))
        .unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet::Args;

    fn none() -> Arc<[Bytes]> {
        Arc::from([])
    }

    #[test]
    fn broadcasts_are_uid_packet_opts_in_msgpack() {
        let packet = Encoded::event(
            "/chat",
            "msg",
            Args::Raw(br#""hi",{"n":1.5}"#),
            none(),
            None,
        );
        let opts = BroadcastOptions {
            rooms: vec!["r".into()],
            except: vec!["sid1".into()],
            volatile: false,
        };
        let bytes = encode_broadcast("abc123", &packet, &opts).unwrap();
        let value = from_bytes(&bytes).unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items[0].as_str(), Some("abc123"));
        assert_eq!(field(&items[1], "type").and_then(Mp::as_i64), Some(2));
        assert_eq!(field(&items[1], "nsp").and_then(Mp::as_str), Some("/chat"));
        let data = field(&items[1], "data").unwrap().as_array().unwrap();
        assert_eq!(data[0].as_str(), Some("msg"));
        assert_eq!(data[1].as_str(), Some("hi"));
        assert_eq!(field(&data[2], "n").and_then(Mp::as_f64), Some(1.5));
        assert_eq!(strings_of(field(&items[2], "rooms")), vec!["r".to_owned()]);
        assert_eq!(
            strings_of(field(&items[2], "except")),
            vec!["sid1".to_owned()]
        );
        assert!(
            field(&items[2], "flags")
                .unwrap()
                .as_map()
                .unwrap()
                .is_empty()
        );

        let back = decode_broadcast(&bytes).unwrap();
        assert_eq!(back.uid, "abc123");
        assert_eq!(back.nsp, "/chat");
        assert_eq!(back.opts, opts);
        assert!(!back.local);
        assert_eq!(back.packet.text, r#"2/chat,["msg","hi",{"n":1.5}]"#);

        let volatile = BroadcastOptions {
            volatile: true,
            ..opts.clone()
        };
        let bytes = encode_broadcast("abc123", &packet, &volatile).unwrap();
        assert_eq!(decode_broadcast(&bytes).unwrap().opts, volatile);

        // A room that keeps the message: `opts.kept`, beside what Node peers read.
        let keep = Keep {
            room: "r".to_owned(),
            size: 50,
            ttl: std::time::Duration::from_secs(3600),
        };
        let bytes = encode_kept_broadcast("abc123", &packet, &volatile, Some(&keep)).unwrap();
        let kept = decode_broadcast(&bytes).unwrap();
        assert_eq!((kept.opts, kept.keep), (volatile, Some(keep)));
        let items = from_bytes(&bytes).unwrap();
        let kept = field(&items.as_array().unwrap()[2], "kept").unwrap();
        assert_eq!(field(kept, "ttl").and_then(Mp::as_u64), Some(3_600_000));
        assert_eq!(
            decode_broadcast(&encode_broadcast("u", &packet, &opts).unwrap())
                .unwrap()
                .keep,
            None
        );
    }

    /// Found by fuzzing (fuzz/ redis_codec): a float relayed through this node's JSON came
    /// out one unit in the last place off, until serde_json parsed floats exactly.
    #[test]
    fn floats_are_relayed_to_the_last_digit() {
        let x = f64::from_bits(0x6578_6365_4127_6165);
        let message = Mp::Array(vec![
            Mp::from("abc123"),
            Mp::Map(vec![
                (Mp::from("type"), Mp::from(2)),
                (
                    Mp::from("data"),
                    Mp::Array(vec![Mp::from("ev"), Mp::F64(x)]),
                ),
                (Mp::from("nsp"), Mp::from("/")),
            ]),
            opts_object(&BroadcastOptions::all()),
        ]);
        let first = decode_broadcast(&to_bytes(&message)).unwrap();
        let relayed = encode_broadcast("abc123", &first.packet, &first.opts).unwrap();
        let second = decode_broadcast(&relayed).unwrap();
        assert_eq!(second.packet, first.packet);
        let items = from_bytes(&relayed).unwrap();
        let data = field(&items.as_array().unwrap()[1], "data")
            .unwrap()
            .clone();
        assert_eq!(data.as_array().unwrap()[1].as_f64(), Some(x));
    }

    /// Found by fuzzing (fuzz/ redis_codec): a map giving a key twice, the first time with
    /// binary data, announced an attachment no placeholder referred to.
    #[test]
    fn a_key_given_twice_keeps_its_last_value_and_no_stray_attachment() {
        let map = Mp::Map(vec![
            (Mp::from("k"), Mp::Binary(vec![1])),
            (Mp::from("k"), Mp::from(2)),
        ]);
        let mut attachments = Vec::new();
        assert_eq!(
            mp_to_json(&map, &mut attachments),
            serde_json::json!({"k": 2})
        );
        assert!(attachments.is_empty());
    }

    #[test]
    fn binary_arguments_travel_as_bin_and_come_back_as_attachments() {
        let attachments: Arc<[Bytes]> =
            Arc::from([Bytes::from_static(b"\x00\x01"), Bytes::from_static(b"xyz")]);
        let packet = Encoded::event_data(
            "/",
            br#"["up",{"_placeholder":true,"num":0},{"f":{"_placeholder":true,"num":1}}]"#,
            attachments,
        );
        let bytes = encode_broadcast("u", &packet, &BroadcastOptions::all()).unwrap();
        let value = from_bytes(&bytes).unwrap();
        let data = field(&value.as_array().unwrap()[1], "data")
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(data[1], Mp::Binary(vec![0, 1]));
        assert_eq!(field(&data[2], "f"), Some(&Mp::Binary(b"xyz".to_vec())));
        let back = decode_broadcast(&bytes).unwrap();
        assert_eq!(
            back.packet, packet,
            "re-encoded with placeholders, in order"
        );
    }

    #[test]
    fn emitter_messages_decode() {
        // What @socket.io/redis-emitter 5.1 publishes for io.to("room1").emit("hello", 1):
        // notepack of ["emitter", {type: 2, data: ["hello", 1], nsp: "/"}, {rooms: ["room1"],
        // flags: {}, except: []}].
        let bytes = to_bytes(&Mp::Array(vec![
            Mp::from("emitter"),
            Mp::Map(vec![
                (Mp::from("type"), Mp::from(2)),
                (
                    Mp::from("data"),
                    Mp::Array(vec![Mp::from("hello"), Mp::from(1)]),
                ),
                (Mp::from("nsp"), Mp::from("/")),
            ]),
            Mp::Map(vec![
                (Mp::from("rooms"), Mp::Array(vec![Mp::from("room1")])),
                (Mp::from("flags"), Mp::Map(vec![])),
                (Mp::from("except"), Mp::Array(vec![])),
            ]),
        ]));
        let b = decode_broadcast(&bytes).unwrap();
        assert_eq!(b.uid, "emitter");
        assert_eq!(b.opts.rooms, vec!["room1".to_owned()]);
        assert_eq!(b.packet.text, r#"2["hello",1]"#);
        // nsp missing means "/"; the local flag is read; undefined (ext) is null
        let bytes = to_bytes(&Mp::Array(vec![
            Mp::from("x"),
            Mp::Map(vec![(
                Mp::from("data"),
                Mp::Array(vec![Mp::from("e"), Mp::Ext(0, vec![0])]),
            )]),
            Mp::Map(vec![(
                Mp::from("flags"),
                Mp::Map(vec![(Mp::from("local"), Mp::Boolean(true))]),
            )]),
        ]));
        let b = decode_broadcast(&bytes).unwrap();
        assert_eq!((b.nsp.as_str(), b.local), ("/", true));
        assert_eq!(b.packet.text, r#"2["e",null]"#);
        assert!(
            decode_broadcast(b"\x93\xa1x\xc0\xc0").is_none(),
            "no packet"
        );
        assert!(decode_broadcast(b"garbage").is_none());
    }

    #[test]
    fn requests_are_sniffed_json_or_msgpack() {
        let (json, att) = decode_request(
            br#"{"uid":"a","requestId":"r","type":5,"opts":{"rooms":["x"],"except":[]}}"#,
        )
        .unwrap();
        assert!(att.is_empty());
        assert_eq!(json["type"], 5);
        assert_eq!(json_opts(json.get("opts")).rooms, vec!["x".to_owned()]);
        let bytes = to_bytes(&Mp::Map(vec![
            (Mp::from("uid"), Mp::from("a")),
            (Mp::from("requestId"), Mp::from("r")),
            (Mp::from("type"), Mp::from(7)),
            (
                Mp::from("packet"),
                Mp::Map(vec![(
                    Mp::from("data"),
                    Mp::Array(vec![Mp::from("e"), Mp::Binary(vec![7])]),
                )]),
            ),
        ]));
        let (json, att) = decode_request(&bytes).unwrap();
        assert_eq!(json["type"], 7);
        assert_eq!(json["packet"]["data"][1]["_placeholder"], true);
        assert_eq!(att, vec![Bytes::from_static(&[7])]);
    }

    #[test]
    fn broadcast_acks_carry_the_first_argument() {
        assert_eq!(
            first_arg(br#"{"ok":true},2"#),
            serde_json::json!({"ok": true})
        );
        assert_eq!(first_arg(b""), Json::Null);
        let first = first_arg(br#"{"_placeholder":true,"num":0}"#);
        let answer = json_to_mp(
            &serde_json::json!({ "requestId": "r1", "packet": first }),
            &[Bytes::from_static(b"b")],
        );
        assert_eq!(field(&answer, "packet"), Some(&Mp::Binary(b"b".to_vec())));
    }
}
