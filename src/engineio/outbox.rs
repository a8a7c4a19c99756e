//! A session's outbound queue, bounded in bytes rather than packets: a burst of small
//! messages fits, a reader that falls megabytes behind does not. Packets of one Socket.IO
//! message (text and attachments) go in together or not at all. One consumer at a time
//! drains it, a whole batch per lock.

use std::collections::VecDeque;
use std::sync::Mutex;

use std::task::{Poll, Waker};

use atomic_waker::AtomicWaker;

use super::packet::Packet;

/// What a queued packet costs beyond its bytes (the queue slot, the packet itself).
const PACKET_OVERHEAD: usize = 32;

/// Why packets were not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is closed.
    Closed,
    /// They would take the queue past its limit.
    Full,
    /// Volatile packets, and the queue is past its high-water mark.
    Behind,
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Packet>,
    bytes: usize,
    closed: bool,
}

/// The bounded queue.
#[derive(Debug)]
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    /// The one task that drains the queue (a waiting poll or the WebSocket writer; the
    /// session's reader lock makes it one): woken when a packet comes to an empty queue,
    /// at the close, or when [`Outbox::wake`] is called.
    waker: AtomicWaker,
    limit: usize,
    volatile_limit: usize,
}

/// What `packet` counts for against the limit.
pub(crate) fn cost(packet: &Packet) -> usize {
    packet.encoded_len() + PACKET_OVERHEAD
}

