//! TRANSPORT — Engine.IO v4: handshake, long-polling, WebSocket, the upgrade between them,
//! heartbeats. Knows nothing of namespaces or routes: the layer above plugs in through
//! [`EngineHandler`], the one seam.

mod admission;
pub mod assemble;
pub(crate) mod block;
mod config;
mod cors;
mod engine;
mod error;
pub mod frame;
mod headers;
mod outbox;
pub mod packet;
pub mod payload;
mod peer;
mod polling;
mod request;
mod session;
mod sid;
mod websocket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub use config::{Admission, Cookie, Cors, EngineConfig, Transport};
pub use engine::{Conn, Engine, Stats};
pub use error::Error;
pub use headers::Headers;
pub use packet::Packet;
pub use peer::PeerHandle;
pub use session::{CloseReason, Handshake, SendError, Session};
pub use sid::{InvalidSid, Sid};
pub(crate) use websocket::{Start, Takeover};

/// Work a handler could not finish at once (a script on another thread): the transport
/// awaits it before it hands over the session's next packet, so packets are handled in the
/// order the peer sent them.
pub type Pending = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The body of a request to the Engine.IO path: hyper's, or one the server reads itself
/// (its own long-polling path). Only a POST's is read.
pub trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
{
}

/// What the layer above Engine.IO implements. Callbacks run on the task that read the
/// packet, in the order the peer sent them; they must not block.
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session state of the layer above.
    type Data: Send + Sync + 'static;

    /// Whether to accept a handshake; a refusal answers 403 `{"code":4,"message":"Forbidden"}`,
    /// like socket.io's `allowRequest`. Accepts everything by default.
    fn allow_request(&self, _parts: &http::request::Parts) -> bool {
        true
    }

    /// A session opened; returns its state.
    fn on_open(&self, session: &Arc<Session>) -> Self::Data;

    /// A text message arrived. Work that cannot finish at once comes back as [`Pending`].
    fn on_message(&self, conn: &Arc<Conn<Self::Data>>, text: Bytes) -> Option<Pending>;

    /// A binary message arrived. Work that cannot finish at once comes back as [`Pending`].
    fn on_binary(&self, conn: &Arc<Conn<Self::Data>>, data: Bytes) -> Option<Pending>;

    /// The session closed; called exactly once. The peer is told (a poll released, a close
    /// frame sent) once the work returned, if any, is done.
    fn on_close(&self, conn: &Arc<Conn<Self::Data>>, reason: CloseReason) -> Option<Pending>;
}

/// Sessions for unit tests of the layers above, with no transport attached.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use super::{EngineConfig, Handshake, Session, Sid, Transport};

    /// A polling session nobody reads; its queue can be drained through `rx`.
    pub(crate) fn session() -> Arc<Session> {
        let handshake = Handshake {
            headers: super::Headers::default(),
            query: Vec::new(),
            remote_addr: "127.0.0.1:1".parse().expect("valid address"),
            client_ip: "127.0.0.1".parse().expect("valid address"),
            issued: std::time::SystemTime::now(),
            url: "/socket.io/?EIO=4&transport=polling".to_owned(),
        };
        Arc::new(Session::new(
            Sid::random(),
            Transport::Polling,
            handshake,
            Arc::new(EngineConfig::default()),
        ))
    }
}
