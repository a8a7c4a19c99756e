//! Rooms' histories across the cluster. A broadcast to a room that keeps it carries
//! `opts.kept` (`{room, size, ttl}`, a key Node peers ignore): every switchboard node
//! delivers it and keeps it in one step (see [`crate::adapter::RoomObserver::kept`]), so a
//! join with replay, on any node, gets each message once — replayed or live — and in order.
//! The sender also pushes it to the Redis list `{key}#switchboard#history#{nsp}#{room}`
//! (trimmed to the room's `size`, expiring `ttl` after its last message, listed in the sorted
//! set `{key}#switchboard#history` until then), which a node reads when it starts and after
//! an outage (what it hears meanwhile is kept after the read, unless the read had it).
//!
//! Bounds: a message over [`MAX_RECORD`] bytes is kept on the nodes it reaches but not
//! pushed; a list holds at most its room's `size` messages; what a node holds in memory is
//! its history's own budget.

use std::collections::HashSet;

use rmpv::Value as Mp;

use super::publisher::Outbound;
use super::*;
use crate::adapter::{Keep, KeptMessage};

/// Largest message shared, in bytes (its text and attachments).
pub(super) const MAX_RECORD: usize = 64 * 1024;
/// Messages heard while the lists are read, kept to apply after; beyond, dropped.
const HEARD_WHILE_READING: usize = 10_000;

/// Push one message. KEYS: list, index; ARGV: record, size, ttl ms.
const KEEP: &str = "\
redis.call('RPUSH', KEYS[1], ARGV[1]) \
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1) \
redis.call('PEXPIRE', KEYS[1], ARGV[3]) \
local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) \
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), KEYS[1]) return '1'";

/// Every live list, each as one array of records. KEYS: index.
const READ_ALL: &str = "\
local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) \
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) \
local out = {} \
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do \
out[#out + 1] = redis.call('LRANGE', key, 0, -1) end \
return out";

/// By namespace whose lists are being read, the messages heard for it meanwhile.
#[derive(Debug, Default)]
pub(super) struct Reading(Mutex<HashMap<String, Vec<KeptMessage>>>);

impl Shared {
    fn history_index(&self) -> String {
        format!("{}#switchboard#history", self.config.key)
    }
}

impl RedisAdapter {
    /// Push `message` to its room's list, for nodes that start later.
    pub(super) fn push_kept(&self, message: &KeptMessage) {
        let packet = &message.packet;
        let bytes = packet.text.len() + packet.attachments.iter().map(|a| a.len()).sum::<usize>();
        if bytes > MAX_RECORD {
            tracing::debug!(ns = %self.nsp, bytes, "Kept message too large to share; kept on this node only");
            return;
        }
        let record = encode(&self.shared.uid, &self.nsp, message);
        let keep = &message.keep;
        let ttl = keep.ttl.as_millis().max(1) as u64;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(KEEP)
            .arg(2)
            .arg(format!(
                "{}#switchboard#history#{}#{}",
                self.shared.config.key, self.nsp, keep.room
            ))
            .arg(self.shared.history_index())
            .arg(&record)
            .arg(keep.size.max(1))
            .arg(ttl);
        let size = record.len() + KEEP.len();
        self.shared.send(Outbound::command(cmd, size, None));
    }
}

