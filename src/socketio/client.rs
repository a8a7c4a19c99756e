//! The Socket.IO side of one Engine.IO session: decodes packets, keeps the session's sockets
//! (one per namespace joined), reassembles binary packets. Implements
//! [`EngineHandler`](crate::engineio::EngineHandler).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::packet::{Encoded, Packet, PacketKind};
use super::socket::{AckResponse, DisconnectReason, Socket};
use super::{Event, SocketHandler, SocketIoConfig};
use crate::engineio::{CloseReason, Conn, EngineHandler, Session};

/// The Socket.IO layer: an [`EngineHandler`] that hands events to `H`.
#[derive(Debug)]
pub struct SocketIo<H> {
    handler: H,
    config: ArcSwap<SocketIoConfig>,
}

/// Per-session state of the Socket.IO layer.
#[derive(Debug, Default)]
pub struct ClientState {
    /// The session's sockets, one per namespace; a handful at most, so a list.
    sockets: Mutex<Vec<Arc<Socket>>>,
    /// A binary packet waiting for its attachments.
    partial: Mutex<Option<(Packet, Vec<Bytes>)>>,
    /// Set once any namespace is joined; read by the connect timeout.
    joined: Arc<AtomicBool>,
    /// The attachment limit in force when the session opened.
    max_attachments: usize,
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
    /// The layer, handing events to `handler`.
    pub fn new(handler: H, config: SocketIoConfig) -> Self {
        SocketIo {
            handler,
            config: ArcSwap::from_pointee(config),
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Replace the settings; applies to new sessions and packets from now on.
    pub fn set_config(&self, config: SocketIoConfig) {
        self.config.store(Arc::new(config));
    }

    fn parse_error(&self, session: &Session, why: &dyn std::fmt::Display) {
        tracing::debug!(sid = %session.sid(), error = %why, "Malformed Socket.IO packet");
        session.close(CloseReason::ParseError);
    }

    fn on_packet(&self, conn: &Arc<Conn<ClientState>>, packet: Packet, attachments: Vec<Bytes>) {
        let state = &conn.data;
        match packet.kind {
            PacketKind::Connect => self.on_connect(conn, packet),
            PacketKind::Disconnect => {
                if let Some(socket) = state.socket(&packet.nsp)
                    && socket.mark_disconnected()
                {
                    self.handler
                        .on_disconnect(&socket, DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                let Some(socket) = state.socket(&packet.nsp) else {
                    tracing::debug!(sid = %conn.session.sid(), nsp = packet.nsp_str(), "Event for a namespace not joined");
                    return;
                };
                let head = packet.event.clone().expect("events are parsed with a head");
                let event = Event {
                    args: packet.args(),
                    name: head.name,
                    data: packet.data.unwrap_or_default(),
                    id: packet.id,
                    attachments: Arc::from(attachments),
                };
                self.handler.on_event(&socket, event);
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                if let (Some(socket), Some(id)) = (state.socket(&packet.nsp), packet.id) {
                    let args = packet.args();
                    socket.on_ack(
                        id,
                        AckResponse {
                            args,
                            attachments: Arc::from(attachments),
                        },
                    );
                }
            }
            PacketKind::ConnectError => {}
        }
    }

    fn on_connect(&self, conn: &Arc<Conn<ClientState>>, packet: Packet) {
        let nsp = packet.nsp_str();
        let session = &conn.session;
        if conn.data.socket(&packet.nsp).is_some() {
            tracing::debug!(sid = %session.sid(), nsp, "CONNECT for a namespace already joined");
            return;
        }
        let auth: Option<Box<RawValue>> = packet
            .data
            .as_ref()
            .and_then(|d| serde_json::from_slice::<Box<RawValue>>(d).ok());
        let data = match self
            .handler
            .authorize(nsp, auth.as_deref(), session.handshake())
        {
            Ok(data) => data,
            Err(refusal) => {
                tracing::debug!(sid = %session.sid(), nsp, message = %refusal.message, "Connection refused");
                let _ = session.send(crate::engineio::Packet::Message(
                    Encoded::connect_error(nsp, &refusal.message, refusal.data.as_ref()).text,
                ));
                return;
            }
        };
        let socket = Arc::new(Socket::new(nsp, session.clone(), auth, data));
        {
            let mut sockets = conn.data.sockets.lock().expect("sockets lock");
            sockets.retain(|s| s.is_connected());
            sockets.push(socket.clone());
        }
        conn.data.joined.store(true, Ordering::Release);
        if socket
            .send(&Encoded::connect(nsp, socket.id().as_str()))
            .is_ok()
        {
            self.handler.on_connect(&socket);
        }
    }
}

impl<H: SocketHandler> EngineHandler for SocketIo<H> {
    type Data = ClientState;

    fn on_open(&self, session: &Arc<Session>) -> ClientState {
        let config = self.config.load();
        let state = ClientState {
            max_attachments: config.max_attachments,
            ..ClientState::default()
        };
        let joined = state.joined.clone();
        let session = session.clone();
        let timeout = config.connect_timeout;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {
                    if !joined.load(Ordering::Acquire) {
                        tracing::debug!(sid = %session.sid(), "No namespace joined within connect_timeout");
                        session.close(CloseReason::ForcedClose);
                    }
                }
                _ = session.closed() => {}
            }
        });
        state
    }

    fn on_message(&self, conn: &Arc<Conn<ClientState>>, text: Bytes) {
        if conn.data.partial.lock().expect("partial lock").is_some() {
            self.parse_error(&conn.session, &"text while waiting for attachments");
            return;
        }
        let packet = match Packet::parse(text, conn.data.max_attachments) {
            Ok(packet) => packet,
            Err(e) => return self.parse_error(&conn.session, &e),
        };
        if packet.attachments > 0 {
            let n = packet.attachments;
            *conn.data.partial.lock().expect("partial lock") =
                Some((packet, Vec::with_capacity(n)));
            return;
        }
        self.on_packet(conn, packet, Vec::new());
    }

    fn on_binary(&self, conn: &Arc<Conn<ClientState>>, data: Bytes) {
        let complete = {
            let mut partial = conn.data.partial.lock().expect("partial lock");
            let Some((packet, attachments)) = partial.as_mut() else {
                drop(partial);
                return self.parse_error(&conn.session, &"binary data outside a binary packet");
            };
            attachments.push(data);
            if attachments.len() < packet.attachments {
                return;
            }
            partial.take().expect("present")
        };
        self.on_packet(conn, complete.0, complete.1);
    }

    fn on_close(&self, conn: &Arc<Conn<ClientState>>, reason: CloseReason) {
        let sockets = std::mem::take(&mut *conn.data.sockets.lock().expect("sockets lock"));
        for socket in sockets {
            if socket.mark_disconnected() {
                self.handler.on_disconnect(&socket, reason.into());
            }
        }
    }
}
