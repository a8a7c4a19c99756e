//! Per event: load the snapshot once, find the route, resolve it to actions, perform them
//! through the socket and the adapter. The one place where routing meets sockets.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::value::RawValue;
use subtle::ConstantTimeEq;

use super::metrics::{Metrics, add};
use super::scope::EventScope;
use super::snapshot::Snapshot;
use crate::adapter::{Adapter, BroadcastOptions};
use crate::engineio::Handshake;
use crate::engineio::SendError;
use crate::routing::{Action, Args, Recipients, Route, Scope};
use crate::scripting::{AuthDecision, EventInput};
use crate::socketio::packet::Args as RawArgs;
use crate::socketio::{
    ConnectRefusal, DisconnectReason, Encoded, Event, Socket, SocketHandler, handshake_value,
};
use serde_json::Value;

/// Routes events by the snapshot in force.
#[derive(Debug)]
pub struct Dispatcher {
    snapshot: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// A dispatcher reading `snapshot`.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, metrics: Arc<Metrics>) -> Self {
        Dispatcher { snapshot, metrics }
    }

    /// Run `route` for `socket`; `event` is `None` for connect and disconnect routes.
    fn run(
        &self,
        snapshot: &Snapshot,
        adapter: &dyn Adapter,
        socket: &Arc<Socket>,
        route: &Route,
        name: &str,
        event: Option<&Event>,
    ) {
        let scope = EventScope::new(socket, event.map(|e| &e.args[..]));
        let resolved = route.resolve(name, &scope);
        if resolved.skipped > 0 {
            tracing::debug!(
                ns = socket.nsp(),
                event = name,
                skipped = resolved.skipped,
                "A template resolved to nothing; route step skipped"
            );
        }
        let mut run = Run {
            metrics: &self.metrics,
            adapter,
            socket,
            name,
            event,
            acked: false,
            disconnect: false,
        };
        for action in resolved.actions {
            let Action::Script(script) = action else {
                run.perform(action);
                continue;
            };
            let input = EventInput {
                event: name,
                args: scope.args().map(<[_]>::to_vec).unwrap_or_default(),
                attachments: event.map_or(&[][..], |e| &e.attachments[..]),
                socket_id: scope.socket_id(),
                rooms: adapter.rooms_of(socket.id()),
                data: socket.data(),
                handshake: socket.handshake_value().clone(),
            };
            let began = std::time::Instant::now();
            let outcome = snapshot.scripts.run(&script, input);
            add(&self.metrics.script_calls, 1);
            add(
                &self.metrics.script_nanos,
                u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX),
            );
            match outcome {
                Ok(out) => {
                    socket.set_data(out.data);
                    out.actions.into_iter().for_each(|a| run.perform(a));
                }
                Err(e) => {
                    add(&self.metrics.script_errors, 1);
                    // Only this event is lost: nothing it decided is done, and it is not
                    // acked; the socket and everyone else carry on.
                    tracing::warn!(
                        script = %e.path,
                        line = e.line,
                        ns = socket.nsp(),
                        event = name,
                        sid = %socket.id(),
                        "Script failed; event dropped: {}",
                        e.message
                    );
                    return;
                }
            }
        }
        if let Some(Event { id: Some(id), .. }) = event
            && !run.acked
        {
            // A route without `ack` still answers, so `emitWithAck` never hangs.
            if socket.ack(*id, b"", Arc::from([])).is_ok() {
                add(&self.metrics.acks, 1);
            }
        }
        if run.disconnect && socket.disconnect() {
            self.on_disconnect(socket, DisconnectReason::ServerNamespaceDisconnect);
        }
    }
}

/// One route being performed for one socket.
struct Run<'a> {
    metrics: &'a Metrics,
    adapter: &'a dyn Adapter,
    socket: &'a Arc<Socket>,
    name: &'a str,
    event: Option<&'a Event>,
    acked: bool,
    disconnect: bool,
}

impl Run<'_> {
    fn perform(&mut self, action: Action) {
        let (socket, event) = (self.socket, self.event);
        match action {
            Action::Join(room) => self.adapter.join(socket.id(), &room),
            Action::Leave(room) => self.adapter.leave(socket.id(), &room),
            Action::Deliver {
                to,
                event: out_name,
                args,
            } => {
                let packet = encode_event(socket.nsp(), &out_name, &args, self.name, event);
                deliver(self.adapter, socket, &to, &packet, self.metrics);
            }
            Action::Ack(args) => {
                // One answer per event: the first ack decided wins.
                if let Some(Event { id: Some(id), .. }) = event
                    && !self.acked
                {
                    self.acked = true;
                    let (raw, attachments) = raw_args(&args, event);
                    if socket.ack(*id, &raw, attachments).is_ok() {
                        add(&self.metrics.acks, 1);
                    }
                }
            }
            Action::Disconnect => self.disconnect = true,
            Action::Script(script) => {
                tracing::debug!(script = %script.path.display(), "A script cannot call a script");
            }
        }
    }
}

