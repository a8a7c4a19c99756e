//! Reading a client's WebSocket: frames joined into messages, every message bounded as a
//! whole (not frame by frame), the RFC's rules enforced — client frames are masked, control
//! frames are short and whole, continuations continue something, text is UTF-8.
//!
//! Cancel-safe: a frame is consumed only once all of it is buffered, and a message being
//! assembled stays in the reader, so a `select!` may drop `read` at any await.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::super::frame::{self, OpCode, close_code};

/// Read buffer size of an idle connection; it grows for a large message and shrinks back.
const IDLE_BUFFER: usize = 2 * 1024;

/// A whole message, or a control frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// A text message (valid UTF-8).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping to answer with a pong carrying the same data.
    Ping(Bytes),
    /// The peer closes.
    Close,
}

/// Why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The connection ended or failed.
    Closed,
    /// The peer broke a rule; close with this code.
    Violation(u16),
}

/// A message being assembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
}

/// The reading half of a server-side WebSocket.
#[derive(Debug)]
pub(crate) struct Reader<R> {
    io: R,
    buf: BytesMut,
    max_message: usize,
    partial: Option<Partial>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// A reader of messages of at most `max_message` bytes; `buffered` is what was read
    /// past the HTTP request already.
    pub(crate) fn new(io: R, buffered: Bytes, max_message: usize) -> Self {
        let mut buf = BytesMut::with_capacity(IDLE_BUFFER.max(buffered.len()));
        buf.extend_from_slice(&buffered);
        Reader {
            io,
            buf,
            max_message,
            partial: None,
        }
    }

    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        // Room for what is wanted and then some: each read takes what has arrived, not a
        // byte at a time (a buffer shared with messages handed out reallocates on reserve).
        if self.buf.len() >= want {
            return Ok(());
        }
        let spare = (want - self.buf.len()).max(IDLE_BUFFER);
        if self.buf.capacity() - self.buf.len() < spare {
            self.buf.reserve(spare);
        }
        while self.buf.len() < want {
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// The next message.
    pub(crate) async fn read(&mut self) -> Result<Message, ReadError> {
        loop {
            if self.buf.is_empty() && self.buf.capacity() > IDLE_BUFFER * 8 {
                // A burst of large messages should not pin that much memory to an idle
                // connection.
                self.buf = BytesMut::with_capacity(IDLE_BUFFER);
            }
            let header = loop {
                match frame::parse_header(&self.buf, true) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {
                        let want = self.buf.len() + 1;
                        self.fill(want).await?;
                    }
                    Err(e) => return Err(ReadError::Violation(e.close_code())),
                }
            };
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let len = usize::try_from(header.len).unwrap_or(usize::MAX);
            match header.opcode {
                OpCode::Text | OpCode::Binary if self.partial.is_some() => {
                    return Err(ReadError::Violation(close_code::PROTOCOL_ERROR));
                }
                OpCode::Continuation if self.partial.is_none() => {
                    return Err(ReadError::Violation(close_code::PROTOCOL_ERROR));
                }
                _ => {}
            }
            if !header.opcode.is_control() && len.saturating_add(so_far) > self.max_message {
                return Err(ReadError::Violation(close_code::TOO_BIG));
            }
            let total = header.header_len + len;
            self.fill(total).await?;
            self.buf.advance(header.header_len);
            let mut payload = self.buf.split_to(len);
            if let Some(key) = header.mask {
                frame::apply_mask(&mut payload, key, 0);
            }
            let (text, data) = match header.opcode {
                OpCode::Ping => return Ok(Message::Ping(payload.freeze())),
                OpCode::Pong => continue,
                OpCode::Close => {
                    if payload.len() == 1 {
                        return Err(ReadError::Violation(close_code::PROTOCOL_ERROR));
                    }
                    return Ok(Message::Close);
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
                Ok(Message::Binary(data.freeze()))
            } else if std::str::from_utf8(&data).is_ok() {
                Ok(Message::Text(data.freeze()))
            } else {
                Err(ReadError::Violation(close_code::INVALID_DATA))
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

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Message, ReadError>> {
        let mut reader = Reader::new(&bytes[..], Bytes::new(), max);
        let mut out = Vec::new();
        loop {
            let r = reader.read().await;
            let end = r.is_err();
            out.push(r);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn fragments_join_and_control_frames_may_come_between() {
        let got = read_all(
            frames(&[
                (false, OpCode::Text, b"4he"),
                (true, OpCode::Ping, b"p"),
                (false, OpCode::Continuation, b"ll"),
                (true, OpCode::Continuation, b"o"),
                (true, OpCode::Binary, &[1, 2]),
            ]),
            100,
        )
        .await;
        assert_eq!(
            got,
            vec![
                Ok(Message::Ping(Bytes::from_static(b"p"))),
                Ok(Message::Text(Bytes::from_static(b"4hello"))),
                Ok(Message::Binary(Bytes::from_static(&[1, 2]))),
                Err(ReadError::Closed),
            ]
        );
    }

    #[tokio::test]
    async fn the_limit_is_on_the_whole_message() {
        let exact = frames(&[
            (false, OpCode::Text, b"12345"),
            (true, OpCode::Continuation, b"67890"),
        ]);
        assert_eq!(
            read_all(exact, 10).await[0],
            Ok(Message::Text(Bytes::from_static(b"1234567890")))
        );
        let over = frames(&[
            (false, OpCode::Text, b"12345"),
            (true, OpCode::Continuation, b"678901"),
        ]);
        assert_eq!(read_all(over, 10).await[0], Err(ReadError::Violation(1009)));
    }

    #[tokio::test]
    async fn broken_sequences_are_protocol_errors() {
        let stray = frames(&[(true, OpCode::Continuation, b"x")]);
        assert_eq!(
            read_all(stray, 10).await[0],
            Err(ReadError::Violation(1002))
        );
        let interleaved = frames(&[(false, OpCode::Text, b"a"), (true, OpCode::Text, b"b")]);
        assert_eq!(
            read_all(interleaved, 10).await[0],
            Err(ReadError::Violation(1002))
        );
        let mut unmasked = Vec::new();
        put_frame(&mut unmasked, true, OpCode::Text, b"4x", None);
        assert_eq!(
            read_all(unmasked, 10).await[0],
            Err(ReadError::Violation(1002))
        );
        let bad_utf8 = frames(&[(true, OpCode::Text, &[0xC3, 0x28])]);
        assert_eq!(
            read_all(bad_utf8, 10).await[0],
            Err(ReadError::Violation(1007))
        );
        let close = frames(&[(true, OpCode::Close, &[3, 232])]);
        assert_eq!(read_all(close, 10).await[0], Ok(Message::Close));
    }

    #[tokio::test]
    async fn bytes_read_with_the_http_request_come_first() {
        let bytes = frames(&[(true, OpCode::Text, b"4a"), (true, OpCode::Text, b"4b")]);
        let (early, rest) = bytes.split_at(5);
        let mut reader = Reader::new(rest, Bytes::copy_from_slice(early), 10);
        assert_eq!(
            reader.read().await,
            Ok(Message::Text(Bytes::from_static(b"4a")))
        );
        assert_eq!(
            reader.read().await,
            Ok(Message::Text(Bytes::from_static(b"4b")))
        );
    }
}
