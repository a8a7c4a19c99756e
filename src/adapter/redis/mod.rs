//! The Redis adapter: this node as a first-class member of a cluster of socket.io servers
//! using the classic `@socket.io/redis-adapter` 8.x (and of `@socket.io/redis-emitter`
//! publishers).
//!
//! Delivery to this node's sockets stays in the wrapped [`LocalAdapter`] and never waits on
//! Redis: a broadcast is queued locally, encoded for the wire and pushed into a bounded
//! channel that a background task PUBLISHes (pipelined). A subscriber task applies the other
//! nodes' broadcasts and answers their requests. When Redis goes away, local delivery carries
//! on, what would have been published is dropped and counted, and both tasks reconnect (and
//! resubscribe) on their own.
//!
//! Bounds: what waits for the publisher is bounded in bytes; every Redis call has a
//! deadline (`request_timeout`); requests that walk this node's sockets (fetchSockets,
//! socketsJoin, …) run on the blocking pool, a few at a time, never on the subscriber's
//! task; the acks of a remote broadcast are awaited by one task, for at most this node's
//! own `request_timeout`.

pub mod codec;
mod occupancy;
mod requests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::Rng;
use serde_json::{Value as Json, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    Adapter, BroadcastOptions, Delivery, LocalAdapter, RecoveryWindow, RoomObserver, SavedSocket,
};
use crate::engineio::{CloseReason, Sid};
use crate::socketio::{Encoded, Socket};
use codec::request;

/// How many messages may wait for the publisher before new ones are dropped.
const OUTBOUND_CAPACITY: usize = 65_536;
/// How many bytes of messages may wait for the publisher before new ones are dropped.
const OUTBOUND_BYTES: usize = 16 * 1024 * 1024;
/// Requests from other nodes handled at once (each on the blocking pool); more are dropped.
const CONCURRENT_REQUESTS: usize = 4;
/// Most PUBLISHes sent in one pipeline.
const BATCH: usize = 512;

/// What the cluster needs to know: where Redis is and how channels are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis URL.
    pub url: String,
    /// The channel prefix (`key` of `@socket.io/redis-adapter`).
    pub key: String,
    /// How long a client has to answer a broadcast-with-ack from another node.
    pub request_timeout: Duration,
}

/// Counters of the cluster link, read by `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    /// 1 while subscribed to Redis, else 0.
    pub connected: AtomicU64,
    /// Times the Redis link was lost (or could not be made at start).
    pub outages: AtomicU64,
    /// Messages published.
    pub published: AtomicU64,
    /// Messages not published: queue full, or Redis unreachable.
    pub publish_dropped: AtomicU64,
    /// Broadcasts received from other nodes and emitters.
    pub received: AtomicU64,
    /// Packets queued for this node's sockets by those broadcasts.
    pub remote_deliveries: AtomicU64,
    /// Requests of other nodes answered or applied.
    pub requests: AtomicU64,
    /// Requests of other nodes dropped because enough were being handled already.
    pub requests_dropped: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// One message for Redis.
#[derive(Debug)]
struct Outbound {
    channel: String,
    payload: Vec<u8>,
}

impl Outbound {
    fn size(&self) -> usize {
        self.channel.len() + self.payload.len()
    }
}

/// Queue `message` for the publisher, or drop it (counted) when the queue is full in
/// messages or bytes.
fn enqueue(
    outbound: &mpsc::Sender<Outbound>,
    bytes: &AtomicUsize,
    metrics: &ClusterMetrics,
    message: Outbound,
) {
    let size = message.size();
    if bytes.fetch_add(size, Ordering::AcqRel) + size > OUTBOUND_BYTES {
        bytes.fetch_sub(size, Ordering::AcqRel);
        add(&metrics.publish_dropped, 1);
        return;
    }
    if outbound.try_send(message).is_err() {
        bytes.fetch_sub(size, Ordering::AcqRel);
        add(&metrics.publish_dropped, 1);
    }
}

