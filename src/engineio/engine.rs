//! The Engine.IO endpoint: request dispatch, the session registry, heartbeats.
//!
//! # Ordering of a session's requests
//!
//! A session's requests come on several connections, served on several threads. Where the
//! order matters, what the client sent first takes effect first, as in a server that read
//! its connections one at a time:
//! - Two polls: one at a time; a second while one is pending ends the session (400), and
//!   the first is released with CLOSE. Two POSTs: likewise (a bare 400).
//! - A poll and the client's close (`1` in a POST): a poll pending at the close gets NOOP;
//!   one arriving after it (it was in flight) gets NOOP too, once, within 2 s; any later poll
//!   is refused (`Session ID unknown`).
//! - A poll and an upgrade: while the WebSocket probes, the client still polls and is
//!   served. Once probed (`3probe` sent), a poll first has the WebSocket read what it has
//!   already received: if that holds the client's `5`, the poll was sent after it and is
//!   refused; otherwise it gets NOOP (as the reference server's upgrade check does). A `5`
//!   sent right behind the probe is taken in before the pending poll is released, which is
//!   then refused too. No poll ever takes packets once the session has moved to the
//!   WebSocket.
//! - Two WebSockets: a second one for a session that has (or is getting) one is accepted
//!   and closed at once. A POST during the upgrade is handled; after it, refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use super::admission::{Gate, client_ip};
use super::config::{EngineConfig, Transport};
use super::error::Error;
use super::headers::Headers;
use super::packet::{OpenPacket, Packet};
use super::request::RequestInfo;
use super::session::{CloseReason, Handshake, Session};
use super::sid::Sid;
use super::{EngineHandler, Pending, RequestBody, cors, polling, websocket};
use crate::limits::Hits;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::task::TaskTracker;

/// Bytes carried, both ways, over all sessions, and how sessions ended.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes received from peers (POST bodies, WebSocket messages).
    pub bytes_in: AtomicU64,
    /// Bytes sent to peers (poll responses, WebSocket frames).
    pub bytes_out: AtomicU64,
    /// Long-poll GETs waiting for packets now.
    pub polls_waiting: AtomicU64,
    closes: [AtomicU64; CloseReason::ALL.len()],
}

impl Stats {
    fn closed(&self, reason: CloseReason) {
        let i = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is in ALL");
        self.closes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions ended, by reason label (`slow` counts both ways of being too slow).
    pub fn closes(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for (reason, count) in CloseReason::ALL.iter().zip(&self.closes) {
            let n = count.load(Ordering::Relaxed);
            match out.iter_mut().find(|(label, _)| *label == reason.label()) {
                Some((_, total)) => *total += n,
                None => out.push((reason.label(), n)),
            }
        }
        out
    }
}

/// A session together with the state the layer above keeps for it.
#[derive(Debug)]
pub struct Conn<D> {
    /// The Engine.IO session.
    pub session: Arc<Session>,
    /// The layer above's state.
    pub data: D,
}

/// The Engine.IO endpoint: owns the sessions and hands their messages to `H`.
pub struct Engine<H: EngineHandler> {
    config: ArcSwap<EngineConfig>,
    handler: H,
    /// Every task of every session (heartbeats, WebSocket readers and writers), so that
    /// shutdown can wait for them.
    tasks: TaskTracker,
    stats: Arc<Stats>,
    hits: Arc<Hits>,
    gate: Gate,
    /// Looked up once per polling request and once per WebSocket connection, never per
    /// message on an open WebSocket. Sharded, each shard with its own lock: a handshake or a
    /// close writes one shard, and a walk over all sessions (a `/metrics` scrape, a shutdown)
    /// holds one shard at a time, so neither stalls the other shards' lookups.
    sessions: DashMap<Sid, Arc<Conn<H::Data>>>,
    /// Polling sessions the client closed while no poll was pending (see `owe_noop`).
    closed_polls: std::sync::Mutex<std::collections::VecDeque<OwedNoop>>,
}

impl<H: EngineHandler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

type HttpResponse = Response<Full<Bytes>>;

impl<H: EngineHandler> Engine<H> {
    /// An endpoint with no sessions.
    pub fn new(handler: H, config: EngineConfig) -> Arc<Self> {
        Engine::with_hits(handler, config, Arc::default())
    }

