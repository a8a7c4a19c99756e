//! One Engine.IO session: its outbound queue (bounded in bytes), transport state and close
//! reason.
//!
//! Whatever transport is active is the queue's one reader: a pending long-poll GET while
//! polling, the WebSocket writer task after an upgrade. Senders never block: a full queue
//! means the peer is too slow, and the session is closed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use super::config::{EngineConfig, Transport};
use super::headers::Headers;
use super::outbox::{Outbox, Refused};
use super::packet::Packet;
use super::sid::Sid;

/// Why a session ended, in socket.io's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The transport failed (a protocol violation, an oversize message, an I/O error).
    TransportError,
    /// The peer closed the transport (close packet, WebSocket close, connection lost).
    TransportClose,
    /// The server closed the session (e.g. no namespace joined in time).
    ForcedClose,
    /// No pong arrived within `ping_timeout`.
    PingTimeout,
    /// The peer sent something that is not a packet.
    ParseError,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The outbound queue filled up: the peer reads slower than it is sent to.
    SlowClient,
    /// A write to the peer stalled past `write_timeout`.
    WriteTimeout,
}

impl CloseReason {
    /// The reason as socket.io reports it to `disconnect` handlers.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportError | CloseReason::SlowClient | CloseReason::WriteTimeout => {
                "transport error"
            }
            CloseReason::TransportClose => "transport close",
            CloseReason::ForcedClose => "forced close",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ServerShuttingDown => "server shutting down",
        }
    }
}

impl CloseReason {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [CloseReason; 8] = [
        CloseReason::TransportError,
        CloseReason::TransportClose,
        CloseReason::ForcedClose,
        CloseReason::PingTimeout,
        CloseReason::ParseError,
        CloseReason::ServerShuttingDown,
        CloseReason::SlowClient,
        CloseReason::WriteTimeout,
    ];

    /// Whether the peer was let go for reading too slowly.
    pub fn is_slow(self) -> bool {
        matches!(self, CloseReason::SlowClient | CloseReason::WriteTimeout)
    }

    /// The label `/metrics` counts closes under.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::TransportError => "transport_error",
            CloseReason::TransportClose => "transport_close",
            CloseReason::ForcedClose => "forced_close",
            CloseReason::PingTimeout => "ping_timeout",
            CloseReason::ParseError => "parse_error",
            CloseReason::ServerShuttingDown => "server_shutting_down",
            CloseReason::SlowClient | CloseReason::WriteTimeout => "slow",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the HTTP request that opened the session carried.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Request headers, as many as `handshake_headers_bytes` allows.
    pub headers: Headers,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The client's address: the peer's, or what a trusted proxy says in `X-Forwarded-For`.
    pub client_ip: std::net::IpAddr,
    /// When the session was opened.
    pub issued: SystemTime,
    /// The request URL (path and query).
    pub url: String,
}

impl Handshake {
    /// The first value of a query parameter.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A packet could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The queue was full; the session has been closed as too slow.
    #[error("outbound queue full")]
    Full,
    /// A volatile packet, dropped because the peer is behind; the session goes on.
    #[error("peer behind; volatile packet dropped")]
    Behind,
}

/// What long-polls and an upgrading WebSocket wake each other with.
#[derive(Debug, Default)]
struct UpgradeSignals {
    /// Wakes a pending long-poll when an upgrade probe succeeds.
    released: Notify,
    /// Wakes polls that wait for an upgrade in progress to end, one way or the other.
    settled: Notify,
    /// A poll asks the upgrading WebSocket to read what it has already received.
    sync: Notify,
    /// The WebSocket has read it.
    synced: Notify,
}

/// One Engine.IO session.
#[derive(Debug)]
pub struct Session {
    sid: Sid,
    handshake: Handshake,
    config: Arc<EngineConfig>,
    outbox: Outbox,
    /// Held by whichever transport drains the queue: one reader at a time.
    pub(crate) reader: Mutex<()>,
    transport: AtomicU8,
    upgrading: AtomicBool,
    probed: AtomicBool,
    /// What polls and an upgrade tell each other; made by the first poll, so that a session
    /// that starts on WebSocket never holds it.
    signals: OnceLock<Box<UpgradeSignals>>,
    /// Wakes the heartbeat when a pong arrives.
    pub(crate) pong: Notify,
    /// Set while a POST body is being read.
    pub(crate) posting: AtomicBool,
    closed: CancellationToken,
    close_reason: OnceLock<CloseReason>,
    /// The WebSocket close code to send, when the reason alone does not say it.
    close_code: AtomicU16,
    /// Set once the layer above has claimed the session (joined a namespace).
    claimed: AtomicBool,
    /// Cancelled once the layer above has handled the close.
    finished: CancellationToken,
    /// When the session opened; heartbeat deadlines count from here.
    started: Instant,
    /// Milliseconds after `started` by which a pong is due; 0 when none is awaited.
    pong_deadline_ms: AtomicU64,
}

