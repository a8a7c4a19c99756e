//! WebSocket: direct sessions and upgrades from polling (`2probe` → `3probe`, NOOP to the
//! pending poll, `5`). The connection's task reads (see [`reader`]); a writer task drains the
//! session queue in batches, one `write` call per batch, each with a deadline.

mod reader;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::task::TaskTracker;

use super::EngineHandler;
use super::engine::{Conn, Engine};
use super::error::Error;
use super::frame::{self, OpCode};
use super::packet::Packet;
use super::peer::PeerHandle;
use super::session::{CloseReason, Session};
use reader::{Message, ReadError, Reader};

/// A WebSocket's connection, whichever HTTP layer handed it over.
type Stream = Box<dyn Io>;

/// What a WebSocket's connection is: a byte stream of either direction.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The connection of an accepted WebSocket handshake, for an HTTP layer that reads requests
/// itself rather than through hyper: put in the request's extensions, it receives from the
/// engine what to run on the connection once the handshake is accepted. The layer then
/// writes nothing itself: the `101` response's head goes to the WebSocket, which sends it
/// with its first frames (a session's OPEN packet) in one write.
#[derive(Clone, Default)]
pub(crate) struct Takeover(Arc<Mutex<Option<Start>>>);

/// The WebSocket's side of a [`Takeover`]: given the connection, the bytes read past the
/// request, and the response head to send first, it spawns the WebSocket's task. Dropped
/// without being called, the handshake fails (see [`Unstarted`]).
pub(crate) type Start = Box<dyn FnOnce(Box<dyn Io>, Bytes, Vec<u8>) + Send>;

impl Takeover {
    /// What to run on the connection, if the engine accepted the handshake.
    pub(crate) fn take(&self) -> Option<Start> {
        self.0.lock().expect("takeover lock").take()
    }

    fn put(&self, start: Start) {
        *self.0.lock().expect("takeover lock") = Some(start);
    }
}

impl std::fmt::Debug for Takeover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Takeover")
    }
}

/// Accept the WebSocket handshake for `conn`'s session and spawn the connection's tasks.
/// With `conn.session` on polling this is an upgrade; otherwise a direct session.
pub(crate) fn upgrade<H: EngineHandler, B>(
    engine: Arc<Engine<H>>,
    conn: Arc<Conn<H::Data>>,
    mut req: Request<B>,
) -> Result<Response<Full<Bytes>>, Error> {
    let is_upgrade = conn.session.is_upgrading();
    let peer = req.extensions().get::<PeerHandle>().cloned();
    let takeover = req.extensions().get::<Takeover>().cloned();
    let Ok((response, fut)) = fastwebsockets::upgrade::upgrade(&mut req) else {
        handshake_failed(&conn.session, is_upgrade);
        return Err(Error::BadRequest);
    };
    // The WebSocket runs in a task of its own, which does not keep the HTTP request's room.
    let tasks = engine.tasks().clone();
    match takeover {
        Some(takeover) => {
            let unstarted = Unstarted::new(conn.session.clone(), is_upgrade);
            takeover.put(Box::new(move |io, read_ahead, head| {
                unstarted.started();
                tasks.spawn(run(engine, conn, io, read_ahead, head, is_upgrade, peer));
            }));
        }
        None => {
            tasks.spawn(async move {
                let stream: Stream = match fut.await {
                    Ok(ws) => Box::new(ws.into_inner()),
                    Err(e) => {
                        tracing::debug!(session = %conn.session.sid(), error = %e, "WebSocket upgrade failed");
                        handshake_failed(&conn.session, is_upgrade);
                        return;
                    }
                };
                // Boxed: this future would otherwise hold two of the WebSocket's.
                let run = run(engine, conn, stream, Bytes::new(), Vec::new(), is_upgrade, peer);
                Box::pin(run).await;
            });
        }
    }
    Ok(response.map(|_| Full::new(Bytes::new())))
}

/// A handshake that failed after the session was let into it: an upgrade's session stays on
/// polling, a direct session ends.
fn handshake_failed(session: &Session, is_upgrade: bool) {
    if is_upgrade {
        session.abort_upgrade();
    } else {
        session.close(CloseReason::TransportError);
    }
}

/// A handshake accepted whose WebSocket has not run yet: dropped before [`Unstarted::started`]
/// (its connection never handed over), the handshake fails as when hyper's upgrade fails.
struct Unstarted {
    session: Option<Arc<Session>>,
    is_upgrade: bool,
}

impl Unstarted {
    fn new(session: Arc<Session>, is_upgrade: bool) -> Self {
        Unstarted {
            session: Some(session),
            is_upgrade,
        }
    }

    /// The WebSocket runs: nothing to undo.
    fn started(mut self) {
        self.session = None;
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            handshake_failed(&session, self.is_upgrade);
        }
    }
}

