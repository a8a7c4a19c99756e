//! The blocks of a thread: short-lived buffers are cut from a block of memory, each a buffer
//! of its own — every WebSocket read on the thread from one block, the answers made for one
//! socket from another. A block is used again in place once every buffer cut from it has
//! gone, so messages that are read, answered and written allocate nothing; a buffer still
//! held keeps its block alive and the thread moves on to a new one. Reads and answers have
//! a block each because their pieces alternate: when the next read comes, the answer to the
//! last one may still be queued, but the last read is done with.
//!
//! What a piece can keep alive is bounded: one block ([`BLOCK`] bytes). Pieces are only for
//! what goes at once. The reader hands them out for what it handles at once — a connection
//! reads its next message after the last one is handled — and copies out what may be kept
//! longer (binary messages, which may be stored as attachments; the start of a frame that
//! waits for its rest). An answer is queued as a piece only in front of an empty queue,
//! and copied out behind others ([`Session::send_cut`](super::Session::send_cut)). A
//! connection thus holds at most two blocks, and only while it has a message in flight.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

/// The size of a block: also the most a read takes at once into it.
pub(crate) const BLOCK: usize = 8 * 1024;
/// Least room a read gets; with less left, the block is renewed.
const MIN_ROOM: usize = 1024;
/// The longest piece [`cut`] takes from the block; a longer buffer is its own allocation.
const MAX_CUT: usize = 1024;

thread_local! {
    static READS: RefCell<BytesMut> = RefCell::new(BytesMut::new());
    static ANSWERS: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Make room for `need` bytes in `block`: in place when nothing cut from it is held any
/// more, else in a new block.
fn make_room(block: &mut BytesMut, need: usize) {
    if block.capacity() < need {
        block.reserve(BLOCK);
    }
}

/// Read what has arrived on `io` into the thread's block; what was read comes back as a
/// buffer of its own (empty at the end of the stream).
pub(crate) fn poll_read<R: AsyncRead>(
    io: Pin<&mut R>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<BytesMut>> {
    READS.with_borrow_mut(|block| {
        make_room(block, MIN_ROOM);
        tokio_util::io::poll_read_buf(io, cx, block).map_ok(|_| block.split())
    })
}

/// `len` bytes written by `write`, as a buffer cut from the thread's block of answers (its own
/// allocation past [`MAX_CUT`] bytes). `write` writes about `len` bytes and does not cut.
pub(crate) fn cut(len: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
    if len > MAX_CUT {
        let mut own = BytesMut::with_capacity(len);
        write(&mut own);
        return own.freeze();
    }
    ANSWERS.with_borrow_mut(|block| {
        make_room(block, len);
        write(block);
        block.split().freeze()
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

    #[tokio::test(flavor = "current_thread")]
    async fn answers_come_from_a_block_of_their_own_and_a_long_one_is_its_own() {
        let first = cut(4, |out| out.extend_from_slice(b"43[]"));
        assert_eq!(&first[..], b"43[]");
        let start = first.as_ptr();
        // A read while an answer is held: the answers' block is not the reads'.
        let read = read(b"42[\"echo\"]").await;
        assert!(!(start as usize..start as usize + BLOCK).contains(&(read.as_ptr() as usize)));
        drop(first);
        let mut n = 0;
        while cut(4, |out| out.extend_from_slice(b"43[]")).as_ptr() != start {
            n += 1;
            assert!(n <= BLOCK / 4, "the free block is used again in place");
        }
        let long = cut(MAX_CUT + 1, |out| out.resize(MAX_CUT + 1, b'x'));
        assert_eq!(long.len(), MAX_CUT + 1);
        assert!(long.is_unique(), "an allocation of its own");
    }
}
