//! Requests this node makes of the others, in the wire format of `@socket.io/redis-adapter`:
//! `socketsJoin` / `socketsLeave` / `disconnectSockets` are published and not answered;
//! `fetchSockets` and `allRooms` are answered on the response channel, and this node waits
//! for as many answers as there are other subscribers of the request channel (`PUBSUB
//! NUMSUB`), or for its `request_timeout`, whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use super::codec::request;
use super::{RedisAdapter, Shared, streams};
use crate::adapter::{BroadcastOptions, Remote};

/// Most answers kept for one request: a node per answer, and no cluster is that big.
const MAX_ANSWERS: usize = 1024;

fn opts_json(opts: &BroadcastOptions) -> Json {
    json!({ "rooms": opts.rooms, "except": opts.except })
}

impl RedisAdapter {
    pub(super) fn publish_request(&self, body: &Json) {
        self.shared.publish(
            self.shared.request_channel(&self.nsp),
            serde_json::to_vec(body).expect("JSON values serialize"),
        );
    }

    pub(super) fn remote_rooms_change(&self, kind: u64, opts: &BroadcastOptions, rooms: &[String]) {
        if let Some(stream) = &self.shared.config.stream {
            let kind = if kind == request::REMOTE_JOIN {
                streams::codec::kind::SOCKETS_JOIN
            } else {
                streams::codec::kind::SOCKETS_LEAVE
            };
            let data = json!({ "opts": streams::codec::opts_json(opts), "rooms": rooms });
            return self.stream_request(stream, kind, data);
        }
        self.publish_request(&json!({
            "uid": self.shared.uid,
            "type": kind,
            "opts": opts_json(opts),
            "rooms": rooms,
        }));
    }

    pub(super) fn remote_close(&self, opts: &BroadcastOptions, close: bool) {
        if let Some(stream) = &self.shared.config.stream {
            let data = json!({ "opts": streams::codec::opts_json(opts), "close": close });
            return self.stream_request(stream, streams::codec::kind::DISCONNECT_SOCKETS, data);
        }
        self.publish_request(&json!({
            "uid": self.shared.uid,
            "type": request::REMOTE_DISCONNECT,
            "opts": opts_json(opts),
            "close": close,
        }));
    }

    pub(super) fn fetch<'a>(&'a self, opts: &'a BroadcastOptions) -> Remote<'a, Vec<Json>> {
        Box::pin(async move {
            let answers = ask(&self.shared, &self.nsp, request::REMOTE_FETCH, Some(opts)).await;
            answers
                .into_iter()
                .filter_map(|a| a.get("sockets").and_then(Json::as_array).cloned())
                .flatten()
                .collect()
        })
    }

    pub(super) fn rooms(&self) -> Remote<'_, Vec<String>> {
        Box::pin(async move {
            let answers = ask(&self.shared, &self.nsp, request::ALL_ROOMS, None).await;
            // The streams wire answers with sockets: their rooms, once each.
            let from_sockets = answers
                .iter()
                .filter_map(|a| a.get("sockets").and_then(Json::as_array))
                .flatten()
                .filter_map(|so| so.get("rooms").and_then(Json::as_array));
            let mut rooms: Vec<String> = answers
                .iter()
                .filter_map(|a| a.get("rooms").and_then(Json::as_array))
                .chain(from_sockets)
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
            if self.shared.config.stream.is_some() {
                rooms.sort_unstable();
                rooms.dedup();
            }
            rooms
        })
    }
}

/// Publish a request of `kind` and gather the other nodes' answers.
async fn ask(s: &Arc<Shared>, nsp: &str, kind: u64, opts: Option<&BroadcastOptions>) -> Vec<Json> {
    let id: String = {
        let mut rng = rand::thread_rng();
        (0..16)
            .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
            .collect()
    };
    let (tx, mut rx) = mpsc::channel(MAX_ANSWERS);
    s.pending
        .lock()
        .expect("pending lock")
        .insert(id.clone(), tx);
    let _unregister = Unregister(s, &id);
    let mut body = json!({ "uid": s.uid, "requestId": id, "type": kind });
    if let Some(opts) = opts {
        body["opts"] = opts_json(opts);
    }
    let deadline = tokio::time::Instant::now() + s.config.request_timeout;
    let expected = match tokio::time::timeout_at(deadline, others(s, nsp)).await {
        Ok(Some(n)) => n,
        // Unknown: wait for the timeout, taking what comes.
        _ => usize::MAX,
    };
    let mut answers = Vec::new();
    if expected == 0 {
        return answers;
    }
    if s.config.stream.is_some() {
        // The streams wire has fetchSockets only; allRooms is read from its answers.
        let data = json!({ "requestId": id, "opts": body.get("opts").cloned().unwrap_or_else(|| opts_json(&BroadcastOptions::all())) });
        let payload = streams::codec::published(
            &s.uid,
            nsp,
            streams::codec::kind::FETCH_SOCKETS,
            super::codec::json_to_mp(&data, &[]),
        );
        s.publish(s.broadcast_channel(nsp), payload);
    } else {
        s.publish(
            s.request_channel(nsp),
            serde_json::to_vec(&body).expect("JSON values serialize"),
        );
    }
    while answers.len() < expected.min(MAX_ANSWERS) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(answer)) => answers.push(answer),
            _ => break,
        }
    }
    answers
}

/// How many other nodes listen on the request channel of `nsp` (the public channel, on the
/// streams wire).
async fn others(s: &Shared, nsp: &str) -> Option<usize> {
    let mut conn = s.command().await?;
    let channel = if s.config.stream.is_some() {
        s.broadcast_channel(nsp)
    } else {
        s.request_channel(nsp)
    };
    let mut cmd = redis::cmd("PUBSUB");
    cmd.arg("NUMSUB").arg(&channel);
    let query = cmd.query_async::<Vec<(String, usize)>>(&mut conn);
    let Ok(Ok(answer)) = tokio::time::timeout(s.config.request_timeout, query).await else {
        s.command_failed().await;
        return None;
    };
    let (_, n) = answer.into_iter().next()?;
    Some(n.saturating_sub(1))
}

/// Forgets a request when its wait is over.
struct Unregister<'a>(&'a Shared, &'a str);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.0.pending.lock().expect("pending lock").remove(self.1);
    }
}

/// An answer from the response channel: handed to the request waiting for it, if any.
pub(super) fn on_response(s: &Shared, payload: &[u8]) {
    if let Ok(answer) = serde_json::from_slice::<Json>(payload) {
        answered(s, answer);
    }
}

/// An answer (`{requestId, …}`), handed to the request waiting for it, if any.
pub(super) fn answered(s: &Shared, answer: Json) {
    let Some(id) = answer.get("requestId").and_then(Json::as_str) else {
        return;
    };
    let waiting = s.pending.lock().expect("pending lock").get(id).cloned();
    if let Some(tx) = waiting {
        let _ = tx.try_send(answer);
    }
}

/// How long a command connection may take to open.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
