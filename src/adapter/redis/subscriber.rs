//! The subscriber: one connection subscribed to every namespace's channels, reconnecting
//! with backoff; other nodes' broadcasts are delivered here, their requests handed to
//! [`remote`](super::remote).

use super::remote::on_request;
use super::*;
use super::{history, roster};

/// Keeps a subscription per namespace, reconnecting with backoff, and applies what arrives.
pub(super) async fn subscriber(
    client: redis::Client,
    shared: std::sync::Weak<Shared>,
    mut added: mpsc::UnboundedReceiver<String>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut down = false;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let deadline = s.config.request_timeout;
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(deadline, client.get_async_pubsub()) => {
                r.unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "connecting timed out"))))
            }
        };
        let pubsub = match attempt {
            Ok(p) => p,
            Err(e) => {
                if !down {
                    down = true;
                    add(&s.metrics.outages, 1);
                    tracing::warn!(
                        "Redis unreachable ({e}); local delivery continues, reconnecting"
                    );
                }
                drop(s);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        // Namespaces added while down are in the map already.
        while added.try_recv().is_ok() {}
        let names: Vec<String> = s
            .namespaces
            .read()
            .expect("namespaces lock")
            .keys()
            .cloned()
            .collect();
        let mut ok =
            match tokio::time::timeout(deadline, sink.subscribe(s.roster_subscription())).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::warn!("Subscribing to Redis failed: {e}");
                    false
                }
                Err(_) => {
                    tracing::warn!("Subscribing to Redis timed out");
                    false
                }
            };
        for nsp in names.iter().filter(|_| ok) {
            if let Err(e) = subscribe(&mut sink, &s, nsp).await {
                tracing::warn!("Subscribing to Redis failed: {e}");
                ok = false;
                break;
            }
        }
        if ok {
            backoff = Duration::from_millis(100);
            s.metrics.connected.store(1, Ordering::Relaxed);
            if down {
                tracing::info!("Redis connection restored; subscriptions renewed");
                // What this node told meanwhile may be lost: its rooms are written afresh.
                s.roster.outage();
            }
            down = false;
            // What the others told before (or while) this node was away.
            tokio::spawn(roster::read_all(s.clone()));
            for nsp in names {
                tokio::spawn(history::read_all(s.clone(), nsp));
            }
            drop(s);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    msg = stream.next() => {
                        let Some(msg) = msg else { break };
                        let Some(s) = shared.upgrade() else { return };
                        handle(&s, &msg);
                    }
                    nsp = added.recv() => {
                        let (Some(nsp), Some(s)) = (nsp, shared.upgrade()) else { return };
                        if let Err(e) = subscribe(&mut sink, &s, &nsp).await {
                            tracing::warn!("Subscribing to Redis failed: {e}");
                            break;
                        }
                        tokio::spawn(history::read_all(s.clone(), nsp));
                    }
                }
            }
        }
        let Some(s) = shared.upgrade() else { return };
        s.metrics.connected.store(0, Ordering::Relaxed);
        if !down {
            down = true;
            add(&s.metrics.outages, 1);
            tracing::warn!("Redis connection lost; local delivery continues, reconnecting");
        }
    }
}

async fn subscribe(
    sink: &mut redis::aio::PubSubSink,
    s: &Shared,
    nsp: &str,
) -> redis::RedisResult<()> {
    let deadline = s.config.request_timeout;
    let timed_out = || redis::RedisError::from((redis::ErrorKind::Io, "subscribing timed out"));
    if s.config.stream.is_some() {
        let channels = [s.broadcast_channel(nsp), s.private_channel(nsp, &s.uid)];
        return tokio::time::timeout(deadline, sink.subscribe(&channels[..]))
            .await
            .map_err(|_| timed_out())?;
    }
    tokio::time::timeout(
        deadline,
        sink.psubscribe(format!("{}*", s.broadcast_channel(nsp))),
    )
    .await
    .map_err(|_| timed_out())??;
    tokio::time::timeout(deadline, sink.subscribe(s.request_channel(nsp)))
        .await
        .map_err(|_| timed_out())??;
    tokio::time::timeout(deadline, sink.subscribe(s.response_channel(nsp)))
        .await
        .map_err(|_| timed_out())?
}

/// One message from Redis. Broadcasts are applied here; requests go to the blocking pool.
fn handle(s: &Arc<Shared>, msg: &redis::Msg) {
    let payload = msg.get_payload_bytes();
    if !msg.from_pattern() && s.is_roster_channel(msg.get_channel_name()) {
        return roster::on_message(s, payload);
    }
    if s.config.stream.is_some() {
        match streams::codec::decode_published(payload) {
            Some(message) => streams::on_message(s, message, None),
            None => tracing::debug!("Undecodable message from Redis ignored"),
        }
        return;
    }
    if msg.from_pattern() {
        on_broadcast(s, payload);
    } else if msg
        .get_channel_name()
        .starts_with(&format!("{}-response#", s.config.key))
    {
        requests::on_response(s, payload);
    } else if let Some(nsp) = msg
        .get_channel_name()
        .strip_prefix(&format!("{}-request#", s.config.key))
        .and_then(|rest| rest.strip_suffix('#'))
    {
        let payload = payload.to_vec();
        on_blocking_pool(s, nsp, move |s, nsp| on_request(s, nsp, &payload));
    }
}

/// Serve a request of another node on the blocking pool — or drop it (counted) when enough
/// are being served already.
pub(super) fn on_blocking_pool(
    s: &Arc<Shared>,
    nsp: &str,
    serve: impl FnOnce(&Arc<Shared>, &str) + Send + 'static,
) {
    let Ok(permit) = s.requests.clone().try_acquire_owned() else {
        add(&s.metrics.requests_dropped, 1);
        tracing::debug!(
            ns = nsp,
            "Request from another node dropped: enough are being handled"
        );
        return;
    };
    let (s, nsp) = (s.clone(), nsp.to_owned());
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _entered = runtime.enter();
        serve(&s, &nsp);
    });
}

fn on_broadcast(s: &Shared, payload: &[u8]) {
    let Some(b) = codec::decode_broadcast(payload) else {
        tracing::debug!("Undecodable broadcast from Redis ignored");
        return;
    };
    if b.uid == s.uid || b.local {
        return;
    }
    let Some(local) = s.local(&b.nsp) else {
        return;
    };
    add(&s.metrics.received, 1);
    let delivery = match b.keep {
        Some(keep) => history::on_kept(s, &local, &b.packet, &b.opts, keep, &b.nsp),
        None => local.broadcast(&b.packet, &b.opts),
    };
    add(&s.metrics.remote_deliveries, delivery.queued as u64);
}