#[derive(Debug)]
struct Shared {
    uid: String,
    config: ClusterConfig,
    metrics: Arc<ClusterMetrics>,
    outbound: mpsc::Sender<Outbound>,
    /// Bytes waiting in `outbound`.
    outbound_bytes: Arc<AtomicUsize>,
    /// Permits to handle a request of another node.
    requests: Arc<Semaphore>,
    /// The local rooms of each namespace this node serves.
    namespaces: RwLock<HashMap<String, Arc<LocalAdapter>>>,
    /// Namespaces to subscribe to once added.
    subscribe: mpsc::UnboundedSender<String>,
    /// For commands other than PUBLISH (`PUBSUB NUMSUB`).
    client: redis::Client,
    command: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// This node's requests waiting for answers, by request id.
    pending: std::sync::Mutex<HashMap<String, mpsc::Sender<Json>>>,
}

impl Shared {
    fn publish(&self, channel: String, payload: Vec<u8>) {
        enqueue(
            &self.outbound,
            &self.outbound_bytes,
            &self.metrics,
            Outbound { channel, payload },
        );
    }

    fn broadcast_channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.config.key)
    }

    fn request_channel(&self, nsp: &str) -> String {
        format!("{}-request#{nsp}#", self.config.key)
    }

    fn response_channel(&self, nsp: &str) -> String {
        format!("{}-response#{nsp}#", self.config.key)
    }

    /// A connection for commands, opened (or opened again) on demand.
    async fn command(&self) -> Option<redis::aio::MultiplexedConnection> {
        let mut slot = self.command.lock().await;
        if slot.is_none() {
            let opened = tokio::time::timeout(
                requests::CONNECT_TIMEOUT,
                self.client.get_multiplexed_async_connection(),
            )
            .await;
            *slot = opened.ok()?.ok();
        }
        slot.clone()
    }

    /// The command connection failed: the next command opens a new one.
    async fn command_failed(&self) {
        *self.command.lock().await = None;
    }

    fn local(&self, nsp: &str) -> Option<Arc<LocalAdapter>> {
        self.namespaces
            .read()
            .expect("namespaces lock")
            .get(nsp)
            .cloned()
    }
}

/// The link of this node to a Redis-backed cluster: one per application, shared by the
/// adapters of every namespace. Dropping it stops its tasks.
#[derive(Debug)]
pub struct RedisCluster {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl RedisCluster {
    /// Start the link: the publisher and subscriber tasks run on the current tokio runtime
    /// and connect (and reconnect) on their own. Errs on an invalid URL or outside a runtime.
    pub fn start(config: ClusterConfig, metrics: Arc<ClusterMetrics>) -> Result<Self, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("invalid Redis URL: {e}"))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the cluster link needs a tokio runtime".to_owned())?;
        let (outbound, outbound_rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let (subscribe, subscribe_rx) = mpsc::unbounded_channel();
        let outbound_bytes = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            uid: uid(),
            config,
            metrics,
            outbound,
            outbound_bytes: outbound_bytes.clone(),
            requests: Arc::new(Semaphore::new(CONCURRENT_REQUESTS)),
            namespaces: RwLock::new(HashMap::new()),
            subscribe,
            client: client.clone(),
            command: tokio::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        runtime.spawn(publisher(
            client.clone(),
            Publishing {
                metrics: shared.metrics.clone(),
                bytes: outbound_bytes,
                deadline: shared.config.request_timeout,
            },
            outbound_rx,
            cancel.clone(),
        ));
        runtime.spawn(subscriber(
            client,
            Arc::downgrade(&shared),
            subscribe_rx,
            cancel.clone(),
        ));
        tracing::info!(uid = %shared.uid, key = %shared.config.key, "Cluster link to Redis started");
        Ok(RedisCluster { shared, cancel })
    }

    /// This node's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// The counters of the link.
    pub fn metrics(&self) -> &Arc<ClusterMetrics> {
        &self.shared.metrics
    }

    /// The adapter of namespace `nsp`, subscribed to its channels; `observer` is told of
    /// its room changes.
    pub fn adapter(&self, nsp: &str, observer: Arc<dyn RoomObserver>) -> Arc<dyn Adapter> {
        let occupancy = occupancy::Occupancy::start(
            nsp,
            observer,
            Arc::downgrade(&self.shared),
            self.cancel.clone(),
        );
        let local = Arc::new(LocalAdapter::observed(nsp, occupancy));
        self.shared
            .namespaces
            .write()
            .expect("namespaces lock")
            .insert(nsp.to_owned(), local.clone());
        let _ = self.shared.subscribe.send(nsp.to_owned());
        Arc::new(RedisAdapter {
            nsp: nsp.to_owned(),
            local,
            shared: self.shared.clone(),
        })
    }
}

