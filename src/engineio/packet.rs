//! Engine.IO v4 packets: parse and encode, pure (no I/O).
//!
//! ```text
//! <type digit>[<data>]      0 open · 1 close · 2 ping · 3 pong · 4 message · 5 upgrade · 6 noop
//! ```
//! A binary message has no type digit: it is a WebSocket binary frame, or `b<base64>` in a
//! polling payload (see `payload.rs`).

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

/// One Engine.IO packet. Payloads are `Bytes` slices of what was received, never copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0`: the handshake, carrying the JSON of [`OpenPacket`].
    Open(Bytes),
    /// `1`: the transport is closing.
    Close,
    /// `2`: heartbeat or upgrade probe (`2probe`).
    Ping(Bytes),
    /// `3`: heartbeat answer or probe answer (`3probe`).
    Pong(Bytes),
    /// `4`: a text message for the layer above.
    Message(Bytes),
    /// A binary message for the layer above.
    Binary(Bytes),
    /// `5`: the client completes the upgrade to WebSocket.
    Upgrade,
    /// `6`: does nothing; used to release a pending long-poll during an upgrade.
    Noop,
}

/// Why bytes are not an Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing at all was received.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type we accept from a peer.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A `b`-prefixed polling record is not valid base64.
    #[error("invalid base64 in binary packet")]
    Base64,
}

/// The JSON body of the OPEN packet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket<'a> {
    /// The session id.
    pub sid: &'a str,
    /// Transports the client may upgrade to.
    pub upgrades: &'a [&'a str],
    /// Milliseconds between server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// The largest payload, in bytes, the server accepts.
    pub max_payload: usize,
}

impl OpenPacket<'_> {
    /// The OPEN packet carrying this handshake.
    pub fn to_packet(&self) -> Packet {
        let json = serde_json::to_vec(self).expect("a handshake always serializes");
        Packet::Open(Bytes::from(json))
    }
}

impl Packet {
    /// Parse a text packet (a WebSocket text frame, or one record of a polling payload that is
    /// not base64 binary).
    pub fn parse_text(data: Bytes) -> Result<Packet, ParseError> {
        let Some(&kind) = data.first() else {
            return Err(ParseError::Empty);
        };
        let rest = data.slice(1..);
        Ok(match kind {
            b'1' => Packet::Close,
            b'2' => Packet::Ping(rest),
            b'3' => Packet::Pong(rest),
            b'4' => Packet::Message(rest),
            b'5' => Packet::Upgrade,
            b'6' => Packet::Noop,
            // A client never sends OPEN; anything else is garbage.
            other => return Err(ParseError::UnknownType(char::from(other))),
        })
    }

    /// The type digit of a text packet; `None` for a binary message.
    pub(crate) fn type_digit(&self) -> Option<u8> {
        Some(match self {
            Packet::Open(_) => b'0',
            Packet::Close => b'1',
            Packet::Ping(_) => b'2',
            Packet::Pong(_) => b'3',
            Packet::Message(_) => b'4',
            Packet::Upgrade => b'5',
            Packet::Noop => b'6',
            Packet::Binary(_) => return None,
        })
    }

    pub(crate) fn text_data(&self) -> &[u8] {
        match self {
            Packet::Open(d) | Packet::Ping(d) | Packet::Pong(d) | Packet::Message(d) => d,
            _ => &[],
        }
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Packet::Binary(_))
    }

    /// Append the text form (type digit and data) to `out`. A binary message appends its raw
    /// bytes: the transport decides how binary is framed.
    pub fn encode_into(&self, out: &mut BytesMut) {
        match self {
            Packet::Binary(data) => out.put_slice(data),
            other => {
                out.put_u8(other.type_digit().expect("text packet"));
                out.put_slice(other.text_data());
            }
        }
    }

    /// How many bytes [`Packet::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Packet::Binary(data) => data.len(),
            other => 1 + other.text_data().len(),
        }
    }

    /// The same packet with its data in a buffer of its own.
    pub(crate) fn copied(self) -> Packet {
        let own = |data: Bytes| Bytes::copy_from_slice(&data);
        match self {
            Packet::Open(d) => Packet::Open(own(d)),
            Packet::Ping(d) => Packet::Ping(own(d)),
            Packet::Pong(d) => Packet::Pong(own(d)),
            Packet::Message(d) => Packet::Message(own(d)),
            Packet::Binary(d) => Packet::Binary(own(d)),
            other @ (Packet::Close | Packet::Upgrade | Packet::Noop) => other,
        }
    }

    /// The encoded form as one buffer.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Packet, ParseError> {
        Packet::parse_text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn parses_every_client_packet_type() {
        assert_eq!(parse("1"), Ok(Packet::Close));
        assert_eq!(parse("2"), Ok(Packet::Ping(Bytes::new())));
        assert_eq!(
            parse("2probe"),
            Ok(Packet::Ping(Bytes::from_static(b"probe")))
        );
        assert_eq!(parse("3"), Ok(Packet::Pong(Bytes::new())));
        assert_eq!(
            parse("4hello"),
            Ok(Packet::Message(Bytes::from_static(b"hello")))
        );
        assert_eq!(parse("4"), Ok(Packet::Message(Bytes::new())));
        assert_eq!(parse("5"), Ok(Packet::Upgrade));
        assert_eq!(parse("6"), Ok(Packet::Noop));
    }

    #[test]
    fn rejects_empty_open_and_garbage() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("0{}"), Err(ParseError::UnknownType('0')));
        assert_eq!(parse("7"), Err(ParseError::UnknownType('7')));
        assert_eq!(parse("x"), Err(ParseError::UnknownType('x')));
    }

    #[test]
    fn encodes_text_packets_with_their_digit() {
        assert_eq!(Packet::Close.encode(), "1");
        assert_eq!(Packet::Ping(Bytes::new()).encode(), "2");
        assert_eq!(
            Packet::Pong(Bytes::from_static(b"probe")).encode(),
            "3probe"
        );
        assert_eq!(Packet::Message(Bytes::from_static(b"hi")).encode(), "4hi");
        assert_eq!(Packet::Noop.encode(), "6");
        assert_eq!(Packet::Upgrade.encode(), "5");
        assert_eq!(
            Packet::Binary(Bytes::from_static(&[1, 2])).encode(),
            &[1u8, 2][..]
        );
        assert_eq!(Packet::Message(Bytes::from_static(b"hi")).encoded_len(), 3);
    }

    #[test]
    fn open_packet_has_the_reference_fields() {
        let open = OpenPacket {
            sid: "abc",
            upgrades: &["websocket"],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        };
        assert_eq!(
            open.to_packet().encode(),
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }
}
