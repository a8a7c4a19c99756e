//! Writing to a WebSocket: the session queue drained in batches of up to 64 KiB, framed
//! here and written with one call each. Every write has a deadline; a peer that stops
//! reading is let go when its write stalls past `write_timeout` or its queue overflows —
//! and then at once: the stalled write is abandoned, no close handshake is attempted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::super::engine::Stats;
use super::super::frame::{self, OpCode};
use super::super::packet::Packet;
use super::super::session::{CloseReason, Session};
use crate::limits::{Hits, Limit};

/// Bytes gathered before one write call; more stays queued for the next.
const BATCH_BYTES: usize = 64 * 1024;

/// Append `packet` as one unmasked WebSocket frame: binary messages as binary frames, the
/// rest as text frames of type digit and data.
pub(crate) fn put_packet(packet: &Packet, out: &mut Vec<u8>) {
    match packet {
        Packet::Binary(data) => frame::put_frame(out, true, OpCode::Binary, data, None),
        text => {
            let data = text.text_data();
            frame::put_head(out, true, OpCode::Text, data.len() + 1, None);
            out.push(text.type_digit().expect("text packet"));
            out.extend_from_slice(data);
        }
    }
}

/// Most bytes of control frames waiting for the writer: four pongs of the largest ping. A
/// peer that pings faster than its pongs can be written loses pongs (RFC 6455 §5.5.3 lets
/// an endpoint answer only the latest ping).
const CONTROL_BYTES: usize = 4 * (125 + 2);

/// Control frames the reader owes the peer (pongs to its pings), handed to the writer task,
/// which the session's queue wakes: a mutex and a flag (a channel would cost an idle
/// connection a kilobyte).
#[derive(Debug, Default)]
pub(crate) struct Control {
    frames: Mutex<Vec<u8>>,
    owed: AtomicBool,
    /// The peer's side of the connection ended (or failed) under the reader: no close frame
    /// is written to it.
    gone: AtomicBool,
}

impl Control {
    /// Owe the peer a pong carrying `data` (at most 125 bytes, as the reader checked), and
    /// wake `session`'s writer.
    pub(crate) fn pong(&self, data: &[u8], session: &Session) {
        let mut frames = self.frames.lock().expect("control lock");
        if frames.len() + data.len() + 2 > CONTROL_BYTES {
            return;
        }
        frame::put_frame(&mut frames, true, OpCode::Pong, data, None);
        self.owed.store(true, Ordering::Release);
        drop(frames);
        session.wake_writer();
    }

    /// The peer's side of the connection ended without a close frame: the writer sends it
    /// no close frame (only what was queued for it), as ws does.
    pub(crate) fn peer_gone(&self) {
        self.gone.store(true, Ordering::Release);
    }

    /// Whether frames are owed.
    fn is_owed(&self) -> bool {
        self.owed.load(Ordering::Acquire)
    }

    /// Move what is owed to the end of `out`.
    fn take_into(&self, out: &mut Vec<u8>) {
        let mut frames = self.frames.lock().expect("control lock");
        self.owed.store(false, Ordering::Release);
        if !frames.is_empty() {
            out.extend_from_slice(&frames);
            *frames = Vec::new();
        }
    }
}

/// How a write ended.
enum Written {
    Done,
    /// The connection failed.
    Failed,
    /// The write stalled past the deadline, or the session was closed as too slow while it
    /// was stalled.
    Stalled,
}

/// Write `bytes` and flush them (see [`write_with_deadline`] for why the flush), for the
/// few frames written before the writer task runs or after it has gone.
pub(super) async fn write_now<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Write `buf` whole and flush it: a TLS stream, like a `BufWriter`, may keep what the
/// socket could not take yet, and only a flush sends it once the socket can. Most writes
/// complete at once; one that must wait does so under `write_timeout`, and gives up at once
/// if the session is meanwhile closed as too slow.
async fn write_with_deadline<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &[u8],
    session: &Session,
) -> Written {
    let write = write_now(writer, buf);
    tokio::pin!(write);
    let outcome = |result: std::io::Result<()>| match result {
        Ok(()) => Written::Done,
        // The connection's own write deadline (the HTTP edge's) may fire first.
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Written::Stalled,
        Err(_) => Written::Failed,
    };
    // The common case costs no timer and no wait registration.
    if let Poll::Ready(result) =
        std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await
    {
        return outcome(result);
    }
    let deadline = tokio::time::sleep(session.config().write_timeout);
    tokio::pin!(deadline);
    let closed = session.closed();
    tokio::pin!(closed);
    let mut closed_seen = session.is_closed();
    loop {
        tokio::select! {
            biased;
            result = &mut write => return outcome(result),
            _ = &mut deadline => return Written::Stalled,
            _ = &mut closed, if !closed_seen => {
                closed_seen = true;
                if session.close_reason().is_some_and(CloseReason::is_slow) {
                    return Written::Stalled;
                }
            }
        }
    }
}