/// 6 random alphanumerics, as `uid2(6)`.
fn uid() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The rooms of one namespace across the cluster: local delivery plus a publish.
#[derive(Debug)]
pub struct RedisAdapter {
    nsp: String,
    local: Arc<LocalAdapter>,
    shared: Arc<Shared>,
}

impl Adapter for RedisAdapter {
    fn add(&self, socket: Arc<Socket>) {
        self.local.add(socket);
    }

    fn remove(&self, sid: Sid) {
        self.local.remove(sid);
    }

    fn join(&self, sid: Sid, room: &str) {
        self.local.join(sid, room);
    }

    fn leave(&self, sid: Sid, room: &str) {
        self.local.leave(sid, room);
    }

    fn socket_count(&self) -> usize {
        self.local.socket_count()
    }

    fn rooms_of(&self, sid: Sid) -> Vec<String> {
        self.local.rooms_of(sid)
    }

    fn room_count(&self, sid: Sid) -> usize {
        self.local.room_count(sid)
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        self.local.sockets(opts)
    }

    fn broadcast(&self, packet: &Encoded, opts: &BroadcastOptions) -> Delivery {
        let delivery = self.local.broadcast(packet, opts);
        if let Some(payload) = codec::encode_broadcast(&self.shared.uid, packet, opts) {
            let mut channel = self.shared.broadcast_channel(&self.nsp);
            if let [room] = &opts.rooms[..] {
                channel.push_str(room);
                channel.push('#');
            }
            self.shared.publish(channel, payload);
        }
        delivery
    }

    fn all_rooms(&self) -> Vec<String> {
        self.local.all_rooms()
    }

    fn is_in(&self, sid: Sid, room: &str) -> bool {
        self.local.is_in(sid, room)
    }

    // Recovery is this node's: a client back on the same node gets what it missed there,
    // broadcasts from other nodes included; on another node it starts afresh.
    fn set_recovery(&self, window: Option<RecoveryWindow>) {
        self.local.set_recovery(window);
    }

    fn save_socket(&self, saved: SavedSocket) {
        self.local.save_socket(saved);
    }

    fn take_socket(&self, pid: &str, offset: &str) -> Option<SavedSocket> {
        self.local.take_socket(pid, offset)
    }

    fn recover(&self, socket: Arc<Socket>, rooms: &[String], offset: &str) {
        self.local.recover(socket, rooms, offset);
    }

    fn remote_join(&self, opts: &BroadcastOptions, rooms: &[String]) {
        self.remote_rooms_change(codec::request::REMOTE_JOIN, opts, rooms);
    }

    fn remote_leave(&self, opts: &BroadcastOptions, rooms: &[String]) {
        self.remote_rooms_change(codec::request::REMOTE_LEAVE, opts, rooms);
    }

    fn remote_disconnect(&self, opts: &BroadcastOptions, close: bool) {
        self.remote_close(opts, close);
    }

    fn remote_sockets<'a>(&'a self, opts: &'a BroadcastOptions) -> super::Remote<'a, Vec<Json>> {
        self.fetch(opts)
    }

    fn remote_rooms(&self) -> super::Remote<'_, Vec<String>> {
        self.rooms()
    }
}

/// What the publisher needs besides its queue.
#[derive(Debug)]
struct Publishing {
    metrics: Arc<ClusterMetrics>,
    /// Bytes waiting in the queue, released as messages are taken.
    bytes: Arc<AtomicUsize>,
    /// The deadline of every Redis call.
    deadline: Duration,
}

