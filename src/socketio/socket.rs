//! One socket: a client's membership of one namespace, with its id and pending acks.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::packet::{Args, Encoded};
use super::rate::{EventRate, Verdict};
use super::{Admission, Identity};
use crate::engineio::{CloseReason, Handshake, Packet as EnginePacket, SendError, Session, Sid};
use crate::limits::Rate;

/// Why a socket left its namespace, in socket.io's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The transport failed.
    TransportError,
    /// The client closed the connection.
    TransportClose,
    /// The server closed the connection.
    ForcedClose,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent a malformed packet.
    ParseError,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The server closed the socket and its connection.
    ForcedServerClose,
    /// The client left the namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace.
    ServerNamespaceDisconnect,
}

impl DisconnectReason {
    /// The reason as socket.io names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
        }
    }
}

impl DisconnectReason {
    /// Whether a socket that left for this reason may be recovered (socket.io's
    /// `RECOVERABLE_DISCONNECT_REASONS`): not when either side meant it to leave.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportError
                | DisconnectReason::TransportClose
                | DisconnectReason::ForcedClose
                | DisconnectReason::PingTimeout
                | DisconnectReason::ServerShuttingDown
                | DisconnectReason::ForcedServerClose
        )
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::TransportError | CloseReason::SlowClient | CloseReason::WriteTimeout => {
                DisconnectReason::TransportError
            }
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::ForcedClose => DisconnectReason::ForcedClose,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client's answer to an event the server emitted with an ack id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckResponse {
    /// The answer's arguments as received, comma-separated (`1,"a"`).
    pub args: Bytes,
    /// Binary attachments the placeholders in `args` refer to.
    pub attachments: Arc<[Bytes]>,
}

/// Why the server could not emit with an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The packet could not be queued.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The socket already has `pending_acks` acks awaited.
    #[error("too many acks awaited")]
    TooMany,
}

/// An ack being awaited; resolves to the client's answer, or `None` if the socket left
/// first. Dropping it (at a timeout, say) forgets the ack id, so an ack that never comes
/// costs the socket nothing.
#[derive(Debug)]
pub struct AckWait {
    rx: oneshot::Receiver<AckResponse>,
    socket: Weak<Socket>,
    id: u64,
}

impl Future for AckWait {
    type Output = Option<AckResponse>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}

impl Drop for AckWait {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.upgrade() {
            socket.acks.lock().expect("acks lock").remove(&self.id);
        }
    }
}

/// What one socket may do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SocketLimits {
    pub(crate) events: Option<Rate>,
    pub(crate) excess_disconnect: std::time::Duration,
    pub(crate) pending_acks: usize,
    /// The parser its client speaks.
    pub(crate) parser: super::Parser,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            events: None,
            excess_disconnect: std::time::Duration::from_secs(10),
            pending_acks: 256,
            parser: super::Parser::Default,
        }
    }
}

/// One socket in one namespace.
pub struct Socket {
    id: Sid,
    nsp: Arc<str>,
    session: Arc<Session>,
    auth: Option<Box<RawValue>>,
    connected: AtomicBool,
    next_ack: AtomicU64,
    /// Acks the server waits for. Per socket, touched only by emits that ask for an ack.
    acks: Mutex<HashMap<u64, oneshot::Sender<AckResponse>>>,
    /// `socket.data`: what the application keeps for the socket's life.
    data: Mutex<serde_json::Value>,
    /// Who its token says it is, when one was verified; a refresh replaces it.
    identity: Mutex<Option<Identity>>,
    /// Told when the identity is replaced.
    identity_changed: tokio::sync::Notify,
    /// Rooms its admission named, until the layer above joins them.
    rooms_to_join: Mutex<Vec<String>>,
    /// Cancelled when the socket leaves its namespace.
    left: tokio_util::sync::CancellationToken,
    /// [`handshake_value`] of this socket, built on first use.
    handshake_value: std::sync::OnceLock<serde_json::Value>,
    limits: SocketLimits,
    rate: Mutex<Option<EventRate>>,
    /// Its private session id, under connection state recovery.
    pid: Option<Arc<str>>,
    /// Whether it is a recovered socket.
    recovered: bool,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("nsp", &self.nsp)
            .field("sid", &self.session.sid())
            .finish_non_exhaustive()
    }
}

impl Socket {
    #[cfg(test)]
    pub(crate) fn new(
        nsp: &str,
        session: Arc<Session>,
        auth: Option<Box<RawValue>>,
        data: Option<serde_json::Value>,
    ) -> Socket {
        let admission = Admission {
            data,
            ..Admission::default()
        };
        Socket::with_limits(nsp, session, auth, admission, SocketLimits::default())
    }

