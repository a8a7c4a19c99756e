//! The replica of the other nodes' memberships: pure state, fed by their numbered changes,
//! their heartbeats and reads of their hashes, in whatever order those arrive.
//!
//! A node's changes are applied in the order of their numbers; a change past a gap waits
//! (bounded) until a read of the node's hash gives a base to apply it on. A read older than
//! what was applied is ignored. A node silent for the lease is dropped with its members.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Changes of one node kept while waiting for a read of its hash; beyond, the read alone
/// repairs it.
const WAITING: usize = 10_000;

/// One membership: a socket (`sid`) of namespace `nsp` in `room`. On the wire and in the
/// node's hash, the JSON array `[nsp, room, sid]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Member(pub String, pub String, pub String);

impl Member {
    fn room(&self) -> (String, String) {
        (self.0.clone(), self.1.clone())
    }
}

/// One numbered change of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub member: Member,
    pub joined: bool,
}

#[derive(Debug)]
struct Node {
    /// The number of the last change applied; `None` until a read gave a base.
    seq: Option<u64>,
    heard: Instant,
    members: HashSet<Member>,
    /// Changes past a gap, by number.
    waiting: BTreeMap<u64, Vec<Change>>,
    /// A read of its hash is under way.
    reading: bool,
}

impl Node {
    fn new(now: Instant) -> Node {
        Node {
            seq: None,
            heard: now,
            members: HashSet::new(),
            waiting: BTreeMap::new(),
            reading: false,
        }
    }
}

/// Every other node's memberships, and by room the sockets they hold there.
#[derive(Debug)]
pub(super) struct Replicas {
    nodes: HashMap<String, Node>,
    rooms: HashMap<(String, String), BTreeSet<String>>,
    /// Memberships held, over every node.
    entries: usize,
    /// At most this many are held; joins beyond are not (and counted).
    max: usize,
    /// Joins not held because `max` was reached.
    pub refused: u64,
}

impl Replicas {
    /// A replica holding at most `max` memberships.
    pub fn new(max: usize) -> Replicas {
        Replicas {
            nodes: HashMap::new(),
            rooms: HashMap::new(),
            entries: 0,
            max,
            refused: 0,
        }
    }

    /// Changes number `seq` of node `uid`, in order. Returns whether its hash must be read
    /// (a gap, or a node not known yet) — once per read.
    pub fn change(&mut self, uid: &str, seq: u64, changes: Vec<Change>, now: Instant) -> bool {
        let node = self.node(uid, now);
        match node.seq {
            Some(last) if seq <= last => false,
            Some(last) if seq == last + 1 => {
                node.seq = Some(seq);
                changes.into_iter().for_each(|c| self.apply(uid, c));
                false
            }
            _ => {
                if node.waiting.len() < WAITING {
                    node.waiting.insert(seq, changes);
                }
                Self::start_read(node)
            }
        }
    }

    /// A heartbeat of `uid`, whose last change is `seq`. Returns whether its hash must be
    /// read (changes were missed, or the node is new).
    pub fn heartbeat(&mut self, uid: &str, seq: u64, now: Instant) -> bool {
        let node = self.node(uid, now);
        if node.seq == Some(seq) {
            return false;
        }
        Self::start_read(node)
    }

    /// `uid` wrote its whole hash afresh (at `seq`): read it.
    pub fn reset(&mut self, uid: &str, seq: u64, now: Instant) -> bool {
        let node = self.node(uid, now);
        node.waiting.retain(|&n, _| n > seq);
        // Anything applied before no longer counts: the read replaces it.
        node.seq = node.seq.filter(|&s| s >= seq);
        Self::start_read(node)
    }