impl Session {
    pub(crate) fn new(
        sid: Sid,
        transport: Transport,
        handshake: Handshake,
        config: Arc<EngineConfig>,
    ) -> Session {
        Session {
            sid,
            handshake,
            outbox: Outbox::new(config.queue_bytes, config.volatile_bytes),
            config,
            reader: Mutex::new(()),
            transport: AtomicU8::new(transport as u8),
            upgrading: AtomicBool::new(false),
            probed: AtomicBool::new(false),
            signals: OnceLock::new(),
            pong: Notify::new(),
            posting: AtomicBool::new(false),
            closed: CancellationToken::new(),
            close_reason: OnceLock::new(),
            close_code: AtomicU16::new(0),
            claimed: AtomicBool::new(false),
            finished: CancellationToken::new(),
            started: Instant::now(),
            pong_deadline_ms: AtomicU64::new(0),
        }
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The opening request.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The settings this session started with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The transport currently carrying packets.
    pub fn transport(&self) -> Transport {
        if self.transport.load(Ordering::Acquire) == Transport::Websocket as u8 {
            Transport::Websocket
        } else {
            Transport::Polling
        }
    }

    /// Queue a packet for the peer without waiting. A full queue closes the session.
    pub fn send(&self, packet: Packet) -> Result<(), SendError> {
        // Moved in: a packet made for this session alone is never shared.
        self.queue(|outbox| outbox.push_one(packet, false))
    }

    /// Queue a packet whose data was cut from the thread's block
    /// ([`block::cut`](super::block::cut)): behind other packets, it is copied out, so
    /// that a session holds at most one block however far behind it is.
    pub(crate) fn send_cut(&self, packet: Packet) -> Result<(), SendError> {
        self.queue(|outbox| outbox.push_one(packet, true))
    }

    /// Queue packets that belong together (a message and its attachments) as one unit.
    pub fn send_all(&self, packets: &[Packet]) -> Result<(), SendError> {
        self.queue(|outbox| outbox.push(packets, false))
    }

    /// Queue packets that may be dropped if the peer is behind (socket.io's `volatile`).
    pub fn send_volatile(&self, packets: &[Packet]) -> Result<(), SendError> {
        self.queue(|outbox| outbox.push(packets, true))
    }

    /// Queue by `push`, unless the session is closed; a full queue closes the session.
    fn queue(&self, push: impl FnOnce(&Outbox) -> Result<(), Refused>) -> Result<(), SendError> {
        // An atomic load: the token's own check takes a lock, on every packet.
        if self.close_reason.get().is_some() {
            return Err(SendError::Closed);
        }
        match push(&self.outbox) {
            Ok(()) => Ok(()),
            Err(Refused::Behind) => Err(SendError::Behind),
            Err(Refused::Closed) => Err(SendError::Closed),
            Err(Refused::Full) => {
                tracing::debug!(session = %self.sid, "Outbound queue full; closing the slow session");
                self.close(CloseReason::SlowClient);
                Err(SendError::Full)
            }
        }
    }

    /// Bytes waiting to be sent.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// Take queued packets, about `max_bytes` of them; the caller holds `reader`.
    pub(crate) fn drain(&self, max_bytes: usize, out: impl FnMut(Packet)) -> usize {
        self.outbox.drain(max_bytes, out)
    }

    /// Resolves once a packet is queued.
    pub(crate) async fn queued(&self) {
        self.outbox.ready().await
    }

    /// `waker` is the WebSocket writer's: woken by a packet queued, the close, or
    /// [`Session::wake_writer`].
    pub(crate) fn register_writer(&self, waker: &std::task::Waker) {
        self.outbox.register(waker);
    }

    /// Wake the WebSocket writer (a control frame is owed).
    pub(crate) fn wake_writer(&self) {
        self.outbox.wake();
    }

    /// Whether the queue is empty.
    pub(crate) fn nothing_queued(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Close the session. The first reason given wins; later calls do nothing.
    pub fn close(&self, reason: CloseReason) {
        if self.close_reason.set(reason).is_ok() {
            self.outbox.close();
            self.closed.cancel();
        }
    }

    /// Close the session, telling a WebSocket peer `code` (e.g. 1009 for a message too big).
    pub fn close_with_code(&self, reason: CloseReason, code: u16) {
        let _ = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.close(reason);
    }

    /// The WebSocket close code for how this session ended.
    pub(crate) fn ws_close_code(&self) -> u16 {
        match self.close_code.load(Ordering::Acquire) {
            0 if self.close_reason().is_some_and(CloseReason::is_slow) => {
                super::frame::close_code::POLICY
            }
            0 => super::frame::close_code::NORMAL,
            code => code,
        }
    }

    /// The layer above takes the session (a namespace was joined): the claim deadline no
    /// longer applies.
    pub fn claim(&self) {
        self.claimed.store(true, Ordering::Release);
    }

    /// Whether the layer above has claimed the session.
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.close_reason.get().is_some()
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.get().copied()
    }

    /// Resolves when the session closes.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// When the session opened.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// A ping went out: a pong is due by `deadline`.
    pub(crate) fn await_pong(&self, deadline: Instant) {
        let ms = deadline.duration_since(self.started).as_millis().max(1) as u64;
        self.pong_deadline_ms.store(ms, Ordering::Release);
    }

    /// A pong arrived. Only one answering a ping counts: a pong sent ahead of time must not
    /// stand in for the answer to the next ping.
    pub(crate) fn pong_received(&self) {
        if self.pong_deadline_ms.swap(0, Ordering::AcqRel) != 0 {
            self.pong.notify_one();
        }
    }

    /// Whether a pong is overdue: then the session is closed with "ping timeout", even if
    /// the heartbeat's timer has not fired yet.
    pub(crate) fn check_pong_deadline(&self) -> bool {
        let due = self.pong_deadline_ms.load(Ordering::Acquire);
        if due != 0 && self.started + Duration::from_millis(due) <= Instant::now() {
            self.close(CloseReason::PingTimeout);
        }
        self.is_closed()
    }

    /// The layer above has handled the close (its disconnect work is done).
    pub(crate) fn finish(&self) {
        self.finished.cancel();
    }

    /// Cancelled once the layer above has handled the close; outlives the session.
    pub(crate) fn finished_token(&self) -> CancellationToken {
        self.finished.clone()
    }

    /// Resolves once the close has been handled by the layer above. Transports wait for it
    /// before they tell the peer, so a peer that sees the close knows its disconnection has
    /// taken effect (rooms left, disconnect routes run).
    pub(crate) async fn finished(&self) {
        self.finished.cancelled().await
    }

    pub(crate) fn is_upgrading(&self) -> bool {
        self.upgrading.load(Ordering::Acquire)
    }

    /// Whether a WebSocket probe succeeded and long-polls should be released with a NOOP.
    pub(crate) fn is_probed(&self) -> bool {
        self.probed.load(Ordering::Acquire)
    }

    /// Marks an upgrade as started; returns false if one already is.
    pub(crate) fn begin_upgrade(&self) -> bool {
        !self.upgrading.swap(true, Ordering::AcqRel)
    }

    /// The probe succeeded (`3probe` sent): from now on the client polls no more, and a
    /// poll that comes anyway waits for the upgrade's outcome.
    pub(crate) fn mark_probed(&self) {
        self.probed.store(true, Ordering::Release);
    }

    /// The signals, made on first use. Whoever waits on one makes them first, so a signal
    /// that only wakes waiters ([`Session::waiting`]) need not.
    fn signals(&self) -> &UpgradeSignals {
        self.signals.get_or_init(Box::default)
    }

    /// The signals, when anyone has waited on one.
    fn waiting(&self) -> Option<&UpgradeSignals> {
        self.signals.get().map(|s| &**s)
    }

    /// Resolves when the pending long-poll is released ([`Session::release_poll`]).
    pub(crate) fn poll_released(&self) -> tokio::sync::futures::Notified<'_> {
        self.signals().released.notified()
    }

