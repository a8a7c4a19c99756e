//! The in-memory adapter: rooms of one namespace on this node.
//!
//! Its state is split into 16 shards (`shards::SHARDS`), each behind its own lock: the sockets by
//! their id, the rooms (with their members' sockets) by the room's name. A broadcast to a
//! room reads one room shard; one to the whole namespace reads the socket shards one after
//! the other; a join or a leave writes one socket shard and one room shard. So a join
//! waits for no broadcast but one in progress on its own shards, and then only for that
//! shard's part of it — with one lock per namespace, every join waited for every
//! broadcast in progress, and (a waiting writer holding readers back) every new broadcast
//! of the namespace, on every core, waited behind the join.
//!
//! Lock order, which keeps it free of deadlocks: a writer takes a socket shard, then room
//! shards while holding it; a reader holds one shard at a time.
//!
//! So a broadcast is no longer one instant for the whole namespace: the rooms it skips
//! (`except`) are read before its walk, and several rooms one after the other. A socket
//! that changes rooms while a broadcast is under way gets it once or not at all, as a socket
//! joining a moment later or earlier would; it never gets it twice.

mod shards;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use self::shards::Shards;
use super::{
    Adapter, BroadcastOptions, Delivery, Keep, KeptMessage, Recovery, RecoveryWindow, Remote,
    RoomObserver, SavedSocket,
};
use crate::engineio::Sid;
use crate::socketio::{Encoded, Socket};

/// Rooms in memory, in shards (see the module's doc): broadcasts read one shard at a time,
/// joins and leaves write one socket shard and one room shard for a few map operations.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    shards: Shards,
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
            shards: Shards::default(),
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
        let shards = &self.shards.sockets;
        shards
            .iter()
            .map(|shard| shard.read().expect("adapter lock").len())
            .sum()
    }

    /// Whether the namespace has no sockets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every room with a member here (socket ids included), from the room table: no walk
    /// over the sockets.
    pub fn all_rooms(&self) -> Vec<String> {
        let mut rooms = Vec::new();
        for shard in &self.shards.rooms {
            rooms.extend(shard.read().expect("adapter lock").keys().cloned());
        }
        rooms.sort();
        rooms
    }
}

impl Adapter for LocalAdapter {
    fn add(&self, socket: Arc<Socket>) {
        let sid = socket.id();
        let mut sockets = self.shards.write_socket(sid);
        // Already there (a recovered socket): its rooms stay.
        if let std::collections::hash_map::Entry::Vacant(place) = sockets.entry(sid) {
            let member = place.insert((socket, HashSet::new()));
            self.shards.join(sid, member, sid.as_str());
        }
    }

    fn remove(&self, sid: Sid) {
        let listening = self.listening().is_some();
        let mut left = Vec::new();
        // The socket shard stays held until its rooms are left: a socket added again with
        // the same id (recovered) finds them left.
        let mut sockets = self.shards.write_socket(sid);
        let removed = sockets.remove(&sid);
        if let Some((_, rooms)) = &removed {
            for room in rooms {
                if let Some(size) = self.shards.leave(sid, None, room)
                    && listening
                {
                    left.push(Change {
                        room: room.clone(),
                        joined: false,
                        size,
                    });
                }
            }
        }
        drop(sockets);
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
        let sockets = self.shards.read_socket(sid);
        sockets.get(&sid).map_or(0, |(_, rooms)| rooms.len())
    }

    fn room_size(&self, room: &str) -> usize {
        let rooms = self.shards.read_room(room);
        rooms.get(room).map_or(0, HashMap::len)
    }

    fn is_in(&self, sid: Sid, room: &str) -> bool {
        self.shards
            .read_socket(sid)
            .get(&sid)
            .is_some_and(|(_, rooms)| rooms.contains(room))
    }