    /// An endpoint counting the limits its peers hit in `hits`.
    pub fn with_hits(handler: H, config: EngineConfig, hits: Arc<Hits>) -> Arc<Self> {
        Arc::new(Engine {
            config: ArcSwap::from_pointee(config),
            handler,
            tasks: TaskTracker::new(),
            stats: Arc::new(Stats::default()),
            hits,
            gate: Gate::default(),
            sessions: DashMap::new(),
            closed_polls: std::sync::Mutex::new(std::collections::VecDeque::new()),
        })
    }

    /// Limit hits of this endpoint's peers.
    pub fn hits(&self) -> &Hits {
        &self.hits
    }

    pub(crate) fn hits_handle(&self) -> Arc<Hits> {
        self.hits.clone()
    }

    /// The layer above.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The settings new sessions start with.
    pub fn config(&self) -> Arc<EngineConfig> {
        self.config.load_full()
    }

    /// Replace the settings; running sessions keep theirs.
    pub fn set_config(&self, config: EngineConfig) {
        self.config.store(Arc::new(config));
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn stats_handle(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The tracker of the sessions' tasks.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// How many sessions use each transport: (polling, websocket).
    pub fn sessions_by_transport(&self) -> (usize, usize) {
        let (mut polling, mut ws) = (0, 0);
        for conn in self.sessions.iter() {
            match conn.session.transport() {
                Transport::Websocket => ws += 1,
                Transport::Polling => polling += 1,
            }
        }
        (polling, ws)
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Close every session with `reason`.
    pub fn close_all(&self, reason: CloseReason) {
        // Taken out first: a session's close must not run under its shard's lock.
        let conns: Vec<_> = self.sessions.iter().map(|c| c.value().clone()).collect();
        for conn in conns {
            conn.session.close(reason);
        }
    }

    /// The open session `sid`, with what the layer above keeps for it.
    pub fn conn(&self, sid: Sid) -> Option<Arc<Conn<H::Data>>> {
        self.lookup(sid)
    }

    /// The open session `sid`; a session whose pong is overdue counts as gone.
    fn lookup(&self, sid: Sid) -> Option<Arc<Conn<H::Data>>> {
        let conn = self.sessions.get(&sid)?.value().clone();
        (!conn.session.check_pong_deadline()).then_some(conn)
    }

    /// Answer one HTTP request to the Engine.IO path.
    pub async fn handle<B: RequestBody>(
        self: &Arc<Self>,
        req: Request<B>,
        remote: SocketAddr,
    ) -> HttpResponse {
        let config = self.config();
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut response = if req.method() == Method::OPTIONS && config.cors.is_some() {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            if let Some(c) = &config.cors {
                cors::apply_preflight(c, req.headers(), resp.headers_mut());
            }
            return resp;
        } else {
            match self.dispatch(req, remote, &config).await {
                Ok(resp) => resp,
                Err(e) => e.into_response(),
            }
        };
        if let Some(c) = &config.cors
            && response.status() != StatusCode::SWITCHING_PROTOCOLS
        {
            cors::apply(c, origin.as_ref(), response.headers_mut());
        }
        response
    }

    async fn dispatch<B: RequestBody>(
        self: &Arc<Self>,
        req: Request<B>,
        remote: SocketAddr,
        config: &Arc<EngineConfig>,
    ) -> Result<HttpResponse, Error> {
        let info = RequestInfo::parse(req.uri().query())?;
        if !config.allows(info.transport) {
            return Err(Error::UnknownTransport);
        }
        let upgrade = fastwebsockets::upgrade::is_upgrade_request(&req);
        if let Some(sid) = info.sid {
            let Some(conn) = self.lookup(sid) else {
                if info.transport == Transport::Polling && req.method() == Method::GET {
                    return self.answer_owed_noop(sid).await;
                }
                return Err(Error::UnknownSid);
            };
            return match (info.transport, upgrade) {
                (Transport::Websocket, true) => {
                    if conn.session.transport() != Transport::Polling
                        || !conn.session.begin_upgrade()
                    {
                        // As the reference server: the WebSocket is accepted, then closed.
                        return websocket::refuse(self.tasks(), req);
                    }
                    websocket::upgrade(self.clone(), conn, req)
                }
                (Transport::Polling, false) => {
                    let session = &conn.session;
                    if session.is_probed() {
                        // The WebSocket reads what it holds first: a `5` there was sent
                        // before this request (see "Ordering" above).
                        session.sync_with_websocket(SYNC_LIMIT).await;
                    }
                    if session.transport() != Transport::Polling {
                        return Err(Error::BadRequest);
                    }
                    if session.is_closed() {
                        // Not pending at the close: closed sessions are gone for everyone
                        // but the poll that was in flight then.
                        if req.method() == Method::GET {
                            return self.answer_owed_noop(sid).await;
                        }
                        return Err(Error::UnknownSid);
                    }
                    match *req.method() {
                        Method::GET => {
                            // Nothing of the request is kept while the poll waits: its head
                            // holds hyper's read buffer, which hyper could not use again
                            // for the connection's next read (8 KiB per waiting poll).
                            drop(req);
                            let answer = polling::poll(session, &self.stats).await;
                            if session.is_closed() {
                                // Closed while this poll was on its way in: it was the one
                                // in flight, and no later poll is owed anything.
                                self.owed_noop(sid);
                            }
                            answer
                        }
                        Method::POST => polling::post(self, &conn, req.into_body()).await,
                        _ => Err(Error::BadRequest),
                    }
                }
                _ => Err(Error::BadRequest),
            };
        }
        if req.method() != Method::GET {
            return Err(Error::BadHandshakeMethod);
        }
        if info.transport == Transport::Websocket && !upgrade {
            return Err(Error::BadRequest);
        }
        if !info.eio4 {
            return Err(Error::UnsupportedProtocolVersion);
        }
        // Boxed: what a handshake keeps across its first poll would otherwise be part of every
        // request's future, a waiting poll's too.
        Box::pin(self.handshake(req, remote, config, info.transport)).await
    }

    /// A new session: admitted, registered, and answered with its OPEN packet (the first poll,
    /// or the WebSocket upgrade).
    async fn handshake<B: RequestBody>(
        self: &Arc<Self>,
        req: Request<B>,
        remote: SocketAddr,
        config: &Arc<EngineConfig>,
        transport: Transport,
    ) -> Result<HttpResponse, Error> {
        let (parts, body) = req.into_parts();
        let client = client_ip(remote.ip(), &parts.headers, &config.admission);
        if let Err((limit, error)) = self.gate.admit(
            client,
            self.session_count(),
            &config.admission,
            std::time::Instant::now(),
        ) {
            self.hits.hit(limit, &client, &error);
            return Err(error);
        }
        if !self.handler.allow_request(&parts) {
            self.gate.left(client);
            return Err(Error::Forbidden);
        }
        // Kept for the session's life: no spare capacity.
        let (mut url, mut query) = (parts.uri.to_string(), RequestInfo::query(parts.uri.query()));
        url.shrink_to_fit();
        query.shrink_to_fit();
        let handshake = Handshake {
            url,
            headers: Headers::keep(&parts.headers, config.handshake_headers_bytes),
            query,
            remote_addr: remote,
            client_ip: client,
            issued: SystemTime::now(),
        };
        let conn = self.open(transport, handshake, config.clone());
        let cookie = config
            .cookie
            .as_ref()
            .map(|c| c.header(conn.session.sid().as_str()));
        let mut response = match transport {
            Transport::Polling => polling::poll(&conn.session, &self.stats).await,
            Transport::Websocket => {
                let req = Request::from_parts(parts, body);
                websocket::upgrade(self.clone(), conn, req)
            }
        }?;
        // As engine.io: the handshake response (polling or WebSocket) sets the cookie.
        if let Some(value) = cookie.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(response)
    }

    /// Register a new session, queue its OPEN packet and start its heartbeat.
    fn open(
        self: &Arc<Self>,
        transport: Transport,
        handshake: Handshake,
        config: Arc<EngineConfig>,
    ) -> Arc<Conn<H::Data>> {
        let sid = Sid::random();
        let upgrades: &[&str] = if transport == Transport::Polling && config.websocket {
            &["websocket"]
        } else {
            &[]
        };
        let open = OpenPacket {
            sid: sid.as_str(),
            upgrades,
            ping_interval: config.ping_interval.as_millis() as u64,
            ping_timeout: config.ping_timeout.as_millis() as u64,
            max_payload: config.max_payload,
        }
        .to_packet();
        let session = Arc::new(Session::new(sid, transport, handshake, config));
        session
            .send(open)
            .expect("a new session's queue has room for OPEN");
        let data = self.handler.on_open(&session);
        let conn = Arc::new(Conn { session, data });
        self.sessions.insert(sid, conn.clone());
        tracing::debug!(session = %sid, transport = transport.as_str(), "Session opened");
        self.tasks.spawn(self.clone().run_heartbeat(conn.clone()));
        conn
    }

    /// Ping every `ping_interval`; close on a missing pong, or when the layer above has not
    /// claimed the session within `claim_timeout`. When the session closes, for whatever
    /// reason, unregister it and tell the handler. The one task every session has.
    async fn run_heartbeat(self: Arc<Self>, conn: Arc<Conn<H::Data>>) {
        let session = &conn.session;
        let (interval, timeout) = (
            session.config().ping_interval,
            session.config().ping_timeout,
        );
        let claim_by = session
            .config()
            .claim_timeout
            .map(|t| session.started() + t);
        let unclaimed = || claim_by.filter(|_| !session.is_claimed());
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        // Deadlines follow the schedule, not the moment a timer happened to fire, so a
        // late wake-up never gives a silent peer extra time.
        let mut next_ping = session.started() + interval;
        'beat: loop {
            loop {
                tokio::select! {
                    _ = session.closed() => break 'beat,
                    _ = tokio::time::sleep_until(next_ping) => break,
                    _ = tokio::time::sleep_until(unclaimed().unwrap_or_else(far)), if unclaimed().is_some() => {
                        if !session.is_claimed() {
                            tracing::debug!(session = %session.sid(), "Not claimed within the connect timeout");
                            session.close(CloseReason::ForcedClose);
                        }
                    }
                }
            }
            let deadline = next_ping + timeout;
            session.await_pong(deadline);
            if session.send(Packet::Ping(Bytes::new())).is_err() {
                break;
            }
            tokio::select! {
                _ = session.closed() => break,
                _ = session.pong.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    session.close(CloseReason::PingTimeout);
                    break;
                }
            }
            next_ping = tokio::time::Instant::now() + interval;
        }
        let reason = session.close_reason().unwrap_or(CloseReason::ForcedClose);
        self.sessions.remove(&session.sid());
        self.gate.left(session.handshake().client_ip);
        self.stats.closed(reason);
        if reason == CloseReason::SlowClient {
            self.hits.hit(
                crate::limits::Limit::QueueBytes,
                &session.handshake().client_ip,
                &"outbound queue over queue_bytes; session closed as too slow",
            );
        }
        tracing::debug!(session = %session.sid(), reason = reason.as_str(), "Session closed");
        if let Some(pending) = self.handler.on_close(&conn, reason) {
            pending.await;
        }
        session.finish();
    }

    /// Act on one packet from the peer, whatever transport carried it. Work the layer
    /// above could not finish at once comes back, to be awaited before the next packet.
    pub(crate) fn on_packet(&self, conn: &Arc<Conn<H::Data>>, packet: Packet) -> Option<Pending> {
        match packet {
            Packet::Message(text) => return self.handler.on_message(conn, text),
            Packet::Binary(data) => return self.handler.on_binary(conn, data),
            Packet::Pong(_) => conn.session.pong_received(),
            Packet::Ping(data) => {
                let _ = conn.session.send(Packet::Pong(data));
            }
            Packet::Close => {
                self.owe_noop(&conn.session);
                conn.session.close(CloseReason::TransportClose);
            }
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
        None
    }

    /// The client of a polling session closed it (`1` in a POST). A client closing sends its
    /// poll and its close at once, on two connections: if the poll arrives second it was
    /// still in flight at the close, and gets what a pending poll gets, a NOOP — once, and
    /// only soon after the close; any later poll is refused.
    fn owe_noop(&self, session: &Session) {
        // Owed whether or not a poll is pending (probing the reader's lock would refuse a
        // poll taking it at that instant): a pending poll, released with NOOP by the close,
        // takes the debt back.
        if session.transport() != Transport::Polling {
            return;
        }
        let mut owed = self.closed_polls.lock().expect("closed polls lock");
        let now = std::time::Instant::now();
        owed.retain(|o| now.duration_since(o.at) < OWED_NOOP_WINDOW);
        if owed.len() >= OWED_NOOP_MAX {
            owed.pop_front();
        }
        owed.push_back(OwedNoop {
            sid: session.sid(),
            at: now,
            finished: session.finished_token(),
        });
    }

    /// Answer a poll of the closed session `sid`: its NOOP if it is owed one (see
    /// `owe_noop`), sent once the close took effect, as to a poll pending then; otherwise
    /// the session is unknown.
    async fn answer_owed_noop(&self, sid: Sid) -> Result<HttpResponse, Error> {
        let finished = self.owed_noop(sid).ok_or(Error::UnknownSid)?;
        let _ = tokio::time::timeout(OWED_NOOP_WINDOW, finished.cancelled()).await;
        Ok(polling::noop_response())
    }

    /// Whether a poll of the closed session `sid` is owed its NOOP (see `owe_noop`); if so,
    /// what tells when the close has taken effect.
    fn owed_noop(&self, sid: Sid) -> Option<tokio_util::sync::CancellationToken> {
        let mut owed = self.closed_polls.lock().expect("closed polls lock");
        let now = std::time::Instant::now();
        let i = owed.iter().position(|o| o.sid == sid)?;
        owed.remove(i)
            .filter(|o| now.duration_since(o.at) < OWED_NOOP_WINDOW)
            .map(|o| o.finished)
    }
}

/// Sessions without HTTP, for the fuzz targets (feature `fuzzing`) and unit tests: a session
/// is opened as a handshake from 127.0.0.1 would open it, and packets are handed over as a
/// transport would.
#[cfg(any(test, feature = "fuzzing"))]
impl<H: EngineHandler> Engine<H> {
    /// Open a session on `transport`.
    #[doc(hidden)]
    pub fn fuzz_open(self: &Arc<Self>, transport: Transport) -> Arc<Conn<H::Data>> {
        let config = self.config();
        let remote: SocketAddr = "127.0.0.1:1".parse().expect("valid address");
        let handshake = Handshake {
            url: "/socket.io/?EIO=4".to_owned(),
            headers: Headers::default(),
            query: vec![("EIO".to_owned(), "4".to_owned())],
            remote_addr: remote,
            client_ip: remote.ip(),
            issued: SystemTime::now(),
        };
        let conn = self.open(transport, handshake, config);
        let _ = conn.session.drain(usize::MAX, drop);
        conn
    }

    /// Hand `packet` to the session, as its transport would.
    #[doc(hidden)]
    pub fn fuzz_packet(&self, conn: &Arc<Conn<H::Data>>, packet: Packet) -> Option<Pending> {
        self.on_packet(conn, packet)
    }

    /// Take what the session would send.
    #[doc(hidden)]
    pub fn fuzz_sent(conn: &Conn<H::Data>) -> Vec<Packet> {
        let mut out = Vec::new();
        conn.session.drain(usize::MAX, |p| out.push(p));
        out
    }
}

/// Longest a poll waits for the upgrading WebSocket to read what it holds.
pub(super) const SYNC_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A polling session its client closed with no poll pending: a poll in flight is owed NOOP.
struct OwedNoop {
    sid: Sid,
    at: std::time::Instant,
    /// Cancelled once the close has taken effect (the layer above is done with it).
    finished: tokio_util::sync::CancellationToken,
}

/// How long after a client's close a poll that was in flight may still come.
const OWED_NOOP_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);
/// Most closed sessions remembered for it.
const OWED_NOOP_MAX: usize = 1024;

/// `Content-Type` of polling responses.
pub(crate) const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=UTF-8");

#[cfg(test)]
mod heartbeat_tests;
