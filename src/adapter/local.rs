//! The in-memory adapter: rooms of one namespace on this node.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;

use super::{
    Adapter, BroadcastOptions, Delivery, Keep, KeptMessage, Recovery, RecoveryWindow, Remote,
    RoomObserver, SavedSocket,
};
use crate::engineio::Sid;
use crate::socketio::{Encoded, Socket};

#[derive(Debug, Default)]
struct Inner {
    sockets: HashMap<Sid, (Arc<Socket>, HashSet<String>)>,
    rooms: HashMap<String, HashSet<Sid>>,
}

impl Inner {
    /// `sid` joins `room`: `Some(members)` — the room's size now — when it was not in it.
    fn join(&mut self, sid: Sid, room: &str) -> Option<usize> {
        let (_, rooms) = self.sockets.get_mut(&sid)?;
        if !rooms.insert(room.to_owned()) {
            return None;
        }
        let members = self.rooms.entry(room.to_owned()).or_default();
        members.insert(sid);
        Some(members.len())
    }

    /// `sid` leaves `room`: `Some(members)` — how many are left — when it was in it.
    fn leave(&mut self, sid: Sid, room: &str) -> Option<usize> {
        if let Some((_, rooms)) = self.sockets.get_mut(&sid) {
            rooms.remove(room);
        }
        let members = self.rooms.get_mut(room)?;
        if !members.remove(&sid) {
            return None;
        }
        let left = members.len();
        if left == 0 {
            self.rooms.remove(room);
        }
        Some(left)
    }

    /// Calls `f` once for each selected socket.
    fn select(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Arc<Socket>)) {
        // The common case, one room excepted (the sender's own), needs no set of its own.
        let single;
        let merged: HashSet<Sid>;
        let excluded: &HashSet<Sid> = match opts.except.as_slice() {
            [] => {
                single = HashSet::new();
                &single
            }
            [room] => match self.rooms.get(room) {
                Some(members) => members,
                None => {
                    single = HashSet::new();
                    &single
                }
            },
            rooms => {
                merged = rooms
                    .iter()
                    .filter_map(|room| self.rooms.get(room))
                    .flatten()
                    .copied()
                    .collect();
                &merged
            }
        };
        if opts.rooms.is_empty() {
            for (sid, (socket, _)) in &self.sockets {
                if !excluded.contains(sid) {
                    f(socket);
                }
            }
            return;
        }
        let mut seen = HashSet::new();
        for room in &opts.rooms {
            for sid in self.rooms.get(room).into_iter().flatten() {
                if excluded.contains(sid) || (opts.rooms.len() > 1 && !seen.insert(*sid)) {
                    continue;
                }
                if let Some((socket, _)) = self.sockets.get(sid) {
                    f(socket);
                }
            }
        }
    }
}

/// Rooms in memory. Broadcasts take a shared read lock of this namespace only; joins and
/// leaves take it exclusively for a few map operations.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    inner: RwLock<Inner>,
    /// Told of room changes, with the namespace's name.
    observer: Option<(Arc<str>, Arc<dyn RoomObserver>)>,
    /// Connection state recovery, when on.
    recovery: ArcSwapOption<Recovery>,
}

impl LocalAdapter {
    /// An empty namespace.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty namespace `nsp` whose room changes `observer` is told of.
    pub fn observed(nsp: &str, observer: Arc<dyn RoomObserver>) -> Self {
        LocalAdapter {
            inner: RwLock::default(),
            observer: Some((Arc::from(nsp), observer)),
            recovery: ArcSwapOption::empty(),
        }
    }

    /// The observer, when one listens now.
    fn listening(&self) -> Option<(&str, &dyn RoomObserver)> {
        let (nsp, observer) = self.observer.as_ref()?;
        observer.listening().then_some((&**nsp, &**observer))
    }

    /// A socket `sid` of another node is gone from `room` unannounced; the room now has
    /// `size` members across the cluster. The observer tells this node's sockets.
    pub fn vanished(&self, room: &str, sid: &str, size: usize) {
        if let Some((nsp, observer)) = self.listening() {
            observer.member_vanished(nsp, room, sid, size, self);
        }
    }

