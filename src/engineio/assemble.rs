//! WebSocket messages from frames: fragments joined, every message bounded as a whole (not
//! frame by frame), the RFC's rules enforced — client frames are masked, control frames
//! are short and whole, continuations continue something, text is UTF-8. Pure: the caller
//! reads bytes into a buffer and asks for the next message, which is taken from the buffer
//! only once all of its frame is there.

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{self, OpCode, close_code};

/// A whole message, or a control frame the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping to answer with a pong carrying the same data.
    Ping(Bytes),
    /// The peer closes.
    Close,
}

/// What the buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A message, taken from the buffer.
    Message(Message),
    /// Not yet one: the buffer must hold at least this many bytes first.
    Need(usize),
}

/// A message being assembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
}

/// Joins a client's frames into messages of at most `max_message` bytes.
#[derive(Debug)]
pub struct Assembler {
    max_message: usize,
    partial: Option<Partial>,
}

impl Assembler {
    /// An assembler of messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Assembler {
            max_message,
            partial: None,
        }
    }

    /// The next message from the frames at the start of `buf`, or how much `buf` must
    /// hold before there can be one. An error is the close code the peer earned.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Next, u16> {
        loop {
            let header = match frame::parse_header(buf, true) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(Next::Need(buf.len() + 1)),
                Err(e) => return Err(e.close_code()),
            };
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let len = usize::try_from(header.len).unwrap_or(usize::MAX);
            match header.opcode {
                OpCode::Text | OpCode::Binary if self.partial.is_some() => {
                    return Err(close_code::PROTOCOL_ERROR);
                }
                OpCode::Continuation if self.partial.is_none() => {
                    return Err(close_code::PROTOCOL_ERROR);
                }
                _ => {}
            }
            if !header.opcode.is_control() && len.saturating_add(so_far) > self.max_message {
                return Err(close_code::TOO_BIG);
            }
            let total = header.header_len + len;
            if buf.len() < total {
                return Ok(Next::Need(total));
            }
            buf.advance(header.header_len);
            // The whole buffer when the frame is all of it (the common case, one message a
            // read): splitting would allocate to share the buffer.
            let mut payload = if len == buf.len() {
                std::mem::take(buf)
            } else {
                buf.split_to(len)
            };
            if let Some(key) = header.mask {
                frame::apply_mask(&mut payload, key, 0);
            }
            let (text, data) = match header.opcode {
                OpCode::Ping => return Ok(Next::Message(Message::Ping(payload.freeze()))),
                OpCode::Pong => continue,
                OpCode::Close => {
                    if payload.len() == 1 {
                        return Err(close_code::PROTOCOL_ERROR);
                    }
                    return Ok(Next::Message(Message::Close));
                }
                OpCode::Text | OpCode::Binary if header.fin => {
                    (header.opcode == OpCode::Text, payload)
                }
                OpCode::Text | OpCode::Binary => {
                    self.partial = Some(Partial {
                        text: header.opcode == OpCode::Text,
                        data: payload,
                    });
                    continue;
                }
                OpCode::Continuation => {
                    let partial = self.partial.as_mut().expect("checked above");
                    partial.data.extend_from_slice(&payload);
                    if !header.fin {
                        continue;
                    }
                    let whole = self.partial.take().expect("checked above");
                    (whole.text, whole.data)
                }
            };
            return if !text {
                Ok(Next::Message(Message::Binary(data.freeze())))
            } else if std::str::from_utf8(&data).is_ok() {
                Ok(Next::Message(Message::Text(data.freeze())))
            } else {
                Err(close_code::INVALID_DATA)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::frame::put_frame;

    const KEY: Option<[u8; 4]> = Some([9, 8, 7, 6]);

    fn frames(parts: &[(bool, OpCode, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (fin, op, data) in parts {
            put_frame(&mut out, *fin, *op, data, KEY);
        }
        out
    }

    /// Every message in `bytes`, then the error or `Need` that ends them.
    fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Next, u16>> {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut assembler = Assembler::new(max);
        let mut out = Vec::new();
        loop {
            let r = assembler.next(&mut buf);
            let end = !matches!(r, Ok(Next::Message(_)));
            out.push(r);
            if end {
                return out;
            }
        }
    }

    fn msg(m: Message) -> Result<Next, u16> {
        Ok(Next::Message(m))
    }

    #[test]
    fn fragments_join_and_control_frames_may_come_between() {
        let got = read_all(
            frames(&[
                (false, OpCode::Text, b"4he"),
                (true, OpCode::Ping, b"p"),
                (false, OpCode::Continuation, b"ll"),
                (true, OpCode::Pong, b""),
                (true, OpCode::Continuation, b"o"),
                (true, OpCode::Binary, &[1, 2]),
            ]),
            100,
        );
        assert_eq!(
            got,
            vec![
                msg(Message::Ping(Bytes::from_static(b"p"))),
                msg(Message::Text(Bytes::from_static(b"4hello"))),
                msg(Message::Binary(Bytes::from_static(&[1, 2]))),
                Ok(Next::Need(1)),
            ]
        );
    }

    #[test]
    fn the_limit_is_on_the_whole_message() {
        let exact = frames(&[
            (false, OpCode::Text, b"12345"),
            (true, OpCode::Continuation, b"67890"),
        ]);
        assert_eq!(
            read_all(exact, 10)[0],
            msg(Message::Text(Bytes::from_static(b"1234567890")))
        );
        let over = frames(&[
            (false, OpCode::Text, b"12345"),
            (true, OpCode::Continuation, b"678901"),
        ]);
        assert_eq!(read_all(over, 10)[0], Err(1009));
    }

    #[test]
    fn broken_sequences_are_protocol_errors() {
        let stray = frames(&[(true, OpCode::Continuation, b"x")]);
        assert_eq!(read_all(stray, 10)[0], Err(1002));
        let interleaved = frames(&[(false, OpCode::Text, b"a"), (true, OpCode::Text, b"b")]);
        assert_eq!(read_all(interleaved, 10)[0], Err(1002));
        let mut unmasked = Vec::new();
        put_frame(&mut unmasked, true, OpCode::Text, b"4x", None);
        assert_eq!(read_all(unmasked, 10)[0], Err(1002));
        let bad_utf8 = frames(&[(true, OpCode::Text, &[0xC3, 0x28])]);
        assert_eq!(read_all(bad_utf8, 10)[0], Err(1007));
        let close = frames(&[(true, OpCode::Close, &[3, 232])]);
        assert_eq!(read_all(close, 10)[0], msg(Message::Close));
    }

    #[test]
    fn an_incomplete_frame_asks_for_the_rest_and_consumes_nothing() {
        let bytes = frames(&[(true, OpCode::Text, b"4hello")]);
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 2]);
        let mut assembler = Assembler::new(100);
        assert_eq!(assembler.next(&mut buf), Ok(Next::Need(bytes.len())));
        assert_eq!(buf.len(), bytes.len() - 2, "nothing taken");
        buf.extend_from_slice(&bytes[bytes.len() - 2..]);
        assert_eq!(
            assembler.next(&mut buf),
            msg(Message::Text(Bytes::from_static(b"4hello")))
        );
    }
}
