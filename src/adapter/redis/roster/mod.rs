//! Who is in each room on the other switchboard nodes, so that `{room.size}`,
//! `{room.members}`, `ctx.room_size` and presence announcements count the whole cluster
//! without asking Redis on the message path.
//!
//! Each node keeps its memberships in the Redis hash `{key}#switchboard#members#{uid}`
//! (fields `[nsp, room, sid]` as JSON, and `#seq`: the number of its last batch), which
//! expires three heartbeats after the node's last one, and tells its changes in numbered
//! batches on `{key}#switchboard#members#` — the hash written first (leaves, then joins with
//! the new `#seq`) and the message after, by the same connection, so a read of the hash that
//! sees batch n has every change up to n. Its uid is in the sorted set
//! `{key}#switchboard#members` until its lease ends. Every node keeps a [`Replicas`] of the
//! others: changes applied in order; a node never seen, a gap (a message lost in an outage),
//! or a heartbeat whose number is ahead is repaired by reading that node's hash. A node
//! silent for three heartbeats is dead: its members leave the replica, and this node's
//! sockets in their rooms are told (presence).
//!
//! A change this node could not publish (queue full, Redis away) marks its hash stale; the
//! next heartbeat writes it afresh and tells the others to read it again.

mod replica;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

pub(crate) use replica::Member;
use replica::{Change, Replicas};
use serde::{Deserialize, Serialize};

use super::publisher::Outbound;
use super::*;

/// Most memberships of other nodes held.
const MAX_MEMBERS: usize = 1_000_000;
/// A node silent for this many heartbeats is dead.
const LEASE_BEATS: u32 = 3;

/// A heartbeat: answers '0' (and does nothing) when the hash is not what this node wrote (it
/// expired meanwhile, or lost changes). KEYS: hash, index, channel; ARGV: lease ms, uid,
/// message, memberships.
const HEARTBEAT: &str = "\
if redis.call('HLEN', KEYS[1]) ~= tonumber(ARGV[4]) + 1 then return '0' end \
local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) \
redis.call('PEXPIRE', KEYS[1], ARGV[1]) \
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2]) \
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) \
redis.call('PUBLISH', KEYS[3], ARGV[3]) return '1'";

/// The whole hash written afresh. KEYS: hash, index, channel; ARGV: seq, lease ms, uid,
/// message, fields...
const REWRITE: &str = "\
redis.call('DEL', KEYS[1]) \
redis.call('HSET', KEYS[1], '#seq', ARGV[1]) \
for i = 5, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '1') end \
redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) \
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3]) \
redis.call('PUBLISH', KEYS[3], ARGV[4]) return '1'";

/// Every live node's hash: uid, fields, uid, fields… KEYS: index; ARGV: the hashes' prefix.
const READ_ALL: &str = "\
local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) \
local out = {} \
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do \
out[#out + 1] = uid out[#out + 1] = redis.call('HGETALL', ARGV[1] .. uid) end \
return out";

/// What a node tells the others: numbered changes (`[member, joined]`, in order), a
/// heartbeat (no changes), or that it wrote its hash afresh.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Message {
    uid: String,
    /// The number of its last batch of changes.
    seq: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    changes: Vec<(Member, bool)>,
    /// It wrote its hash afresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reset: bool,
}

/// Most changes told in one message.
const BATCH: usize = 1_000;

#[derive(Debug, Default)]
struct Own {
    seq: u64,
    members: HashSet<Member>,
    /// Changes not told yet, in order.
    pending: Vec<(Member, bool)>,
}

/// This node's memberships as told to the others, and the others' as heard.
#[derive(Debug)]
pub(super) struct Roster {
    replicas: RwLock<Replicas>,
    own: Mutex<Own>,
    /// A change was not published: the hash is to be written afresh.
    stale: Arc<AtomicBool>,
    /// Changes are pending.
    wake: tokio::sync::Notify,
}

