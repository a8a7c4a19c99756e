//! `adapter = "redis-streams"`: the wire of `@socket.io/redis-streams-adapter` 0.3, so
//! switchboard nodes and Node nodes share one Redis stream — and connection state recovery
//! works across nodes.
//!
//! - Broadcasts, socketsJoin/Leave and disconnectSockets are XADDed to the stream
//!   (`MAXLEN ~ max_len`); every node reads it (`reader`) from where it started.
//! - Requests that want answers (fetchSockets, serverSideEmit, broadcasts with acks) are
//!   published on `{key}#{nsp}#`, answers on the requester's `{key}#{nsp}#{uid}#`.
//! - With recovery on, a broadcast's offset is its entry id: this node's own broadcast is
//!   delivered to its sockets once Redis has given the id (in order, by the publisher; at
//!   once and without offset when Redis cannot take it). A socket that leaves is saved at
//!   `sio:session:{pid}` for `max_disconnection`; any node takes it back (`session`).

pub mod codec;
mod reader;
mod session;

pub(super) use reader::reader;

use super::publisher::Outbound;
use super::*;

/// The Redis stream a `redis-streams` cluster shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Its key (the Node adapter's `streamName`).
    pub name: String,
    /// About how many entries it keeps (`XADD … MAXLEN ~`).
    pub max_len: u64,
}

/// Where saved sockets are kept (the Node adapter's `sessionKeyPrefix`).
const SESSION_PREFIX: &str = "sio:session:";

impl Shared {
    /// A node's own channel for answers: `{key}#{nsp}#{uid}#`.
    pub(super) fn private_channel(&self, nsp: &str, uid: &str) -> String {
        format!("{}#{nsp}#{uid}#", self.config.key)
    }

    /// XADD `fields` to the stream; `then` gets the entry id (or `None`).
    pub(super) fn xadd(
        &self,
        stream: &StreamConfig,
        fields: Vec<(&'static str, Vec<u8>)>,
        then: Option<publisher::Then>,
    ) {
        let mut command = redis::cmd("XADD");
        command
            .arg(&stream.name)
            .arg("MAXLEN")
            .arg("~")
            .arg(stream.max_len)
            .arg("*");
        let mut size = stream.name.len();
        for (name, value) in fields {
            size += name.len() + value.len();
            command.arg(name).arg(value);
        }
        self.send(Outbound::command(command, size, then));
    }

    /// This node's recovery window, when recovery is on.
    fn recovery(&self) -> Option<RecoveryWindow> {
        self.recovery.load().as_deref().copied()
    }
}

impl RedisAdapter {
    /// A broadcast on the stream. With recovery on, one a client may ask for again reaches
    /// this node's sockets once Redis has given its offset; the rest are delivered at once.
    pub(super) fn stream_broadcast(
        &self,
        stream: &StreamConfig,
        packet: &Encoded,
        opts: &BroadcastOptions,
        keep: Option<&Keep>,
    ) -> Delivery {
        let local_delivery = |local: &LocalAdapter, packet: &Encoded| match keep {
            Some(keep) => local.broadcast_kept(packet, opts, keep),
            None => local.broadcast(packet, opts),
        };
        let Some(fields) = codec::kept_broadcast_entry(&self.shared.uid, packet, opts, keep) else {
            return local_delivery(&self.local, packet);
        };
        if opts.volatile || self.shared.recovery().is_none() {
            let delivery = local_delivery(&self.local, packet);
            self.shared.xadd(stream, fields, None);
            return delivery;
        }
        let (local, packet, opts) = (self.local.clone(), packet.clone(), opts.clone());
        let keep = keep.cloned();
        let metrics = self.shared.metrics.clone();
        let deliver: publisher::Then = Box::new(move |id| {
            let marked = id.and_then(|id| packet.with_offset(&id));
            let packet = marked.as_ref().unwrap_or(&packet);
            let delivery = match &keep {
                Some(keep) => local.broadcast_kept(packet, &opts, keep),
                None => local.broadcast(packet, &opts),
            };
            add(&metrics.offset_deliveries, delivery.queued as u64);
        });
        self.shared.xadd(stream, fields, Some(deliver));
        Delivery::default()
    }

    /// socketsJoin / socketsLeave / disconnectSockets on the other nodes, by the stream.
    pub(super) fn stream_request(&self, stream: &StreamConfig, kind: u64, data: Json) {
        let fields = codec::entry(&self.shared.uid, &self.nsp, kind, &data);
        self.shared.xadd(stream, fields, None);
    }
}

/// A message of another node (from the stream or a channel): broadcasts are delivered here,
/// requests handed to the blocking pool in the classic shape, answers to who waits for them.
pub(super) fn on_message(s: &Arc<Shared>, message: codec::Message, offset: Option<&str>) {
    use codec::kind;
    if message.uid == s.uid {
        return;
    }
    let Some(local) = s.local(&message.nsp) else {
        return;
    };
    let request_id = message.data.get("requestId").is_some();
    let classic = match message.kind {
        kind::BROADCAST if !request_id => {
            let Some((packet, opts, only_local)) = codec::broadcast_of(&message) else {
                return;
            };
            if only_local {
                return;
            }
            add(&s.metrics.received, 1);
            let marked = match (offset, s.recovery()) {
                (Some(offset), Some(_)) if !opts.volatile => packet.with_offset(offset),
                _ => None,
            };
            let packet = marked.as_ref().unwrap_or(&packet);
            let delivery = match codec::kept_of(&message) {
                Some(keep) => super::history::on_kept(s, &local, packet, &opts, keep, &message.nsp),
                None => local.broadcast(packet, &opts),
            };
            add(&s.metrics.remote_deliveries, delivery.queued as u64);
            return;
        }
        kind::FETCH_SOCKETS_RESPONSE => {
            requests::answered(s, message.data);
            return;
        }
        kind::BROADCAST => request::BROADCAST,
        kind::SOCKETS_JOIN => request::REMOTE_JOIN,
        kind::SOCKETS_LEAVE => request::REMOTE_LEAVE,
        kind::DISCONNECT_SOCKETS => request::REMOTE_DISCONNECT,
        kind::FETCH_SOCKETS => request::REMOTE_FETCH,
        kind::SERVER_SIDE_EMIT => request::SERVER_SIDE_EMIT,
        _ => return,
    };
    let mut req = message.data;
    if !req.is_object() {
        req = json!({});
    }
    req["uid"] = json!(message.uid);
    req["type"] = json!(classic);
    let reply = remote::Reply::Streams {
        requester: message.uid,
    };
    subscriber::on_blocking_pool(s, &message.nsp, move |s, nsp| {
        remote::serve(s, nsp, &req, message.attachments, &reply);
    });
}