    pub(crate) fn with_limits(
        nsp: &str,
        session: Arc<Session>,
        auth: Option<Box<RawValue>>,
        admission: Admission,
        limits: SocketLimits,
    ) -> Socket {
        let now = tokio::time::Instant::now().into_std();
        Socket {
            limits,
            rate: Mutex::new(limits.events.map(|rate| EventRate::new(rate, now))),
            id: Sid::random(),
            nsp: Arc::from(nsp),
            session,
            auth,
            connected: AtomicBool::new(true),
            next_ack: AtomicU64::new(0),
            acks: Mutex::new(HashMap::new()),
            data: Mutex::new(
                admission
                    .data
                    .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            ),
            identity: Mutex::new(admission.identity),
            identity_changed: tokio::sync::Notify::new(),
            rooms_to_join: Mutex::new(admission.rooms),
            left: tokio_util::sync::CancellationToken::new(),
            handshake_value: std::sync::OnceLock::new(),
            pid: None,
            recovered: false,
        }
    }

    /// Under connection state recovery: a new socket gets a private session id; a
    /// recovered one its old id, private session id and `socket.data` (what its admission
    /// set is merged over it).
    pub(crate) fn with_recovery(mut self, restored: Option<&super::Restored>) -> Socket {
        match restored {
            Some(r) => {
                self.id = r.sid;
                self.pid = Some(Arc::from(r.pid.as_str()));
                self.recovered = true;
                let data = self.data.get_mut().expect("data lock");
                let mut merged = r.data.clone();
                if let (serde_json::Value::Object(into), serde_json::Value::Object(from)) =
                    (&mut merged, std::mem::take(data))
                {
                    into.extend(from);
                }
                *data = merged;
            }
            None => self.pid = Some(Arc::from(Sid::random().to_string())),
        }
        self
    }

    /// Its private session id, under connection state recovery.
    pub fn pid(&self) -> Option<&str> {
        self.pid.as_deref()
    }

    /// Whether it was recovered (socket.io's `socket.recovered`).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// The socket id (also the name of its own room).
    pub fn id(&self) -> Sid {
        self.id
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// The Engine.IO session carrying this socket.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The opening HTTP request.
    pub fn handshake(&self) -> &Handshake {
        self.session.handshake()
    }

    /// The CONNECT packet's auth payload, as received.
    pub fn auth(&self) -> Option<&RawValue> {
        self.auth.as_deref()
    }

    /// The handshake as JSON (see [`handshake_value`]), built once per socket.
    pub fn handshake_value(&self) -> &serde_json::Value {
        self.handshake_value
            .get_or_init(|| handshake_value(self.auth(), self.handshake()))
    }

    /// `socket.data` (an empty object unless something set it).
    pub fn data(&self) -> serde_json::Value {
        self.data.lock().expect("data lock").clone()
    }

    /// Who its token says it is, if a token was verified.
    pub fn identity(&self) -> Option<Identity> {
        self.identity.lock().expect("identity lock").clone()
    }

    /// The token's claims, if a token was verified.
    pub fn claims(&self) -> Option<Arc<serde_json::Value>> {
        self.identity
            .lock()
            .expect("identity lock")
            .as_ref()
            .map(|i| i.claims.clone())
    }

    /// The rooms its admission named (taken once, by the layer above, as it connects).
    pub fn take_rooms_to_join(&self) -> Vec<String> {
        std::mem::take(&mut *self.rooms_to_join.lock().expect("rooms lock"))
    }

    /// Replace the identity (a refreshed token).
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.lock().expect("identity lock") = Some(identity);
        self.identity_changed.notify_one();
    }

    /// Resolves when the identity is next replaced.
    pub async fn identity_changed(&self) {
        self.identity_changed.notified().await
    }

    /// Resolves once the socket has left its namespace.
    pub async fn left(&self) {
        self.left.cancelled().await
    }

    /// Replace `socket.data`.
    pub fn set_data(&self, value: serde_json::Value) {
        *self.data.lock().expect("data lock") = value;
    }

    /// Whether the socket is still in its namespace.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Marks the socket as gone; true only for the call that did it.
    pub(crate) fn mark_disconnected(&self) -> bool {
        let was = self.connected.swap(false, Ordering::AcqRel);
        if was {
            self.acks.lock().expect("acks lock").clear();
            self.left.cancel();
        }
        was
    }

    /// Queue an encoded packet for this socket's client.
    pub fn send(&self, packet: &Encoded) -> Result<(), SendError> {
        self.queue(packet, false)
    }

    /// Queue an encoded packet unless the client is behind (socket.io's `volatile`).
    pub fn send_volatile(&self, packet: &Encoded) -> Result<(), SendError> {
        self.queue(packet, true)
    }