/// The raw argument text and attachments of `args`. New values keep the incoming
/// attachments only if they still hold placeholders.
fn raw_args(args: &Args, event: Option<&Event>) -> (Bytes, Arc<[Bytes]>) {
    match (args, event) {
        (Args::Forward, Some(e)) => (e.args.clone(), e.attachments.clone()),
        (Args::Forward, None) => (Bytes::new(), Arc::from([])),
        (Args::Binary(values, attachments), _) => {
            (join_values(values), Arc::from(attachments.as_slice()))
        }
        (Args::Values(values), _) => {
            let out = join_values(values);
            let attachments = match event {
                Some(e) if !e.attachments.is_empty() && contains(&out, b"\"_placeholder\"") => {
                    e.attachments.clone()
                }
                _ => Arc::from([]),
            };
            (out, attachments)
        }
    }
}

/// Values as argument JSON, comma-separated.
fn join_values(values: &[Value]) -> Bytes {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, v).expect("JSON values serialize");
    }
    Bytes::from(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Encode a delivery once. Arguments forwarded under the incoming name reuse the received
/// data array as is.
fn encode_event(
    nsp: &str,
    out_name: &str,
    args: &Args,
    in_name: &str,
    event: Option<&Event>,
) -> Encoded {
    if let (Args::Forward, Some(e)) = (args, event)
        && out_name == in_name
    {
        return Encoded::event_data(nsp, &e.data, e.attachments.clone());
    }
    let (raw, attachments) = raw_args(args, event);
    Encoded::event(nsp, out_name, RawArgs::Raw(&raw), attachments, None)
}

fn deliver(
    adapter: &dyn Adapter,
    socket: &Socket,
    to: &Recipients,
    packet: &Encoded,
    metrics: &Metrics,
) {
    let opts = match to {
        Recipients::Sender => {
            match socket.send(packet) {
                Ok(()) => add(&metrics.deliveries, 1),
                Err(SendError::Full) => add(&metrics.drops_queue_full, 1),
                Err(SendError::Closed) => add(&metrics.drops_closed, 1),
            }
            return;
        }
        Recipients::Namespace {
            include_sender: true,
        } => BroadcastOptions::all(),
        Recipients::Namespace {
            include_sender: false,
        } => BroadcastOptions {
            rooms: vec![],
            except: vec![socket.id().to_string()],
        },
        Recipients::Room {
            room,
            include_sender,
        } => BroadcastOptions {
            rooms: vec![room.clone()],
            except: if *include_sender {
                vec![]
            } else {
                vec![socket.id().to_string()]
            },
        },
    };
    let delivery = adapter.broadcast(packet, &opts);
    add(&metrics.deliveries, delivery.queued as u64);
    add(&metrics.drops_queue_full, delivery.full as u64);
    add(
        &metrics.drops_closed,
        (delivery.dropped - delivery.full) as u64,
    );
    if delivery.dropped > 0 {
        tracing::debug!(
            ns = socket.nsp(),
            dropped = delivery.dropped,
            "Broadcast not queued for some sockets"
        );
    }
}

fn token_matches(auth: Option<&RawValue>, tokens: &[String]) -> bool {
    #[derive(serde::Deserialize)]
    struct Auth {
        token: Option<String>,
    }
    let Some(token) = auth
        .and_then(|a| serde_json::from_str::<Auth>(a.get()).ok())
        .and_then(|a| a.token)
    else {
        return false;
    };
    // Every token is compared, in constant time for equal lengths, so timing does not tell
    // which one nearly matched.
    tokens.iter().fold(false, |found, t| {
        found | bool::from(t.as_bytes().ct_eq(token.as_bytes()))
    })
}

impl Dispatcher {
    /// Whether `auth` may join `nsp`, and with what `socket.data`.
    fn decide(
        &self,
        nsp: &str,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Result<Option<Value>, ConnectRefusal> {
        let snapshot = self.snapshot.load();
        let Some(ns) = snapshot.routes.namespace(nsp) else {
            add(&self.metrics.invalid_namespaces, 1);
            return Err(ConnectRefusal::invalid_namespace());
        };
        let Some(rule) = &ns.auth else {
            return Ok(None);
        };
        let refuse = |message: String| ConnectRefusal {
            message,
            data: None,
        };
        let Some(script) = &rule.script else {
            return if token_matches(auth, &rule.tokens) {
                Ok(None)
            } else {
                Err(refuse(rule.message.clone()))
            };
        };
        match snapshot
            .scripts
            .authorize(script, &handshake_value(auth, handshake))
        {
            Ok(AuthDecision::Allow(data)) => Ok(data),
            Ok(AuthDecision::Deny(message)) => {
                Err(refuse(message.unwrap_or_else(|| rule.message.clone())))
            }
            Err(e) => {
                add(&self.metrics.script_errors, 1);
                tracing::warn!(script = %e.path, line = e.line, ns = nsp, "Auth script failed; connection refused: {}", e.message);
                Err(refuse(rule.message.clone()))
            }
        }
    }
}

impl SocketHandler for Dispatcher {
    fn authorize(
        &self,
        nsp: &str,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Result<Option<Value>, ConnectRefusal> {
        let decision = self.decide(nsp, auth, handshake);
        if let Err(refusal) = &decision
            && refusal.message != ConnectRefusal::invalid_namespace().message
        {
            add(&self.metrics.auth_refusals, 1);
            tracing::info!(ns = nsp, remote_addr = %handshake.remote_addr, message = %refusal.message, "Connection refused");
        }
        decision
    }

    fn on_connect(&self, socket: &Arc<Socket>) {
        let snapshot = self.snapshot.load();
        let Some(adapter) = snapshot.adapters.get(socket.nsp()) else {
            socket.disconnect();
            return;
        };
        adapter.add(socket.clone());
        add(&self.metrics.connections, 1);
        tracing::info!(
            ns = socket.nsp(),
            sid = %socket.id(),
            remote_addr = %socket.handshake().remote_addr,
            "Socket connected"
        );
        if let Some(route) = snapshot
            .routes
            .namespace(socket.nsp())
            .and_then(|ns| ns.on_connect.as_ref())
        {
            self.run(&snapshot, adapter.as_ref(), socket, route, "connect", None);
        }
    }

    fn on_event(&self, socket: &Arc<Socket>, event: Event) {
        let snapshot = self.snapshot.load();
        let (Some(ns), Some(adapter)) = (
            snapshot.routes.namespace(socket.nsp()),
            snapshot.adapters.get(socket.nsp()),
        ) else {
            return;
        };
        self.metrics.event(
            socket.nsp(),
            &event.name,
            ns.events.contains_key(&event.name),
        );
        let Some(route) = ns.route(&event.name) else {
            tracing::debug!(ns = socket.nsp(), event = %event.name, "No route; event dropped");
            return;
        };
        self.run(
            &snapshot,
            adapter.as_ref(),
            socket,
            route,
            &event.name,
            Some(&event),
        );
    }

    fn on_disconnect(&self, socket: &Arc<Socket>, reason: DisconnectReason) {
        let snapshot = self.snapshot.load();
        add(&self.metrics.disconnections, 1);
        tracing::info!(
            ns = socket.nsp(),
            sid = %socket.id(),
            remote_addr = %socket.handshake().remote_addr,
            reason = reason.as_str(),
            "Socket disconnected"
        );
        let Some(adapter) = snapshot.adapters.get(socket.nsp()) else {
            return;
        };
        adapter.remove(socket.id());
        if let Some(route) = snapshot
            .routes
            .namespace(socket.nsp())
            .and_then(|ns| ns.on_disconnect.as_ref())
        {
            self.run(
                &snapshot,
                adapter.as_ref(),
                socket,
                route,
                "disconnect",
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn tokens_match_exactly() {
        let tokens = vec!["123".to_owned(), "abc".to_owned()];
        assert!(token_matches(Some(&raw(r#"{"token":"123"}"#)), &tokens));
        assert!(token_matches(
            Some(&raw(r#"{"token":"abc","x":1}"#)),
            &tokens
        ));
        assert!(!token_matches(Some(&raw(r#"{"token":"12"}"#)), &tokens));
        assert!(!token_matches(Some(&raw(r#"{"token":123}"#)), &tokens));
        assert!(!token_matches(Some(&raw("{}")), &tokens));
        assert!(!token_matches(None, &tokens));
    }
}
