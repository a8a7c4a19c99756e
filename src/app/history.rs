//! Room history: the last messages a route delivered to a room (`history = { size, ttl }` on
//! the step), replayed to a socket that joins with `replay = true`. Bounded per room by
//! `size` and `ttl`, and over every room by [`HISTORY_BYTES`]: past it the oldest messages
//! of any room go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::routing::HistorySpec;
use crate::socketio::Encoded;

/// Bytes of history kept over every namespace and room.
pub const HISTORY_BYTES: usize = 32 * 1024 * 1024;

type Key = (String, String);

#[derive(Debug)]
struct Kept {
    seq: u64,
    at: Instant,
    packet: Encoded,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<Key, VecDeque<Kept>>,
    /// Every kept message, oldest first, to evict across rooms.
    order: VecDeque<(u64, Key)>,
    /// Messages kept (`order` may also hold ones a room's own bounds let go).
    live: usize,
    bytes: usize,
    next: u64,
}

/// Locks that order a room's kept deliveries with its joins-with-replay, by hash of room.
const ORDER_LOCKS: usize = 64;

/// The history of every room that has one.
#[derive(Debug)]
pub struct History {
    inner: Mutex<Inner>,
    budget: usize,
    order: [Mutex<()>; ORDER_LOCKS],
}

impl Default for History {
    fn default() -> Self {
        History::with_budget(HISTORY_BYTES)
    }
}

