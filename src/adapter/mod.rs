//! FAN-OUT — rooms and broadcasts behind the [`Adapter`] trait: the in-memory
//! [`LocalAdapter`], and [`RedisAdapter`] which wraps it to share rooms and broadcasts with
//! a cluster of socket.io nodes over Redis.

mod local;
mod redis;

use std::sync::Arc;

use crate::engineio::Sid;
use crate::socketio::{Encoded, Socket};

pub use local::LocalAdapter;
pub use redis::{ClusterConfig, ClusterMetrics, RedisAdapter, RedisCluster, codec};

/// Who a broadcast reaches, as socket.io's `to` / `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Only sockets in at least one of these rooms; empty means the whole namespace.
    pub rooms: Vec<String>,
    /// No socket in any of these rooms (a socket id names the socket's own room).
    pub except: Vec<String>,
}

impl BroadcastOptions {
    /// Everyone in the namespace.
    pub fn all() -> Self {
        Self::default()
    }

    /// Everyone but `sid`.
    pub fn all_but(sid: Sid) -> Self {
        BroadcastOptions {
            rooms: Vec::new(),
            except: vec![sid.to_string()],
        }
    }
}

/// What a broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Sockets the packet was queued for.
    pub queued: usize,
    /// Sockets whose queue refused it (closed, or full and now disconnected).
    pub dropped: usize,
    /// Of `dropped`, those refused because their queue was full (slow clients).
    pub full: usize,
}

/// Rooms and broadcasts of one namespace.
pub trait Adapter: Send + Sync + std::fmt::Debug {
    /// A socket joined the namespace; it is put in the room named by its id.
    fn add(&self, socket: Arc<Socket>);

    /// A socket left the namespace; it leaves every room.
    fn remove(&self, sid: Sid);

    /// `sid` joins `room`.
    fn join(&self, sid: Sid, room: &str);

    /// `sid` leaves `room`.
    fn leave(&self, sid: Sid, room: &str);

    /// How many sockets are in the namespace.
    fn socket_count(&self) -> usize;

    /// The rooms `sid` is in.
    fn rooms_of(&self, sid: Sid) -> Vec<String>;

    /// The sockets `opts` selects.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>>;

    /// Queue `packet`, encoded once, for every socket `opts` selects.
    fn broadcast(&self, packet: &Encoded, opts: &BroadcastOptions) -> Delivery;
}
