//! FAN-OUT — rooms and broadcasts behind the [`Adapter`] trait: the in-memory
//! [`LocalAdapter`], and [`RedisAdapter`] which wraps it to share rooms and broadcasts with
//! a cluster of socket.io nodes over Redis.

mod local;
mod recovery;
mod redis;

use std::sync::Arc;

use crate::engineio::Sid;
use crate::socketio::{Encoded, Socket};

pub use local::LocalAdapter;
pub use recovery::{Recovery, RecoveryWindow, SavedSocket};
pub use redis::streams::codec as streams_codec;
pub use redis::{ClusterConfig, ClusterMetrics, RedisAdapter, RedisCluster, StreamConfig, codec};

/// Who a broadcast reaches, as socket.io's `to` / `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Only sockets in at least one of these rooms; empty means the whole namespace.
    pub rooms: Vec<String>,
    /// No socket in any of these rooms (a socket id names the socket's own room).
    pub except: Vec<String>,
    /// socket.io's `volatile` flag: a recipient that is behind misses it instead of queueing.
    pub volatile: bool,
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
            volatile: false,
        }
    }
}

/// What a room keeps of the messages delivered to it (a route's `history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    /// The room.
    pub room: String,
    /// It keeps at most this many messages…
    pub size: usize,
    /// …each for at most this long.
    pub ttl: std::time::Duration,
}

/// A message a room keeps.
#[derive(Debug, Clone)]
pub struct KeptMessage {
    /// The room and its bounds.
    pub keep: Keep,
    /// How long ago it was delivered.
    pub age: std::time::Duration,
    /// The packet as delivered.
    pub packet: Encoded,
}

/// What a broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Sockets the packet was queued for.
    pub queued: usize,
    /// Sockets whose queue refused it (closed, full and now disconnected, or behind).
    pub dropped: usize,
    /// Of `dropped`, those refused because their queue was full (slow clients).
    pub full: usize,
    /// Of `dropped`, volatile deliveries skipped because the recipient was behind.
    pub behind: usize,
}

impl Delivery {
    /// Count one recipient's outcome.
    pub fn count(&mut self, result: Result<(), crate::engineio::SendError>) {
        use crate::engineio::SendError;
        match result {
            Ok(()) => self.queued += 1,
            Err(e) => {
                self.dropped += 1;
                match e {
                    SendError::Full => self.full += 1,
                    SendError::Behind => self.behind += 1,
                    SendError::Closed => {}
                }
            }
        }
    }
}

/// Told of room changes by the adapters, after they took effect and outside their locks.
pub trait RoomObserver: Send + Sync + std::fmt::Debug {
    /// Whether anyone listens now; when not, changes are not reported.
    fn listening(&self) -> bool;

    /// `socket` of namespace `nsp` joined (`joined`) or left `room` (never its own room),
    /// which now has `size` members on this node.
    fn member_changed(
        &self,
        nsp: &str,
        socket: &Arc<Socket>,
        room: &str,
        joined: bool,
        size: usize,
    );

    /// `room` of `nsp` got its first member (`occupied`) or lost its last — on this node;
    /// under `[cluster]`, on every node.
    fn room_changed(&self, nsp: &str, room: &str, occupied: bool);

    /// `message` is delivered to its room of `nsp` and kept: `deliver` queues it for this
    /// node's sockets. The observer runs it and keeps the message in one step, so that a
    /// socket joining the room with replay gets it once — replayed or live.
    fn kept(&self, _nsp: &str, _message: KeptMessage, deliver: &mut dyn FnMut()) {
        deliver();
    }

    /// What the cluster keeps for `room` of `nsp`, oldest first: it replaces what this node
    /// keeps for the room.
    fn history_read(&self, _nsp: &str, _room: &str, _messages: Vec<KeptMessage>) {}

    /// A socket `sid` of another node is gone from `room` of `nsp` unannounced (its node
    /// went silent); the room now has `size` members. `local` reaches this node's sockets
    /// only — every node tells its own.
    fn member_vanished(
        &self,
        _nsp: &str,
        _room: &str,
        _sid: &str,
        _size: usize,
        _local: &dyn Adapter,
    ) {
    }
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

