//! The Socket.IO side of one Engine.IO session: decodes packets, keeps the session's sockets
//! (one per namespace joined), reassembles binary packets, and holds each client to its
//! limits (namespaces, event rate, attachment bytes). Implements
//! [`EngineHandler`](crate::engineio::EngineHandler).

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::packet::{Encoded, Packet, PacketKind};
use super::rate::Verdict;
use super::socket::{AckResponse, DisconnectReason, Socket, SocketLimits};
use super::{
    Admission, Authorization, ConnectRefusal, Decision, Event, Parser, RATE_LIMITED_ACK, Restored,
    SocketHandler, SocketIoConfig,
};
use crate::engineio::frame::close_code;
use crate::engineio::{CloseReason, Conn, EngineHandler, Pending, Session};
use crate::limits::{Hits, Limit};

/// The Socket.IO layer: an [`EngineHandler`] that hands events to `H`.
#[derive(Debug)]
pub struct SocketIo<H> {
    handler: Arc<H>,
    config: ArcSwap<SocketIoConfig>,
    hits: Arc<Hits>,
}

/// A binary packet waiting for its attachments.
#[derive(Debug)]
struct Partial {
    packet: Packet,
    attachments: Vec<Bytes>,
    bytes: usize,
}

/// Per-session state of the Socket.IO layer.
#[derive(Debug)]
pub struct ClientState {
    /// The session's sockets, one per namespace; a handful at most, so a list.
    sockets: Mutex<Vec<Arc<Socket>>>,
    /// A binary packet waiting for its attachments.
    partial: Mutex<Option<Partial>>,
    /// The settings in force when the session opened.
    config: Arc<SocketIoConfig>,
    /// The rate of CONNECTs (which can be sent, with DISCONNECTs, over and over): held to
    /// `events_per_socket` like events.
    connects: Mutex<Option<super::rate::EventRate>>,
}

impl ClientState {
    fn socket(&self, nsp: &[u8]) -> Option<Arc<Socket>> {
        self.sockets
            .lock()
            .expect("sockets lock")
            .iter()
            .find(|s| s.nsp().as_bytes() == nsp && s.is_connected())
            .cloned()
    }

    /// The connected sockets of this session.
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.sockets
            .lock()
            .expect("sockets lock")
            .iter()
            .filter(|s| s.is_connected())
            .cloned()
            .collect()
    }
}

