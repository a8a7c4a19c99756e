//! The stream reader: one connection XREADs the stream from its last entry when this node
//! started (an id, never "$", so that nothing added between two reads is missed), in order, and hands every other node's entry over with its id; after an outage it
//! reconnects with backoff and goes on from the last entry it read.

use std::sync::Weak;

use redis::Value;

use super::*;

/// Most entries read at once (as the Node adapter's `readCount`).
const COUNT: usize = 100;
/// How long one XREAD waits for new entries.
const BLOCK: Duration = Duration::from_secs(1);

/// Reads the stream until `cancel`.
pub(in super::super) async fn reader(
    client: redis::Client,
    shared: Weak<Shared>,
    cancel: CancellationToken,
) {
    let mut last = "$".to_owned();
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let Some(stream) = s.config.stream.clone() else {
            return;
        };
        let deadline = s.config.request_timeout;
        drop(s);
        if conn.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(BLOCK + deadline))
                .set_connection_timeout(Some(deadline));
            let opened = tokio::select! {
                _ = cancel.cancelled() => return,
                c = client.get_multiplexed_async_connection_with_config(&config) => c,
            };
            match opened {
                Ok(c) => {
                    conn = Some(c);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::debug!("Cannot read the Redis stream ({e}); trying again");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        if last == "$" {
            // "$" means "after the last entry when this XREAD arrives": an entry added between
            // a timed-out XREAD and the next would be skipped. Start from a real id instead.
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(&stream.name).arg("+").arg("-").arg("COUNT").arg(1);
            let reply = tokio::select! {
                _ = cancel.cancelled() => return,
                r = cmd.query_async::<Value>(c) => r,
            };
            match reply {
                Ok(reply) => {
                    last = entries(reply)
                        .pop()
                        .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
                }
                Err(e) => {
                    tracing::debug!("Reading the Redis stream failed ({e}); reconnecting");
                    conn = None;
                    continue;
                }
            }
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&stream.name)
            .arg(&last);
        let reply = tokio::select! {
            _ = cancel.cancelled() => return,
            r = cmd.query_async::<Value>(c) => r,
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!("Reading the Redis stream failed ({e}); reconnecting");
                conn = None;
                continue;
            }
        };
        let Some(s) = shared.upgrade() else { return };
        for (id, fields) in xread_entries(reply) {
            if let Some(message) = codec::decode_entry(&fields) {
                on_message(&s, message, Some(&id));
            }
            last = id;
        }
    }
}

/// The entries of an XREAD reply on one stream (none when it timed out).
fn xread_entries(reply: Value) -> Vec<Entry> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    streams
        .into_iter()
        .filter_map(|stream| match stream {
            Value::Array(mut pair) if pair.len() == 2 => Some(entries(pair.swap_remove(1))),
            _ => None,
        })
        .flatten()
        .collect()
}

/// An entry: its id and its fields.
pub(super) type Entry = (String, Vec<(String, Vec<u8>)>);

/// The entries of an XRANGE reply (or of one stream of an XREAD reply).
pub(super) fn entries(reply: Value) -> Vec<Entry> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            if pair.len() != 2 {
                return None;
            }
            let values = pair.pop()?;
            let id = redis::from_redis_value::<String>(pair.pop()?).ok()?;
            let Value::Array(values) = values else {
                return None;
            };
            let mut fields = Vec::with_capacity(values.len() / 2);
            let mut values = values.into_iter();
            while let (Some(k), Some(v)) = (values.next(), values.next()) {
                let k = redis::from_redis_value::<String>(k).ok()?;
                let v = redis::from_redis_value::<Vec<u8>>(v).ok()?;
                fields.push((k, v));
            }
            Some((id, fields))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn xread_replies_give_their_entries_in_order() {
        let entry = |id: &str, uid: &str| {
            Value::Array(vec![
                bulk(id),
                Value::Array(vec![bulk("uid"), bulk(uid), bulk("nsp"), bulk("/")]),
            ])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("socket.io"),
            Value::Array(vec![entry("1-0", "a"), entry("1-1", "b")]),
        ])]);
        let got = xread_entries(reply);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "1-0");
        assert_eq!(got[1].1[0], ("uid".to_owned(), b"b".to_vec()));
        assert!(xread_entries(Value::Nil).is_empty(), "a timed-out XREAD");
    }
}