/// Drain the session queue to the socket until the session closes, then send what is
/// left and a close frame — unless the peer was let go as too slow. `first` (the handshake's
/// response, when not sent yet) goes out at the head of the first write.
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    session: Arc<Session>,
    first: Vec<u8>,
    mut writer: W,
    control: Arc<Control>,
    stats: Arc<Stats>,
    hits: Arc<Hits>,
) {
    let _reading = session.reader.lock().await;
    // The response head is not WebSocket traffic: not counted in `bytes_out`.
    let mut head_len = first.len();
    // Empty, without room, while the writer waits: a batch is framed in the thread's
    // scratch buffer, which goes back once written.
    let mut buf = first;
    loop {
        // One waker for all the writer waits on — pongs owed, packets queued, the close —
        // registered before each is checked, so no wake is missed: a wait costs no lock but
        // the queue's.
        let closed = std::future::poll_fn(|cx| {
            session.register_writer(cx.waker());
            if control.is_owed() || !session.nothing_queued() {
                Poll::Ready(false)
            } else if session.is_closed() {
                Poll::Ready(true)
            } else {
                Poll::Pending
            }
        })
        .await;
        if closed {
            break;
        }
        if buf.capacity() == 0 {
            buf = scratch::take();
        }
        if control.is_owed() {
            control.take_into(&mut buf);
        }
        session.drain(BATCH_BYTES, |packet| put_packet(&packet, &mut buf));
        if buf.is_empty() {
            scratch::give_back(std::mem::take(&mut buf));
            continue;
        }
        stats
            .bytes_out
            .fetch_add((buf.len() - head_len) as u64, Ordering::Relaxed);
        head_len = 0;
        match write_with_deadline(&mut writer, &buf, &session).await {
            Written::Done => {}
            Written::Failed => {
                session.close(CloseReason::TransportClose);
                return;
            }
            Written::Stalled => {
                if !session.is_closed() {
                    hits.hit(
                        Limit::WriteTimeout,
                        &session.handshake().client_ip,
                        &"a WebSocket write stalled past write_timeout",
                    );
                }
                session.close(CloseReason::WriteTimeout);
                return;
            }
        }
        buf.clear();
        scratch::give_back(std::mem::take(&mut buf));
    }
    if session.close_reason().is_some_and(CloseReason::is_slow) {
        // Nothing more is owed to a peer that does not read.
        return;
    }
    if buf.capacity() == 0 {
        buf = scratch::take();
    }
    session.drain(usize::MAX, |packet| put_packet(&packet, &mut buf));
    // A peer that ended its side without a close frame is sent none (as ws), only what was
    // queued for it.
    let gone = control.gone.load(Ordering::Acquire);
    if !gone {
        buf.extend_from_slice(&frame::close_frame(session.ws_close_code()));
    }
    session.finished().await;
    if !buf.is_empty()
        && let Written::Done = write_with_deadline(&mut writer, &buf, &session).await
        && !gone
    {
        let _ = tokio::time::timeout(session.config().write_timeout, writer.shutdown()).await;
    }
    buf.clear();
    scratch::give_back(buf);
}

/// The buffer a thread's writers frame their batches in, one at a time: taken for a batch
/// and given back once it is written, so that an idle WebSocket holds no write buffer and a
/// batch allocates nothing. A writer whose write must wait keeps the buffer it took; the
/// next writer on the thread then starts a new one. What is given back is kept up to
/// [`scratch::MAX`](MAX), one per thread.
mod scratch {
    use std::cell::Cell;

    /// Most room a thread keeps: a batch's (64 KiB) and then some.
    pub(super) const MAX: usize = 2 * super::BATCH_BYTES;

    thread_local! {
        static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    }

    /// The thread's buffer (empty; without room if another writer has it).
    pub(super) fn take() -> Vec<u8> {
        SCRATCH.take()
    }

