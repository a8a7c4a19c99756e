//! Socket.IO v5 packets: parse and encode, pure (no I/O).
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//! 0 CONNECT · 1 DISCONNECT · 2 EVENT · 3 ACK · 4 CONNECT_ERROR · 5 BINARY_EVENT · 6 BINARY_ACK
//! ```
//! Binary packets are followed by their attachments as separate Engine.IO binary messages;
//! inside the JSON each one stands as `{"_placeholder":true,"num":N}`. Arguments are kept as
//! the bytes received, so a route that forwards them never parses them into values.

use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use serde_json::value::RawValue;

/// The packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// `0`: join a namespace (client) / joined (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event.
    Event,
    /// `3`: an acknowledgement.
    Ack,
    /// `4`: a refused CONNECT.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl PacketKind {
    fn from_digit(d: u8) -> Option<PacketKind> {
        Some(match d {
            b'0' => PacketKind::Connect,
            b'1' => PacketKind::Disconnect,
            b'2' => PacketKind::Event,
            b'3' => PacketKind::Ack,
            b'4' => PacketKind::ConnectError,
            b'5' => PacketKind::BinaryEvent,
            b'6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> u8 {
        match self {
            PacketKind::Connect => b'0',
            PacketKind::Disconnect => b'1',
            PacketKind::Event => b'2',
            PacketKind::Ack => b'3',
            PacketKind::ConnectError => b'4',
            PacketKind::BinaryEvent => b'5',
            PacketKind::BinaryAck => b'6',
        }
    }

    /// Whether attachments follow this packet.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// Event names a client may not send (socket.io-parser's `RESERVED_EVENTS`).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Why text is not a valid Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Empty or unknown type.
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count is missing its `-` or is not a number.
    #[error("illegal attachments")]
    IllegalAttachments,
    /// More attachments than the limit.
    #[error("too many attachments")]
    TooManyAttachments,
    /// The ack id does not fit.
    #[error("invalid ack id")]
    InvalidId,
    /// The JSON is malformed or the wrong shape for the packet type.
    #[error("invalid payload")]
    InvalidPayload,
    /// A placeholder refers to an attachment that does not exist.
    #[error("invalid placeholder")]
    InvalidPlaceholder,
}

/// A parsed packet. `data` is the JSON as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The type.
    pub kind: PacketKind,
    /// The namespace; `/` when absent.
    pub nsp: Bytes,
    /// The ack id.
    pub id: Option<u64>,
    /// How many binary attachments follow.
    pub attachments: usize,
    /// The JSON data, if any.
    pub data: Option<Bytes>,
    /// For events: the name and where the arguments are in `data`.
    pub event: Option<EventHead>,
}

/// The name of an event and the span of its arguments in the packet's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHead {
    /// The event name (a numeric name in its decimal text): the bytes received, unless
    /// the JSON string had escapes to undo.
    pub name: ByteString,
    /// The arguments, comma-separated as received (`1,"a"`); empty when there are none.
    pub args: Range<usize>,
}

impl Packet {
    /// The namespace as text.
    pub fn nsp_str(&self) -> &str {
        std::str::from_utf8(&self.nsp).expect("validated at parse")
    }

    /// The raw argument bytes of an event (`1,"a"`), or of an ack (inside the brackets).
    pub fn args(&self) -> Bytes {
        match (&self.data, &self.event) {
            (Some(data), Some(head)) => data.slice(head.args.clone()),
            (Some(data), None) if data.len() >= 2 => data.slice(1..data.len() - 1),
            _ => Bytes::new(),
        }
    }

    /// The packet as text again (what [`Packet::parse`] read, for a packet it read).
    pub fn text(&self) -> Bytes {
        let data = self.data.as_deref().unwrap_or_default();
        let mut out = header(
            self.kind,
            self.nsp_str(),
            self.id,
            self.attachments,
            data.len(),
        );
        out.put_slice(data);
        out.freeze()
    }