    /// Keep `message`, delivered already, as its room's history.
    pub fn keep_only(&self, message: KeptMessage) {
        if let Some((nsp, observer)) = &self.observer {
            observer.kept(nsp, message, &mut || {});
        }
    }

    /// What the cluster keeps for `room`: the observer replaces this node's with it.
    pub fn history_read(&self, room: &str, messages: Vec<KeptMessage>) {
        if let Some((nsp, observer)) = &self.observer {
            observer.history_read(nsp, room, messages);
        }
    }

    /// How many sockets are in the namespace.
    pub fn len(&self) -> usize {
        self.inner.read().expect("adapter lock").sockets.len()
    }

    /// Whether the namespace has no sockets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every room with a member here (socket ids included), from the room table: no walk
    /// over the sockets.
    pub fn all_rooms(&self) -> Vec<String> {
        let inner = self.inner.read().expect("adapter lock");
        let mut rooms: Vec<String> = inner.rooms.keys().cloned().collect();
        rooms.sort();
        rooms
    }
}

impl Adapter for LocalAdapter {
    fn add(&self, socket: Arc<Socket>) {
        let sid = socket.id();
        let mut inner = self.inner.write().expect("adapter lock");
        if inner.sockets.contains_key(&sid) {
            // Already back (a recovered socket): its rooms stay.
            return;
        }
        inner.sockets.insert(sid, (socket, HashSet::new()));
        inner.join(sid, sid.as_str());
    }

    fn remove(&self, sid: Sid) {
        let listening = self.listening().is_some();
        let mut left = Vec::new();
        let mut inner = self.inner.write().expect("adapter lock");
        let removed = inner.sockets.remove(&sid);
        if let Some((_, rooms)) = &removed {
            for room in rooms {
                if let Some(members) = inner.rooms.get_mut(room) {
                    members.remove(&sid);
                    let size = members.len();
                    if size == 0 {
                        inner.rooms.remove(room);
                    }
                    if listening {
                        left.push(Change {
                            room: room.clone(),
                            joined: false,
                            size,
                        });
                    }
                }
            }
        }
        drop(inner);
        if let Some((socket, _)) = removed
            && listening
        {
            left.sort_by(|a, b| a.room.cmp(&b.room));
            self.tell(&socket, left);
        }
    }

    fn join(&self, sid: Sid, room: &str) {
        self.change(sid, room, true);
    }

    fn leave(&self, sid: Sid, room: &str) {
        self.change(sid, room, false);
    }

    fn socket_count(&self) -> usize {
        self.len()
    }

    fn room_count(&self, sid: Sid) -> usize {
        let inner = self.inner.read().expect("adapter lock");
        inner.sockets.get(&sid).map_or(0, |(_, rooms)| rooms.len())
    }

    fn room_size(&self, room: &str) -> usize {
        let inner = self.inner.read().expect("adapter lock");
        inner.rooms.get(room).map_or(0, HashSet::len)
    }

    fn is_in(&self, sid: Sid, room: &str) -> bool {
        let inner = self.inner.read().expect("adapter lock");
        inner
            .sockets
            .get(&sid)
            .is_some_and(|(_, rooms)| rooms.contains(room))
    }

    fn rooms_of(&self, sid: Sid) -> Vec<String> {
        let inner = self.inner.read().expect("adapter lock");
        let mut rooms: Vec<String> = inner
            .sockets
            .get(&sid)
            .map(|(_, rooms)| rooms.iter().cloned().collect())
            .unwrap_or_default();
        rooms.sort();
        rooms
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        let mut out = Vec::new();
        self.inner
            .read()
            .expect("adapter lock")
            .select(opts, |s| out.push(s.clone()));
        out
    }

    fn broadcast(&self, packet: &Encoded, opts: &BroadcastOptions) -> Delivery {
        if let Some(recovery) = &*self.recovery.load() {
            // Kept and fanned out under the log's lock: offsets reach sockets in order.
            let mut log = recovery.log();
            if let Some(marked) = log.keep(&recovery.window(), packet, opts) {
                return self.fan_out(&marked, opts);
            }
        }
        self.fan_out(packet, opts)
    }