/// Drains the outbound queue into Redis, a pipeline of PUBLISHes at a time. While Redis is
/// unreachable messages are dropped (and counted), never queued without bound.
async fn publisher(
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
    loop {
        batch.clear();
        tokio::select! {
            _ = cancel.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
        }
        let taken: usize = batch.iter().map(Outbound::size).sum();
        bytes.fetch_sub(taken, Ordering::AcqRel);
        if conn.is_none() && failed_at.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
            add(&metrics.publish_dropped, batch.len() as u64);
            continue;
        }
        let mut pipe = redis::pipe();
        for m in &batch {
            pipe.cmd("PUBLISH")
                .arg(&m.channel)
                .arg(&m.payload[..])
                .ignore();
        }
        // A connection found broken (Redis restarted) is replaced once, at once, so the
        // first messages after an outage are not lost.
        let mut result: Result<(), Option<String>> = Err(None);
        for _ in 0..2 {
            if conn.is_none() {
                match tokio::time::timeout(deadline, client.get_multiplexed_async_connection())
                    .await
                {
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
            match tokio::time::timeout(deadline, pipe.query_async::<()>(c)).await {
                Ok(Ok(())) => {
                    result = Ok(());
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
            Ok(()) => {
                if failed_at.take().is_some() {
                    tracing::info!("Publishing to Redis again");
                }
                add(&metrics.published, batch.len() as u64);
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
                add(&metrics.publish_dropped, batch.len() as u64);
            }
        }
    }
}

/// Keeps a subscription per namespace, reconnecting with backoff, and applies what arrives.
async fn subscriber(
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
        let mut ok = true;
        for nsp in &names {
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
            }
            down = false;
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
        let Ok(permit) = s.requests.clone().try_acquire_owned() else {
            add(&s.metrics.requests_dropped, 1);
            tracing::debug!(
                ns = nsp,
                "Request from another node dropped: enough are being handled"
            );
            return;
        };
        let (s, nsp, payload) = (s.clone(), nsp.to_owned(), payload.to_vec());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _entered = runtime.enter();
            on_request(&s, &nsp, &payload);
        });
    }
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
    let delivery = local.broadcast(&b.packet, &b.opts);
    add(&s.metrics.remote_deliveries, delivery.queued as u64);
}

fn on_request(s: &Shared, nsp: &str, payload: &[u8]) {
    let Some((req, attachments)) = codec::decode_request(payload) else {
        tracing::debug!("Undecodable request from Redis ignored");
        return;
    };
    if req.get("uid").and_then(Json::as_str) == Some(s.uid.as_str()) {
        return;
    }
    let Some(local) = s.local(nsp) else { return };
    let request_id = req.get("requestId").cloned();
    let respond = |body: Json| {
        s.publish(
            s.response_channel(nsp),
            serde_json::to_vec(&body).expect("JSON values serialize"),
        );
    };
    let kind = req.get("type").and_then(Json::as_u64).unwrap_or(0);
    add(&s.metrics.requests, 1);
    match kind {
        request::ALL_ROOMS => {
            let Some(id) = request_id else { return };
            respond(json!({ "requestId": id, "rooms": local.all_rooms() }));
        }
        request::REMOTE_JOIN | request::REMOTE_LEAVE => {
            let join = kind == request::REMOTE_JOIN;
            if let (Some(id), Some(sid)) = (&request_id, req.get("sid").and_then(Json::as_str)) {
                // The legacy per-socket form: answer only if the socket is here.
                let Some(room) = req.get("room").and_then(Json::as_str) else {
                    return;
                };
                let Some(socket) = local
                    .sockets(&BroadcastOptions::all())
                    .into_iter()
                    .find(|so| so.id().as_str() == sid)
                else {
                    return;
                };
                if join {
                    local.join(socket.id(), room);
                } else {
                    local.leave(socket.id(), room);
                }
                respond(json!({ "requestId": id }));
                return;
            }
            let opts = codec::json_opts(req.get("opts"));
            let rooms: Vec<String> =
                codec::json_opts(Some(&json!({ "rooms": req.get("rooms") }))).rooms;
            for socket in local.sockets(&opts) {
                for room in &rooms {
                    if join {
                        local.join(socket.id(), room);
                    } else {
                        local.leave(socket.id(), room);
                    }
                }
            }
        }
        request::REMOTE_DISCONNECT => {
            let opts = codec::json_opts(req.get("opts"));
            let close = req.get("close").and_then(Json::as_bool).unwrap_or(false);
            for socket in local.sockets(&opts) {
                if close {
                    // The whole connection goes; the Socket.IO layer reports it.
                    socket.session().close(CloseReason::ForcedClose);
                } else if socket.disconnect() {
                    local.remove(socket.id());
                }
            }
        }
        request::REMOTE_FETCH => {
            let Some(id) = request_id else { return };
            let opts = codec::json_opts(req.get("opts"));
            let sockets: Vec<Json> = local
                .sockets(&opts)
                .iter()
                .map(|socket| {
                    json!({
                        "id": socket.id().to_string(),
                        "handshake": node_handshake(socket),
                        "rooms": local.rooms_of(socket.id()),
                        "data": socket.data(),
                    })
                })
                .collect();
            respond(json!({ "requestId": id, "sockets": sockets }));
        }
        request::SERVER_SIDE_EMIT => {
            // switchboard runs no server-side handlers: an acked emit gets `null` from this
            // node, so the requester does not wait for its timeout.
            tracing::debug!(ns = nsp, data = %req.get("data").unwrap_or(&Json::Null), "serverSideEmit received");
            if let Some(id) = request_id {
                respond(
                    json!({ "type": request::SERVER_SIDE_EMIT, "requestId": id, "data": null }),
                );
            }
        }
        request::BROADCAST => {
            let Some(id) = request_id else { return };
            broadcast_with_ack(s, nsp, &local, &req, &id, attachments);
        }
        _ => {}
    }
}

