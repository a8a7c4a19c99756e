//! Long-polling payloads: packets joined by the record separator `\x1e`; a binary message is
//! written as `b` followed by its base64. Pure (no I/O).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::packet::{Packet, ParseError};

/// The record separator between packets of one payload.
pub const SEPARATOR: u8 = 0x1e;

/// Split a POST body into packets. Any malformed record fails the whole payload.
pub fn decode(body: Bytes) -> Result<Vec<Packet>, ParseError> {
    let mut packets = Vec::new();
    let mut start = 0;
    loop {
        let end = memchr(&body[start..]).map_or(body.len(), |i| start + i);
        let record = body.slice(start..end);
        packets.push(decode_record(record)?);
        if end == body.len() {
            return Ok(packets);
        }
        start = end + 1;
    }
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == SEPARATOR)
}

fn decode_record(record: Bytes) -> Result<Packet, ParseError> {
    if record.first() == Some(&b'b') {
        let raw = STANDARD
            .decode(&record[1..])
            .map_err(|_| ParseError::Base64)?;
        Ok(Packet::Binary(Bytes::from(raw)))
    } else {
        Packet::parse_text(record)
    }
}

/// Append one packet in polling form to `out`, preceded by a separator unless `out` is empty.
pub fn encode_into(packet: &Packet, out: &mut BytesMut) {
    if !out.is_empty() {
        out.put_u8(SEPARATOR);
    }
    match packet {
        Packet::Binary(data) => {
            out.put_u8(b'b');
            let start = out.len();
            out.resize(
                start + base64::encoded_len(data.len(), true).unwrap_or(0),
                0,
            );
            let written = STANDARD
                .encode_slice(data, &mut out[start..])
                .expect("buffer sized by encoded_len");
            out.truncate(start + written);
        }
        text => text.encode_into(out),
    }
}

/// The polling form of `packets` as one body.
pub fn encode(packets: &[Packet]) -> Bytes {
    let mut out = BytesMut::with_capacity(packets.iter().map(|p| p.encoded_len() + 2).sum());
    for packet in packets {
        encode_into(packet, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &'static str) -> Packet {
        Packet::Message(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn decodes_separated_text_and_base64_binary() {
        let body = Bytes::from_static(b"4hello\x1ebAQID\x1e2\x1e4");
        assert_eq!(
            decode(body),
            Ok(vec![
                msg("hello"),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
                Packet::Ping(Bytes::new()),
                msg(""),
            ])
        );
    }

    #[test]
    fn a_single_packet_needs_no_separator() {
        assert_eq!(decode(Bytes::from_static(b"40")), Ok(vec![msg("0")]));
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(decode(Bytes::new()), Err(ParseError::Empty));
        assert_eq!(
            decode(Bytes::from_static(b"4a\x1e")),
            Err(ParseError::Empty)
        );
        assert_eq!(decode(Bytes::from_static(b"b!!!")), Err(ParseError::Base64));
        assert_eq!(
            decode(Bytes::from_static(b"4a\x1e9")),
            Err(ParseError::UnknownType('9'))
        );
    }

    #[test]
    fn encodes_and_round_trips() {
        let packets = vec![
            msg("hello"),
            Packet::Binary(Bytes::from_static(&[1, 2, 3])),
            Packet::Noop,
        ];
        let body = encode(&packets);
        assert_eq!(body, &b"4hello\x1ebAQID\x1e6"[..]);
        assert_eq!(decode(body), Ok(packets));
    }

    #[test]
    fn empty_binary_encodes_as_bare_b() {
        assert_eq!(encode(&[Packet::Binary(Bytes::new())]), "b");
    }
}
