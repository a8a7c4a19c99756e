//! WebSocket frames (RFC 6455 §5.2): header parsing and encoding, unmasking. Pure (no I/O),
//! the one frame codec of the crate: the server's reader and writer use it, and so do the
//! tests and tools that play a client (which must mask).
//!
//! ```text
//! byte 0: FIN RSV1 RSV2 RSV3 opcode(4)   byte 1: MASK len(7)
//! len 126 → 16-bit length follows; 127 → 64-bit length follows; then the 4-byte mask key
//! ```

/// Frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// `0x0`: the next part of a fragmented message.
    Continuation,
    /// `0x1`: a UTF-8 text message (or its first fragment).
    Text,
    /// `0x2`: a binary message (or its first fragment).
    Binary,
    /// `0x8`: the peer closes.
    Close,
    /// `0x9`: a ping, to be answered with a pong.
    Ping,
    /// `0xA`: a pong.
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Close codes the server sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// The session ended normally.
    pub const NORMAL: u16 = 1000;
    /// The peer broke the protocol (unmasked frame, bad fragmentation, reserved bits).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The peer broke a policy of the server (it reads too slowly).
    pub const POLICY: u16 = 1008;
    /// A message larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whether this is the last frame of its message.
    pub fin: bool,
    /// The frame type.
    pub opcode: OpCode,
    /// The masking key; every frame from a client has one.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub len: u64,
    /// Length of the header itself.
    pub header_len: usize,
}

/// Why bytes are not an acceptable frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A reserved bit is set (no extension was negotiated).
    #[error("reserved bits set")]
    ReservedBits,
    /// The opcode is not one RFC 6455 defines.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame is fragmented or longer than 125 bytes.
    #[error("invalid control frame")]
    InvalidControl,
    /// A client frame without a mask.
    #[error("unmasked client frame")]
    Unmasked,
}

impl FrameError {
    /// The close code this error earns.
    pub fn close_code(self) -> u16 {
        close_code::PROTOCOL_ERROR
    }
}

/// Parse the header at the start of `buf`: `Ok(None)` when more bytes are needed.
/// `require_mask` is set by a server reading a client.
pub fn parse_header(buf: &[u8], require_mask: bool) -> Result<Option<Header>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(FrameError::UnknownOpcode(b0 & 0x0F))?;
    let masked = b1 & 0x80 != 0;
    if require_mask && !masked {
        return Err(FrameError::Unmasked);
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("eight bytes")), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(FrameError::InvalidControl);
    }
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some(key.try_into().expect("four bytes"))
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len,
        header_len: at,
    }))
}

/// XOR `payload` with the masking key, as both masking and unmasking do. `offset` is the
/// position of `payload[0]` in the frame's payload (for a payload unmasked in pieces).
pub fn apply_mask(payload: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("eight bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Append a frame header: `fin`, `opcode`, a payload of `len` bytes, and `mask` if given.
pub fn put_head(out: &mut Vec<u8>, fin: bool, opcode: OpCode, len: usize, mask: Option<[u8; 4]>) {
    out.push(if fin { 0x80 } else { 0 } | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Append a whole frame; a `mask` masks the payload (as a client must).
pub fn put_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    put_head(out, fin, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// An unmasked close frame with `code`, as a server sends it.
pub fn close_frame(code: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_frame(&mut out, true, OpCode::Close, &code.to_be_bytes(), None);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_at_every_length_class() {
        for len in [0usize, 125, 126, 65535, 65536, 1 << 20] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                put_head(&mut out, len % 2 == 0, OpCode::Binary, len, mask);
                let h = parse_header(&out, false).unwrap().unwrap();
                assert_eq!(
                    (h.fin, h.opcode, h.mask, h.len, h.header_len),
                    (len % 2 == 0, OpCode::Binary, mask, len as u64, out.len())
                );
                // Every shorter prefix asks for more.
                for cut in 0..out.len() {
                    assert_eq!(parse_header(&out[..cut], false), Ok(None), "len {len}");
                }
            }
        }
    }

    #[test]
    fn a_server_refuses_what_the_rfc_forbids() {
        let frame = |bytes: &[u8]| parse_header(bytes, true);
        assert_eq!(frame(&[0x81, 0x01]), Err(FrameError::Unmasked));
        assert_eq!(frame(&[0xC1, 0x81]), Err(FrameError::ReservedBits));
        assert_eq!(frame(&[0x83, 0x81]), Err(FrameError::UnknownOpcode(3)));
        assert_eq!(frame(&[0x09, 0x80]), Err(FrameError::InvalidControl));
        assert_eq!(
            frame(&[0x89, 0xFE, 0, 126]),
            Err(FrameError::InvalidControl)
        );
        assert_eq!(FrameError::Unmasked.close_code(), 1002);
        assert!(
            frame(&[0x89, 0xFD]).unwrap().is_none(),
            "mask key still to come"
        );
    }

    #[test]
    fn masking_is_its_own_inverse_in_pieces() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let key = [0xA1, 0x02, 0x5C, 0xFF];
        let mut masked = data.clone();
        apply_mask(&mut masked, key, 0);
        assert_eq!(masked[5], data[5] ^ key[1]);
        // Unmasked in uneven pieces, as a reader that receives it in bits does.
        let (a, rest) = masked.split_at_mut(3);
        let (b, c) = rest.split_at_mut(501);
        apply_mask(a, key, 0);
        apply_mask(b, key, 3);
        apply_mask(c, key, 504);
        assert_eq!(masked, data);
    }

    #[test]
    fn frames_are_byte_exact() {
        let mut ours = Vec::new();
        put_frame(&mut ours, true, OpCode::Text, b"4hello", None);
        assert_eq!(ours, b"\x81\x064hello");
        assert_eq!(close_frame(1009), vec![0x88, 0x02, 0x03, 0xF1]);
    }
}