    /// Parse one text message. `max_attachments` bounds what a binary packet may announce.
    pub fn parse(text: Bytes, max_attachments: usize) -> Result<Packet, ParseError> {
        let s: &[u8] = &text;
        let kind = s
            .first()
            .and_then(|&d| PacketKind::from_digit(d))
            .ok_or(ParseError::UnknownType)?;
        let mut i = 1;

        let mut attachments = 0usize;
        if kind.is_binary() {
            let start = i;
            while i < s.len() && s[i] != b'-' {
                i += 1;
            }
            if i == s.len() || i == start {
                return Err(ParseError::IllegalAttachments);
            }
            attachments = std::str::from_utf8(&s[start..i])
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or(ParseError::IllegalAttachments)?;
            if attachments > max_attachments {
                return Err(ParseError::TooManyAttachments);
            }
            i += 1;
        }

        let nsp = if s.get(i) == Some(&b'/') {
            let start = i;
            while i < s.len() && s[i] != b',' {
                i += 1;
            }
            let nsp = text.slice(start..i);
            if i < s.len() {
                i += 1; // the comma
            }
            std::str::from_utf8(&nsp).map_err(|_| ParseError::InvalidPayload)?;
            nsp
        } else {
            Bytes::from_static(b"/")
        };

        let mut id = None;
        let id_start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if i > id_start {
            let digits = std::str::from_utf8(&s[id_start..i]).expect("ASCII digits");
            id = Some(digits.parse().map_err(|_| ParseError::InvalidId)?);
        }

        let data = (i < s.len()).then(|| text.slice(i..));
        let mut packet = Packet {
            kind,
            nsp,
            id,
            attachments,
            data,
            event: None,
        };
        packet.validate()?;
        Ok(packet)
    }

    /// socket.io-parser's `isPayloadValid`, plus the event head and placeholder checks. The
    /// JSON is read once (an event's head and argument span in the same pass), except for
    /// binary packets, whose placeholders are then looked at.
    fn validate(&mut self) -> Result<(), ParseError> {
        let Some(data) = &self.data else {
            return match self.kind {
                PacketKind::Connect | PacketKind::Disconnect => Ok(()),
                _ => Err(ParseError::InvalidPayload),
            };
        };
        if matches!(self.kind, PacketKind::Event | PacketKind::BinaryEvent) {
            self.event = Some(event_head(data)?);
            return self.check_placeholders();
        }
        let raw: &RawValue =
            serde_json::from_slice(data).map_err(|_| ParseError::InvalidPayload)?;
        let first = raw.get().as_bytes().first().copied();
        match self.kind {
            PacketKind::Connect if first == Some(b'{') => Ok(()),
            PacketKind::ConnectError if matches!(first, Some(b'{' | b'"')) => Ok(()),
            PacketKind::Ack | PacketKind::BinaryAck if first == Some(b'[') => {
                self.check_placeholders()
            }
            _ => Err(ParseError::InvalidPayload),
        }
    }

    fn check_placeholders(&self) -> Result<(), ParseError> {
        if !self.kind.is_binary() {
            return Ok(());
        }
        let data = self.data.as_ref().expect("checked by validate");
        let value: serde_json::Value =
            serde_json::from_slice(data).map_err(|_| ParseError::InvalidPayload)?;
        if placeholders_valid(&value, self.attachments) {
            Ok(())
        } else {
            Err(ParseError::InvalidPlaceholder)
        }
    }
}

fn placeholders_valid(value: &serde_json::Value, attachments: usize) -> bool {
    match value {
        serde_json::Value::Array(items) => items.iter().all(|v| placeholders_valid(v, attachments)),
        serde_json::Value::Object(map) => {
            if map.get("_placeholder") == Some(&serde_json::Value::Bool(true)) {
                map.get("num")
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|n| (n as usize) < attachments)
            } else {
                map.values().all(|v| placeholders_valid(v, attachments))
            }
        }
        _ => true,
    }
}

