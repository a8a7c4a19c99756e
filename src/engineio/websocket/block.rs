//! The read block of a thread: every WebSocket read on the thread goes into one block of
//! memory, and what a read brought is cut off as a buffer of its own. A block is used again
//! in place once every buffer cut from it has gone, so reading messages that are handled
//! and dropped allocates nothing; a buffer still held (a message in flight) keeps its block
//! alive and the thread moves on to a new one.
//!
//! What a piece can keep alive is bounded: at most one block ([`BLOCK`] bytes). The reader
//! hands out pieces only for what it handles at once — a connection reads its next message
//! after the last one is handled — and copies out what may be kept longer (binary messages,
//! which may be stored as attachments; the start of a frame that waits for the rest).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncRead;

/// The size of a block: also the most a read takes at once into it.
pub(super) const BLOCK: usize = 8 * 1024;
/// Least room a read gets; with less left, the block is renewed.
const MIN_ROOM: usize = 1024;

thread_local! {
    static READ_BLOCK: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Read what has arrived on `io` into the thread's block; what was read comes back as a
/// buffer of its own (empty at the end of the stream).
pub(super) fn poll_read<R: AsyncRead>(
    io: Pin<&mut R>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<BytesMut>> {
    READ_BLOCK.with_borrow_mut(|block| {
        if block.capacity() < MIN_ROOM {
            // In place when nothing cut from the block is held any more, else a new block.
            block.reserve(BLOCK);
        }
        tokio_util::io::poll_read_buf(io, cx, block).map_ok(|_| block.split())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(mut from: &[u8]) -> BytesMut {
        std::future::poll_fn(|cx| poll_read(Pin::new(&mut from), cx))
            .await
            .expect("a slice reads")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_are_buffers_of_their_own_and_a_free_block_is_used_again() {
        let first = read(b"first").await;
        let second = read(b"second").await;
        assert_eq!((&first[..], &second[..]), (&b"first"[..], &b"second"[..]));
        let start = first.as_ptr();
        assert_eq!(second.as_ptr(), start.wrapping_add(5), "cut from one block");
        drop((first, second));
        // Fill the block until it must be renewed: with nothing held, it is the same one.
        let filler = vec![0u8; BLOCK - MIN_ROOM];
        drop(read(&filler).await);
        let again = read(b"again").await;
        assert_eq!(again.as_ptr(), start, "the block was used again in place");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_held_piece_keeps_its_bytes_and_the_thread_moves_to_a_new_block() {
        let held = read(b"held").await.freeze();
        let filler = vec![7u8; BLOCK - MIN_ROOM];
        drop(read(&filler).await);
        let next = read(b"next").await;
        assert_eq!(&held[..], b"held");
        assert_eq!(&next[..], b"next");
        let block = held.as_ptr() as usize..held.as_ptr() as usize + BLOCK;
        assert!(!block.contains(&(next.as_ptr() as usize)), "a new block");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_end_of_a_stream_is_an_empty_read() {
        assert!(read(b"").await.is_empty());
    }
}