/// A record: `[uid, nsp, room, size, ttl ms, unix ms, text, [attachments]]`.
fn encode(uid: &str, nsp: &str, message: &KeptMessage) -> Vec<u8> {
    let at = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(message.age);
    let value = Mp::Array(vec![
        Mp::from(uid),
        Mp::from(nsp),
        Mp::from(message.keep.room.as_str()),
        Mp::from(message.keep.size as u64),
        Mp::from(message.keep.ttl.as_millis() as u64),
        Mp::from(at.as_millis() as u64),
        Mp::Binary(message.packet.text.to_vec()),
        Mp::Array(
            message
                .packet
                .attachments
                .iter()
                .map(|a| Mp::Binary(a.to_vec()))
                .collect(),
        ),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).expect("writing to a Vec cannot fail");
    out
}

/// A record's uid, namespace and message; `None` if it is not one.
fn decode(record: &[u8]) -> Option<(String, String, KeptMessage)> {
    let value = rmpv::decode::read_value(&mut &record[..]).ok()?;
    let Mp::Array(fields) = value else {
        return None;
    };
    let [uid, nsp, room, size, ttl, at, text, attachments] = &fields[..] else {
        return None;
    };
    let attachments = match attachments {
        Mp::Array(list) => list
            .iter()
            .map(|a| match a {
                Mp::Binary(b) => Some(bytes::Bytes::copy_from_slice(b)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    let Mp::Binary(text) = text else {
        return None;
    };
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = Duration::from_millis(at.as_u64()?);
    Some((
        uid.as_str()?.to_owned(),
        nsp.as_str()?.to_owned(),
        KeptMessage {
            keep: Keep {
                room: room.as_str()?.to_owned(),
                size: usize::try_from(size.as_u64()?).ok()?,
                ttl: Duration::from_millis(ttl.as_u64()?),
            },
            age: now.saturating_sub(at),
            packet: Encoded::from_parts(
                bytes::Bytes::copy_from_slice(text),
                Arc::from(attachments),
            ),
        },
    ))
}

/// Another node's broadcast to a room that keeps it: delivered here and kept, in one step —
/// or, while the namespace's lists are read, delivered now and kept after the read.
pub(super) fn on_kept(
    s: &Shared,
    local: &LocalAdapter,
    packet: &Encoded,
    opts: &BroadcastOptions,
    keep: Keep,
    nsp: &str,
) -> Delivery {
    add(&s.metrics.history_heard, 1);
    {
        let mut reading = s.history_reading.0.lock().expect("history lock");
        if let Some(heard) = reading.get_mut(nsp) {
            if heard.len() < HEARD_WHILE_READING {
                heard.push(KeptMessage {
                    keep,
                    age: Duration::ZERO,
                    packet: packet.clone(),
                });
            }
            drop(reading);
            return local.broadcast(packet, opts);
        }
    }
    local.broadcast_kept(packet, opts, &keep)
}

/// Every room's kept list, as stored.
async fn read_lists(s: &Shared) -> Result<Vec<Vec<Vec<u8>>>, &'static str> {
    let mut conn = s.command().await.ok_or("no connection to Redis")?;
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(READ_ALL).arg(1).arg(s.history_index());
    tokio::time::timeout(
        s.config.request_timeout,
        cmd.query_async::<Vec<Vec<Vec<u8>>>>(&mut conn),
    )
    .await
    .map_err(|_| "Redis did not answer in time")?
    .map_err(|_| "reading the histories failed")
}

/// Read the lists of namespace `nsp` afresh into this node's history (once subscribed to
/// it: at start, when added, after an outage).
pub(super) async fn read_all(s: Arc<Shared>, nsp: String) {
    s.history_reading
        .0
        .lock()
        .expect("history lock")
        .insert(nsp.clone(), Vec::new());
    let lists = super::with_retries("Reading the rooms' histories", || read_lists(&s))
        .await
        .unwrap_or_default();
    // Decoding every list is a walk: off the reactor.
    let _ = tokio::task::spawn_blocking(move || {
        let Some(local) = s.local(&nsp) else {
            s.history_reading
                .0
                .lock()
                .expect("history lock")
                .remove(&nsp);
            return;
        };
        let mut had = HashSet::new();
        for list in lists {
            let mut room = None;
            let mut messages = Vec::with_capacity(list.len());
            for record in &list {
                if let Some((_, of, message)) = decode(record)
                    && of == nsp
                {
                    room.get_or_insert_with(|| message.keep.room.clone());
                    had.insert((message.keep.room.clone(), message.packet.text.clone()));
                    messages.push(message);
                }
            }
            if let Some(room) = room {
                add(&s.metrics.history_read, messages.len() as u64);
                local.history_read(&room, messages);
            }
        }
        // What was heard meanwhile, unless the read had it — before anything heard next.
        let mut reading = s.history_reading.0.lock().expect("history lock");
        for message in reading.remove(&nsp).unwrap_or_default() {
            if !had.contains(&(message.keep.room.clone(), message.packet.text.clone())) {
                local.keep_only(message);
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips() {
        let message = KeptMessage {
            keep: Keep {
                room: "lobby".into(),
                size: 50,
                ttl: Duration::from_secs(3600),
            },
            age: Duration::ZERO,
            packet: Encoded::from_parts(
                bytes::Bytes::from_static(b"51-[\"m\",{\"_placeholder\":true,\"num\":0}]"),
                Arc::from([bytes::Bytes::from_static(&[0, 1, 255])]),
            ),
        };
        let record = encode("node01", "/chat", &message);
        let (uid, nsp, back) = decode(&record).expect("decodes");
        assert_eq!((uid.as_str(), nsp.as_str()), ("node01", "/chat"));
        assert_eq!(back.keep, message.keep);
        assert_eq!(back.packet, message.packet);
        assert!(back.age < Duration::from_secs(60));
        assert!(decode(b"\x93\x01\x02\x03").is_none());
        assert!(decode(&record[..record.len() - 1]).is_none());
    }
}
