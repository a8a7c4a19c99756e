//! Reading a client's WebSocket: bytes read as they come into one buffer, messages taken
//! from it by the [`Assembler`] (which bounds them and enforces the RFC).
//!
//! Cancel-safe: the assembler takes a frame only once all of it is buffered, and keeps a
//! message being assembled, so a `select!` may drop `read` at any await.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

pub(crate) use super::super::assemble::Message;
use super::super::assemble::{Assembler, Next};

/// Read buffer size of an idle connection; it grows for a large message and shrinks back.
const IDLE_BUFFER: usize = 2 * 1024;

/// Why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The connection ended or failed.
    Closed,
    /// The peer broke a rule; close with this code.
    Violation(u16),
}

/// The reading half of a server-side WebSocket.
#[derive(Debug)]
pub(crate) struct Reader<R> {
    io: R,
    buf: BytesMut,
    assembler: Assembler,
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
            assembler: Assembler::new(max_message),
        }
    }

    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        if self.buf.len() >= want {
            return Ok(());
        }
        // Room for what is wanted and then some: each read takes what has arrived, not a
        // byte at a time (a buffer shared with messages handed out reallocates on reserve).
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
            match self.assembler.next(&mut self.buf) {
                Ok(Next::Message(message)) => return Ok(message),
                Ok(Next::Need(want)) => self.fill(want).await?,
                Err(code) => return Err(ReadError::Violation(code)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::frame::{OpCode, put_frame};

    #[tokio::test]
    async fn messages_come_as_bytes_arrive_and_early_bytes_first() {
        let mut bytes = Vec::new();
        put_frame(&mut bytes, true, OpCode::Text, b"4a", Some([1, 2, 3, 4]));
        put_frame(&mut bytes, true, OpCode::Text, b"4b", Some([1, 2, 3, 4]));
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
        assert_eq!(reader.read().await, Err(ReadError::Closed));
    }
}