/// Complete the WebSocket handshake and close at once: a second WebSocket for a session that
/// has one already. The close runs among `tasks`.
pub(crate) fn refuse<B>(
    tasks: &TaskTracker,
    mut req: Request<B>,
) -> Result<Response<Full<Bytes>>, Error> {
    let takeover = req.extensions().get::<Takeover>().cloned();
    let (response, fut) =
        fastwebsockets::upgrade::upgrade(&mut req).map_err(|_| Error::BadRequest)?;
    let tasks = tasks.clone();
    match takeover {
        Some(takeover) => takeover.put(Box::new(move |io, _, head| {
            tasks.spawn(close_at_once(io, head));
        })),
        None => {
            tasks.spawn(async move {
                if let Ok(ws) = fut.await {
                    close_at_once(ws.into_inner(), Vec::new()).await;
                }
            });
        }
    }
    Ok(response.map(|_| Full::new(Bytes::new())))
}

/// Send `head` (the handshake's response, if not sent yet) and a close frame, then end the
/// connection.
async fn close_at_once<W: AsyncWrite + Unpin>(mut io: W, mut head: Vec<u8>) {
    head.extend_from_slice(&frame::close_frame(frame::close_code::NORMAL));
    let _ = writer::write_now(&mut io, &head).await;
    let _ = io.shutdown().await;
}

/// The connection's task, from the end of the handshake to the end of the session: `head`,
/// the handshake's response when not sent yet, goes out first (with the OPEN packet of a
/// direct session); `read_ahead` is what was read past the request.
async fn run<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    conn: Arc<Conn<H::Data>>,
    stream: Stream,
    read_ahead: Bytes,
    head: Vec<u8>,
    is_upgrade: bool,
    peer: Option<PeerHandle>,
) {
    let session = &conn.session;
    let (read, mut write) = tokio::io::split(stream);
    let mut read = Reader::new(read, read_ahead, session.config().max_payload);
    // The writer task owns the write half alone; the frames the protocol obliges the reader
    // to answer (a pong to a WebSocket ping) reach it through `control`.
    let control = Arc::new(writer::Control::default());

    // A direct session's response goes out with its OPEN packet, in the writer's first
    // write; an upgrade's at once (the probe is answered only once it comes).
    let first = if is_upgrade {
        // Boxed: only upgrades take this path, and every connection would carry its size.
        match Box::pin(upgrade_phase(&mut read, &mut write, head, session)).await {
            Ok(()) => {
                session.finish_upgrade();
                tracing::debug!(session = %session.sid(), "Upgraded to WebSocket");
            }
            Err(()) => {
                session.abort_upgrade();
                return;
            }
        }
        Vec::new()
    } else {
        head
    };

    let write_task = engine.tasks().spawn(writer::run(
        session.clone(),
        first,
        write,
        control.clone(),
        engine.stats_handle(),
        engine.hits_handle(),
    ));
    read_loop(&engine, &conn, &mut read, &control).await;
    let _ = write_task.await;
    if session.close_reason().is_some_and(CloseReason::is_slow)
        && let Some(peer) = peer
    {
        peer.abort_on_close();
    }
}

async fn read_loop<H: EngineHandler>(
    engine: &Engine<H>,
    conn: &Arc<Conn<H::Data>>,
    read: &mut Reader<ReadHalf<Stream>>,
    control: &writer::Control,
) {
    let session = &conn.session;
    loop {
        let message = tokio::select! {
            message = read.read() => message,
            _ = session.closed() => return,
        };
        let packet = match message {
            Ok(Message::Text(text)) => {
                count_in(engine, text.len());
                match Packet::parse_text(text) {
                    Ok(packet) => packet,
                    Err(e) => {
                        tracing::debug!(session = %session.sid(), error = %e, "Malformed WebSocket packet");
                        session.close(CloseReason::ParseError);
                        return;
                    }
                }
            }
            Ok(Message::Binary(data)) => {
                count_in(engine, data.len());
                Packet::Binary(data)
            }
            Ok(Message::Ping(data)) => {
                control.pong(&data, session);
                continue;
            }
            Ok(Message::Close) => {
                session.close(CloseReason::TransportClose);
                return;
            }
            Err(ReadError::Closed) => {
                // As ws: a connection that ended without a close frame gets none.
                control.peer_gone();
                session.close(CloseReason::TransportClose);
                return;
            }
            Err(ReadError::Violation(code)) => {
                tracing::debug!(session = %session.sid(), code, "WebSocket protocol violation");
                if code == frame::close_code::TOO_BIG {
                    engine.hits().hit(
                        crate::limits::Limit::MaxPayload,
                        &session.handshake().client_ip,
                        &"WebSocket message over max_payload",
                    );
                }
                session.close_with_code(CloseReason::TransportError, code);
                return;
            }
        };
        // Work the layer above could not finish at once (a script) completes before the
        // next message is read: events of one session are handled in order.
        if let Some(pending) = engine.on_packet(conn, packet) {
            tokio::select! {
                () = pending => {}
                _ = session.closed() => return,
            }
        }
    }
}

