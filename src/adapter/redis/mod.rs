//! The Redis adapters: this node as a first-class member of a cluster of socket.io servers
//! using the classic `@socket.io/redis-adapter` 8.x (and of `@socket.io/redis-emitter`
//! publishers) — or, with a [`StreamConfig`], `@socket.io/redis-streams-adapter` 0.3
//! ([`streams`]), whose shared log lets connection state recovery work across nodes.
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
//!
//! By job: this file holds the link and the adapter; `publisher` the outbound queue and its
//! task; `subscriber` the inbound connection; `remote` what other nodes ask of this one;
//! `requests` what this node asks of the others; `occupancy` rooms occupied cluster-wide;
//! `roster` who is in each room on the other nodes; `history` what rooms keep; `codec` the
//! wire format; `streams` what differs on the streams wire.

pub mod codec;
mod history;
mod occupancy;
mod publisher;
mod remote;
mod requests;
mod roster;
pub mod streams;
mod subscriber;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::Rng;
use serde_json::{Value as Json, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    Adapter, BroadcastOptions, Delivery, Keep, KeptMessage, LocalAdapter, RecoveryWindow,
    RoomObserver, SavedSocket,
};
use crate::engineio::{CloseReason, Sid};
use crate::socketio::{Encoded, Socket};
use codec::request;
use publisher::{Outbound, Publishing, enqueue, publisher};
pub use streams::StreamConfig;
use subscriber::subscriber;

/// How many messages may wait for the publisher before new ones are dropped.
const OUTBOUND_CAPACITY: usize = 65_536;
/// Requests from other nodes handled at once (each on the blocking pool); more are dropped.
const CONCURRENT_REQUESTS: usize = 4;

/// What the cluster needs to know: where Redis is and how channels are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis URL.
    pub url: String,
    /// The channel prefix (`key` of `@socket.io/redis-adapter`).
    pub key: String,
    /// How long a client has to answer a broadcast-with-ack from another node.
    pub request_timeout: Duration,
    /// How often this node tells the others which sockets are in its rooms; one silent for
    /// three heartbeats is dead (see [`roster`]).
    pub heartbeat: Duration,
    /// The stream of `@socket.io/redis-streams-adapter`; `None`: the classic adapter.
    pub stream: Option<StreamConfig>,
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
    /// Packets of this node's own broadcasts queued once Redis gave their offset
    /// (`redis-streams` with recovery on).
    pub offset_deliveries: AtomicU64,
    /// Other switchboard nodes heard from, whose rooms this node knows (a gauge).
    pub remote_nodes: AtomicU64,
    /// Memberships of other nodes' sockets in rooms, as this node last heard (a gauge).
    pub remote_members: AtomicU64,
    /// Other nodes' joins not kept: the bound on memberships held was reached.
    pub remote_members_refused: AtomicU64,
    /// Messages other nodes kept for rooms, added to this node's history as heard.
    pub history_heard: AtomicU64,
    /// Kept messages read from Redis (at start and after an outage).
    pub history_read: AtomicU64,
    /// Requests of other nodes answered or applied.
    pub requests: AtomicU64,
    /// Requests of other nodes dropped because enough were being handled already.
    pub requests_dropped: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
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
    pending: Mutex<HashMap<String, mpsc::Sender<Json>>>,
    /// Connection state recovery (`redis-streams` only: the classic adapter's is each
    /// namespace's own, in its local adapter). Read by every broadcast: no lock.
    recovery: arc_swap::ArcSwapOption<RecoveryWindow>,
    /// Memberships: this node's as told, the others' as heard.
    roster: roster::Roster,
    /// Kept messages heard while the histories are read.
    history_reading: history::Reading,
}

impl Shared {
    fn publish(&self, channel: String, payload: Vec<u8>) {
        self.send(Outbound::publish(channel, payload));
    }

