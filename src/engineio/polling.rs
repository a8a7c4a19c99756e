//! HTTP long-polling: a GET waits for the server's next packets, a POST carries the client's.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Full, Limited};

use super::config::Transport;
use super::engine::{Conn, Engine, SYNC_LIMIT, Stats, TEXT_PLAIN};
use super::error::Error;
use super::packet::Packet;
use super::session::{CloseReason, Session};
use super::{EngineHandler, RequestBody, payload};
use crate::limits::Limit;

/// Answer a long-poll GET: wait for queued packets (or an upgrade, or the close) and send
/// them as one payload. A second GET while one is pending closes the session.
pub(crate) async fn poll(session: &Session, stats: &Stats) -> Result<Response<Full<Bytes>>, Error> {
    let Ok(_reading) = session.reader.try_lock() else {
        tracing::debug!(session = %session.sid(), "Overlapping long-poll GET");
        session.close(CloseReason::TransportError);
        return Err(Error::PollOverlap);
    };
    let upgraded = session.poll_released();
    tokio::pin!(upgraded);
    upgraded.as_mut().enable();
    if session.transport() != Transport::Polling {
        // Upgraded since the dispatch looked, its release gone by before this poll waited
        // for it: what is queued belongs to the WebSocket.
        return Err(Error::BadRequest);
    }

    let mut body = BytesMut::new();
    if session.is_probed() {
        // Probed since the request's dispatch looked: as there, the WebSocket first reads
        // what it holds (a `5` sent before this poll refuses it).
        session.sync_with_websocket(SYNC_LIMIT).await;
    } else if !session.is_closed() {
        tracing::trace!(session = %session.sid(), "Long-poll waiting");
        let waiting = Waiting::new(session, stats);
        tokio::select! {
            biased;
            () = session.queued() => {}
            _ = &mut upgraded => {}
            _ = session.closed() => {}
        }
        waiting.done();
    }
    if session.transport() != Transport::Polling {
        // Upgraded meanwhile: what is queued belongs to the WebSocket.
        return Err(Error::BadRequest);
    }
    // What is queued goes in one response, up to about `max_payload`.
    let limit = session.config().max_payload;
    session.drain(limit, |packet| payload::encode_into(&packet, &mut body));
    if session.is_closed() {
        session.finished().await;
        // The reference server releases a poll with NOOP when the client itself closed,
        // and with CLOSE when the server did.
        let last = if session.close_reason() == Some(CloseReason::TransportClose) {
            Packet::Noop
        } else {
            Packet::Close
        };
        payload::encode_into(&last, &mut body);
    } else if body.is_empty() {
        // Released by an upgrade: the client pauses polling on this NOOP.
        payload::encode_into(&Packet::Noop, &mut body);
    }
    stats
        .bytes_out
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    Ok(text_response(body.freeze()))
}

/// A poll waiting for packets: counted in [`Stats::polls_waiting`]. Dropped before `done`,
/// the request went away while it waited — hyper drops it when the client closes the
/// connection — and the session ends, as engine.io's does ("poll connection closed
/// prematurely"), rather than lingering until the heartbeat notices.
struct Waiting<'a> {
    session: &'a Session,
    stats: &'a Stats,
    done: bool,
}

impl<'a> Waiting<'a> {
    fn new(session: &'a Session, stats: &'a Stats) -> Self {
        stats.polls_waiting.fetch_add(1, Ordering::Relaxed);
        Waiting {
            session,
            stats,
            done: false,
        }
    }

    fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stats.polls_waiting.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            tracing::debug!(session = %self.session.sid(), "Poll connection closed prematurely");
            self.session.close(CloseReason::TransportError);
        }
    }
}

/// Read a POST body of packets and hand them to the engine. Over `max_payload` answers 413
/// and closes the session; a malformed payload closes it with "parse error".
pub(crate) async fn post<H: EngineHandler, B: RequestBody>(
    engine: &Arc<Engine<H>>,
    conn: &Arc<Conn<H::Data>>,
    body: B,
) -> Result<Response<Full<Bytes>>, Error> {
    let session = &conn.session;
    if session.posting.swap(true, Ordering::AcqRel) {
        session.close(CloseReason::TransportError);
        return Err(Error::PostOverlap);
    }
    tracing::trace!(session = %session.sid(), "Reading a POST body");
    let read = Limited::new(body, session.config().max_payload).collect();
    let result = tokio::time::timeout(session.config().body_timeout, read).await;
    session.posting.store(false, Ordering::Release);
    let body = match result {
        Ok(Ok(collected)) => {
            let bytes = collected.to_bytes();
            engine
                .stats()
                .bytes_in
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            bytes
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            tracing::debug!(session = %session.sid(), "POST body over max_payload");
            engine.hits().hit(
                Limit::MaxPayload,
                &session.handshake().client_ip,
                &"POST body over max_payload",
            );
            session.close(CloseReason::TransportError);
            return Err(Error::PayloadTooLarge);
        }
        Ok(Err(_)) => {
            session.close(CloseReason::TransportClose);
            return Err(Error::BadRequest);
        }
        Err(_) => {
            engine.hits().hit(
                Limit::BodyTimeout,
                &session.handshake().client_ip,
                &"POST body not received within body_timeout",
            );
            session.close(CloseReason::TransportError);
            return Err(Error::BodyTimeout);
        }
    };
    let packets = match payload::decode(body) {
        Ok(packets) => packets,
        Err(e) => {
            tracing::debug!(session = %session.sid(), error = %e, "Malformed polling payload");
            session.close(CloseReason::ParseError);
            return Err(Error::BadRequest);
        }
    };
    for packet in packets {
        // Work the layer above could not finish at once (a script) completes before the
        // next packet: events of one session are handled in order.
        if let Some(pending) = engine.on_packet(conn, packet) {
            pending.await;
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Ok(resp)
}

/// A poll answered with a NOOP alone.
pub(crate) fn noop_response() -> Response<Full<Bytes>> {
    text_response(Bytes::from_static(b"6"))
}

fn text_response(body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    resp.headers_mut().insert(header::CONTENT_TYPE, TEXT_PLAIN);
    resp
}