    /// Release the pending long-poll: with a NOOP while polling, refused once upgraded.
    pub(crate) fn release_poll(&self) {
        if let Some(s) = self.waiting() {
            s.released.notify_waiters();
        }
    }

    /// The upgrade is done: packets go to the WebSocket; a poll still waiting is released.
    pub(crate) fn finish_upgrade(&self) {
        self.transport
            .store(Transport::Websocket as u8, Ordering::Release);
        self.upgrading.store(false, Ordering::Release);
        self.probed.store(false, Ordering::Release);
        self.release_poll();
        if let Some(s) = self.waiting() {
            s.settled.notify_waiters();
        }
    }

    /// The upgrade failed: the session stays on polling.
    pub(crate) fn abort_upgrade(&self) {
        self.probed.store(false, Ordering::Release);
        self.upgrading.store(false, Ordering::Release);
        if let Some(s) = self.waiting() {
            s.settled.notify_waiters();
        }
    }

    /// A poll that comes once probed: have the upgrading WebSocket read what it already
    /// holds (a `5` the client sent before this poll), waiting at most `limit` for that or
    /// for the upgrade to end.
    pub(crate) async fn sync_with_websocket(&self, limit: Duration) {
        let signals = self.signals();
        let settled = signals.settled.notified();
        let synced = signals.synced.notified();
        tokio::pin!(settled, synced);
        settled.as_mut().enable();
        synced.as_mut().enable();
        if !self.is_upgrading() {
            return;
        }
        signals.sync.notify_one();
        let _ = tokio::time::timeout(limit, async {
            tokio::select! {
                _ = settled => {}
                _ = synced => {}
            }
        })
        .await;
    }