impl Outbox {
    /// A queue of at most `limit` bytes; volatile packets are refused past `volatile_limit`.
    pub(crate) fn new(limit: usize, volatile_limit: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            waker: AtomicWaker::new(),
            limit: limit.max(1),
            volatile_limit,
        }
    }

    /// Queue `packets` as one unit.
    pub(crate) fn push(&self, packets: &[Packet], volatile: bool) -> Result<(), Refused> {
        let size = packets.iter().map(cost).sum();
        self.push_with(size, volatile, |queue| {
            queue.extend(packets.iter().cloned())
        })
    }

    /// Queue one packet, moved in (a packet made for this session alone is not shared).
    /// A packet `cut` from the thread's block is queued as it is only in front of an empty
    /// queue — written at once, it lets its block go — and copied out behind others.
    pub(crate) fn push_one(&self, packet: Packet, cut: bool) -> Result<(), Refused> {
        self.push_with(cost(&packet), false, |queue| {
            let packet = if cut && !queue.is_empty() {
                packet.copied()
            } else {
                packet
            };
            queue.push_back(packet);
        })
    }

    /// Queue what `put` adds, `size` bytes of it, if the limits let it in.
    fn push_with(
        &self,
        size: usize,
        volatile: bool,
        put: impl FnOnce(&mut VecDeque<Packet>),
    ) -> Result<(), Refused> {
        let mut inner = self.inner.lock().expect("outbox lock");
        if inner.closed {
            return Err(Refused::Closed);
        }
        if volatile && inner.bytes > self.volatile_limit {
            return Err(Refused::Behind);
        }
        // An empty queue takes one message whatever its size, so a limit below one
        // message cannot wedge a session.
        if inner.bytes + size > self.limit && !inner.queue.is_empty() {
            return Err(Refused::Full);
        }
        let was_empty = inner.queue.is_empty();
        put(&mut inner.queue);
        inner.bytes += size;
        drop(inner);
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Move packets into `out` until about `max_bytes` of them are taken (at least one, if
    /// any is queued); returns how many.
    pub(crate) fn drain(&self, max_bytes: usize, mut out: impl FnMut(Packet)) -> usize {
        let mut inner = self.inner.lock().expect("outbox lock");
        let mut taken = 0;
        let mut bytes = 0;
        while bytes < max_bytes {
            let Some(packet) = inner.queue.pop_front() else {
                break;
            };
            let size = cost(&packet);
            bytes += size;
            inner.bytes -= size;
            taken += 1;
            out(packet);
        }
        taken
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.lock().expect("outbox lock").queue.is_empty()
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().expect("outbox lock").bytes
    }

    /// Resolves once something is queued (at once if something already is).
    pub(crate) async fn ready(&self) {
        std::future::poll_fn(|cx| {
            self.register(cx.waker());
            if self.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }

    /// `waker` is the draining task's: woken by the next push to an empty queue, the close,
    /// or [`Outbox::wake`]. Register, then check what to wait for: nothing is missed.
    pub(crate) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// Wake the draining task (it has something else to do).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Refuse everything from now on; what is queued stays to be drained.
    pub(crate) fn close(&self) {
        self.inner.lock().expect("outbox lock").closed = true;
        self.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(n: usize) -> Packet {
        Packet::Message(Bytes::from(vec![b'x'; n]))
    }

    #[test]
    fn the_limit_is_in_bytes_not_packets() {
        let unit = cost(&msg(10));
        let outbox = Outbox::new(unit * 3, unit);
        for _ in 0..3 {
            assert_eq!(outbox.push(&[msg(10)], false), Ok(()));
        }
        assert_eq!(outbox.push(&[msg(10)], false), Err(Refused::Full));
        assert_eq!(outbox.bytes(), unit * 3);
        let mut got = Vec::new();
        assert_eq!(outbox.drain(unit * 2, |p| got.push(p)), 2);
        assert_eq!(outbox.bytes(), unit);
        assert_eq!(
            outbox.push(&[msg(10), msg(10)], false),
            Ok(()),
            "two fit again"
        );
        assert_eq!(outbox.push(&[msg(1)], false), Err(Refused::Full));
    }

    #[test]
    fn a_piece_of_the_block_waits_only_in_front_of_the_queue() {
        let outbox = Outbox::new(1024, 1024);
        let piece = |text: &'static [u8]| {
            let cut = crate::engineio::block::cut(text.len(), |out| out.extend_from_slice(text));
            Packet::Message(cut)
        };
        outbox.push_one(piece(b"4a"), true).unwrap();
        outbox.push_one(piece(b"4b"), true).unwrap();
        outbox.push_one(piece(b"4c"), false).unwrap();
        let mut got = Vec::new();
        outbox.drain(usize::MAX, |p| got.push(p));
        let unique: Vec<bool> = got
            .iter()
            .map(|p| match p {
                Packet::Message(data) => data.is_unique(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            unique,
            [false, true, false],
            "the piece behind another was copied"
        );
        assert_eq!(got[1], Packet::Message(Bytes::from_static(b"4b")));
    }

    #[test]
    fn a_message_goes_in_whole_or_not_at_all() {
        let outbox = Outbox::new(cost(&msg(10)) * 2, 0);
        outbox.push(&[msg(10)], false).unwrap();
        assert_eq!(outbox.push(&[msg(10), msg(10)], false), Err(Refused::Full));
        assert_eq!(
            outbox.drain(usize::MAX, drop),
            1,
            "nothing of the refused one went in"
        );
    }

    #[test]
    fn volatile_packets_are_dropped_past_the_high_water_mark() {
        let outbox = Outbox::new(10_000, 50);
        assert_eq!(outbox.push(&[msg(10)], true), Ok(()));
        assert_eq!(
            outbox.push(&[msg(10)], true),
            Ok(()),
            "at 42 bytes, under 50"
        );
        assert_eq!(outbox.push(&[msg(10)], true), Err(Refused::Behind));
        assert_eq!(
            outbox.push(&[msg(10)], false),
            Ok(()),
            "the rest still queue"
        );
    }

    #[test]
    fn an_oversize_message_fits_an_empty_queue_and_close_refuses_more() {
        let outbox = Outbox::new(10, 0);
        assert_eq!(outbox.push(&[msg(100)], false), Ok(()));
        outbox.close();
        assert_eq!(outbox.push(&[msg(1)], false), Err(Refused::Closed));
        assert_eq!(
            outbox.drain(usize::MAX, drop),
            1,
            "what was queued can be drained"
        );
    }
}
