//! The shards of one namespace's rooms: the sockets by id, the rooms by name, each shard
//! behind its own lock (see the parent module for why and in which order they are taken).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use smallvec::SmallVec;

use crate::adapter::BroadcastOptions;
use crate::engineio::Sid;
use crate::socketio::Socket;

/// How many shards the sockets, and the rooms, are split into. A broadcast to the whole
/// namespace takes this many uncontended read locks (a fraction of a microsecond, against
/// a quarter of one per delivery); a join contends with 1/`SHARDS` of a fan-out.
const SHARDS: usize = 16;

/// A socket of the namespace, with the rooms it is in.
pub(super) type Member = (Arc<Socket>, HashSet<String>);

/// One shard of the sockets, by id.
pub(super) type SocketShard = HashMap<Sid, Member>;

/// One shard of the rooms, by name: each with its members' sockets, so that a broadcast
/// to a room needs no second lookup per recipient.
pub(super) type RoomShard = HashMap<String, HashMap<Sid, Arc<Socket>>>;

/// The shards, and where a key goes.
#[derive(Debug)]
pub(super) struct Shards {
    pub(super) sockets: [RwLock<SocketShard>; SHARDS],
    pub(super) rooms: [RwLock<RoomShard>; SHARDS],
    hasher: RandomState,
}

impl Default for Shards {
    fn default() -> Self {
        Shards {
            sockets: std::array::from_fn(|_| RwLock::default()),
            rooms: std::array::from_fn(|_| RwLock::default()),
            hasher: RandomState::new(),
        }
    }
}

impl Shards {
    pub(super) fn index(&self, key: &[u8]) -> usize {
        self.hasher.hash_one(key) as usize % SHARDS
    }

    fn socket(&self, sid: Sid) -> &RwLock<SocketShard> {
        &self.sockets[self.index(sid.as_str().as_bytes())]
    }

    fn room(&self, room: &str) -> &RwLock<RoomShard> {
        &self.rooms[self.index(room.as_bytes())]
    }

    pub(super) fn read_socket(&self, sid: Sid) -> RwLockReadGuard<'_, SocketShard> {
        self.socket(sid).read().expect("adapter lock")
    }

    pub(super) fn write_socket(&self, sid: Sid) -> RwLockWriteGuard<'_, SocketShard> {
        self.socket(sid).write().expect("adapter lock")
    }

    pub(super) fn read_room(&self, room: &str) -> RwLockReadGuard<'_, RoomShard> {
        self.room(room).read().expect("adapter lock")
    }

    /// `member` (`sid`, whose socket shard the caller holds) joins `room`: `Some(members)`
    /// — the room's size now — when it was not in it.
    pub(super) fn join(&self, sid: Sid, member: &mut Member, room: &str) -> Option<usize> {
        if !member.1.insert(room.to_owned()) {
            return None;
        }
        let mut rooms = self.room(room).write().expect("adapter lock");
        let members = rooms.entry(room.to_owned()).or_default();
        members.insert(sid, member.0.clone());
        Some(members.len())
    }

    /// `sid` (whose socket shard the caller holds, with its `member` entry if it has one)
    /// leaves `room`: `Some(members)` — how many are left — when it was in it.
    pub(super) fn leave(&self, sid: Sid, member: Option<&mut Member>, room: &str) -> Option<usize> {
        if let Some((_, rooms)) = member {
            rooms.remove(room);
        }
        let mut rooms = self.room(room).write().expect("adapter lock");
        let members = rooms.get_mut(room)?;
        members.remove(&sid)?;
        let left = members.len();
        if left == 0 {
            rooms.remove(room);
        }
        Some(left)
    }

    /// The members of the rooms `except` names, read one room at a time.
    fn excluded(&self, except: &[String]) -> Excluded {
        let mut out = Excluded::Few(SmallVec::new());
        for room in except {
            if let Some(members) = self.read_room(room).get(room) {
                out.extend(members.keys().copied());
            }
        }
        out
    }

    /// Calls `f` once for each selected socket, holding one shard's lock at a time.
    pub(super) fn select(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Arc<Socket>)) {
        let excluded = self.excluded(&opts.except);
        match opts.rooms.as_slice() {
            [] => {
                for shard in &self.sockets {
                    let shard = shard.read().expect("adapter lock");
                    for (sid, (socket, _)) in shard.iter() {
                        if !excluded.contains(sid) {
                            f(socket);
                        }
                    }
                }
            }
            [room] => {
                if let Some(members) = self.read_room(room).get(room) {
                    for (sid, socket) in members {
                        if !excluded.contains(sid) {
                            f(socket);
                        }
                    }
                }
            }
            rooms => {
                let mut seen = HashSet::new();
                for room in rooms {
                    if let Some(members) = self.read_room(room).get(room) {
                        for (sid, socket) in members {
                            if !excluded.contains(sid) && seen.insert(*sid) {
                                f(socket);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The sockets a broadcast skips: a few (the sender alone, most often) kept inline.
enum Excluded {
    Few(SmallVec<[Sid; 4]>),
    Many(HashSet<Sid>),
}

impl Excluded {
    fn extend(&mut self, sids: impl Iterator<Item = Sid>) {
        for sid in sids {
            match self {
                Excluded::Few(few) if few.len() < few.inline_size() => few.push(sid),
                Excluded::Few(few) => {
                    let mut many: HashSet<Sid> = few.drain(..).collect();
                    many.insert(sid);
                    *self = Excluded::Many(many);
                }
                Excluded::Many(many) => {
                    many.insert(sid);
                }
            }
        }
    }

    fn contains(&self, sid: &Sid) -> bool {
        match self {
            Excluded::Few(few) => few.contains(sid),
            Excluded::Many(many) => many.contains(sid),
        }
    }
}