impl History {
    /// A history of at most `budget` bytes.
    pub fn with_budget(budget: usize) -> History {
        History {
            inner: Mutex::new(Inner::default()),
            budget,
            order: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    /// Held while a message is delivered to `room` of `nsp` and kept, and while a socket
    /// joins the room and is sent what it keeps: the joiner gets each message once — in
    /// the replay, or live — and the replay first.
    pub fn order(&self, nsp: &str, room: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (nsp, room).hash(&mut hasher);
        let lock = &self.order[hasher.finish() as usize % ORDER_LOCKS];
        lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep `packet`, just delivered to `room` of `nsp`, under `spec`.
    #[cfg(test)]
    pub fn remember(&self, nsp: &str, room: &str, spec: HistorySpec, packet: &Encoded) {
        self.remember_aged(nsp, room, spec, packet, Duration::ZERO);
    }

    /// What `room` of `nsp` keeps becomes `messages` (oldest first, each delivered `age`
    /// ago) — what the cluster keeps for it.
    pub fn replace(&self, nsp: &str, room: &str, messages: &[(HistorySpec, Encoded, Duration)]) {
        {
            let mut inner = self.inner.lock().expect("history lock");
            if let Some(old) = inner.rooms.remove(&(nsp.to_owned(), room.to_owned())) {
                inner.bytes -= old.iter().map(|k| k.bytes).sum::<usize>();
                inner.live -= old.len();
            }
        }
        for (spec, packet, age) in messages {
            self.remember_aged(nsp, room, *spec, packet, *age);
        }
    }

    /// Keep `packet`, delivered to `room` of `nsp` `age` ago, under `spec`.
    pub fn remember_aged(
        &self,
        nsp: &str,
        room: &str,
        spec: HistorySpec,
        packet: &Encoded,
        age: Duration,
    ) {
        let bytes = packet.text.len()
            + packet.attachments.iter().map(|a| a.len()).sum::<usize>()
            + nsp.len()
            + room.len();
        if bytes > self.budget || age > spec.ttl {
            return;
        }
        let now = Instant::now();
        let at = now.checked_sub(age).unwrap_or(now);
        let mut inner = self.inner.lock().expect("history lock");
        let inner = &mut *inner;
        let key = (nsp.to_owned(), room.to_owned());
        let seq = inner.next;
        inner.next += 1;
        let kept = inner.rooms.entry(key.clone()).or_default();
        kept.push_back(Kept {
            seq,
            at,
            packet: packet.clone(),
            bytes,
        });
        inner.bytes += bytes;
        inner.live += 1;
        // The room's own bounds.
        while kept.len() > spec.size
            || kept
                .front()
                .is_some_and(|k| now.duration_since(k.at) > spec.ttl)
        {
            if let Some(old) = kept.pop_front() {
                inner.bytes -= old.bytes;
                inner.live -= 1;
            }
        }
        inner.order.push_back((seq, key));
        // Every room's: the oldest kept message anywhere goes first.
        while inner.bytes > self.budget {
            let Some((seq, key)) = inner.order.pop_front() else {
                break;
            };
            if let Some(kept) = inner.rooms.get_mut(&key)
                && kept.front().is_some_and(|k| k.seq == seq)
                && let Some(old) = kept.pop_front()
            {
                inner.bytes -= old.bytes;
                inner.live -= 1;
                if kept.is_empty() {
                    inner.rooms.remove(&key);
                }
            }
        }
        // Entries of messages a room's own bounds let go: rebuilt away when they pile up.
        if inner.order.len() > 2 * inner.live + 1024 {
            let mut order: Vec<(u64, Key)> = inner
                .rooms
                .iter()
                .flat_map(|(key, kept)| kept.iter().map(move |k| (k.seq, key.clone())))
                .collect();
            order.sort_unstable_by_key(|(seq, _)| *seq);
            inner.order = order.into();
        }
    }

    /// What `room` of `nsp` keeps, oldest first, within `ttl`.
    pub fn replay(&self, nsp: &str, room: &str, ttl: Option<Duration>) -> Vec<Encoded> {
        let now = Instant::now();
        let inner = self.inner.lock().expect("history lock");
        inner
            .rooms
            .get(&(nsp.to_owned(), room.to_owned()))
            .map(|kept| {
                kept.iter()
                    .filter(|k| ttl.is_none_or(|ttl| now.duration_since(k.at) <= ttl))
                    .map(|k| k.packet.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn msg(n: usize) -> Encoded {
        Encoded::event_data("/", format!(r#"["m",{n}]"#).as_bytes(), Arc::from([]))
    }

    fn texts(v: Vec<Encoded>) -> Vec<String> {
        v.into_iter()
            .map(|e| String::from_utf8(e.text.to_vec()).unwrap())
            .collect()
    }

    const SPEC: HistorySpec = HistorySpec {
        size: 3,
        ttl: Duration::from_secs(3600),
    };

    #[test]
    fn a_room_keeps_its_last_messages() {
        let h = History::default();
        for n in 0..5 {
            h.remember("/", "r", SPEC, &msg(n));
        }
        h.remember("/", "other", SPEC, &msg(9));
        assert_eq!(
            texts(h.replay("/", "r", None)),
            [r#"2["m",2]"#, r#"2["m",3]"#, r#"2["m",4]"#]
        );
        assert_eq!(texts(h.replay("/x", "r", None)), Vec::<String>::new());
    }

    #[test]
    fn what_the_cluster_keeps_replaces_a_rooms_history() {
        let h = History::default();
        for n in 0..3 {
            h.remember("/", "r", SPEC, &msg(n));
        }
        h.remember("/", "other", SPEC, &msg(9));
        let hour = Duration::from_secs(3600);
        h.replace(
            "/",
            "r",
            &[
                (SPEC, msg(7), Duration::from_secs(30)),
                // Older than its ttl: not kept.
                (SPEC, msg(8), hour + Duration::from_secs(1)),
                (SPEC, msg(5), Duration::ZERO),
            ],
        );
        assert_eq!(
            texts(h.replay("/", "r", None)),
            [r#"2["m",7]"#, r#"2["m",5]"#]
        );
        // Read with a shorter ttl, the one kept 30 s ago is past it.
        assert_eq!(
            texts(h.replay("/", "r", Some(Duration::from_secs(10)))),
            [r#"2["m",5]"#]
        );
        assert_eq!(texts(h.replay("/", "other", None)), [r#"2["m",9]"#]);
        let inner = h.inner.lock().unwrap();
        assert_eq!(inner.live, 3);
    }

    #[test]
    fn past_the_budget_the_oldest_of_any_room_go() {
        // Each message: 8 bytes of text + 1 + 1 of names.
        let h = History::with_budget(30);
        h.remember("/", "a", SPEC, &msg(1));
        h.remember("/", "b", SPEC, &msg(2));
        h.remember("/", "a", SPEC, &msg(3));
        h.remember("/", "b", SPEC, &msg(4));
        assert_eq!(texts(h.replay("/", "a", None)), [r#"2["m",3]"#]);
        assert_eq!(
            texts(h.replay("/", "b", None)),
            [r#"2["m",2]"#, r#"2["m",4]"#]
        );
        assert!(h.inner.lock().unwrap().bytes <= 30);
    }
}