    /// Resolves when a poll asks for [`Session::sync_with_websocket`].
    pub(crate) async fn sync_requested(&self) {
        self.signals().sync.notified().await
    }

    /// The WebSocket has read what it held.
    pub(crate) fn synced(&self) {
        if let Some(s) = self.waiting() {
            s.synced.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn session(capacity: usize) -> Session {
        let config = EngineConfig {
            queue_bytes: capacity * super::super::outbox::cost(&msg()),
            ..EngineConfig::default()
        };
        let handshake = Handshake {
            headers: Headers::default(),
            query: vec![("EIO".into(), "4".into())],
            remote_addr: "127.0.0.1:1".parse().unwrap(),
            client_ip: "127.0.0.1".parse().unwrap(),
            issued: SystemTime::now(),
            url: "/socket.io/?EIO=4".into(),
        };
        Session::new(
            Sid::random(),
            Transport::Polling,
            handshake,
            Arc::new(config),
        )
    }

    fn msg() -> Packet {
        Packet::Message(Bytes::from_static(b"x"))
    }

    #[test]
    fn a_full_queue_closes_the_session_as_slow() {
        let s = session(2);
        let p = msg;
        assert_eq!(s.send(p()), Ok(()));
        assert_eq!(s.send(p()), Ok(()));
        assert_eq!(s.send(p()), Err(SendError::Full));
        assert_eq!(s.close_reason(), Some(CloseReason::SlowClient));
        assert_eq!(s.send(p()), Err(SendError::Closed));
        assert_eq!(s.ws_close_code(), 1008);
    }

    #[test]
    fn an_explicit_close_code_wins() {
        let s = session(2);
        s.close_with_code(CloseReason::TransportError, 1009);
        s.close_with_code(CloseReason::TransportError, 1002);
        assert_eq!(s.ws_close_code(), 1009);
        assert!(!s.is_claimed());
        s.claim();
        assert!(s.is_claimed());
    }

    #[test]
    fn the_first_close_reason_wins() {
        let s = session(4);
        s.close(CloseReason::PingTimeout);
        s.close(CloseReason::TransportClose);
        assert!(s.is_closed());
        assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
        assert_eq!(CloseReason::PingTimeout.as_str(), "ping timeout");
    }

    #[test]
    fn upgrade_state_moves_polling_to_websocket() {
        let s = session(4);
        assert_eq!(s.transport(), Transport::Polling);
        assert!(s.begin_upgrade());
        assert!(!s.begin_upgrade());
        s.finish_upgrade();
        assert_eq!(s.transport(), Transport::Websocket);
        assert!(!s.is_upgrading());
        assert_eq!(s.handshake().query_value("EIO"), Some("4"));
    }
}