impl<H: SocketHandler> SocketIo<H> {
    /// The layer, handing events to `handler` and counting limit hits in `hits`.
    pub fn new(handler: H, config: SocketIoConfig, hits: Arc<Hits>) -> Self {
        SocketIo {
            handler: Arc::new(handler),
            config: ArcSwap::from_pointee(config),
            hits,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Replace the settings; applies to sessions opened from now on.
    pub fn set_config(&self, config: SocketIoConfig) {
        self.config.store(Arc::new(config));
    }

    fn parse_error(&self, session: &Session, why: &dyn std::fmt::Display) {
        tracing::debug!(session = %session.sid(), error = %why, "Malformed Socket.IO packet");
        session.close(CloseReason::ParseError);
    }

    fn on_packet(
        &self,
        conn: &Arc<Conn<ClientState>>,
        packet: Packet,
        attachments: Vec<Bytes>,
    ) -> Option<Pending> {
        let state = &conn.data;
        match packet.kind {
            PacketKind::Connect => return self.on_connect(conn, packet),
            PacketKind::Disconnect => {
                if let Some(socket) = state.socket(&packet.nsp)
                    && socket.mark_disconnected()
                {
                    return self
                        .handler
                        .on_disconnect(&socket, DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                let Some(socket) = state.socket(&packet.nsp) else {
                    tracing::debug!(session = %conn.session.sid(), nsp = packet.nsp_str(), "Event for a namespace not joined");
                    return None;
                };
                if let Err(dropped) = self.within_rate(&socket, packet.id) {
                    return dropped;
                }
                let args = packet.args();
                let head = packet.event.expect("events are parsed with a head");
                let event = Event {
                    args,
                    name: head.name,
                    data: packet.data.unwrap_or_default(),
                    id: packet.id,
                    attachments: shared(attachments),
                };
                return self.handler.on_event(&socket, event);
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                if let (Some(socket), Some(id)) = (state.socket(&packet.nsp), packet.id) {
                    let args = packet.args();
                    socket.on_ack(
                        id,
                        AckResponse {
                            args,
                            attachments: shared(attachments),
                        },
                    );
                }
            }
            PacketKind::ConnectError => {}
        }
        None
    }

    /// Whether `socket` may send this event now. Over its rate the event is dropped (an ack
    /// it asked for says why); kept up too long, the socket is disconnected (and what that
    /// leaves to do is returned).
    fn within_rate(&self, socket: &Arc<Socket>, ack: Option<u64>) -> Result<(), Option<Pending>> {
        let verdict = socket.take_event_token();
        if verdict == Verdict::Allow {
            return Ok(());
        }
        let client = socket.handshake().client_ip;
        if let Some(id) = ack {
            let _ = socket.ack(id, RATE_LIMITED_ACK, Arc::from([]));
        }
        if verdict == Verdict::Disconnect {
            self.hits.hit(
                Limit::EventsSustained,
                &client,
                &format_args!(
                    "socket {} kept sending over events_per_socket; disconnected",
                    socket.id()
                ),
            );
            if socket.disconnect() {
                return Err(self
                    .handler
                    .on_disconnect(socket, DisconnectReason::ServerNamespaceDisconnect));
            }
        } else {
            self.hits.hit(
                Limit::EventsPerSocket,
                &client,
                &"events over events_per_socket dropped",
            );
        }
        Err(None)
    }

    fn on_connect(&self, conn: &Arc<Conn<ClientState>>, packet: Packet) -> Option<Pending> {
        let nsp = packet.nsp_str().to_owned();
        let session = &conn.session;
        if conn.data.socket(&packet.nsp).is_some() {
            tracing::debug!(session = %session.sid(), nsp, "CONNECT for a namespace already joined");
            return None;
        }
        let config = &conn.data.config;
        if let Some(rate) = config.events_per_socket {
            let now = tokio::time::Instant::now().into_std();
            let verdict = conn
                .data
                .connects
                .lock()
                .expect("connects lock")
                .get_or_insert_with(|| super::rate::EventRate::new(rate, now))
                .check(rate, config.events_excess_disconnect, now);
            if verdict != Verdict::Allow {
                self.hits.hit(
                    Limit::EventsPerSocket,
                    &session.handshake().client_ip,
                    &"CONNECTs over events_per_socket refused",
                );
                refuse(
                    session,
                    conn.data.config.parser,
                    &nsp,
                    &ConnectRefusal {
                        message: "Too many connection attempts".to_owned(),
                        data: None,
                    },
                );
                return None;
            }
        }
        let joined = conn.data.sockets().len();
        if joined >= conn.data.config.namespaces_per_session {
            self.hits.hit(
                Limit::NamespacesPerSession,
                &session.handshake().client_ip,
                &"CONNECT over namespaces_per_session refused",
            );
            refuse(
                session,
                conn.data.config.parser,
                &nsp,
                &ConnectRefusal {
                    message: "Too many namespaces".to_owned(),
                    data: None,
                },
            );
            return None;
        }
        let auth: Option<Box<RawValue>> = packet
            .data
            .as_ref()
            .and_then(|d| serde_json::from_slice::<Box<RawValue>>(d).ok());
        let skip_auth = config.recovery.is_some_and(|r| r.skip_auth);
        let Some((pid, offset)) = config.recovery.and_then(|_| resume(auth.as_deref())) else {
            return admit(&self.handler, conn, nsp, auth, None, skip_auth);
        };
        // Looking the socket up may wait on Redis (bounded by the cluster's request timeout);
        // the session's next packet waits for it, as for an auth hook.
        let restoring = self.handler.restore(nsp.clone(), pid, offset);
        let (handler, conn) = (self.handler.clone(), conn.clone());
        Some(Box::pin(async move {
            let restored = restoring.await;
            if let Some(more) = admit(&handler, &conn, nsp, auth, restored, skip_auth) {
                more.await;
            }
        }))
    }
}

/// The `{pid, offset}` of a CONNECT asking to recover a socket.
fn resume(auth: Option<&RawValue>) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Resume<'a> {
        #[serde(borrow)]
        pid: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        offset: Option<std::borrow::Cow<'a, str>>,
    }
    let resume: Resume<'_> = serde_json::from_str(auth?.get()).ok()?;
    Some((resume.pid?.into_owned(), resume.offset?.into_owned()))
}

/// Authorize a CONNECT (unless it recovers a socket and `skip_auth`), then join.
fn admit<H: SocketHandler>(
    handler: &Arc<H>,
    conn: &Arc<Conn<ClientState>>,
    nsp: String,
    auth: Option<Box<RawValue>>,
    restored: Option<Restored>,
    skip_auth: bool,
) -> Option<Pending> {
    if restored.is_some() && skip_auth {
        return join(
            &**handler,
            conn,
            &nsp,
            auth,
            Ok(Admission::default()),
            restored,
        );
    }
    match handler.authorize(&nsp, auth.as_deref(), conn.session.handshake()) {
        Authorization::Ready(decision) => join(&**handler, conn, &nsp, auth, decision, restored),
        Authorization::Pending(decision) => {
            let (handler, conn) = (handler.clone(), conn.clone());
            Some(Box::pin(async move {
                let decision = decision.await;
                if let Some(more) = join(&*handler, &conn, &nsp, auth, decision, restored) {
                    more.await;
                }
            }))
        }
    }
}

fn refuse(session: &Session, parser: Parser, nsp: &str, refusal: &ConnectRefusal) {
    tracing::debug!(session = %session.sid(), nsp, message = %refusal.message, "Connection refused");
    let packet = Encoded::connect_error(nsp, &refusal.message, refusal.data.as_ref());
    let message = match parser {
        Parser::Default => crate::engineio::Packet::Message(packet.text),
        Parser::Msgpack => match packet.msgpack() {
            Some(bytes) => crate::engineio::Packet::Binary(bytes),
            None => return,
        },
    };
    let _ = session.send(message);
}

/// Act on an authorization decision: refuse, or create the socket, answer CONNECT and run
/// what follows a connection.
fn join<H: SocketHandler>(
    handler: &H,
    conn: &Arc<Conn<ClientState>>,
    nsp: &str,
    auth: Option<Box<RawValue>>,
    decision: Decision,
    restored: Option<Restored>,
) -> Option<Pending> {
    let session = &conn.session;
    let admission = match decision {
        Ok(admission) => admission,
        Err(refusal) => {
            refuse(session, conn.data.config.parser, nsp, &refusal);
            return None;
        }
    };
    if session.is_closed() {
        return None;
    }
    let config = &conn.data.config;
    let limits = SocketLimits {
        events: config.events_per_socket,
        excess_disconnect: config.events_excess_disconnect,
        pending_acks: config.pending_acks,
        parser: config.parser,
    };
    let mut socket = Socket::with_limits(nsp, session.clone(), auth, admission, limits);
    if config.recovery.is_some() {
        socket = socket.with_recovery(restored.as_ref());
    }
    let socket = Arc::new(socket);
    {
        let mut sockets = conn.data.sockets.lock().expect("sockets lock");
        sockets.retain(|s| s.is_connected());
        sockets.push(socket.clone());
    }
    session.claim();
    if let Some(restored) = &restored {
        // As socket.io: what it missed goes before its CONNECT answer.
        handler.on_recover(&socket, restored);
    }
    if socket
        .send(&Encoded::connect(nsp, socket.id().as_str(), socket.pid()))
        .is_ok()
    {
        return handler.on_connect(&socket);
    }
    None
}

impl<H: SocketHandler> EngineHandler for SocketIo<H> {
    type Data = ClientState;

    fn on_open(&self, _session: &Arc<Session>) -> ClientState {
        ClientState {
            sockets: Mutex::new(Vec::new()),
            partial: Mutex::new(None),
            config: self.config.load_full(),
            connects: Mutex::new(None),
        }
    }

    fn on_message(&self, conn: &Arc<Conn<ClientState>>, text: Bytes) -> Option<Pending> {
        if conn.data.config.parser == Parser::Msgpack {
            // socket.io-msgpack-parser refuses text: every packet is binary.
            self.parse_error(&conn.session, &"text message from a msgpack client");
            return None;
        }
        if conn.data.partial.lock().expect("partial lock").is_some() {
            self.parse_error(&conn.session, &"text while waiting for attachments");
            return None;
        }
        let bytes = text.len();
        let packet = match Packet::parse(text, conn.data.config.max_attachments) {
            Ok(packet) => packet,
            Err(e) => {
                self.parse_error(&conn.session, &e);
                return None;
            }
        };
        if packet.attachments > 0 {
            let n = packet.attachments;
            *conn.data.partial.lock().expect("partial lock") = Some(Partial {
                packet,
                attachments: Vec::with_capacity(n),
                bytes,
            });
            return None;
        }
        self.on_packet(conn, packet, Vec::new())
    }

    fn on_binary(&self, conn: &Arc<Conn<ClientState>>, data: Bytes) -> Option<Pending> {
        if conn.data.config.parser == Parser::Msgpack {
            return match super::msgpack::decode(&data, conn.data.config.max_attachments) {
                Ok((packet, attachments)) => self.on_packet(conn, packet, attachments),
                Err(e) => {
                    self.parse_error(&conn.session, &e);
                    None
                }
            };
        }
        let complete = {
            let mut partial = conn.data.partial.lock().expect("partial lock");
            let Some(waiting) = partial.as_mut() else {
                drop(partial);
                self.parse_error(&conn.session, &"binary data outside a binary packet");
                return None;
            };
            waiting.bytes += data.len();
            if waiting.bytes > conn.data.config.max_payload {
                // A binary packet is one message: its attachments together are bounded
                // by max_payload, not each on its own.
                drop(partial);
                self.hits.hit(
                    Limit::MaxPayload,
                    &conn.session.handshake().client_ip,
                    &"binary packet with attachments over max_payload",
                );
                conn.session
                    .close_with_code(CloseReason::TransportError, close_code::TOO_BIG);
                return None;
            }
            waiting.attachments.push(data);
            if waiting.attachments.len() < waiting.packet.attachments {
                return None;
            }
            partial.take().expect("present")
        };
        self.on_packet(conn, complete.packet, complete.attachments)
    }

    fn on_close(&self, conn: &Arc<Conn<ClientState>>, reason: CloseReason) -> Option<Pending> {
        let sockets = std::mem::take(&mut *conn.data.sockets.lock().expect("sockets lock"));
        let pending: Vec<Pending> = sockets
            .iter()
            .filter(|socket| socket.mark_disconnected())
            .filter_map(|socket| self.handler.on_disconnect(socket, reason.into()))
            .collect();
        if pending.is_empty() {
            return None;
        }
        Some(Box::pin(async move {
            for work in pending {
                work.await;
            }
        }))
    }
}

/// Attachments as the layer above takes them; none costs no allocation.
fn shared(attachments: Vec<Bytes>) -> Arc<[Bytes]> {
    if attachments.is_empty() {
        super::no_attachments()
    } else {
        Arc::from(attachments)
    }
}
