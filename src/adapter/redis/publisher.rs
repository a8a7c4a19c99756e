//! The publisher: what this node sends the cluster waits in a queue bounded in messages and
//! bytes (full: dropped and counted), and one task sends it — PUBLISH, or XADD to the
//! `redis-streams` stream — pipelined, with a deadline. A command may want its reply (an
//! XADD's entry id): it is handed over in order, or `None` when the command failed.

use super::*;

/// How many bytes of messages may wait for the publisher before new ones are dropped.
const OUTBOUND_BYTES: usize = 16 * 1024 * 1024;
/// Most PUBLISHes sent in one pipeline.
const BATCH: usize = 512;

/// What is done with a command's reply: its entry id, or `None` when it failed.
pub(super) type Then = Box<dyn FnOnce(Option<String>) + Send>;

/// One command for Redis.
pub(super) struct Outbound {
    command: redis::Cmd,
    size: usize,
    then: Option<Then>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("size", &self.size)
            .finish()
    }
}

impl Outbound {
    /// `PUBLISH channel payload`.
    pub(super) fn publish(channel: String, payload: Vec<u8>) -> Outbound {
        let size = channel.len() + payload.len();
        let mut command = redis::cmd("PUBLISH");
        command.arg(channel).arg(payload);
        Outbound {
            command,
            size,
            then: None,
        }
    }

    /// Any other command of about `size` bytes; `then` is given its reply.
    pub(super) fn command(command: redis::Cmd, size: usize, then: Option<Then>) -> Outbound {
        Outbound {
            command,
            size,
            then,
        }
    }

    fn size(&self) -> usize {
        self.size
    }

    /// Give up on it: whoever waits for the reply gets `None`.
    fn fail(self) {
        if let Some(then) = self.then {
            then(None);
        }
    }
}

/// Queue `message` for the publisher, or drop it (counted) when the queue is full in
/// messages or bytes.
pub(super) fn enqueue(
    outbound: &mpsc::Sender<Outbound>,
    bytes: &AtomicUsize,
    metrics: &ClusterMetrics,
    message: Outbound,
) {
    let size = message.size();
    if bytes.fetch_add(size, Ordering::AcqRel) + size > OUTBOUND_BYTES {
        bytes.fetch_sub(size, Ordering::AcqRel);
        add(&metrics.publish_dropped, 1);
        message.fail();
        return;
    }
    if let Err(e) = outbound.try_send(message) {
        bytes.fetch_sub(size, Ordering::AcqRel);
        add(&metrics.publish_dropped, 1);
        match e {
            mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m.fail(),
        }
    }
}

/// What the publisher needs besides its queue.
#[derive(Debug)]
pub(super) struct Publishing {
    pub(super) metrics: Arc<ClusterMetrics>,
    /// Bytes waiting in the queue, released as messages are taken.
    pub(super) bytes: Arc<AtomicUsize>,
    /// The deadline of every Redis call.
    pub(super) deadline: Duration,
}

/// Drains the outbound queue into Redis, a pipeline of commands at a time. While Redis is
/// unreachable messages are dropped (and counted), never queued without bound.
pub(super) async fn publisher(
    client: redis::Client,
    publishing: Publishing,
    mut rx: mpsc::Receiver<Outbound>,
    cancel: CancellationToken,
) {
    let Publishing {
        metrics,
        bytes,
        deadline,
    } = publishing;
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut failed_at: Option<Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut thens: Vec<Option<Then>> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        thens.clear();
        tokio::select! {
            _ = cancel.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
        }
        let taken: usize = batch.iter().map(Outbound::size).sum();
        bytes.fetch_sub(taken, Ordering::AcqRel);
        if conn.is_none() && failed_at.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
            add(&metrics.publish_dropped, batch.len() as u64);
            batch.drain(..).for_each(Outbound::fail);
            continue;
        }
        // The commands move into the pipeline (no copy of their payloads); their replies'
        // takers stay beside it, in the same order.
        let sent = batch.len();
        let mut pipe = redis::pipe();
        for m in batch.drain(..) {
            pipe.add_command(m.command);
            thens.push(m.then);
        }
        // A connection found broken (Redis restarted) is replaced once, at once, so the
        // first messages after an outage are not lost.
        let mut result: Result<Vec<redis::Value>, Option<String>> = Err(None);
        for _ in 0..2 {
            if conn.is_none() {
                match tokio::time::timeout(deadline, super::connect(&client, deadline)).await {
                    Ok(Ok(c)) => conn = Some(c),
                    Ok(Err(e)) => {
                        result = Err(Some(e.to_string()));
                        break;
                    }
                    Err(_) => {
                        result = Err(Some("connecting timed out".to_owned()));
                        break;
                    }
                }
            }
            let c = conn.as_mut().expect("connected above");
            match tokio::time::timeout(deadline, pipe.query_async::<Vec<redis::Value>>(c)).await {
                Ok(Ok(replies)) => {
                    result = Ok(replies);
                    break;
                }
                Ok(Err(e)) => {
                    conn = None;
                    result = Err(Some(e.to_string()));
                }
                Err(_) => {
                    conn = None;
                    result = Err(Some("PUBLISH timed out".to_owned()));
                }
            }
        }
        match result {
            Ok(replies) => {
                if failed_at.take().is_some() {
                    tracing::info!("Publishing to Redis again");
                }
                add(&metrics.published, sent as u64);
                for (then, reply) in thens.drain(..).zip(replies) {
                    if let Some(then) = then {
                        then(redis::from_redis_value::<String>(reply).ok());
                    }
                }
            }
            Err(e) => {
                if failed_at.is_none()
                    && let Some(e) = e
                {
                    tracing::warn!(
                        "Cannot publish to Redis ({e}); messages for other nodes are dropped"
                    );
                }
                failed_at = Some(Instant::now());
                add(&metrics.publish_dropped, sent as u64);
                thens.drain(..).flatten().for_each(|then| then(None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_waits_for_the_publisher_is_bounded_in_bytes() {
        let (tx, mut rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let bytes = AtomicUsize::new(0);
        let metrics = ClusterMetrics::default();
        let message = |n: usize| Outbound::publish("c".to_owned(), vec![0; n]);
        let big = OUTBOUND_BYTES / 4;
        for _ in 0..3 {
            enqueue(&tx, &bytes, &metrics, message(big));
        }
        enqueue(&tx, &bytes, &metrics, message(big));
        assert_eq!(
            metrics.publish_dropped.load(Ordering::Relaxed),
            1,
            "the 4th does not fit"
        );
        assert_eq!(bytes.load(Ordering::Relaxed), 3 * (big + 1));
        // Taking a message frees its bytes (the publisher does this).
        let taken = rx.try_recv().unwrap();
        bytes.fetch_sub(taken.size(), Ordering::AcqRel);
        enqueue(&tx, &bytes, &metrics, message(big));
        assert_eq!(metrics.publish_dropped.load(Ordering::Relaxed), 1);
    }
}