    /// How many rooms `sid` is in (its own included).
    fn room_count(&self, sid: Sid) -> usize;

    /// How many sockets are in `room` on this node (a socket id names its own room).
    fn room_size(&self, room: &str) -> usize;

    /// How many sockets are in `room` across the cluster: this node's, and those other
    /// switchboard nodes last told of (without a cluster, [`Adapter::room_size`]).
    fn presence_size(&self, room: &str) -> usize {
        self.room_size(room)
    }

    /// The ids of the sockets in `room` across the cluster, sorted: the first `max`.
    fn presence_members(&self, room: &str, max: usize) -> Vec<String> {
        let opts = BroadcastOptions {
            rooms: vec![room.to_owned()],
            ..BroadcastOptions::default()
        };
        let mut ids: Vec<Sid> = self.sockets(&opts).iter().map(|s| s.id()).collect();
        if ids.len() > max {
            ids.select_nth_unstable(max);
            ids.truncate(max);
        }
        // A Sid's bytes are its text: they sort as the ids do.
        ids.sort_unstable();
        ids.iter().map(Sid::to_string).collect()
    }

    /// Whether `sid` is in `room`.
    fn is_in(&self, sid: Sid, room: &str) -> bool {
        self.rooms_of(sid).iter().any(|r| r == room)
    }

    /// The sockets `opts` selects.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>>;

    /// Queue `packet`, encoded once, for every socket `opts` selects.
    fn broadcast(&self, packet: &Encoded, opts: &BroadcastOptions) -> Delivery;

    /// As [`Adapter::broadcast`] to `keep.room`, which keeps the message (see
    /// [`RoomObserver::kept`]); under `[cluster]`, on every node.
    fn broadcast_kept(&self, packet: &Encoded, opts: &BroadcastOptions, keep: &Keep) -> Delivery;

    /// This node's rooms of the namespace (sockets' own included).
    fn all_rooms(&self) -> Vec<String>;

    /// Connection state recovery with `window`, or none. A change of window starts afresh.
    fn set_recovery(&self, window: Option<RecoveryWindow>);

    /// Save a socket that left for a reason it may come back from (recovery on).
    fn save_socket(&self, saved: SavedSocket);

    /// The socket saved under `pid`, taken, if it can be recovered from `offset` (under
    /// `redis-streams`, read from Redis within the cluster's request timeout).
    fn take_socket<'a>(&'a self, pid: &'a str, offset: &'a str) -> Remote<'a, Option<SavedSocket>>;

    /// A recovered socket comes back: added, put in `rooms`, and queued every broadcast for
    /// it after `offset` (or, when read with it from a shared log, `missed`) — before any
    /// newer one.
    fn recover(&self, socket: Arc<Socket>, rooms: &[String], offset: &str, missed: &[Encoded]);

    /// On the other nodes of a cluster, the sockets `opts` selects join `rooms` (socket.io's
    /// `socketsJoin`, the local part being the caller's). Nothing without a cluster.
    fn remote_join(&self, _opts: &BroadcastOptions, _rooms: &[String]) {}

    /// On the other nodes, the sockets `opts` selects leave `rooms` (`socketsLeave`).
    fn remote_leave(&self, _opts: &BroadcastOptions, _rooms: &[String]) {}

    /// On the other nodes, the sockets `opts` selects are disconnected (`disconnectSockets`;
    /// `close` ends their whole connection).
    fn remote_disconnect(&self, _opts: &BroadcastOptions, _close: bool) {}

    /// The other nodes' sockets `opts` selects, as socket.io's `fetchSockets` describes them
    /// (`{id, handshake, rooms, data}`), within the cluster's request timeout.
    fn remote_sockets<'a>(
        &'a self,
        _opts: &'a BroadcastOptions,
    ) -> Remote<'a, Vec<serde_json::Value>> {
        Box::pin(async { Vec::new() })
    }

    /// The other nodes' rooms (`allRooms`), within the cluster's request timeout.
    fn remote_rooms(&self) -> Remote<'_, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}

/// What other nodes answer, once they have (or the wait is over).
pub type Remote<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
