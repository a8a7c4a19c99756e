//! An HTTP route step: the event goes to the app's backend as
//! `{namespace, event, args, socket: {id, rooms, data, handshake}}` (binary arguments as
//! `{"$binary": "<base64>"}`), and the route that comes back is performed. A call that
//! fails — busy, unreachable, a timeout, a status other than 2xx, an answer that is not a
//! route — loses that event only: its ack says `{"error":"backend unavailable"}`, the URL
//! is logged (at most once per URL and interval) and the outcome counted per route.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Core;
use super::run::Run;
use crate::adapter::Adapter;
use crate::app::snapshot::Snapshot;
use crate::backend::{Reply, with_binary};
use crate::routing::HttpCall;
use crate::socketio::{Event, Socket};

/// The ack of an event whose backend call failed: short and generic, as the client sees it.
const BACKEND_UNAVAILABLE: &[u8] = br#"{"error":"backend unavailable"}"#;

impl Core {
    /// Ask the backend about the event; `None` when the call failed (the event's ack has
    /// been answered with an error).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ask_backend(
        &self,
        snapshot: &Snapshot,
        adapter: &Arc<dyn Adapter>,
        socket: &Arc<Socket>,
        name: &str,
        event: Option<&Event>,
        call: &HttpCall,
        run: &mut Run<'_>,
    ) -> Option<Reply> {
        let body = request(adapter.as_ref(), socket, name, event);
        let outcome = snapshot.caller.call(call, name, body).await;
        self.metrics.http_call(
            socket.nsp(),
            name,
            outcome.as_ref().err().map(|e| e.label()),
        );
        match outcome {
            Ok(reply) => Some(reply),
            Err(error) => {
                if self
                    .failures
                    .allow(call.url.clone(), std::time::Instant::now())
                    .is_some()
                {
                    tracing::warn!(
                        url = %call.url,
                        ns = socket.nsp(),
                        event = %name.escape_debug(),
                        error = %error,
                        "Backend call failed; the event is lost"
                    );
                }
                run.answer_error(BACKEND_UNAVAILABLE);
                None
            }
        }
    }
}

/// The arguments of `event` as JSON values, binary ones as `{"$binary": "<base64>"}`.
pub(crate) fn args_json(event: &Event) -> Vec<Value> {
    let mut text = Vec::with_capacity(event.args.len() + 2);
    text.push(b'[');
    text.extend_from_slice(&event.args);
    text.push(b']');
    serde_json::from_slice(&text)
        .map(|values| with_binary(values, &event.attachments))
        .unwrap_or_default()
}

/// The body of a call about `event` (absent for `connect` and `disconnect` routes).
fn request(adapter: &dyn Adapter, socket: &Socket, name: &str, event: Option<&Event>) -> Vec<u8> {
    let args = event.map(args_json).unwrap_or_default();
    let body = json!({
        "namespace": socket.nsp(),
        "event": name,
        "args": args,
        "socket": {
            "id": socket.id().as_str(),
            "rooms": adapter.rooms_of(socket.id()),
            "data": socket.data(),
            "handshake": socket.handshake_value(),
        },
    });
    serde_json::to_vec(&body).expect("JSON values serialize")
}