fn count_in<H: EngineHandler>(engine: &Engine<H>, n: usize) {
    engine
        .stats()
        .bytes_in
        .fetch_add(n as u64, Ordering::Relaxed);
}

/// An upgrade's phase on the WebSocket: its response `head` (if not sent yet), then the
/// probe. On failure, a close frame is sent if the response was.
async fn upgrade_phase(
    read: &mut Reader<ReadHalf<Stream>>,
    write: &mut WriteHalf<Stream>,
    head: Vec<u8>,
    session: &Session,
) -> Result<(), ()> {
    if !head.is_empty() {
        writer::write_now(write, &head).await.map_err(drop)?;
    }
    if probe(read, write, session).await.is_err() {
        let close = frame::close_frame(frame::close_code::NORMAL);
        let _ = writer::write_now(write, &close).await;
        return Err(());
    }
    Ok(())
}

/// Where a probe phase stands after a message.
enum Probe {
    Going,
    Upgraded,
}

/// The probe phase of an upgrade: answer `2probe`, release the pending poll, wait for `5`.
///
/// Order across the client's two connections (see `engine.rs`): what has arrived on the
/// WebSocket is read before a poll is answered. A `5` that came right behind the probe
/// (the client went on without waiting for its poll) is taken in before the pending poll
/// is released, and a poll that comes once probed first has the WebSocket read what it
/// already holds — so a poll the client sent after its `5` is refused, as it would be by a
/// server that read its connections one at a time.
async fn probe(
    read: &mut Reader<ReadHalf<Stream>>,
    writer: &mut WriteHalf<Stream>,
    session: &Session,
) -> Result<(), ()> {
    let steps = async {
        loop {
            let message = tokio::select! {
                biased;
                () = session.sync_requested(), if session.is_probed() => {
                    while let Some(message) = already_here(read).await {
                        if let Probe::Upgraded = step(message.map_err(drop)?, read, writer, session).await? {
                            return Ok(());
                        }
                    }
                    session.synced();
                    continue;
                }
                message = read.read() => message.map_err(drop)?,
            };
            if let Probe::Upgraded = step(message, read, writer, session).await? {
                return Ok(());
            }
        }
    };
    tokio::select! {
        result = tokio::time::timeout(session.config().upgrade_timeout, steps) => {
            result.unwrap_or(Err(()))
        }
        _ = session.closed() => Err(()),
    }
}

/// One message of the probe phase.
async fn step(
    message: Message,
    read: &mut Reader<ReadHalf<Stream>>,
    writer: &mut WriteHalf<Stream>,
    session: &Session,
) -> Result<Probe, ()> {
    match message {
        Message::Text(text) => match Packet::parse_text(text) {
            Ok(Packet::Ping(data)) if data == "probe" => {
                let mut buf = Vec::new();
                writer::put_packet(&Packet::Pong(data), &mut buf);
                writer::write_now(writer, &buf).await.map_err(drop)?;
                session.mark_probed();
                // What came right behind the probe is read before the poll is released.
                while let Some(next) = already_here(read).await {
                    let next = next.map_err(drop)?;
                    if let Probe::Upgraded = Box::pin(step(next, read, writer, session)).await? {
                        return Ok(Probe::Upgraded);
                    }
                }
                session.release_poll();
                Ok(Probe::Going)
            }
            Ok(Packet::Upgrade) if session.is_probed() => Ok(Probe::Upgraded),
            Ok(Packet::Noop) => Ok(Probe::Going),
            _ => Err(()),
        },
        Message::Ping(data) => {
            let mut pong = Vec::new();
            frame::put_frame(&mut pong, true, OpCode::Pong, &data, None);
            writer::write_now(writer, &pong).await.map_err(drop)?;
            Ok(Probe::Going)
        }
        _ => Err(()),
    }
}

/// The next message if it has already arrived, without waiting for one (reading is
/// cancel-safe: a message not complete yet stays buffered).
async fn already_here(read: &mut Reader<ReadHalf<Stream>>) -> Option<Result<Message, ReadError>> {
    tokio::select! {
        biased;
        message = read.read() => Some(message),
        () = std::future::ready(()) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_whose_websocket_never_ran_fails() {
        // A direct session ends.
        let session = crate::engineio::test_support::session();
        drop(Unstarted::new(session.clone(), false));
        assert_eq!(session.close_reason(), Some(CloseReason::TransportError));
        // An upgrade's session stays on polling, free to try again.
        let session = crate::engineio::test_support::session();
        assert!(session.begin_upgrade());
        drop(Unstarted::new(session.clone(), true));
        assert!(!session.is_upgrading() && !session.is_closed());
        assert!(session.begin_upgrade(), "another upgrade may begin");
    }

    #[test]
    fn a_handshake_whose_websocket_ran_is_left_alone() {
        let session = crate::engineio::test_support::session();
        Unstarted::new(session.clone(), false).started();
        assert!(!session.is_closed());
    }
}
