//! How a golden client reaches the server: a WebSocket or HTTP long-polling, behind one
//! interface of Engine.IO packets, so that a case reads the same over either.

mod polling;
mod websocket;

use std::net::SocketAddr;
use std::time::Duration;

pub use polling::PollingLink;
pub use websocket::WebSocketLink;

/// How long any single wait may take before the case fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A client that could not do what a step asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// An Engine.IO packet, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A text packet, type digit first (`42[…]`, `2`, `3probe`).
    Text(String),
    /// A binary message (a Socket.IO attachment).
    Binary(Vec<u8>),
}

/// What reading from the server gave.
#[derive(Debug)]
pub enum Read {
    /// Packets, in order.
    Packets(Vec<Packet>),
    /// The session or the connection is gone.
    Closed,
}

/// A client's connection, on either transport.
pub enum Link {
    /// A WebSocket.
    WebSocket(WebSocketLink),
    /// HTTP long-polling.
    Polling(PollingLink),
}

impl Link {
    /// Open a session at `path` over the chosen transport, `query` appended to the handshake.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        query: Option<&str>,
        polling: bool,
    ) -> Result<(Link, Vec<Packet>), ClientError> {
        let extra = query.map(|q| format!("&{q}")).unwrap_or_default();
        if polling {
            let (link, rest) = PollingLink::open(addr, path, &extra).await?;
            Ok((Link::Polling(link), rest))
        } else {
            let uri = format!("{path}/?EIO=4&transport=websocket{extra}");
            let mut link = WebSocketLink::connect(addr, &uri).await?;
            match link.read().await? {
                Read::Packets(p) if matches!(p.first(), Some(Packet::Text(t)) if t.starts_with('0')) => {
                    Ok((Link::WebSocket(link), Vec::new()))
                }
                _ => Err(ClientError("the first packet is not OPEN".to_owned())),
            }
        }
    }

    /// Send packets, in order; `Ok(false)` when the session is gone.
    pub async fn send(&mut self, packets: &[Packet]) -> Result<bool, ClientError> {
        match self {
            Link::WebSocket(ws) => ws.send(packets).await,
            Link::Polling(p) => p.send(packets).await,
        }
    }

    /// The next packets from the server.
    pub async fn read(&mut self) -> Result<Read, ClientError> {
        match self {
            Link::WebSocket(ws) => ws.read().await,
            Link::Polling(p) => p.read().await,
        }
    }

    /// Close the session the way the stock client does, and wait until the server has
    /// handled it (disconnect routes run).
    pub async fn close(&mut self) -> Result<(), ClientError> {
        match self {
            Link::WebSocket(ws) => ws.close().await,
            Link::Polling(p) => p.close().await,
        }
    }
}
