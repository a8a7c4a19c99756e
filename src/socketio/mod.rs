//! PROTOCOL — Socket.IO v5 over Engine.IO: packets, namespaces joined per session, sockets,
//! acknowledgements. What happens to an event is decided above, through [`SocketHandler`].

mod client;
pub mod packet;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::engineio::Handshake;

pub use client::{ClientState, SocketIo};
pub use packet::Encoded;
pub use socket::{AckResponse, DisconnectReason, Socket, handshake_value};

/// Settings of the Socket.IO layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketIoConfig {
    /// A session that joins no namespace by then is closed. Defaults to 45 s.
    pub connect_timeout: Duration,
    /// Most binary attachments one packet may announce. Defaults to 10.
    pub max_attachments: usize,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            connect_timeout: Duration::from_secs(45),
            max_attachments: 10,
        }
    }
}

/// An event from a client.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event name.
    pub name: String,
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
/// packets and must not block.
pub trait SocketHandler: Send + Sync + 'static {
    /// A client asks to join `nsp` with `auth`: accept (with the socket's initial
    /// `socket.data`, if any), or refuse with a CONNECT_ERROR.
    fn authorize(
        &self,
        nsp: &str,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Result<Option<serde_json::Value>, ConnectRefusal>;

    /// A socket joined its namespace (its CONNECT answer is already queued).
    fn on_connect(&self, socket: &Arc<Socket>);

    /// An event arrived.
    fn on_event(&self, socket: &Arc<Socket>, event: Event);

    /// A socket left its namespace; called once per socket.
    fn on_disconnect(&self, socket: &Arc<Socket>, reason: DisconnectReason);
}