    /// Give `buf` back to the thread, emptied: kept if it is the larger of the two and not
    /// over [`MAX`].
    pub(super) fn give_back(mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > MAX {
            return;
        }
        buf.clear();
        let kept = SCRATCH.take();
        SCRATCH.set(if kept.capacity() >= buf.capacity() {
            kept
        } else {
            buf
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn text_and_binary_packets_become_one_frame_each() {
        let mut out = Vec::new();
        put_packet(&Packet::Message(Bytes::from_static(b"hi")), &mut out);
        put_packet(&Packet::Binary(Bytes::from_static(&[1, 2, 3])), &mut out);
        assert_eq!(out, b"\x81\x034hi\x82\x03\x01\x02\x03");
        let mut long = Vec::new();
        put_packet(&Packet::Message(Bytes::from(vec![b'x'; 70_000])), &mut long);
        assert_eq!(&long[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x71]);
        assert_eq!(long.len(), 10 + 70_001);
    }

    /// A stream that, like TLS, keeps what it is given until flushed.
    #[derive(Default)]
    struct Buffering {
        held: Vec<u8>,
        wire: Arc<Mutex<Vec<u8>>>,
        /// The length of each write call.
        writes: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncWrite for Buffering {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.held.extend_from_slice(buf);
            self.writes.lock().unwrap().push(buf.len());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            let held = std::mem::take(&mut self.held);
            self.wire.lock().unwrap().extend_from_slice(&held);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[tokio::test]
    async fn what_a_buffering_stream_holds_is_flushed_after_each_batch() {
        let session = crate::engineio::test_support::session();
        let io = Buffering::default();
        let wire = io.wire.clone();
        let control = Arc::new(Control::default());
        let task = tokio::spawn(run(
            session.clone(),
            Vec::new(),
            io,
            control,
            Arc::new(Stats::default()),
            Arc::new(Hits::default()),
        ));
        session
            .send(Packet::Message(Bytes::from_static(b"hi")))
            .unwrap();
        // The writer's turns, bounded: the frame reaches the wire or the test fails.
        for _ in 0..100 {
            if !wire.lock().unwrap().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(&wire.lock().unwrap()[..], b"\x81\x034hi", "flushed");
        task.abort();
    }

    #[test]
    fn a_thread_keeps_one_scratch_buffer_of_bounded_size() {
        std::thread::spawn(|| {
            assert_eq!(scratch::take().capacity(), 0, "none at first");
            scratch::give_back(Vec::with_capacity(100));
            scratch::give_back(Vec::with_capacity(50));
            assert_eq!(
                scratch::take().capacity(),
                100,
                "the larger is kept, one only"
            );
            assert_eq!(scratch::take().capacity(), 0, "taken");
            scratch::give_back(Vec::with_capacity(scratch::MAX + 1));
            assert_eq!(scratch::take().capacity(), 0, "over the bound: dropped");
        })
        .join()
        .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_writer_gives_its_buffer_back_once_its_batch_is_written() {
        let session = crate::engineio::test_support::session();
        let io = Buffering::default();
        let wire = io.wire.clone();
        drop(scratch::take());
        let task = tokio::spawn(run(
            session.clone(),
            Vec::new(),
            io,
            Arc::new(Control::default()),
            Arc::new(Stats::default()),
            Arc::new(Hits::default()),
        ));
        session
            .send(Packet::Message(Bytes::from(vec![b'x'; 10_000])))
            .unwrap();
        for _ in 0..100 {
            if !wire.lock().unwrap().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(wire.lock().unwrap().len(), 4 + 10_001, "written");
        // The idle writer holds none of the batch's room: the thread has it.
        assert!(scratch::take().capacity() >= 10_000);
        task.abort();
    }

    #[tokio::test]
    async fn a_response_head_goes_out_with_the_first_frames_in_one_write() {
        let session = crate::engineio::test_support::session();
        session
            .send(Packet::Message(Bytes::from_static(b"hi")))
            .unwrap();
        let io = Buffering::default();
        let (wire, writes) = (io.wire.clone(), io.writes.clone());
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(run(
            session.clone(),
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec(),
            io,
            Arc::new(Control::default()),
            stats.clone(),
            Arc::new(Hits::default()),
        ));
        for _ in 0..100 {
            if !wire.lock().unwrap().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            &wire.lock().unwrap()[..],
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x034hi"
        );
        assert_eq!(writes.lock().unwrap().len(), 1, "one write");
        // The head is HTTP, not WebSocket traffic.
        assert_eq!(stats.bytes_out.load(Ordering::Relaxed), 5);
        task.abort();
    }

    #[test]
    fn pongs_owed_are_bounded_and_taken_once() {
        let control = Control::default();
        let session = crate::engineio::test_support::session();
        assert!(!control.is_owed());
        control.pong(b"a", &session);
        assert!(control.is_owed());
        let mut out = Vec::new();
        control.take_into(&mut out);
        assert!(!control.is_owed());
        assert_eq!(out, b"\x8a\x01a");
        control.take_into(&mut out);
        assert_eq!(out.len(), 3, "taken once");

        for _ in 0..10 {
            control.pong(&[0; 125], &session);
        }
        let mut out = Vec::new();
        control.take_into(&mut out);
        assert_eq!(
            out.len(),
            4 * 127,
            "four pongs of the largest ping wait, no more"
        );
    }
}