    fn broadcast_kept(&self, packet: &Encoded, opts: &BroadcastOptions, keep: &Keep) -> Delivery {
        let mut delivery = Delivery::default();
        let mut deliver = || delivery = self.broadcast(packet, opts);
        match &self.observer {
            Some((nsp, observer)) => {
                let message = KeptMessage {
                    keep: keep.clone(),
                    age: std::time::Duration::ZERO,
                    packet: packet.clone(),
                };
                observer.kept(nsp, message, &mut deliver);
            }
            None => deliver(),
        }
        delivery
    }

    fn all_rooms(&self) -> Vec<String> {
        LocalAdapter::all_rooms(self)
    }

    fn set_recovery(&self, window: Option<RecoveryWindow>) {
        let current = self.recovery.load().as_ref().map(|r| r.window());
        if current != window {
            self.recovery
                .store(window.map(|w| Arc::new(Recovery::new(w))));
        }
    }

    fn save_socket(&self, saved: SavedSocket) {
        if let Some(recovery) = &*self.recovery.load() {
            recovery.save(saved);
        }
    }

    fn take_socket<'a>(&'a self, pid: &'a str, offset: &'a str) -> Remote<'a, Option<SavedSocket>> {
        let taken = self
            .recovery
            .load()
            .as_ref()
            .and_then(|r| r.take(pid, offset));
        Box::pin(std::future::ready(taken))
    }

    fn recover(&self, socket: Arc<Socket>, rooms: &[String], offset: &str, missed: &[Encoded]) {
        let recovery = self.recovery.load_full();
        // No broadcast between the rooms joined and the missed ones queued.
        let log = recovery.as_ref().map(|r| r.log());
        let sid = socket.id();
        self.add(socket.clone());
        let mut joined = Vec::new();
        {
            let mut inner = self.inner.write().expect("adapter lock");
            for room in rooms {
                if let Some(size) = inner.join(sid, room) {
                    joined.push(Change {
                        room: room.clone(),
                        joined: true,
                        size,
                    });
                }
            }
        }
        if let Some(log) = log {
            let mut all = rooms.to_vec();
            all.push(sid.to_string());
            for packet in log.after(offset, &all) {
                let _ = socket.send(&packet);
            }
        }
        for packet in missed {
            let _ = socket.send(packet);
        }
        // Told once the log is free: what is told may broadcast.
        self.tell(&socket, joined);
    }
}

/// One room change of one socket, told to the observer.
struct Change {
    room: String,
    joined: bool,
    /// The room's size after it.
    size: usize,
}

impl LocalAdapter {
    /// `sid` joins (or leaves) `room`; the observer, if one listens, is told.
    fn change(&self, sid: Sid, room: &str, joined: bool) {
        let listening = self.listening().is_some();
        let mut inner = self.inner.write().expect("adapter lock");
        let size = if joined {
            inner.join(sid, room)
        } else {
            inner.leave(sid, room)
        };
        let Some(size) = size else {
            return;
        };
        // Nothing more to do (no clone, no allocation) when nobody listens.
        if !listening {
            return;
        }
        let socket = inner.sockets.get(&sid).map(|(s, _)| s.clone());
        drop(inner);
        if let Some(socket) = socket {
            let room = room.to_owned();
            self.tell(&socket, vec![Change { room, joined, size }]);
        }
    }

    /// Tell the observer of `socket`'s room changes (its own room aside), outside the locks.
    fn tell(&self, socket: &Arc<Socket>, changes: Vec<Change>) {
        let Some((nsp, observer)) = self.listening() else {
            return;
        };
        for c in changes {
            if c.room == socket.id().as_str() {
                continue;
            }
            observer.member_changed(nsp, socket, &c.room, c.joined, c.size);
            if c.joined && c.size == 1 {
                observer.room_changed(nsp, &c.room, true);
            } else if !c.joined && c.size == 0 {
                observer.room_changed(nsp, &c.room, false);
            }
        }
    }
}