/// A broadcast whose every recipient acks: the client count first, then each ack.
fn broadcast_with_ack(
    s: &Shared,
    nsp: &str,
    local: &LocalAdapter,
    req: &Json,
    id: &Json,
    attachments: Vec<bytes::Bytes>,
) {
    let opts = codec::json_opts(req.get("opts"));
    let data = req
        .get("packet")
        .and_then(|p| p.get("data"))
        .and_then(Json::as_array);
    let (name, args) = match data.map(Vec::as_slice) {
        Some([first, rest @ ..]) => {
            let name = match first {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            let args: Vec<String> = rest.iter().map(Json::to_string).collect();
            (name, args.join(","))
        }
        _ => return,
    };
    // The requester's timeout, but never longer than this node's own.
    let timeout = req
        .get("opts")
        .and_then(|o| o.get("flags"))
        .and_then(|f| f.get("timeout"))
        .and_then(Json::as_u64)
        .map_or(s.config.request_timeout, Duration::from_millis)
        .min(s.config.request_timeout);
    let attachments: Arc<[bytes::Bytes]> = Arc::from(attachments);
    let mut waiting = FuturesUnordered::new();
    for socket in local.sockets(&opts) {
        if let Ok(wait) = socket.emit_with_ack(&name, args.as_bytes(), attachments.clone()) {
            waiting.push(wait);
        }
    }
    let channel = s.response_channel(nsp);
    s.publish(
        channel.clone(),
        serde_json::to_vec(&json!({
            "type": request::BROADCAST_CLIENT_COUNT,
            "requestId": id,
            "clientCount": waiting.len(),
        }))
        .expect("JSON values serialize"),
    );
    if waiting.is_empty() {
        return;
    }
    let (outbound, bytes, metrics, id) = (
        s.outbound.clone(),
        s.outbound_bytes.clone(),
        s.metrics.clone(),
        id.clone(),
    );
    // One task collects every answer; at the deadline the rest are given up (and their
    // ack ids forgotten by the sockets).
    tokio::spawn(async move {
        let collect = async {
            while let Some(answer) = waiting.next().await {
                let Some(answer) = answer else { continue };
                let payload = codec::encode_broadcast_ack(&id, &answer.args, &answer.attachments);
                enqueue(
                    &outbound,
                    &bytes,
                    &metrics,
                    Outbound {
                        channel: channel.clone(),
                        payload,
                    },
                );
            }
        };
        let _ = tokio::time::timeout(timeout, collect).await;
    });
}

/// The handshake as a Node peer's `RemoteSocket` expects it.
fn node_handshake(socket: &Socket) -> Json {
    let h = socket.handshake();
    let headers: serde_json::Map<String, Json> = h
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Json::from(v.to_str().ok()?))))
        .collect();
    let query: serde_json::Map<String, Json> = h
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
        .collect();
    let auth = socket
        .auth()
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .unwrap_or_else(|| json!({}));
    let issued = h
        .issued
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "headers": headers,
        "time": httpdate::fmt_http_date(h.issued),
        "address": h.remote_addr.ip().to_string(),
        "xdomain": h.headers.contains_key(http::header::ORIGIN),
        "secure": false,
        "issued": issued,
        "url": h.url,
        "query": query,
        "auth": auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_waits_for_the_publisher_is_bounded_in_bytes() {
        let (tx, mut rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let bytes = AtomicUsize::new(0);
        let metrics = ClusterMetrics::default();
        let message = |n: usize| Outbound {
            channel: "c".to_owned(),
            payload: vec![0; n],
        };
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