    /// What a read of `uid`'s hash found: its last change and members, or nothing (the
    /// hash expired: the node is gone). Returns whether it must be read again.
    pub fn read(&mut self, uid: &str, found: Option<(u64, Vec<Member>)>, now: Instant) -> bool {
        let Some((seq, members)) = found else {
            self.drop_node(uid);
            return false;
        };
        let node = self.node(uid, now);
        node.reading = false;
        if node.seq.is_some_and(|s| s >= seq) {
            return false;
        }
        let old = std::mem::take(&mut node.members);
        node.seq = Some(seq);
        let waiting = std::mem::take(&mut node.waiting);
        for m in old {
            self.unindex(&m);
        }
        for m in members {
            self.apply(
                uid,
                Change {
                    member: m,
                    joined: true,
                },
            );
        }
        // Changes that came while the read was under way.
        let mut gap = false;
        for (n, changes) in waiting.into_iter().filter(|(n, _)| *n > seq) {
            let node = self.nodes.get_mut(uid).expect("node present");
            if gap || node.seq.is_some_and(|s| n != s + 1) {
                gap = true;
                node.waiting.insert(n, changes);
                continue;
            }
            node.seq = Some(n);
            changes.into_iter().for_each(|c| self.apply(uid, c));
        }
        gap && Self::start_read(self.nodes.get_mut(uid).expect("node present"))
    }

    /// A read of `uid` failed: the next heartbeat may start another.
    pub fn read_failed(&mut self, uid: &str) {
        if let Some(node) = self.nodes.get_mut(uid) {
            node.reading = false;
        }
    }