    fn send(&self, command: Outbound) {
        enqueue(&self.outbound, &self.outbound_bytes, &self.metrics, command);
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
                connect(&self.client, self.config.request_timeout),
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

/// A connection for commands whose replies may take up to `deadline` (the caller's own
/// deadline applies too): the client's default of 500 ms would fail, under load, commands
/// a busy Redis answers in time — a lost publish, a lost read of the others' rooms.
pub(super) async fn connect(
    client: &redis::Client,
    deadline: Duration,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(deadline))
        .set_connection_timeout(Some(deadline));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Attempts of a read made at (re)subscription before it is given up until the next one.
const READ_ATTEMPTS: u32 = 5;

/// Run `read` until it succeeds, [`READ_ATTEMPTS`] times at most with a growing pause (0.1,
/// 0.2, 0.4, 0.8 s): a read lost to a busy Redis would leave this node without what the
/// others told before it came.
pub(super) async fn with_retries<T, F, Fut>(what: &str, mut read: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, &'static str>>,
{
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=READ_ATTEMPTS {
        match read().await {
            Ok(value) => return Some(value),
            Err(e) if attempt == READ_ATTEMPTS => {
                tracing::warn!("{what} failed: {e}; given up until the next subscription");
            }
            Err(e) => tracing::debug!("{what} failed: {e}; trying again"),
        }
        if attempt < READ_ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    None
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
        // `rediss://`: rustls with the system's CA roots (`SSL_CERT_FILE` names others).
        let _ = rustls::crypto::ring::default_provider().install_default();
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
            pending: Mutex::new(HashMap::new()),
            recovery: arc_swap::ArcSwapOption::empty(),
            roster: roster::Roster::default(),
            history_reading: history::Reading::default(),
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
            client.clone(),
            Arc::downgrade(&shared),
            subscribe_rx,
            cancel.clone(),
        ));
        runtime.spawn(roster::changes(Arc::downgrade(&shared), cancel.clone()));
        runtime.spawn(roster::heartbeats(Arc::downgrade(&shared), cancel.clone()));
        if shared.config.stream.is_some() {
            runtime.spawn(streams::reader(
                client,
                Arc::downgrade(&shared),
                cancel.clone(),
            ));
        }
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

impl RedisAdapter {
    /// Deliver here (keeping it, with `keep`) and tell the other nodes.
    fn fan_out(&self, packet: &Encoded, opts: &BroadcastOptions, keep: Option<&Keep>) -> Delivery {
        if let Some(stream) = &self.shared.config.stream {
            return self.stream_broadcast(stream, packet, opts, keep);
        }
        let delivery = match keep {
            Some(keep) => self.local.broadcast_kept(packet, opts, keep),
            None => self.local.broadcast(packet, opts),
        };
        if let Some(payload) = codec::encode_kept_broadcast(&self.shared.uid, packet, opts, keep) {
            let mut channel = self.shared.broadcast_channel(&self.nsp);
            if let [room] = &opts.rooms[..] {
                channel.push_str(room);
                channel.push('#');
            }
            self.shared.publish(channel, payload);
        }
        delivery
    }
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

    fn room_size(&self, room: &str) -> usize {
        self.local.room_size(room)
    }

    fn presence_size(&self, room: &str) -> usize {
        self.local.room_size(room) + self.shared.roster.size(&self.nsp, room)
    }

    fn presence_members(&self, room: &str, max: usize) -> Vec<String> {
        let mut ids = self.local.presence_members(room, max);
        ids.extend(self.shared.roster.members(&self.nsp, room, max));
        ids.sort_unstable();
        ids.truncate(max);
        ids
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        self.local.sockets(opts)
    }

    fn broadcast(&self, packet: &Encoded, opts: &BroadcastOptions) -> Delivery {
        self.fan_out(packet, opts, None)
    }

    fn broadcast_kept(&self, packet: &Encoded, opts: &BroadcastOptions, keep: &Keep) -> Delivery {
        self.push_kept(&KeptMessage {
            keep: keep.clone(),
            age: Duration::ZERO,
            packet: packet.clone(),
        });
        self.fan_out(packet, opts, Some(keep))
    }

    fn all_rooms(&self) -> Vec<String> {
        self.local.all_rooms()
    }

    fn is_in(&self, sid: Sid, room: &str) -> bool {
        self.local.is_in(sid, room)
    }

    // With the classic adapter recovery is this node's: a client back on the same node gets
    // what it missed there, broadcasts from other nodes included; on another node it starts
    // afresh. On the streams wire it is the cluster's (see `streams`).
    fn set_recovery(&self, window: Option<RecoveryWindow>) {
        if self.shared.config.stream.is_some() {
            self.shared.recovery.store(window.map(Arc::new));
        } else {
            self.local.set_recovery(window);
        }
    }

    fn save_socket(&self, saved: SavedSocket) {
        if self.shared.config.stream.is_some() {
            self.save_to_redis(&saved);
        } else {
            self.local.save_socket(saved);
        }
    }

    fn take_socket<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
    ) -> super::Remote<'a, Option<SavedSocket>> {
        if self.shared.config.stream.is_some() {
            return Box::pin(self.take_from_redis(pid, offset));
        }
        self.local.take_socket(pid, offset)
    }

    fn recover(&self, socket: Arc<Socket>, rooms: &[String], offset: &str, missed: &[Encoded]) {
        self.local.recover(socket, rooms, offset, missed);
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

#[cfg(test)]
mod retry_tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test(start_paused = true)]
    async fn a_read_is_tried_again_until_it_succeeds_and_given_up_after_five() {
        let calls = AtomicU32::new(0);
        let third = with_retries("a read", || async {
            let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
            if n < 3 { Err("busy") } else { Ok(n) }
        })
        .await;
        assert_eq!(third, Some(3));

        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let never: Option<()> = with_retries("a read", || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err("busy")
        })
        .await;
        assert_eq!(never, None);
        assert_eq!(calls.load(Ordering::Relaxed), READ_ATTEMPTS);
        // Paused time: the pauses between attempts, 0.1 + 0.2 + 0.4 + 0.8 s.
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
    }
}