    fn queue(&self, packet: &Encoded, volatile: bool) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        if self.limits.parser == super::Parser::Msgpack {
            // One binary message; converted once per packet, whoever it is queued for.
            let Some(bytes) = packet.msgpack() else {
                tracing::debug!(socket = %self.id, "Not a packet; not sent");
                return Ok(());
            };
            let message = [EnginePacket::Binary(bytes)];
            return if volatile {
                self.session.send_volatile(&message)
            } else {
                self.session.send_all(&message)
            };
        }
        let text = EnginePacket::Message(packet.text.clone());
        if packet.attachments.is_empty() && !volatile {
            self.session.send(text)
        } else {
            // A message and its attachments are queued together or not at all.
            let mut all = Vec::with_capacity(1 + packet.attachments.len());
            all.push(text);
            all.extend(packet.attachments.iter().cloned().map(EnginePacket::Binary));
            if volatile {
                self.session.send_volatile(&all)
            } else {
                self.session.send_all(&all)
            }
        }
    }

    /// Whether the client may send another event now: a token of its event rate.
    pub(crate) fn take_event_token(&self) -> Verdict {
        let mut rate = self.rate.lock().expect("rate lock");
        match (rate.as_mut(), self.limits.events) {
            (Some(state), Some(limit)) => state.check(
                limit,
                self.limits.excess_disconnect,
                tokio::time::Instant::now().into_std(),
            ),
            _ => Verdict::Allow,
        }
    }

    /// Emit `event` to this socket's client.
    pub fn emit(
        &self,
        event: &str,
        args: &[u8],
        attachments: Arc<[Bytes]>,
    ) -> Result<(), SendError> {
        self.send(&Encoded::event(
            &self.nsp,
            event,
            Args::Raw(args),
            attachments,
            None,
        ))
    }

    /// Emit `event` asking for the client's acknowledgement; await the returned
    /// [`AckWait`] for it, under a timeout of the caller's. At most `pending_acks` may be
    /// awaited at once.
    pub fn emit_with_ack(
        self: &Arc<Self>,
        event: &str,
        args: &[u8],
        attachments: Arc<[Bytes]>,
    ) -> Result<AckWait, AckError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut acks = self.acks.lock().expect("acks lock");
            if acks.len() >= self.limits.pending_acks {
                return Err(AckError::TooMany);
            }
            let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
            acks.insert(id, tx);
            id
        };
        let wait = AckWait {
            rx,
            socket: Arc::downgrade(self),
            id,
        };
        let packet = Encoded::event(&self.nsp, event, Args::Raw(args), attachments, Some(id));
        self.send(&packet)?;
        Ok(wait)
    }

    /// How many acks the server awaits from this socket.
    pub fn pending_acks(&self) -> usize {
        self.acks.lock().expect("acks lock").len()
    }

    /// Answer the client's event `id`.
    pub fn ack(&self, id: u64, args: &[u8], attachments: Arc<[Bytes]>) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        if self.limits.parser == super::Parser::Msgpack || !attachments.is_empty() {
            return self.send(&Encoded::ack(&self.nsp, id, Args::Raw(args), attachments));
        }
        // A plain answer for this socket alone: cut from the thread's block and moved into
        // the queue, written and gone — no allocation.
        let text = super::packet::ack_text(&self.nsp, id, args);
        self.session.send_cut(EnginePacket::Message(text))
    }

    /// The client answered ack `id`; unknown ids are ignored, as socket.io does.
    pub(crate) fn on_ack(&self, id: u64, response: AckResponse) {
        let waiter = self.acks.lock().expect("acks lock").remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(response);
        }
    }

    /// Remove the socket from its namespace from the server side: the client gets a
    /// DISCONNECT packet. Returns whether the socket was connected; the caller runs what
    /// follows a disconnection (rooms, routes).
    pub fn disconnect(&self) -> bool {
        let _ = self.send(&Encoded::disconnect(&self.nsp));
        self.mark_disconnected()
    }
}

/// socket.io's `socket.handshake` as JSON: `{auth, query, headers, address}` (`auth` is
/// `{}` when the client sent none).
pub fn handshake_value(auth: Option<&RawValue>, handshake: &Handshake) -> Value {
    let auth = auth
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .unwrap_or_else(|| Value::Object(Default::default()));
    let query: serde_json::Map<String, Value> = handshake
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let headers: serde_json::Map<String, Value> = handshake
        .headers
        .iter_str()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    serde_json::json!({
        "auth": auth,
        "query": query,
        "headers": headers,
        "address": handshake.remote_addr.ip().to_string(),
    })
}