impl LocalAdapter {
    /// Queue `packet` for every socket `opts` selects.
    fn fan_out(&self, packet: &Encoded, opts: &BroadcastOptions) -> Delivery {
        let mut delivery = Delivery::default();
        let inner = self.inner.read().expect("adapter lock");
        if opts.volatile {
            inner.select(opts, |socket| delivery.count(socket.send_volatile(packet)));
        } else {
            inner.select(opts, |socket| delivery.count(socket.send(packet)));
        }
        delivery
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::Packet;
    use crate::engineio::test_support::session;

    fn socket() -> Arc<Socket> {
        Arc::new(Socket::new("/", session(), None, None))
    }

    fn received(s: &Socket) -> Vec<bytes::Bytes> {
        let mut out = Vec::new();
        s.session().drain(usize::MAX, |p| {
            if let Packet::Message(m) = p {
                out.push(m);
            }
        });
        out
    }

    fn packet() -> Encoded {
        Encoded::event_data("/", br#"["m"]"#, Arc::from([]))
    }

    #[test]
    fn broadcasts_reach_the_selected_sockets_once() {
        let adapter = LocalAdapter::new();
        let (a, b, c) = (socket(), socket(), socket());
        for s in [&a, &b, &c] {
            adapter.add(s.clone());
        }
        adapter.join(a.id(), "r1");
        adapter.join(b.id(), "r1");
        adapter.join(b.id(), "r2");

        assert_eq!(
            adapter
                .broadcast(&packet(), &BroadcastOptions::all())
                .queued,
            3
        );
        assert_eq!(
            adapter
                .broadcast(&packet(), &BroadcastOptions::all_but(a.id()))
                .queued,
            2
        );
        let rooms = BroadcastOptions {
            rooms: vec!["r1".into(), "r2".into()],
            ..BroadcastOptions::default()
        };
        assert_eq!(
            adapter.broadcast(&packet(), &rooms).queued,
            2,
            "b is in both rooms but gets it once"
        );
        let except = BroadcastOptions {
            rooms: vec!["r1".into()],
            except: vec!["r2".into()],
            volatile: false,
        };
        assert_eq!(adapter.broadcast(&packet(), &except).queued, 1);

        assert_eq!(received(&a).len(), 3);
        assert_eq!(received(&b).len(), 3);
        assert_eq!(received(&c).len(), 2);
    }

    #[test]
    fn rooms_follow_join_leave_and_remove() {
        let adapter = LocalAdapter::new();
        let a = socket();
        adapter.add(a.clone());
        assert_eq!(adapter.rooms_of(a.id()), vec![a.id().to_string()]);
        assert_eq!(adapter.room_size(a.id().as_str()), 1);
        adapter.join(a.id(), "lobby");
        assert_eq!(adapter.rooms_of(a.id()).len(), 2);
        assert_eq!(adapter.room_size("lobby"), 1);
        adapter.leave(a.id(), "lobby");
        assert_eq!(adapter.rooms_of(a.id()), vec![a.id().to_string()]);
        assert_eq!(adapter.room_size("lobby"), 0);
        adapter.join(a.id(), "lobby");
        adapter.remove(a.id());
        assert!(adapter.is_empty());
        assert!(adapter.rooms_of(a.id()).is_empty());
        assert_eq!(adapter.room_size("lobby"), 0);
        assert_eq!(adapter.room_size(a.id().as_str()), 0);
        let lobby = BroadcastOptions {
            rooms: vec!["lobby".into()],
            ..BroadcastOptions::default()
        };
        assert!(adapter.sockets(&lobby).is_empty());
    }

    #[test]
    fn disconnected_sockets_count_as_dropped() {
        let adapter = LocalAdapter::new();
        let a = socket();
        adapter.add(a.clone());
        a.disconnect();
        let d = adapter.broadcast(&packet(), &BroadcastOptions::all());
        assert_eq!((d.queued, d.dropped), (0, 1));
    }
}
