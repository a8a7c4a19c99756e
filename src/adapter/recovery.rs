//! Connection state recovery for one namespace, as socket.io's session-aware adapter keeps
//! it: every broadcast a client could miss (an event, no ack wanted, not volatile) gets an
//! offset — its last argument on the wire — and is kept with whom it was for; a socket that
//! leaves for a reason it may come back from is saved by its private session id. A client
//! back within `max_disconnection` with `{pid, offset}` gets its socket back and every kept
//! broadcast after `offset` that was for it. Kept broadcasts are bounded in bytes and age,
//! saved sockets in count and age.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BroadcastOptions;
use crate::engineio::Sid;
use crate::socketio::Encoded;

/// Most sockets saved at once per namespace; past it the oldest is forgotten.
const MAX_SAVED: usize = 100_000;

/// How long and how much a namespace keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryWindow {
    /// How long a saved socket and a kept broadcast last.
    pub max_disconnection: Duration,
    /// Bytes of broadcasts kept.
    pub buffer: usize,
}

/// A socket saved when it left.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSocket {
    /// Its id.
    pub sid: Sid,
    /// Its private session id.
    pub pid: String,
    /// Its rooms, its own aside.
    pub rooms: Vec<String>,
    /// Its `socket.data`.
    pub data: Value,
    /// The broadcasts it missed, when they were read with it from a shared log
    /// (`redis-streams`); empty when the adapter replays them from its own.
    pub missed: Vec<Encoded>,
}

#[derive(Debug)]
struct Kept {
    /// Its offset, as a number.
    n: u64,
    at: Instant,
    rooms: Vec<String>,
    except: Vec<String>,
    packet: Encoded,
    bytes: usize,
}

/// The broadcasts kept, oldest first.
#[derive(Debug, Default)]
pub(super) struct Log {
    kept: VecDeque<Kept>,
    bytes: usize,
    next: u64,
}

impl Log {
    /// Keep `packet` (sent to whom `opts` selects) under a new offset: the packet as sent,
    /// or `None` when it is not one a client may ask for again.
    pub(super) fn keep(
        &mut self,
        window: &RecoveryWindow,
        packet: &Encoded,
        opts: &BroadcastOptions,
    ) -> Option<Encoded> {
        if opts.volatile {
            return None;
        }
        let n = self.next;
        let marked = packet.with_offset(&format!("{n:x}"))?;
        self.next += 1;
        let bytes = marked.text.len()
            + marked.attachments.iter().map(|a| a.len()).sum::<usize>()
            + opts
                .rooms
                .iter()
                .chain(&opts.except)
                .map(String::len)
                .sum::<usize>();
        let now = Instant::now();
        while let Some(old) = self.kept.front() {
            let too_old = now.duration_since(old.at) > window.max_disconnection;
            if !too_old && self.bytes + bytes <= window.buffer {
                break;
            }
            self.bytes -= old.bytes;
            self.kept.pop_front();
        }
        self.bytes += bytes;
        self.kept.push_back(Kept {
            n,
            at: now,
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            packet: marked.clone(),
            bytes,
        });
        Some(marked)
    }

    /// Where `offset` is in the log, if still kept. Offsets are the log's own counter in
    /// hex, in order: a binary search, so a made-up offset costs nobody a walk of the log.
    fn position(&self, offset: &str) -> Option<usize> {
        let n = u64::from_str_radix(offset, 16).ok()?;
        let i = self.kept.partition_point(|k| k.n < n);
        (self.kept.get(i)?.n == n).then_some(i)
    }

    /// Whether `offset` is still kept.
    fn has(&self, offset: &str) -> bool {
        self.position(offset).is_some()
    }

    /// What was kept after `offset` for a socket in `rooms` (its own included), in order.
    pub(super) fn after(&self, offset: &str, rooms: &[String]) -> Vec<Encoded> {
        let Some(i) = self.position(offset) else {
            return Vec::new();
        };
        self.kept
            .iter()
            .skip(i + 1)
            .filter(|k| {
                let included = k.rooms.is_empty() || rooms.iter().any(|r| k.rooms.contains(r));
                let excluded = rooms.iter().any(|r| k.except.contains(r));
                included && !excluded
            })
            .map(|k| k.packet.clone())
            .collect()
    }
}

/// One namespace's recovery state.
#[derive(Debug)]
pub struct Recovery {
    window: RecoveryWindow,
    /// Held while a broadcast is kept and fanned out, so that offsets reach every socket in
    /// the order they were given.
    log: Mutex<Log>,
    saved: Mutex<Saved>,
}

#[derive(Debug, Default)]
struct Saved {
    by_pid: HashMap<String, (Instant, SavedSocket)>,
    order: VecDeque<(Instant, String)>,
}