/// Read `["name", args…]` in one pass, collecting nothing: the name (string, or number as
/// socket.io allows) and the span of the arguments. A name without escapes is a slice of
/// `data`, not a copy.
fn event_head(data: &Bytes) -> Result<EventHead, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let (first, args) = serde::Deserializer::deserialize_seq(&mut de, HeadVisitor(data))
        .map_err(|_| ParseError::InvalidPayload)?;
    de.end().map_err(|_| ParseError::InvalidPayload)?;
    let text = first.ok_or(ParseError::InvalidPayload)?.get();
    let at = text.as_ptr() as usize - data.as_ptr() as usize;
    let received = |span: Range<usize>| {
        ByteString::try_from(data.slice(span)).map_err(|_| ParseError::InvalidPayload)
    };
    let name = if text.starts_with('"') {
        let name = if text.contains('\\') {
            let name: String =
                serde_json::from_str(text).map_err(|_| ParseError::InvalidPayload)?;
            ByteString::from(name)
        } else {
            // Valid JSON without a backslash: the characters between the quotes.
            received(at + 1..at + text.len() - 1)?
        };
        if RESERVED_EVENTS.contains(&&*name) {
            return Err(ParseError::InvalidPayload);
        }
        name
    } else if serde_json::from_str::<serde_json::Number>(text).is_ok() {
        received(at..at + text.len())?
    } else {
        return Err(ParseError::InvalidPayload);
    };
    let args = args.unwrap_or_else(|| {
        let end = data.len() - 1;
        end..end
    });
    Ok(EventHead { name, args })
}

/// Walks an event's array: its first element, and the span from the second to the last.
struct HeadVisitor<'a>(&'a [u8]);

impl<'de> serde::de::Visitor<'de> for HeadVisitor<'de> {
    type Value = (Option<&'de RawValue>, Option<Range<usize>>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let base = self.0.as_ptr() as usize;
        let offset = |raw: &RawValue| raw.get().as_ptr() as usize - base;
        let first = seq.next_element::<&RawValue>()?;
        let mut args: Option<Range<usize>> = None;
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            let end = offset(raw) + raw.get().len();
            match &mut args {
                Some(span) => span.end = end,
                None => args = Some(offset(raw)..end),
            }
        }
        Ok((first, args))
    }
}

/// No attachments, shared: `Arc::from([])` allocates each time, and most packets have none.
pub fn no_attachments() -> Arc<[Bytes]> {
    static NONE: std::sync::LazyLock<Arc<[Bytes]>> = std::sync::LazyLock::new(|| Arc::from([]));
    NONE.clone()
}

/// A packet encoded once, ready to be queued for any number of recipients: cloning is cheap.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The text message.
    pub text: Bytes,
    /// Binary attachments that follow it.
    pub attachments: Arc<[Bytes]>,
    /// The same packet for msgpack clients, made once on first need.
    msgpack: std::sync::OnceLock<Option<Bytes>>,
}

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.attachments == other.attachments
    }
}

impl Eq for Encoded {}

/// Where an outgoing event's data comes from.
#[derive(Debug, Clone, Copy)]
pub enum Args<'a> {
    /// Raw argument JSON, comma-separated, without brackets (`1,"a"`); may be empty.
    Raw(&'a [u8]),
}

/// The packet's text up to its data, in a buffer of exactly the size the whole text takes
/// (`data_len` bytes of data follow): frozen, it becomes `Bytes` without another allocation.
pub(super) fn header(
    kind: PacketKind,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    data_len: usize,
) -> BytesMut {
    let mut out = BytesMut::with_capacity(header_len(kind, nsp, id, attachments) + data_len);
    put_header(&mut out, kind, nsp, id, attachments);
    out
}

/// The length of what [`put_header`] writes.
fn header_len(kind: PacketKind, nsp: &str, id: Option<u64>, attachments: usize) -> usize {
    let digits = |n: u64| n.checked_ilog10().map_or(1, |d| d as usize + 1);
    1 + if kind.is_binary() {
        digits(attachments as u64) + 1
    } else {
        0
    } + if nsp == "/" { 0 } else { nsp.len() + 1 }
        + id.map_or(0, digits)
}

/// Write the packet's text up to its data: type, attachment count, namespace, ack id.
fn put_header(
    out: &mut BytesMut,
    kind: PacketKind,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
) {
    out.put_u8(kind.digit());
    if kind.is_binary() {
        out.put_slice(itoa::Buffer::new().format(attachments).as_bytes());
        out.put_u8(b'-');
    }
    if nsp != "/" {
        out.put_slice(nsp.as_bytes());
        out.put_u8(b',');
    }
    if let Some(id) = id {
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
    }
}

/// The kind of an answer with `attachments`.
fn ack_kind(attachments: usize) -> PacketKind {
    if attachments == 0 {
        PacketKind::Ack
    } else {
        PacketKind::BinaryAck
    }
}

