//! Sockets saved for recovery, kept where every node finds them: `SET sio:session:{pid}`
//! for `max_disconnection`; taken back once (GETDEL) with what the socket missed, read from
//! the stream after its offset — bounded in reads and in the recovery buffer's bytes: a
//! socket that missed more starts afresh.

use super::reader::entries;
use super::*;

/// Most XRANGE calls to read what a socket missed.
const MAX_READS: usize = 100;
/// Entries per XRANGE call.
const PER_READ: usize = 100;

impl RedisAdapter {
    /// Save `saved` for the cluster (recovery on).
    pub(in super::super) fn save_to_redis(&self, saved: &SavedSocket) {
        let Some(window) = self.shared.recovery() else {
            return;
        };
        let key = format!("{SESSION_PREFIX}{}", saved.pid);
        let value = codec::encode_session(saved);
        let size = key.len() + value.len();
        let mut command = redis::cmd("SET");
        command
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(window.max_disconnection.as_millis().max(1) as u64);
        self.shared.send(Outbound::command(command, size, None));
    }

    /// The socket saved under `pid`, taken, with what it missed after `offset`, within the
    /// cluster's request timeout.
    pub(in super::super) async fn take_from_redis(
        &self,
        pid: &str,
        offset: &str,
    ) -> Option<SavedSocket> {
        let window = self.shared.recovery()?;
        let stream = self.shared.config.stream.as_ref()?;
        codec::next_id(offset)?;
        if pid.is_empty() || pid.len() > 64 {
            return None;
        }
        let deadline = tokio::time::Instant::now() + self.shared.config.request_timeout;
        let taken =
            tokio::time::timeout_at(deadline, self.take(stream, &window, pid, offset)).await;
        match taken {
            Ok(Ok(saved)) => saved,
            Ok(Err(e)) => {
                tracing::debug!("Recovery lookup in Redis failed: {e}");
                self.shared.command_failed().await;
                None
            }
            Err(_) => {
                tracing::debug!("Recovery lookup in Redis timed out");
                None
            }
        }
    }

    async fn take(
        &self,
        stream: &StreamConfig,
        window: &RecoveryWindow,
        pid: &str,
        offset: &str,
    ) -> redis::RedisResult<Option<SavedSocket>> {
        let Some(mut conn) = self.shared.command().await else {
            return Ok(None);
        };
        let (session, at_offset): (Option<Vec<u8>>, redis::Value) = redis::pipe()
            .cmd("GETDEL")
            .arg(format!("{SESSION_PREFIX}{pid}"))
            .cmd("XRANGE")
            .arg(&stream.name)
            .arg(offset)
            .arg(offset)
            .query_async(&mut conn)
            .await?;
        let Some(mut saved) = session.and_then(|s| codec::decode_session(&s)) else {
            return Ok(None);
        };
        if entries(at_offset).is_empty() {
            // The offset is gone from the stream (trimmed, or never there).
            return Ok(None);
        }
        let mut rooms = saved.rooms.clone();
        rooms.push(saved.sid.to_string());
        let mut cursor = offset.to_owned();
        let mut bytes = 0;
        for _ in 0..MAX_READS {
            let Some(start) = codec::next_id(&cursor) else {
                break;
            };
            let read: redis::Value = redis::cmd("XRANGE")
                .arg(&stream.name)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(PER_READ)
                .query_async(&mut conn)
                .await?;
            let read = entries(read);
            let complete = read.len() < PER_READ;
            for (id, fields) in read {
                if let Some(packet) = self.missed(&fields, &rooms, &id) {
                    bytes += packet.text.len()
                        + packet.attachments.iter().map(|a| a.len()).sum::<usize>();
                    if bytes > window.buffer {
                        tracing::debug!(
                            pid,
                            "A socket missed more than the recovery buffer; it starts afresh"
                        );
                        return Ok(None);
                    }
                    saved.missed.push(packet);
                }
                cursor = id;
            }
            if complete {
                return Ok(Some(saved));
            }
        }
        // More than it may read: what it missed cannot all be given.
        Ok(None)
    }

    /// The packet of entry `id` for a socket in `rooms`, if it was a broadcast it may ask for
    /// again: of this namespace, no ack wanted, not volatile.
    fn missed(&self, fields: &[(String, Vec<u8>)], rooms: &[String], id: &str) -> Option<Encoded> {
        let message = codec::decode_entry(fields)?;
        if message.nsp != self.nsp
            || message.kind != codec::kind::BROADCAST
            || message.data.get("requestId").is_some()
        {
            return None;
        }
        let (packet, opts, _) = codec::broadcast_of(&message)?;
        if opts.volatile || !codec::reaches(&opts, rooms) {
            return None;
        }
        packet.with_offset(id)
    }
}
