//! PROTOCOL — Socket.IO v5 over Engine.IO: packets, namespaces joined per session, sockets,
//! acknowledgements. What happens to an event is decided above, through [`SocketHandler`].

mod client;
pub mod msgpack;
pub mod packet;
mod rate;
mod socket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::value::RawValue;

use crate::engineio::{Handshake, Pending, Sid};
use crate::limits::Rate;

pub use client::{ClientState, SocketIo};
pub use msgpack::Parser;
pub use packet::{Encoded, no_attachments};
pub use socket::{AckError, AckResponse, AckWait, DisconnectReason, Socket, handshake_value};

/// Settings of the Socket.IO layer. A session keeps the settings it started with.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketIoConfig {
    /// Most binary attachments one packet may announce. Defaults to 10.
    pub max_attachments: usize,
    /// Most bytes of one packet, its attachments included. Defaults to 1,000,000.
    pub max_payload: usize,
    /// Namespaces one session may join. Defaults to 32.
    pub namespaces_per_session: usize,
    /// Events per socket; over it, events are dropped. Defaults to `None` (no limit).
    pub events_per_socket: Option<Rate>,
    /// A socket still over its event rate after this long is disconnected. Defaults to 10 s.
    pub events_excess_disconnect: Duration,
    /// Acks the server may await from one socket. Defaults to 256.
    pub pending_acks: usize,
    /// Connection state recovery, when on.
    pub recovery: Option<RecoveryMode>,
    /// The parser clients speak. Defaults to socket.io's default parser.
    pub parser: Parser,
}

/// How connection state recovery treats a returning client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryMode {
    /// A recovered socket is not authorized again (socket.io's `skipMiddlewares`).
    pub skip_auth: bool,
}

/// What a recovered socket gets back.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// Its id.
    pub sid: Sid,
    /// Its private session id.
    pub pid: String,
    /// Its rooms (its own aside).
    pub rooms: Vec<String>,
    /// Its `socket.data`.
    pub data: serde_json::Value,
    /// The last broadcast it got: what came after is replayed.
    pub offset: String,
    /// What it missed, when read from a shared log with it (else the adapter replays).
    pub missed: Vec<Encoded>,
}

/// A [`Restored`] socket being looked up (in Redis under `redis-streams`).
pub type Restoring = Pin<Box<dyn Future<Output = Option<Restored>> + Send>>;

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            max_attachments: 10,
            max_payload: 1_000_000,
            namespaces_per_session: 32,
            events_per_socket: None,
            events_excess_disconnect: Duration::from_secs(10),
            pending_acks: 256,
            recovery: None,
            parser: Parser::Default,
        }
    }
}

/// The answer an ack gets when its event was dropped by a limit.
pub const RATE_LIMITED_ACK: &[u8] = br#"{"error":"rate limit exceeded"}"#;

/// Who a verified token says a socket is: its claims, and until when they hold. Kept for the
/// socket's life; a refresh replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The token's claims (a JSON object).
    pub claims: Arc<serde_json::Value>,
    /// When the token stops being accepted.
    pub expires: std::time::SystemTime,
}

/// What a socket is admitted with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// Its initial `socket.data`.
    pub data: Option<serde_json::Value>,
    /// Its identity, when a token was verified.
    pub identity: Option<Identity>,
    /// Rooms to join at once (an auth hook's answer).
    pub rooms: Vec<String>,
}

/// A decision on a CONNECT.
pub type Decision = Result<Admission, ConnectRefusal>;

/// Whether a socket may join: decided at once, or by work to await (a script).
pub enum Authorization {
    /// Decided.
    Ready(Decision),
    /// To be awaited.
    Pending(Pin<Box<dyn Future<Output = Decision> + Send>>),
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Authorization::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// An event from a client.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event name (bytes of the packet it came in, when it had no escapes).
    pub name: ByteString,
    /// The whole data array as received (`["name",…]`).
    pub data: Bytes,
    /// The arguments as received, comma-separated, without brackets (may be empty).
    pub args: Bytes,
    /// The ack id, when the client waits for an answer.
    pub id: Option<u64>,
    /// Binary attachments referred to by placeholders in `args`.
    pub attachments: Arc<[Bytes]>,
}

/// A refused CONNECT: the client's `connect_error` gets `message` (and `data`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRefusal {
    /// `err.message` on the client.
    pub message: String,
    /// `err.data` on the client.
    pub data: Option<serde_json::Value>,
}

impl ConnectRefusal {
    /// socket.io's answer to a namespace that does not exist.
    pub fn invalid_namespace() -> Self {
        ConnectRefusal {
            message: "Invalid namespace".to_owned(),
            data: None,
        }
    }
}

/// What the layer above Socket.IO implements. Calls come in the order each client sent its
/// packets and must not block: work that takes long comes back as a future, awaited before
/// the client's next packet is handled.
pub trait SocketHandler: Send + Sync + 'static {
    /// A client asks to join `nsp` with `auth`: accept (with the socket's initial
    /// `socket.data`, if any), or refuse with a CONNECT_ERROR.
    fn authorize(&self, nsp: &str, auth: Option<&RawValue>, handshake: &Handshake)
    -> Authorization;

    /// A socket joined its namespace (its CONNECT answer is already queued).
    fn on_connect(&self, socket: &Arc<Socket>) -> Option<Pending>;

    /// An event arrived.
    fn on_event(&self, socket: &Arc<Socket>, event: Event) -> Option<Pending>;

    /// A socket left its namespace; called once per socket.
    fn on_disconnect(&self, socket: &Arc<Socket>, reason: DisconnectReason) -> Option<Pending>;

    /// Connection state recovery: the saved socket of private session id `pid`, if it can
    /// be recovered from the broadcast `offset` (taken: it is recovered at most once).
    fn restore(&self, _nsp: String, _pid: String, _offset: String) -> Restoring {
        Box::pin(std::future::ready(None))
    }

    /// A recovered socket, before its CONNECT answer: put it back in its rooms and queue
    /// the broadcasts it missed, in order, before anything newer.
    fn on_recover(&self, _socket: &Arc<Socket>, _restored: &Restored) {}
}