/// The length of what [`put_ack`] writes.
fn ack_len(nsp: &str, id: u64, raw: &[u8], attachments: usize) -> usize {
    header_len(ack_kind(attachments), nsp, Some(id), attachments) + raw.len() + 2
}

/// Write an ACK (BINARY_ACK with attachments) answering `id` with the raw arguments.
fn put_ack(out: &mut BytesMut, nsp: &str, id: u64, raw: &[u8], attachments: usize) {
    put_header(out, ack_kind(attachments), nsp, Some(id), attachments);
    out.put_u8(b'[');
    out.put_slice(raw);
    out.put_u8(b']');
}

/// The text of a plain ACK (no attachments) answering `id`, cut from the thread's block:
/// an answer for the one socket that asked, written and gone (see `Socket::ack`).
pub(crate) fn ack_text(nsp: &str, id: u64, raw: &[u8]) -> Bytes {
    crate::engineio::block::cut(ack_len(nsp, id, raw, 0), |out| {
        put_ack(out, nsp, id, raw, 0);
    })
}

impl Encoded {
    fn new(text: BytesMut, attachments: Arc<[Bytes]>) -> Encoded {
        Encoded::from_parts(text.freeze(), attachments)
    }

    /// A packet from its text and attachments, as encoded elsewhere.
    pub fn from_parts(text: Bytes, attachments: Arc<[Bytes]>) -> Encoded {
        Encoded {
            text,
            attachments,
            msgpack: std::sync::OnceLock::new(),
        }
    }

    /// The packet as one msgpack message (`socket.io-msgpack-parser`), made on first call
    /// and kept: a broadcast is converted once for all its recipients.
    pub fn msgpack(&self) -> Option<Bytes> {
        self.msgpack
            .get_or_init(|| super::msgpack::encode(self))
            .clone()
    }

