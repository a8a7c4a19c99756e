//! What the server API does (the HTTP side is `server::api`): emit to a namespace or its
//! rooms, make sockets join or leave rooms, disconnect them, list sockets and rooms — here
//! and, under `[cluster]`, on every node, as socket.io's `io.to(...).emit`, `socketsJoin`,
//! `socketsLeave`, `disconnectSockets`, `fetchSockets` and `allRooms` do.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use crate::adapter::{Adapter, BroadcastOptions};
use crate::routing::Args;
use crate::socketio::Encoded;

/// Which sockets a call is about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The namespace.
    pub namespace: String,
    /// Only sockets in at least one of these rooms; all when absent.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Not sockets in any of these rooms.
    #[serde(default)]
    pub except: Vec<String>,
    /// Only this socket (its own room).
    #[serde(default)]
    pub socket_id: Option<String>,
}

impl Selector {
    fn options(&self) -> BroadcastOptions {
        let mut rooms = self.rooms.clone();
        if let Some(id) = &self.socket_id {
            rooms.push(id.clone());
        }
        BroadcastOptions {
            rooms,
            except: self.except.clone(),
            volatile: false,
        }
    }
}

/// Why a call was refused: the client's mistake (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The namespace is not declared.
    #[error("unknown namespace `{0}`")]
    UnknownNamespace(String),
    /// Something else about the request.
    #[error("{0}")]
    Invalid(String),
}

/// A socket as `GET /api/sockets` lists it.
pub type SocketInfo = Value;

impl App {
    fn adapter(&self, namespace: &str) -> Result<Arc<dyn Adapter>, ApiError> {
        self.snapshot()
            .adapters
            .get(namespace)
            .cloned()
            .ok_or_else(|| ApiError::UnknownNamespace(namespace.to_owned()))
    }

    /// Emit `event` with `args` (`{"$binary": "…"}` values become attachments) to the
    /// sockets `to` selects, on every node; the number queued on this one.
    pub fn api_emit(
        &self,
        to: &Selector,
        event: &str,
        args: Vec<Value>,
    ) -> Result<usize, ApiError> {
        // socket.io keeps these names for itself, on either side.
        if event.is_empty() || crate::socketio::packet::RESERVED_EVENTS.contains(&event) {
            return Err(ApiError::Invalid(format!(
                "`{event}` is not an event a server may emit"
            )));
        }
        let adapter = self.adapter(&to.namespace)?;
        let (values, attachments) = match crate::backend::args_from_json(args) {
            Args::Binary(values, attachments) => (values, attachments),
            Args::Values(values) => (values, Vec::new()),
            Args::Forward => (Vec::new(), Vec::new()),
        };
        let mut raw = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                raw.push(b',');
            }
            serde_json::to_writer(&mut raw, v).expect("JSON values serialize");
        }
        let packet = Encoded::event(
            &to.namespace,
            event,
            crate::socketio::packet::Args::Raw(&raw),
            Arc::from(attachments),
            None,
        );
        let delivery = adapter.broadcast(&packet, &to.options());
        Ok(delivery.queued)
    }

    /// The sockets `who` selects join (or leave) `rooms`, on every node; how many here.
    pub fn api_rooms_change(
        &self,
        who: &Selector,
        rooms: &[String],
        join: bool,
    ) -> Result<usize, ApiError> {
        if rooms.is_empty() || rooms.iter().any(|r| r.is_empty()) {
            return Err(ApiError::Invalid("`room` names no room".to_owned()));
        }
        let adapter = self.adapter(&who.namespace)?;
        let opts = who.options();
        let here = adapter.sockets(&opts);
        for socket in &here {
            for room in rooms {
                if join {
                    adapter.join(socket.id(), room);
                } else {
                    adapter.leave(socket.id(), room);
                }
            }
        }
        if join {
            adapter.remote_join(&opts, rooms);
        } else {
            adapter.remote_leave(&opts, rooms);
        }
        Ok(here.len())
    }

    /// Disconnect the sockets `who` selects from their namespace (`close`: their whole
    /// connection), on every node, running their `disconnect` routes; how many here.
    pub fn api_disconnect(&self, who: &Selector, close: bool) -> Result<usize, ApiError> {
        let adapter = self.adapter(&who.namespace)?;
        let opts = who.options();
        let here = adapter.sockets(&opts);
        for socket in &here {
            if close {
                self.close_connection(socket);
            } else {
                self.dispatcher.disconnect(socket);
            }
        }
        adapter.remote_disconnect(&opts, close);
        Ok(here.len())
    }

    /// Close the whole connection of `socket`, as socket.io's `disconnect(true)`: each of
    /// its namespaces is told first (the client does not reconnect), then the transport.
    fn close_connection(&self, socket: &Arc<crate::socketio::Socket>) {
        let session = socket.session();
        if let Some(conn) = self.engine.conn(session.sid()) {
            for sibling in conn.data.sockets() {
                self.dispatcher.disconnect(&sibling);
            }
        }
        session.close(crate::engineio::CloseReason::ForcedClose);
    }

    /// The sockets `who` selects, on every node (each `{id, handshake, rooms, data}`), at
    /// most `limit` from `offset`, with how many there are in all.
    pub async fn api_sockets(
        &self,
        who: &Selector,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<SocketInfo>, usize), ApiError> {
        let adapter = self.adapter(&who.namespace)?;
        let opts = who.options();
        let walk = (Arc::clone(&adapter), opts.clone());
        let mut all = off_reactor(move || {
            let (adapter, opts) = walk;
            adapter
                .sockets(&opts)
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id().as_str(),
                        "handshake": s.handshake_value(),
                        "rooms": adapter.rooms_of(s.id()),
                        "data": s.data(),
                    })
                })
                .collect::<Vec<Value>>()
        })
        .await?;
        all.extend(adapter.remote_sockets(&opts).await);
        all.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        let total = all.len();
        Ok((all.into_iter().skip(offset).take(limit).collect(), total))
    }

    /// The rooms of `namespace` on every node, sorted, at most `limit` from `offset`, with how
    /// many there are in all. Sockets' own rooms are not listed.
    pub async fn api_rooms(
        &self,
        namespace: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), ApiError> {
        let adapter = self.adapter(namespace)?;
        let local = Arc::clone(&adapter);
        let mut rooms = off_reactor(move || local.all_rooms()).await?;
        rooms.extend(adapter.remote_rooms().await);
        rooms.retain(|r| r.parse::<crate::engineio::Sid>().is_err());
        rooms.sort();
        rooms.dedup();
        let total = rooms.len();
        Ok((rooms.into_iter().skip(offset).take(limit).collect(), total))
    }
}

/// Run a walk over every socket or room of a namespace on a blocking thread.
async fn off_reactor<T: Send + 'static>(
    walk: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(walk)
        .await
        .map_err(|e| ApiError::Invalid(format!("internal error: {e}")))
}