impl Default for Roster {
    fn default() -> Self {
        Roster {
            replicas: RwLock::new(Replicas::new(MAX_MEMBERS)),
            own: Mutex::default(),
            // The first heartbeat writes the hash.
            stale: Arc::new(AtomicBool::new(true)),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Shared {
    fn roster_channel(&self) -> String {
        format!("{}#switchboard#members#", self.config.key)
    }

    fn roster_hash(&self, uid: &str) -> String {
        format!("{}#switchboard#members#{uid}", self.config.key)
    }

    fn roster_index(&self) -> String {
        format!("{}#switchboard#members", self.config.key)
    }

    fn lease(&self) -> Duration {
        self.config.heartbeat * LEASE_BEATS
    }

    /// Whether `channel` is the roster's.
    pub(super) fn is_roster_channel(&self, channel: &str) -> bool {
        channel
            .strip_prefix(self.config.key.as_str())
            .is_some_and(|rest| rest == "#switchboard#members#")
    }

    /// The channel to subscribe to for the others' changes.
    pub(super) fn roster_subscription(&self) -> String {
        self.roster_channel()
    }
}

impl Roster {
    /// A socket of this node joined (or left) a room: the others are told soon, with the
    /// changes made meanwhile (one message, however many).
    pub(super) fn tell(&self, member: Member, joined: bool) {
        let mut own = self.own.lock().expect("roster lock");
        let changed = if joined {
            own.members.insert(member.clone())
        } else {
            own.members.remove(&member)
        };
        if changed {
            own.pending.push((member, joined));
            self.wake.notify_one();
        }
    }

    /// Tell the pending changes now, on the caller's thread: what it publishes next (a
    /// presence announcement) reaches the other nodes after them.
    pub(super) fn flush_now(&self, s: &Shared) {
        let mut own = self.own.lock().expect("roster lock");
        self.flush(s, &mut own);
    }

    /// Tell the pending changes: the hash's fields (leaves, then joins with the new `#seq`,
    /// so a read that sees number n has every change up to n), then the message. Sent while
    /// the lock is held: the publisher sends them in their numbers' order.
    fn flush(&self, s: &Shared, own: &mut Own) {
        while !own.pending.is_empty() {
            let take = own.pending.len().min(BATCH);
            let changes: Vec<(Member, bool)> = own.pending.drain(..take).collect();
            own.seq += 1;
            // What each member ends as.
            let mut last: std::collections::HashMap<&Member, bool> = Default::default();
            for (m, joined) in &changes {
                last.insert(m, *joined);
            }
            let field = |m: &Member| serde_json::to_string(m).expect("strings serialize");
            let hash = s.roster_hash(&s.uid);
            let mut hdel = redis::cmd("HDEL");
            hdel.arg(&hash);
            let mut hset = redis::cmd("HSET");
            hset.arg(&hash);
            let (mut leaves, mut size) = (0, 0);
            for (m, joined) in &last {
                let f = field(m);
                size += f.len();
                if *joined {
                    hset.arg(f).arg("1");
                } else {
                    leaves += 1;
                    hdel.arg(f);
                }
            }
            hset.arg("#seq").arg(own.seq);
            if leaves > 0 {
                s.send(Outbound::command(hdel, size, Some(self.stale_if_failed())));
            }
            s.send(Outbound::command(hset, size, Some(self.stale_if_failed())));
            let message = Message {
                uid: s.uid.clone(),
                seq: own.seq,
                changes,
                reset: false,
            };
            let message = serde_json::to_vec(&message).expect("strings serialize");
            s.send(Outbound::command(
                publish(s.roster_channel(), &message),
                message.len(),
                Some(self.stale_if_failed()),
            ));
        }
    }

    /// A heartbeat — or, when the hash is stale, the whole hash written afresh.
    fn beat(&self, s: &Shared) {
        if self.stale.swap(false, Ordering::AcqRel) {
            return self.rewrite(s);
        }
        let mut own = self.own.lock().expect("roster lock");
        self.flush(s, &mut own);
        let message = Message {
            uid: s.uid.clone(),
            seq: own.seq,
            changes: Vec::new(),
            reset: false,
        };
        let message = serde_json::to_vec(&message).expect("strings serialize");
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(HEARTBEAT)
            .arg(3)
            .arg(s.roster_hash(&s.uid))
            .arg(s.roster_index())
            .arg(s.roster_channel())
            .arg(s.lease().as_millis() as u64)
            .arg(&s.uid)
            .arg(&message)
            .arg(own.members.len());
        let size = message.len() + HEARTBEAT.len();
        s.send(Outbound::command(cmd, size, Some(self.stale_unless_done())));
    }

    /// Write the whole hash afresh and tell the others to read it. Walks every membership
    /// of this node: the caller keeps it off the reactor.
    fn rewrite(&self, s: &Shared) {
        let mut own = self.own.lock().expect("roster lock");
        // The rewrite holds every change so far.
        own.pending.clear();
        own.seq += 1;
        let message = Message {
            uid: s.uid.clone(),
            seq: own.seq,
            changes: Vec::new(),
            reset: true,
        };
        let message = serde_json::to_vec(&message).expect("strings serialize");
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REWRITE)
            .arg(3)
            .arg(s.roster_hash(&s.uid))
            .arg(s.roster_index())
            .arg(s.roster_channel())
            .arg(own.seq)
            .arg(s.lease().as_millis() as u64)
            .arg(&s.uid)
            .arg(&message);
        let mut size = message.len() + REWRITE.len();
        for member in &own.members {
            let field = serde_json::to_string(member).expect("strings serialize");
            size += field.len();
            cmd.arg(field);
        }
        s.send(Outbound::command(cmd, size, Some(self.stale_unless_done())));
    }

    /// What to do with a command's reply: none (it failed) leaves the hash stale.
    fn stale_if_failed(&self) -> publisher::Then {
        let stale = self.stale.clone();
        Box::new(move |reply| {
            if reply.is_none() {
                stale.store(true, Ordering::Release);
            }
        })
    }

    /// What to do with a script's reply: anything but '1' leaves the hash stale.
    fn stale_unless_done(&self) -> publisher::Then {
        let stale = self.stale.clone();
        Box::new(move |reply| {
            if reply.as_deref() != Some("1") {
                stale.store(true, Ordering::Release);
            }
        })
    }

    /// The link was down: changes may not have reached Redis; write the hash afresh.
    pub(super) fn outage(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Sockets of other nodes in `room` of `nsp`.
    pub(super) fn size(&self, nsp: &str, room: &str) -> usize {
        self.replicas.read().expect("roster lock").size(nsp, room)
    }

    /// The first `max` ids of other nodes' sockets in `room` of `nsp`, sorted.
    pub(super) fn members(&self, nsp: &str, room: &str, max: usize) -> Vec<String> {
        self.replicas
            .read()
            .expect("roster lock")
            .members(nsp, room, max)
    }
}

/// Run `f` on the replica, then show its size in the metrics.
fn with_replicas<T>(s: &Shared, f: impl FnOnce(&mut Replicas) -> T) -> T {
    let mut replicas = s.roster.replicas.write().expect("roster lock");
    let out = f(&mut replicas);
    s.metrics
        .remote_members
        .store(replicas.len() as u64, Ordering::Relaxed);
    s.metrics
        .remote_nodes
        .store(replicas.nodes() as u64, Ordering::Relaxed);
    s.metrics
        .remote_members_refused
        .store(replicas.refused, Ordering::Relaxed);
    out
}

/// A message on the roster's channel: applied, and the nodes to read asked for.
pub(super) fn on_message(s: &Arc<Shared>, payload: &[u8]) {
    let Ok(message) = serde_json::from_slice::<Message>(payload) else {
        tracing::debug!("Undecodable roster message from Redis ignored");
        return;
    };
    if message.uid == s.uid {
        return;
    }
    let now = Instant::now();
    let read = with_replicas(s, |replicas| {
        if message.reset {
            replicas.reset(&message.uid, message.seq, now)
        } else if message.changes.is_empty() {
            replicas.heartbeat(&message.uid, message.seq, now)
        } else {
            let changes = message
                .changes
                .into_iter()
                .map(|(member, joined)| Change { member, joined })
                .collect();
            replicas.change(&message.uid, message.seq, changes, now)
        }
    });
    if read {
        tokio::spawn(read_node(s.clone(), message.uid));
    }
}

/// Read node `uid`'s hash into the replica.
async fn read_node(s: Arc<Shared>, uid: String) {
    let hash = s.roster_hash(&uid);
    let read = async {
        let mut conn = s.command().await.ok_or("no connection to Redis")?;
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(&hash);
        tokio::time::timeout(
            s.config.request_timeout,
            cmd.query_async::<Vec<(String, String)>>(&mut conn),
        )
        .await
        .map_err(|_| "Redis did not answer in time")?
        .map_err(|_| "HGETALL failed")
    };
    match read.await {
        Ok(fields) => {
            let found = parse_hash(fields);
            let again = with_replicas(&s, |r| r.read(&uid, found, Instant::now()));
            if again {
                Box::pin(read_node(s, uid)).await;
            }
        }
        Err(e) => {
            tracing::debug!(node = %uid, "Reading another node's rooms failed: {e}");
            with_replicas(&s, |r| r.read_failed(&uid));
        }
    }
}

/// A node's hash as its last change and members; `None` when it is gone (or unreadable).
fn parse_hash(fields: Vec<(String, String)>) -> Option<(u64, Vec<Member>)> {
    let mut seq = None;
    let mut members = Vec::with_capacity(fields.len());
    for (field, value) in fields {
        if field == "#seq" {
            seq = value.parse::<u64>().ok();
        } else if let Ok(m) = serde_json::from_str::<Member>(&field) {
            members.push(m);
        }
    }
    seq.map(|s| (s, members))
}

/// Every node's hash of memberships, as stored.
async fn read_roster(s: &Shared) -> Result<Vec<redis::Value>, &'static str> {
    let mut conn = s.command().await.ok_or("no connection to Redis")?;
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(READ_ALL)
        .arg(1)
        .arg(s.roster_index())
        .arg(s.roster_hash(""));
    tokio::time::timeout(
        s.config.request_timeout,
        cmd.query_async::<Vec<redis::Value>>(&mut conn),
    )
    .await
    .map_err(|_| "Redis did not answer in time")?
    .map_err(|_| "reading the roster failed")
}

/// Read every live node's hash (at start and after an outage: changes may have been missed).
pub(super) async fn read_all(s: Arc<Shared>) {
    let Some(values) =
        super::with_retries("Reading the other nodes' rooms", || read_roster(&s)).await
    else {
        return;
    };
    let now = Instant::now();
    let mut again = Vec::new();
    with_replicas(&s, |replicas| {
        let mut values = values.into_iter();
        while let (Some(uid), Some(fields)) = (values.next(), values.next()) {
            let (Ok(uid), Ok(fields)) = (
                redis::from_redis_value::<String>(uid),
                redis::from_redis_value::<Vec<(String, String)>>(fields),
            ) else {
                continue;
            };
            if uid != s.uid && replicas.read(&uid, parse_hash(fields), now) {
                again.push(uid);
            }
        }
    });
    for uid in again {
        tokio::spawn(read_node(s.clone(), uid));
    }
}

/// `PUBLISH channel payload`.
fn publish(channel: String, payload: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(channel).arg(payload);
    cmd
}

/// Tell this node's changes as they come (batched while the last batch is being sent).
pub(super) async fn changes(shared: std::sync::Weak<Shared>, cancel: CancellationToken) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = s.roster.wake.notified() => {}
        }
        let mut own = s.roster.own.lock().expect("roster lock");
        s.roster.flush(&s, &mut own);
    }
}

/// Every heartbeat: tell the others this node lives (or write its hash afresh), and drop
/// the nodes silent for the lease — telling this node's sockets in their rooms.
pub(super) async fn heartbeats(shared: std::sync::Weak<Shared>, cancel: CancellationToken) {
    let Some(period) = shared.upgrade().map(|s| s.config.heartbeat) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(s) = shared.upgrade() else { return };
        // A rewrite walks every membership of this node: off the reactor.
        let beat = {
            let s = s.clone();
            tokio::task::spawn_blocking(move || s.roster.beat(&s))
        };
        let _ = beat.await;
        let gone = with_replicas(&s, |r| r.sweep(Instant::now(), s.lease()));
        if gone.is_empty() {
            continue;
        }
        tracing::info!(
            members = gone.len(),
            "A silent node's sockets left its rooms"
        );
        tokio::task::spawn_blocking(move || {
            for Member(nsp, room, sid) in gone {
                if let Some(local) = s.local(&nsp) {
                    let size = local.room_size(&room) + s.roster.size(&nsp, &room);
                    local.vanished(&room, &sid, size);
                }
            }
        });
    }
}