impl Recovery {
    /// Recovery with `window`.
    pub fn new(window: RecoveryWindow) -> Recovery {
        Recovery {
            window,
            log: Mutex::new(Log::default()),
            saved: Mutex::new(Saved::default()),
        }
    }

    /// Its window.
    pub fn window(&self) -> RecoveryWindow {
        self.window
    }

    /// The log, locked.
    pub(super) fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect("recovery log lock")
    }

    /// Save a socket that left.
    pub fn save(&self, socket: SavedSocket) {
        let now = Instant::now();
        let mut saved = self.saved.lock().expect("saved sockets lock");
        saved.expire(now, self.window.max_disconnection);
        while saved.by_pid.len() >= MAX_SAVED {
            let Some((_, pid)) = saved.order.pop_front() else {
                break;
            };
            saved.by_pid.remove(&pid);
        }
        saved.order.push_back((now, socket.pid.clone()));
        saved.by_pid.insert(socket.pid.clone(), (now, socket));
    }

    /// The socket saved under `pid`, taken, if it left within the window and `offset` is
    /// still kept.
    pub fn take(&self, pid: &str, offset: &str) -> Option<SavedSocket> {
        let now = Instant::now();
        let mut saved = self.saved.lock().expect("saved sockets lock");
        saved.expire(now, self.window.max_disconnection);
        // The private session id first: without one, the log is not even looked at.
        if !saved.by_pid.contains_key(pid) || !self.log().has(offset) {
            return None;
        }
        saved.by_pid.remove(pid).map(|(_, s)| s)
    }
}

impl Saved {
    fn expire(&mut self, now: Instant, max: Duration) {
        while let Some((at, pid)) = self.order.front() {
            if now.duration_since(*at) <= max {
                break;
            }
            // A pid saved again later keeps its newer entry.
            if self.by_pid.get(pid).is_some_and(|(t, _)| t == at) {
                self.by_pid.remove(pid);
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(n: u32) -> Encoded {
        Encoded::event_data("/", format!(r#"["m",{n}]"#).as_bytes(), Arc::from([]))
    }

    fn to(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            except: except.iter().map(|r| (*r).to_owned()).collect(),
            volatile: false,
        }
    }

    const WINDOW: RecoveryWindow = RecoveryWindow {
        max_disconnection: Duration::from_secs(60),
        buffer: 1000,
    };

    #[test]
    fn what_was_for_the_socket_after_its_offset_in_order() {
        let mut log = Log::default();
        let first = log.keep(&WINDOW, &event(0), &to(&[], &[])).unwrap();
        assert_eq!(&first.text[..], br#"2["m",0,"0"]"#);
        log.keep(&WINDOW, &event(1), &to(&["r"], &[]));
        log.keep(&WINDOW, &event(2), &to(&["other"], &[]));
        log.keep(&WINDOW, &event(3), &to(&[], &["r"]));
        log.keep(&WINDOW, &event(4), &to(&[], &[]));
        let missed: Vec<_> = log
            .after("0", &["me".to_owned(), "r".to_owned()])
            .into_iter()
            .map(|e| String::from_utf8(e.text.to_vec()).unwrap())
            .collect();
        assert_eq!(missed, [r#"2["m",1,"1"]"#, r#"2["m",4,"4"]"#]);
        assert!(log.after("unknown", &[]).is_empty());
        let volatile = BroadcastOptions {
            volatile: true,
            ..to(&[], &[])
        };
        assert!(log.keep(&WINDOW, &event(5), &volatile).is_none());
    }

    #[test]
    fn the_log_keeps_its_bytes() {
        let mut log = Log::default();
        for n in 0..200 {
            log.keep(&WINDOW, &event(n), &to(&[], &[]));
        }
        assert!(log.bytes <= WINDOW.buffer);
        assert!(!log.has("0"));
        assert!(log.has(&format!("{:x}", 199)));
    }

    #[test]
    fn a_saved_socket_is_taken_once_and_only_from_a_kept_offset() {
        let recovery = Recovery::new(WINDOW);
        recovery.log().keep(&WINDOW, &event(0), &to(&[], &[]));
        let saved = SavedSocket {
            sid: Sid::random(),
            pid: "p".to_owned(),
            rooms: vec!["r".to_owned()],
            data: serde_json::json!({"n": 1}),
            missed: Vec::new(),
        };
        recovery.save(saved.clone());
        assert_eq!(recovery.take("p", "nope"), None);
        assert_eq!(recovery.take("p", "0"), Some(saved));
        assert_eq!(recovery.take("p", "0"), None);
    }
}