    /// Drop the nodes not heard from for `lease`; their memberships, which are gone.
    pub fn sweep(&mut self, now: Instant, lease: Duration) -> Vec<Member> {
        let dead: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.duration_since(n.heard) > lease)
            .map(|(uid, _)| uid.clone())
            .collect();
        dead.iter().flat_map(|uid| self.drop_node(uid)).collect()
    }

    /// How many sockets of other nodes are in `room` of `nsp`.
    pub fn size(&self, nsp: &str, room: &str) -> usize {
        self.rooms
            .get(&(nsp.to_owned(), room.to_owned()))
            .map_or(0, BTreeSet::len)
    }

    /// The first `max` ids of other nodes' sockets in `room` of `nsp`, sorted.
    pub fn members(&self, nsp: &str, room: &str, max: usize) -> Vec<String> {
        self.rooms
            .get(&(nsp.to_owned(), room.to_owned()))
            .map(|ids| ids.iter().take(max).cloned().collect())
            .unwrap_or_default()
    }

    /// How many nodes are known, with a base to apply their changes on.
    pub fn nodes(&self) -> usize {
        self.nodes.values().filter(|n| n.seq.is_some()).count()
    }

    /// How many memberships are held.
    pub fn len(&self) -> usize {
        self.entries
    }

    fn node(&mut self, uid: &str, now: Instant) -> &mut Node {
        let node = self
            .nodes
            .entry(uid.to_owned())
            .or_insert_with(|| Node::new(now));
        node.heard = now;
        node
    }

    fn start_read(node: &mut Node) -> bool {
        !std::mem::replace(&mut node.reading, true)
    }

    fn apply(&mut self, uid: &str, change: Change) {
        let Some(node) = self.nodes.get_mut(uid) else {
            return;
        };
        if change.joined {
            if self.entries >= self.max {
                self.refused += 1;
                return;
            }
            if node.members.insert(change.member.clone()) {
                self.entries += 1;
                self.rooms
                    .entry(change.member.room())
                    .or_default()
                    .insert(change.member.2);
            }
        } else if node.members.remove(&change.member) {
            self.unindex(&change.member);
        }
    }

    fn unindex(&mut self, m: &Member) {
        self.entries -= 1;
        let key = m.room();
        if let Some(ids) = self.rooms.get_mut(&key) {
            ids.remove(&m.2);
            if ids.is_empty() {
                self.rooms.remove(&key);
            }
        }
    }

    fn drop_node(&mut self, uid: &str) -> Vec<Member> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let members: Vec<Member> = node.members.into_iter().collect();
        for m in &members {
            self.unindex(m);
        }
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(room: &str, sid: &str) -> Member {
        Member("/".into(), room.into(), sid.into())
    }

    fn join(room: &str, sid: &str) -> Change {
        Change {
            member: m(room, sid),
            joined: true,
        }
    }

    fn leave(room: &str, sid: &str) -> Change {
        Change {
            member: m(room, sid),
            joined: false,
        }
    }

    #[test]
    fn a_new_node_is_read_then_its_changes_apply_in_order() {
        let now = Instant::now();
        let mut r = Replicas::new(100);
        // Its first change seen: no base yet, one read asked for.
        assert!(r.change("B", 5, vec![join("lobby", "s2")], now));
        assert!(!r.change("B", 6, vec![join("lobby", "s3")], now));
        assert_eq!(r.size("/", "lobby"), 0);
        // The read was taken after change 4: 5 and 6 apply on top of it.
        assert!(!r.read("B", Some((4, vec![m("lobby", "s1")])), now));
        assert_eq!(r.members("/", "lobby", 10), ["s1", "s2", "s3"]);
        assert!(!r.change("B", 7, vec![leave("lobby", "s1")], now));
        assert!(
            !r.change("B", 7, vec![leave("lobby", "s2")], now),
            "a repeat is ignored"
        );
        assert_eq!(r.members("/", "lobby", 10), ["s2", "s3"]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn a_read_older_than_what_was_applied_changes_nothing() {
        let now = Instant::now();
        let mut r = Replicas::new(100);
        r.change("B", 1, vec![join("a", "s1")], now);
        r.read("B", Some((1, vec![m("a", "s1")])), now);
        r.change("B", 2, vec![leave("a", "s1")], now);
        assert!(!r.read("B", Some((1, vec![m("a", "s1")])), now));
        assert_eq!(r.size("/", "a"), 0);
    }

    #[test]
    fn a_gap_or_a_heartbeat_ahead_asks_for_one_read() {
        let now = Instant::now();
        let mut r = Replicas::new(100);
        r.read("B", Some((3, vec![])), now);
        assert!(!r.heartbeat("B", 3, now));
        assert!(r.change("B", 5, vec![join("a", "s1")], now), "4 was missed");
        assert!(!r.heartbeat("B", 5, now), "a read is already under way");
        assert!(!r.read("B", Some((5, vec![m("a", "s1")])), now));
        assert_eq!(r.size("/", "a"), 1);
        assert!(r.heartbeat("B", 6, now));
    }

    #[test]
    fn a_reset_replaces_what_was_applied() {
        let now = Instant::now();
        let mut r = Replicas::new(100);
        r.read("B", Some((2, vec![m("a", "s1"), m("b", "s1")])), now);
        assert!(r.reset("B", 9, now));
        r.read("B", Some((9, vec![m("b", "s1")])), now);
        assert_eq!((r.size("/", "a"), r.size("/", "b")), (0, 1));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_silent_node_is_dropped_with_its_members() {
        let start = Instant::now();
        let lease = Duration::from_secs(3);
        let mut r = Replicas::new(100);
        r.read("B", Some((1, vec![m("a", "s1"), m("a", "s2")])), start);
        r.read("C", Some((1, vec![m("a", "s3")])), start);
        r.heartbeat("C", 1, start + Duration::from_secs(2));
        let mut gone = r.sweep(start + Duration::from_secs(4), lease);
        gone.sort();
        assert_eq!(gone, [m("a", "s1"), m("a", "s2")]);
        assert_eq!(r.members("/", "a", 10), ["s3"]);
        // A hash found expired drops the node too.
        r.read("C", None, start);
        assert_eq!((r.size("/", "a"), r.len()), (0, 0));
    }

    #[test]
    fn memberships_beyond_the_bound_are_refused() {
        let now = Instant::now();
        let mut r = Replicas::new(2);
        r.read("B", Some((0, vec![])), now);
        for (n, sid) in ["s1", "s2", "s3"].iter().enumerate() {
            r.change("B", n as u64 + 1, vec![join("a", sid)], now);
        }
        assert_eq!((r.len(), r.refused), (2, 1));
        r.change("B", 4, vec![leave("a", "s1")], now);
        r.change("B", 5, vec![leave("a", "s3")], now);
        assert_eq!(r.members("/", "a", 10), ["s2"]);
    }
}
