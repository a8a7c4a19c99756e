//! Reading a client's WebSocket: bytes read as they come into one buffer, messages taken
//! from it by the [`Assembler`] (which bounds them and enforces the RFC).
//!
//! An idle connection holds no buffer: when nothing is buffered, a read goes into a scratch
//! buffer of the thread and what arrived is copied into a buffer of its own size; once the
//! messages of that read are taken, the buffer goes (the messages keep what they need).
//! Thousands of idle sockets then cost no read memory at all, and a busy one one allocation
//! per read, not per message.
//!
//! Cancel-safe: the assembler takes a frame only once all of it is buffered, and keeps a
//! message being assembled; a read is copied out within the poll that made it. A `select!`
//! may drop `read` at any await.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

pub(crate) use super::super::assemble::Message;
use super::super::assemble::{Assembler, Next};

/// The scratch buffer a read with nothing buffered goes into.
const SCRATCH: usize = 16 * 1024;
/// Least spare room when a partly read frame needs more bytes.
const MIN_READ: usize = 2 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

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
        Reader {
            io,
            buf: BytesMut::from(&buffered[..]),
            assembler: Assembler::new(max_message),
        }
    }

    /// Read what has arrived into an empty buffer, through the thread's scratch buffer.
    async fn fill_empty(&mut self) -> Result<(), ReadError> {
        let io = &mut self.io;
        let buf = &mut self.buf;
        std::future::poll_fn(|cx| {
            SCRATCH_BUF.with_borrow_mut(|scratch| {
                let mut read = ReadBuf::new(scratch);
                match Pin::new(&mut *io).poll_read(cx, &mut read) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(_)) => Poll::Ready(Err(ReadError::Closed)),
                    Poll::Ready(Ok(())) if read.filled().is_empty() => {
                        Poll::Ready(Err(ReadError::Closed))
                    }
                    Poll::Ready(Ok(())) => {
                        *buf = BytesMut::from(read.filled());
                        Poll::Ready(Ok(()))
                    }
                }
            })
        })
        .await
    }

    async fn fill(&mut self, want: usize) -> Result<(), ReadError> {
        if self.buf.is_empty() {
            self.fill_empty().await?;
        }
        if self.buf.len() >= want {
            return Ok(());
        }
        // Room for what is wanted and then some: each read takes what has arrived, not a
        // byte at a time.
        let spare = (want - self.buf.len()).max(MIN_READ);
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
                Ok(Next::Message(message)) => return Ok(message),
                Ok(Next::Need(want)) => {
                    if self.buf.is_empty() {
                        // Everything read was taken: hold no memory while waiting.
                        self.buf = BytesMut::new();
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
}
