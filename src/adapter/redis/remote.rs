//! What other nodes ask of this one: fetchSockets, allRooms, socketsJoin/Leave,
//! disconnectSockets, serverSideEmit and broadcasts with acks — the walks over sockets on
//! the blocking pool, a few at a time. Requests come in the classic adapter's shape (the
//! `redis-streams` wire's are mapped to it); answers go back in the requester's wire.

use bytes::Bytes;

use super::*;

/// How an answer goes back to the requesting node.
#[derive(Debug, Clone)]
pub(super) enum Reply {
    /// On the response channel, as `@socket.io/redis-adapter`.
    Classic,
    /// On the requester's own channel, as `@socket.io/redis-streams-adapter`.
    Streams {
        /// The requester's uid.
        requester: String,
    },
}

impl Reply {
    /// The answer of `kind` (a classic request type: what it answers) with `body`
    /// (`requestId` and the rest), encoded for the requester's wire.
    fn encode(&self, s: &Shared, nsp: &str, kind: u64, mut body: Json, bin: &[Bytes]) -> Outbound {
        use super::streams::codec::{kind as streams, published};
        match self {
            Reply::Classic => {
                if matches!(
                    kind,
                    request::SERVER_SIDE_EMIT
                        | request::BROADCAST_CLIENT_COUNT
                        | request::BROADCAST_ACK
                ) {
                    body["type"] = json!(kind);
                }
                if kind == request::SERVER_SIDE_EMIT {
                    body["data"] = Json::Null;
                }
                let payload = if kind == request::BROADCAST_ACK {
                    codec::to_bytes(&codec::json_to_mp(&body, bin))
                } else {
                    serde_json::to_vec(&body).expect("JSON values serialize")
                };
                Outbound::publish(s.response_channel(nsp), payload)
            }
            Reply::Streams { requester } => {
                let kind = match kind {
                    request::REMOTE_FETCH => streams::FETCH_SOCKETS_RESPONSE,
                    request::SERVER_SIDE_EMIT => {
                        body["packet"] = Json::Null;
                        streams::SERVER_SIDE_EMIT_RESPONSE
                    }
                    request::BROADCAST_CLIENT_COUNT => streams::BROADCAST_CLIENT_COUNT,
                    _ => streams::BROADCAST_ACK,
                };
                let payload = published(&s.uid, nsp, kind, codec::json_to_mp(&body, bin));
                Outbound::publish(s.private_channel(nsp, requester), payload)
            }
        }
    }
}

/// A request of the classic adapter's wire, from its request channel.
pub(super) fn on_request(s: &Arc<Shared>, nsp: &str, payload: &[u8]) {
    let Some((req, attachments)) = codec::decode_request(payload) else {
        tracing::debug!("Undecodable request from Redis ignored");
        return;
    };
    serve(s, nsp, &req, attachments, &Reply::Classic);
}

/// Serve a request `req` (the classic adapter's shape) of another node.
pub(super) fn serve(
    s: &Arc<Shared>,
    nsp: &str,
    req: &Json,
    attachments: Vec<Bytes>,
    reply: &Reply,
) {
    if req.get("uid").and_then(Json::as_str) == Some(s.uid.as_str()) {
        return;
    }
    let Some(local) = s.local(nsp) else { return };
    let request_id = req.get("requestId").cloned();
    let kind = req.get("type").and_then(Json::as_u64).unwrap_or(0);
    let respond = |body: Json| {
        s.send(reply.encode(s, nsp, kind, body, &[]));
    };
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
                respond(json!({ "requestId": id }));
            }
        }
        request::BROADCAST => {
            let Some(id) = request_id else { return };
            broadcast_with_ack(s, nsp, &local, req, &id, attachments, reply);
        }
        _ => {}
    }
}

/// A broadcast whose every recipient acks: the client count first, then each ack.
fn broadcast_with_ack(
    s: &Arc<Shared>,
    nsp: &str,
    local: &LocalAdapter,
    req: &Json,
    id: &Json,
    attachments: Vec<Bytes>,
    reply: &Reply,
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
    let attachments: Arc<[Bytes]> = Arc::from(attachments);
    let mut waiting = FuturesUnordered::new();
    for socket in local.sockets(&opts) {
        if let Ok(wait) = socket.emit_with_ack(&name, args.as_bytes(), attachments.clone()) {
            waiting.push(wait);
        }
    }
    s.send(reply.encode(
        s,
        nsp,
        request::BROADCAST_CLIENT_COUNT,
        json!({ "requestId": id, "clientCount": waiting.len() }),
        &[],
    ));
    if waiting.is_empty() {
        return;
    }
    let (s, nsp, id, reply) = (s.clone(), nsp.to_owned(), id.clone(), reply.clone());
    // One task collects every answer; at the deadline the rest are given up (and their
    // ack ids forgotten by the sockets).
    tokio::spawn(async move {
        let collect = async {
            while let Some(answer) = waiting.next().await {
                let Some(answer) = answer else { continue };
                let first = codec::first_arg(&answer.args);
                let body = json!({ "requestId": id, "packet": first });
                s.send(reply.encode(&s, &nsp, request::BROADCAST_ACK, body, &answer.attachments));
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
        .iter_str()
        .map(|(k, v)| (k.to_owned(), Json::from(v)))
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
        "xdomain": h.headers.contains("origin"),
        "secure": false,
        "issued": issued,
        "url": h.url,
        "query": query,
        "auth": auth,
    })
}