    /// `CONNECT {"sid":…}`, with `"pid":…` under connection state recovery.
    pub fn connect(nsp: &str, sid: &str, pid: Option<&str>) -> Encoded {
        let mut out = header(PacketKind::Connect, nsp, None, 0, 64);
        out.put_slice(br#"{"sid":""#);
        out.put_slice(sid.as_bytes());
        if let Some(pid) = pid {
            out.put_slice(br#"","pid":""#);
            out.put_slice(pid.as_bytes());
        }
        out.put_slice(br#""}"#);
        Encoded::new(out, no_attachments())
    }

    /// This event with `offset` as its last argument, as socket.io marks the broadcasts a
    /// recovering client can ask for again; `None` for anything else (an ack wanted, not
    /// an event). `offset` is plain ASCII without quotes.
    pub fn with_offset(&self, offset: &str) -> Option<Encoded> {
        let text = &self.text[..];
        if !matches!(text.first(), Some(b'2' | b'5')) || text.last() != Some(&b']') {
            return None;
        }
        // Header: kind, `<n>-` when binary, `/nsp,` when not the main namespace, then an
        // ack id's digits, if any, right before the data array.
        let mut i = 1;
        if text[0] == b'5' {
            i += text[i..].iter().position(|&b| b == b'-')? + 1;
        }
        if text.get(i) == Some(&b'/') {
            i += text[i..].iter().position(|&b| b == b',')? + 1;
        }
        if text.get(i) != Some(&b'[') {
            return None;
        }
        let mut out = BytesMut::with_capacity(text.len() + offset.len() + 3);
        out.put_slice(&text[..text.len() - 1]);
        out.put_slice(b",\"");
        out.put_slice(offset.as_bytes());
        out.put_slice(b"\"]");
        Some(Encoded::new(out, self.attachments.clone()))
    }

    /// `CONNECT_ERROR {"message":…[,"data":…]}`.
    pub fn connect_error(nsp: &str, message: &str, data: Option<&serde_json::Value>) -> Encoded {
        let body = match data {
            Some(data) => serde_json::json!({ "message": message, "data": data }),
            None => serde_json::json!({ "message": message }),
        };
        let json = serde_json::to_vec(&body).expect("JSON values serialize");
        let mut out = header(PacketKind::ConnectError, nsp, None, 0, json.len());
        out.put_slice(&json);
        Encoded::new(out, no_attachments())
    }

    /// `DISCONNECT`.
    pub fn disconnect(nsp: &str) -> Encoded {
        Encoded::new(
            header(PacketKind::Disconnect, nsp, None, 0, 0),
            no_attachments(),
        )
    }

    /// An EVENT (BINARY_EVENT when there are attachments) named `event`.
    pub fn event(
        nsp: &str,
        event: &str,
        args: Args<'_>,
        attachments: Arc<[Bytes]>,
        id: Option<u64>,
    ) -> Encoded {
        let kind = if attachments.is_empty() {
            PacketKind::Event
        } else {
            PacketKind::BinaryEvent
        };
        let Args::Raw(raw) = args;
        let name = serde_json::to_string(event).expect("strings serialize");
        let len = name.len() + raw.len() + 2 + usize::from(!raw.is_empty());
        let mut out = header(kind, nsp, id, attachments.len(), len);
        out.put_u8(b'[');
        out.put_slice(name.as_bytes());
        if !raw.is_empty() {
            out.put_u8(b',');
            out.put_slice(raw);
        }
        out.put_u8(b']');
        Encoded::new(out, attachments)
    }

    /// An event whose whole data array (`["name",…]`) is reused as received.
    pub fn event_data(nsp: &str, data: &[u8], attachments: Arc<[Bytes]>) -> Encoded {
        let kind = if attachments.is_empty() {
            PacketKind::Event
        } else {
            PacketKind::BinaryEvent
        };
        let mut out = header(kind, nsp, None, attachments.len(), data.len());
        out.put_slice(data);
        Encoded::new(out, attachments)
    }

    /// An ACK (BINARY_ACK with attachments) answering `id`.
    pub fn ack(nsp: &str, id: u64, args: Args<'_>, attachments: Arc<[Bytes]>) -> Encoded {
        let Args::Raw(raw) = args;
        let mut out = BytesMut::with_capacity(ack_len(nsp, id, raw, attachments.len()));
        put_ack(&mut out, nsp, id, raw, attachments.len());
        Encoded::new(out, attachments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Packet, ParseError> {
        Packet::parse(Bytes::copy_from_slice(s.as_bytes()), 10)
    }

    #[test]
    fn a_header_is_as_long_as_said() {
        for (kind, nsp, id, attachments) in [
            (PacketKind::Event, "/", None, 0),
            (PacketKind::Ack, "/", Some(0), 0),
            (PacketKind::Ack, "/chat", Some(9), 0),
            (PacketKind::Ack, "/", Some(10), 0),
            (PacketKind::BinaryAck, "/x", Some(u64::MAX), 10),
            (PacketKind::BinaryEvent, "/", None, 9),
        ] {
            let out = header(kind, nsp, id, attachments, 0);
            assert_eq!(
                out.len(),
                out.capacity(),
                "{kind:?} {nsp} {id:?} {attachments}"
            );
        }
        assert_eq!(
            &header(PacketKind::BinaryAck, "/x", Some(12), 3, 0)[..],
            b"63-/x,12"
        );
        assert_eq!(&ack_text("/", 7, b"1,\"a\"")[..], br#"37[1,"a"]"#);
        let text = Encoded::ack("/c", 7, Args::Raw(b""), no_attachments()).text;
        assert_eq!(&text[..], b"3/c,7[]");
    }

    #[test]
    fn no_attachments_is_one_shared_empty_slice() {
        assert!(no_attachments().is_empty());
        assert!(Arc::ptr_eq(&no_attachments(), &no_attachments()));
    }

    #[test]
    fn connect_default_and_custom_namespace_with_auth() {
        let p = parse("0").unwrap();
        assert_eq!(
            (p.kind, p.nsp_str(), p.data.clone()),
            (PacketKind::Connect, "/", None)
        );
        let p = parse(r#"0/admin,{"token":"123"}"#).unwrap();
        assert_eq!(p.nsp_str(), "/admin");
        assert_eq!(p.data.as_deref(), Some(&br#"{"token":"123"}"#[..]));
        assert_eq!(parse("0/admin,").unwrap().nsp_str(), "/admin");
        assert_eq!(parse("0/admin").unwrap().nsp_str(), "/admin");
        assert_eq!(parse("0[]"), Err(ParseError::InvalidPayload));
    }

    #[test]
    fn a_parsed_packet_gives_its_text_back() {
        for text in [
            "0",
            r#"0/admin,{"token":"123"}"#,
            "1/chat,",
            r#"2["m",1]"#,
            r#"2/chat,12["m",{"a":[1,2]}]"#,
            r#"3/x,4[1]"#,
            r#"51-["f",{"_placeholder":true,"num":0}]"#,
            r#"4{"message":"no"}"#,
        ] {
            assert_eq!(parse(text).unwrap().text(), text.as_bytes());
        }
    }

    #[test]
    fn disconnect_takes_no_data() {
        assert_eq!(parse("1/chat,").unwrap().kind, PacketKind::Disconnect);
        assert_eq!(parse("1{}"), Err(ParseError::InvalidPayload));
    }

    #[test]
    fn event_with_id_namespace_and_args() {
        let p = parse(r#"2/chat,12["chat message","hi",{"a":1}]"#).unwrap();
        assert_eq!(p.kind, PacketKind::Event);
        assert_eq!(p.id, Some(12));
        let head = p.event.clone().unwrap();
        assert_eq!(head.name, "chat message");
        assert_eq!(p.args(), &br#""hi",{"a":1}"#[..]);
    }

    #[test]
    fn event_without_args_and_with_whitespace() {
        let p = parse(r#"2["ping"]"#).unwrap();
        assert_eq!(p.args(), "");
        let p = parse(r#"2[ "ping" , 1 ]"#).unwrap();
        assert_eq!(p.event.as_ref().unwrap().name, "ping");
        assert_eq!(p.args(), "1");
    }

    #[test]
    fn numeric_event_names_are_allowed_and_reserved_ones_refused() {
        assert_eq!(parse("2[42,1]").unwrap().event.unwrap().name, "42");
        assert_eq!(parse(r#"2["connect"]"#), Err(ParseError::InvalidPayload));
        assert_eq!(parse(r#"2["disconnect"]"#), Err(ParseError::InvalidPayload));
    }

    #[test]
    fn a_name_is_the_bytes_received_unless_it_has_escapes() {
        let text = Bytes::from_static(br#"2["chat message",1]"#);
        let name = Packet::parse(text.clone(), 10).unwrap().event.unwrap().name;
        assert_eq!(name, "chat message");
        assert_eq!(
            name.as_bytes().as_ptr(),
            text[3..].as_ptr(),
            "a slice, not a copy"
        );
        let head = parse(r#"2["say \"hi\"\u00e9",1]"#).unwrap().event.unwrap();
        assert_eq!(head.name, "say \"hi\"é");
        assert_eq!(parse(r#"2["chat",1]"#).unwrap().event.unwrap().args, 8..9);
        // A reserved name is refused however it is written.
        assert_eq!(
            parse(r#"2["conn\u0065ct"]"#),
            Err(ParseError::InvalidPayload)
        );
        assert_eq!(parse(r#"2[-1.5e3]"#).unwrap().event.unwrap().name, "-1.5e3");
    }

    #[test]
    fn malformed_events_are_refused() {
        for bad in [
            "2",
            "2[]",
            "2{}",
            r#"2[{"a":1}]"#,
            "2[\"a\"",
            "2\"a\"",
            "2[\"a\"]x",
            "9",
            "",
            "x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn ack_needs_an_array() {
        let p = parse(r#"3/chat,7["ok",2]"#).unwrap();
        assert_eq!((p.kind, p.id), (PacketKind::Ack, Some(7)));
        assert_eq!(p.args(), r#""ok",2"#);
        assert_eq!(parse("31"), Err(ParseError::InvalidPayload));
        assert_eq!(parse(r#"31"x""#), Err(ParseError::InvalidPayload));
    }

    #[test]
    fn binary_event_counts_attachments_and_checks_placeholders() {
        let p = parse(r#"52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
            .unwrap();
        assert_eq!((p.kind, p.attachments), (PacketKind::BinaryEvent, 2));
        let p = parse(r#"61-/chat,3[{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.id, p.nsp_str()),
            (PacketKind::BinaryAck, 1, Some(3), "/chat")
        );
        assert_eq!(
            parse(r#"51-["up",{"_placeholder":true,"num":1}]"#),
            Err(ParseError::InvalidPlaceholder)
        );
        assert_eq!(parse(r#"5["up"]"#), Err(ParseError::IllegalAttachments));
        assert_eq!(parse(r#"5x-["up"]"#), Err(ParseError::IllegalAttachments));
        assert_eq!(parse(r#"511-["up"]"#), Err(ParseError::TooManyAttachments));
    }

    #[test]
    fn an_offset_marks_events_without_an_ack_only() {
        let none: Arc<[Bytes]> = Arc::from([]);
        let one: Arc<[Bytes]> = Arc::from([Bytes::from_static(b"x")]);
        let marked = |e: Encoded| e.with_offset("o1").map(|m| m.text);
        assert_eq!(
            marked(Encoded::event(
                "/",
                "m",
                Args::Raw(b"1"),
                none.clone(),
                None
            )),
            Some(Bytes::from_static(br#"2["m",1,"o1"]"#))
        );
        assert_eq!(
            marked(Encoded::event(
                "/a",
                "m",
                Args::Raw(b""),
                none.clone(),
                None
            )),
            Some(Bytes::from_static(br#"2/a,["m","o1"]"#))
        );
        let binary = Encoded::event_data("/a", br#"["m",{"_placeholder":true,"num":0}]"#, one);
        let with = binary.with_offset("o2").unwrap();
        assert_eq!(
            with.text,
            Bytes::from_static(br#"51-/a,["m",{"_placeholder":true,"num":0},"o2"]"#)
        );
        assert_eq!(with.attachments.len(), 1);
        for unmarked in [
            Encoded::event("/", "m", Args::Raw(b""), none.clone(), Some(4)),
            Encoded::event("/a", "m", Args::Raw(b""), none.clone(), Some(12)),
            Encoded::ack("/", 3, Args::Raw(b""), none),
            Encoded::disconnect("/"),
        ] {
            assert_eq!(unmarked.with_offset("o"), None, "{:?}", unmarked.text);
        }
    }

    #[test]
    fn encodes_every_server_packet() {
        assert_eq!(Encoded::connect("/", "abc", None).text, r#"0{"sid":"abc"}"#);
        assert_eq!(
            Encoded::connect("/", "abc", Some("p1")).text,
            r#"0{"sid":"abc","pid":"p1"}"#
        );
        assert_eq!(
            Encoded::connect("/chat", "abc", None).text,
            r#"0/chat,{"sid":"abc"}"#
        );
        assert_eq!(
            Encoded::connect_error("/x", "Invalid namespace", None).text,
            r#"4/x,{"message":"Invalid namespace"}"#
        );
        assert_eq!(Encoded::disconnect("/chat").text, "1/chat,");
        assert_eq!(Encoded::disconnect("/").text, "1");
        let none: Arc<[Bytes]> = Arc::from([]);
        assert_eq!(
            Encoded::event(
                "/",
                "chat \"message\"",
                Args::Raw(b"1,\"a\""),
                none.clone(),
                None
            )
            .text,
            r#"2["chat \"message\"",1,"a"]"#
        );
        assert_eq!(
            Encoded::event("/a", "e", Args::Raw(b""), none.clone(), Some(4)).text,
            r#"2/a,4["e"]"#
        );
        assert_eq!(
            Encoded::ack("/", 3, Args::Raw(b""), none.clone()).text,
            "33[]"
        );
        assert_eq!(
            Encoded::ack("/a", 3, Args::Raw(b"1"), none).text,
            "3/a,3[1]"
        );
        let two: Arc<[Bytes]> = Arc::from([Bytes::from_static(b"x"), Bytes::from_static(b"y")]);
        let e = Encoded::event_data("/", br#"["e",{"_placeholder":true,"num":0}]"#, two.clone());
        assert_eq!(e.text, r#"52-["e",{"_placeholder":true,"num":0}]"#);
        assert_eq!(
            Encoded::ack("/a", 9, Args::Raw(b"1"), two).text,
            "62-/a,9[1]"
        );
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let none: Arc<[Bytes]> = Arc::from([]);
        let e = Encoded::event("/chat", "msg", Args::Raw(br#"{"x":[1,2]}"#), none, Some(5));
        let p = Packet::parse(e.text, 10).unwrap();
        assert_eq!(p.nsp_str(), "/chat");
        assert_eq!(p.id, Some(5));
        assert_eq!(p.args(), r#"{"x":[1,2]}"#);
    }
}