    fn rooms_of(&self, sid: Sid) -> Vec<String> {
        let mut rooms: Vec<String> = self
            .shards
            .read_socket(sid)
            .get(&sid)
            .map(|(_, rooms)| rooms.iter().cloned().collect())
            .unwrap_or_default();
        rooms.sort();
        rooms
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        let mut out = Vec::new();
        self.shards.select(opts, |s| out.push(s.clone()));
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
            let mut sockets = self.shards.write_socket(sid);
            if let Some(member) = sockets.get_mut(&sid) {
                for room in rooms {
                    if let Some(size) = self.shards.join(sid, member, room) {
                        joined.push(Change {
                            room: room.clone(),
                            joined: true,
                            size,
                        });
                    }
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
        let mut sockets = self.shards.write_socket(sid);
        let member = sockets.get_mut(&sid);
        let size = if joined {
            member.and_then(|member| self.shards.join(sid, member, room))
        } else {
            self.shards.leave(sid, member, room)
        };
        let Some(size) = size else {
            return;
        };
        // Nothing more to do (no clone, no allocation) when nobody listens.
        if !listening {
            return;
        }
        let socket = sockets.get(&sid).map(|(s, _)| s.clone());
        drop(sockets);
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
        if opts.volatile {
            self.shards
                .select(opts, |socket| delivery.count(socket.send_volatile(packet)));
        } else {
            self.shards
                .select(opts, |socket| delivery.count(socket.send(packet)));
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
    fn broadcasts_across_every_shard_reach_each_selected_socket_once() {
        let adapter = LocalAdapter::new();
        let sockets: Vec<_> = (0..100).map(|_| socket()).collect();
        for (i, s) in sockets.iter().enumerate() {
            adapter.add(s.clone());
            adapter.join(s.id(), if i % 2 == 0 { "even" } else { "odd" });
            if i < 10 {
                adapter.join(s.id(), "first ten");
            }
        }
        assert_eq!(adapter.len(), 100);
        let count = |opts: BroadcastOptions| adapter.broadcast(&packet(), &opts).queued;
        assert_eq!(count(BroadcastOptions::all()), 100);
        assert_eq!(count(BroadcastOptions::all_but(sockets[7].id())), 99);
        let except_ten = BroadcastOptions {
            except: vec!["first ten".into()],
            ..BroadcastOptions::default()
        };
        assert_eq!(count(except_ten), 90, "more excluded than are kept inline");
        let both = BroadcastOptions {
            rooms: vec!["even".into(), "first ten".into()],
            except: vec![sockets[0].id().to_string(), sockets[1].id().to_string()],
            volatile: false,
        };
        assert_eq!(count(both), 50 + 5 - 2);
        assert_eq!(adapter.room_size("even"), 50);
        let mut rooms = adapter.all_rooms();
        assert_eq!(rooms.len(), 100 + 3, "each socket's own room, and three");
        rooms.retain(|r| !sockets.iter().any(|s| s.id().as_str() == r));
        assert_eq!(rooms, ["even", "first ten", "odd"]);
        for s in &sockets {
            adapter.remove(s.id());
        }
        assert!(adapter.is_empty());
        assert!(adapter.all_rooms().is_empty());
    }

    /// Runs a broadcast to `opts` on a thread of its own and stops it at its first
    /// recipient, whose id it returns; the broadcast goes on when the sender is dropped, and
    /// its thread returns every recipient, in order.
    fn stop_a_broadcast(
        adapter: &Arc<LocalAdapter>,
        opts: BroadcastOptions,
    ) -> (
        Sid,
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<Vec<Sid>>,
    ) {
        let (visiting, at) = std::sync::mpsc::channel();
        let (resume, resumed) = std::sync::mpsc::channel::<()>();
        let adapter = adapter.clone();
        let broadcaster = std::thread::spawn(move || {
            let mut reached = Vec::new();
            adapter.shards.select(&opts, |s| {
                reached.push(s.id());
                if visiting.send(s.id()).is_ok() {
                    let _ = resumed.recv();
                }
            });
            reached
        });
        let first = at.recv().expect("the broadcast reaches a socket");
        drop(at);
        (first, resume, broadcaster)
    }

    /// Runs `f` on a thread of its own: whether it ended while the test waited (a
    /// deadlock detector's bound, not a speed test: it ends at once or never).
    fn ends(f: impl FnOnce() + Send + 'static) -> bool {
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = done.send(());
        });
        ended
            .recv_timeout(std::time::Duration::from_secs(10))
            .is_ok()
    }

    #[test]
    fn a_join_waits_for_no_broadcast_in_progress_on_other_shards() {
        let adapter = Arc::new(LocalAdapter::new());
        let sockets: Vec<_> = (0..64).map(|_| socket()).collect();
        for s in &sockets {
            adapter.add(s.clone());
            adapter.join(s.id(), "lobby");
        }
        let shard = |sid: Sid| adapter.shards.index(sid.as_str().as_bytes());

        // A broadcast to the whole namespace, stopped while it holds one socket shard.
        let (busy, resume, broadcaster) = stop_a_broadcast(&adapter, BroadcastOptions::all());
        let other = sockets
            .iter()
            .map(|s| s.id())
            .find(|&sid| shard(sid) != shard(busy))
            .expect("64 sockets fill more than one shard");
        let a = adapter.clone();
        let joined = ends(move || {
            a.join(other, "elsewhere");
            a.leave(other, "lobby");
        });
        drop(resume);
        broadcaster.join().expect("broadcaster");
        assert!(joined, "the join waited for the broadcast in progress");
        assert_eq!(adapter.room_size("elsewhere"), 1);
        assert_eq!(adapter.room_size("lobby"), 63);

        // A broadcast to a room, stopped: another room's member joins and leaves.
        let (_, resume, broadcaster) = stop_a_broadcast(
            &adapter,
            BroadcastOptions {
                rooms: vec!["lobby".into()],
                ..BroadcastOptions::default()
            },
        );
        let room = (0..)
            .map(|i| format!("room {i}"))
            .find(|r| adapter.shards.index(r.as_bytes()) != adapter.shards.index(b"lobby"))
            .expect("a room of another shard");
        let a = adapter.clone();
        let joined = ends(move || {
            a.join(other, &room);
            a.leave(other, &room);
        });
        drop(resume);
        broadcaster.join().expect("broadcaster");
        assert!(
            joined,
            "the join waited for the room's broadcast in progress"
        );
    }

    #[test]
    fn a_socket_that_joins_a_later_room_during_a_broadcast_gets_it_once() {
        let adapter = Arc::new(LocalAdapter::new());
        let (x, y) = (socket(), socket());
        adapter.add(x.clone());
        adapter.add(y.clone());
        adapter.join(x.id(), "a");
        // A room of another shard than "a", whose shard the stopped broadcast holds.
        let shard = |room: &str| adapter.shards.index(room.as_bytes());
        let b = (0..)
            .map(|i| format!("b{i}"))
            .find(|r| shard(r) != shard("a"))
            .expect("a room of another shard");
        adapter.join(y.id(), &b);
        let to_both = BroadcastOptions {
            rooms: vec!["a".into(), b.clone()],
            ..BroadcastOptions::default()
        };
        // Stopped at x, the only member of "a": x joins b, which comes next.
        let (first, resume, broadcaster) = stop_a_broadcast(&adapter, to_both);
        assert_eq!(first, x.id());
        let a = adapter.clone();
        let (xid, room) = (x.id(), b.clone());
        assert!(ends(move || a.join(xid, &room)), "the join waited");
        drop(resume);
        let mut reached = broadcaster.join().expect("broadcaster");
        reached.sort();
        let mut both = vec![x.id(), y.id()];
        both.sort();
        assert_eq!(reached, both, "x once (in \"a\"), not again in {b:?}");
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
