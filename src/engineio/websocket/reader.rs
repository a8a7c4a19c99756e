//! Reading a client's WebSocket: bytes read as they come into one buffer, messages taken
//! from it by the [`Assembler`] (which bounds them and enforces the RFC).
//!
//! An idle connection holds no buffer: when nothing is buffered, a read goes into the
//! thread's read block (see [`block`](super::super::block)) and what arrived is cut off from it;
//! once the messages of that read are handled, the piece goes. Thousands of idle sockets
//! then cost no read memory at all, and messages read and handled allocate nothing. What is
//! kept past its handling is copied out of the block: a binary message (it may be stored as
//! an attachment), and the start of a frame whose rest has not arrived.
//!
//! Cancel-safe: the assembler takes a frame only once all of it is buffered, and keeps a
//! message being assembled; a read is taken in within the poll that made it. A `select!`
//! may drop `read` at any await.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

pub(crate) use super::super::assemble::Message;
use super::super::assemble::{Assembler, Next};
use super::super::block;

/// Least spare room when a partly read frame needs more bytes.
const MIN_READ: usize = 2 * 1024;

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
    /// Whether `buf` is a piece of the thread's read block.
    in_block: bool,
    assembler: Assembler,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// A reader of messages of at most `max_message` bytes; `buffered` is what was read
    /// past the HTTP request already.
    pub(crate) fn new(io: R, buffered: Bytes, max_message: usize) -> Self {
        Reader {
            io,
            buf: BytesMut::from(&buffered[..]),
            in_block: false,
            assembler: Assembler::new(max_message),
        }
    }

    /// Read what has arrived into an empty buffer: a piece of the thread's read block.
    async fn fill_empty(&mut self) -> Result<(), ReadError> {
        let io = &mut self.io;
        let read = std::future::poll_fn(|cx| block::poll_read(Pin::new(&mut *io), cx)).await;
        match read {
            Ok(read) if !read.is_empty() => {
                self.buf = read;
                self.in_block = true;
                Ok(())
            }
            _ => Err(ReadError::Closed),
        }
    }

    /// Room to read into for a buffer that must hold `want` bytes: what is wanted and then
    /// some, so that each read takes what has arrived, not a byte at a time.
    fn spare_for(&self, want: usize) -> usize {
        want.saturating_sub(self.buf.len()).max(MIN_READ)
    }

    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        if self.buf.is_empty() {
            // What arrived is looked at first: the rest of a frame is read into a buffer of
            // the reader's own (see `read`).
            return self.fill_empty().await;
        }
        if self.buf.len() >= want {
            return Ok(());
        }
        let spare = self.spare_for(want);
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
            match self.assembler.next(&mut self.buf) {
                Ok(Next::Message(Message::Binary(data))) if self.in_block => {
                    return Ok(Message::Binary(Bytes::copy_from_slice(&data)));
                }
                Ok(Next::Message(message)) => return Ok(message),
                Ok(Next::Need(want)) => {
                    if self.buf.is_empty() {
                        // Everything read was taken: hold no memory while waiting.
                        self.buf = BytesMut::new();
                        self.in_block = false;
                    } else if self.in_block {
                        // The start of a frame waits for its rest in a buffer of its own,
                        // not in the thread's block.
                        let mut own =
                            BytesMut::with_capacity(self.buf.len() + self.spare_for(want));
                        own.extend_from_slice(&self.buf);
                        self.buf = own;
                        self.in_block = false;
                    }
                    self.fill(want).await?;
                }
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

    #[tokio::test]
    async fn messages_that_arrive_later_are_read_and_an_idle_reader_holds_no_buffer() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = Reader::new(server, Bytes::new(), 100);
        let read = tokio::spawn(async move {
            let first = reader.read().await;
            assert_eq!(reader.buf.capacity(), 0, "nothing is held between messages");
            (first, reader.read().await)
        });
        tokio::task::yield_now().await;
        let mut bytes = Vec::new();
        put_frame(&mut bytes, true, OpCode::Text, b"4a", Some([1, 2, 3, 4]));
        put_frame(&mut bytes, true, OpCode::Text, b"4bc", Some([1, 2, 3, 4]));
        tokio::io::AsyncWriteExt::write_all(&mut client, &bytes[..8])
            .await
            .unwrap();
        tokio::task::yield_now().await;
        tokio::io::AsyncWriteExt::write_all(&mut client, &bytes[8..])
            .await
            .unwrap();
        let (first, second) = read.await.unwrap();
        assert_eq!(first, Ok(Message::Text(Bytes::from_static(b"4a"))));
        assert_eq!(second, Ok(Message::Text(Bytes::from_static(b"4bc"))));
    }

    #[tokio::test]
    async fn what_may_be_kept_is_copied_out_of_the_threads_block() {
        let mut bytes = Vec::new();
        put_frame(&mut bytes, true, OpCode::Text, b"4a", Some([1, 2, 3, 4]));
        put_frame(
            &mut bytes,
            true,
            OpCode::Binary,
            b"\x01\x02",
            Some([1, 2, 3, 4]),
        );
        put_frame(&mut bytes, true, OpCode::Text, b"4rest", Some([1, 2, 3, 4]));
        let (client, server) = tokio::io::duplex(64);
        let mut reader = Reader::new(server, Bytes::new(), 100);
        let mut client = client;
        // All but the last two bytes in one read.
        let (now, later) = bytes.split_at(bytes.len() - 2);
        tokio::io::AsyncWriteExt::write_all(&mut client, now)
            .await
            .unwrap();
        let Ok(Message::Text(text)) = reader.read().await else {
            panic!("a text message");
        };
        assert!(!text.is_unique(), "handled at once: a piece of the block");
        let Ok(Message::Binary(mut data)) = reader.read().await else {
            panic!("a binary message");
        };
        assert!(data.is_unique(), "a binary message is a copy of its own");
        assert_eq!(&data.split_to(2)[..], b"\x01\x02");
        let waiting = tokio::spawn(async move { (reader.read().await, reader) });
        tokio::task::yield_now().await;
        tokio::io::AsyncWriteExt::write_all(&mut client, later)
            .await
            .unwrap();
        let (last, reader) = waiting.await.unwrap();
        assert_eq!(last, Ok(Message::Text(Bytes::from_static(b"4rest"))));
        assert!(
            !reader.in_block,
            "the frame's start waited in a buffer of its own"
        );
    }
}
