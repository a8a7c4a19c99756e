//! Performing resolved actions for one socket: joins and leaves (within the room limits,
//! never into another socket's own room), deliveries encoded once, the one ack an event
//! gets, a server-side disconnect.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::Core;
use crate::adapter::{Adapter, BroadcastOptions, Keep};
use crate::app::metrics::{Metrics, add};
use crate::engineio::{Pending, SendError, Sid};
use crate::limits::Limit;
use crate::routing::{Action, Args, LimitSettings, Recipients};
use crate::socketio::packet::Args as RawArgs;
use crate::socketio::{DisconnectReason, Encoded, Event, Socket, no_attachments};

/// One route being performed for one socket.
pub(super) struct Run<'a> {
    core: &'a Arc<Core>,
    limits: &'a LimitSettings,
    adapter: &'a dyn Adapter,
    socket: &'a Arc<Socket>,
    name: &'a str,
    event: Option<&'a Event>,
    acked: bool,
    disconnect: bool,
}

/// Why a join or leave was refused; the event's ack says so.
#[derive(Debug, Clone, Copy)]
enum RoomRefusal {
    TooMany,
    TooLong,
    Reserved,
}

impl RoomRefusal {
    fn ack(self) -> &'static [u8] {
        match self {
            RoomRefusal::TooMany => br#"{"error":"too many rooms"}"#,
            RoomRefusal::TooLong => br#"{"error":"room name too long"}"#,
            RoomRefusal::Reserved => br#"{"error":"reserved room"}"#,
        }
    }
}

impl<'a> Run<'a> {
    pub(super) fn new(
        core: &'a Arc<Core>,
        limits: &'a LimitSettings,
        adapter: &'a dyn Adapter,
        socket: &'a Arc<Socket>,
        name: &'a str,
        event: Option<&'a Event>,
    ) -> Self {
        Run {
            core,
            limits,
            adapter,
            socket,
            name,
            event,
            acked: false,
            disconnect: false,
        }
    }

    /// Whether the event's ack has been answered.
    pub(super) fn acked(&self) -> bool {
        self.acked
    }

    /// Take over a run that was already under way (before a script).
    pub(super) fn set_acked(&mut self, acked: bool) {
        self.acked = acked;
    }

    pub(super) fn perform(&mut self, action: Action) {
        let (socket, event) = (self.socket, self.event);
        match action {
            Action::Join(room) => {
                if let Err(refusal) = self.check_room(&room, true) {
                    return self.refuse(refusal, &room);
                }
                self.adapter.join(socket.id(), &room);
            }
            Action::Leave(room) => {
                if let Err(refusal) = self.check_room(&room, false) {
                    return self.refuse(refusal, &room);
                }
                self.adapter.leave(socket.id(), &room);
            }
            Action::Deliver {
                to,
                event: out_name,
                args,
                volatile,
            } => {
                if let Recipients::Elsewhere { namespace, room } = &to {
                    // Into another namespace: everyone there, or one of its rooms.
                    let snapshot = self.core.snapshot.load();
                    let Some(adapter) = snapshot.adapters.get(namespace) else {
                        return;
                    };
                    let packet = encode_event(namespace, &out_name, &args, self.name, event);
                    let opts = BroadcastOptions {
                        rooms: room.iter().cloned().collect(),
                        except: Vec::new(),
                        volatile,
                    };
                    count(&self.core.metrics, adapter.broadcast(&packet, &opts));
                    return;
                }
                let packet = encode_event(socket.nsp(), &out_name, &args, self.name, event);
                deliver(
                    self.adapter,
                    socket,
                    &to,
                    &packet,
                    volatile,
                    &self.core.metrics,
                );
            }
            // Performed with its delivery (`perform_pair`).
            Action::Remember { .. } => {}
            Action::Replay(room) => {
                // Only into a room it is in (the join may have been refused).
                if self.adapter.is_in(socket.id(), &room) {
                    for packet in self.core.history.replay(socket.nsp(), &room, None) {
                        let _ = socket.send(&packet);
                    }
                }
            }
            Action::Ack(args) => {
                let (raw, attachments) = raw_args(&args, event);
                self.answer(&raw, attachments);
            }
            Action::Disconnect => self.disconnect = true,
            Action::Script(script) => {
                tracing::debug!(script = %script.path.display(), "A script cannot call a script");
            }
            Action::Http(call) => {
                tracing::debug!(url = %call.url, "Only a route step calls the backend");
            }
        }
    }

    /// Perform `action`, and with it the next of `rest` when they belong together (see
    /// [`Run::perform_pair`]).
    pub(super) fn perform_next(
        &mut self,
        action: Action,
        rest: &mut std::iter::Peekable<impl Iterator<Item = Action>>,
    ) {
        if let Some(second) =
            rest.next_if(|a| matches!(a, Action::Remember { .. } | Action::Replay(_)))
        {
            if let Some(second) = self.perform_pair(action, second) {
                self.perform(second);
            }
        } else {
            self.perform(action);
        }
    }

    /// Perform `first` and `second` together when they belong together — a delivery to a
    /// room and the room keeping it, or a join and the replay of what the room keeps — in
    /// one step for the room's history (see `History::order`). Returns `second` otherwise.
    fn perform_pair(&mut self, first: Action, second: Action) -> Option<Action> {
        match (first, second) {
            (
                Action::Deliver {
                    to: to @ Recipients::Room { .. },
                    event: out_name,
                    args,
                    volatile,
                },
                Action::Remember { room, spec },
            ) if matches!(&to, Recipients::Room { room: r, .. } if *r == room) => {
                let socket = self.socket;
                let packet = encode_event(socket.nsp(), &out_name, &args, self.name, self.event);
                let opts = options(socket, &to, volatile).expect("a room's options");
                let keep = Keep {
                    room,
                    size: spec.size,
                    ttl: spec.ttl,
                };
                count(
                    &self.core.metrics,
                    self.adapter.broadcast_kept(&packet, &opts, &keep),
                );
                None
            }
            (Action::Join(room), Action::Replay(replayed)) if room == replayed => {
                let history = self.core.history.clone();
                let _order = history.order(self.socket.nsp(), &room);
                self.perform(Action::Join(room));
                self.perform(Action::Replay(replayed));
                None
            }
            (first, second) => {
                self.perform(first);
                Some(second)
            }
        }
    }

    /// Perform what the backend answered (an HTTP route step): `set_data` merged into
    /// `socket.data`, then its actions in order.
    pub(super) fn apply_reply(&mut self, reply: crate::backend::Reply) {
        if let Some(more) = reply.set_data {
            let mut data = self.socket.data();
            match &mut data {
                Value::Object(map) => map.extend(more),
                other => *other = Value::Object(more),
            }
            self.socket.set_data(data);
        }
        for action in reply.actions {
            self.perform(action);
        }
    }

    /// Answer the event's ack with an error (a failed backend call).
    pub(super) fn answer_error(&mut self, error: &'static [u8]) {
        self.answer(error, no_attachments());
    }

    /// What a handler decided: its `socket.data`, then its actions in order.
    pub(super) fn apply(&mut self, out: crate::scripting::EventOutput) {
        self.socket.set_data(out.data);
        for action in out.actions {
            self.perform(action);
        }
    }

    /// Answer the event's ack, unless it has been: one answer per event, the first wins.
    fn answer(&mut self, raw: &[u8], attachments: Arc<[Bytes]>) {
        if let Some(Event { id: Some(id), .. }) = self.event
            && !self.acked
        {
            self.acked = true;
            if self.socket.ack(*id, raw, attachments).is_ok() {
                add(&self.core.metrics.acks, 1);
            }
        }
    }

    /// Whether `room` may be joined (or left): not another socket's own room, not too long,
    /// and — to join — not one room too many.
    fn check_room(&self, room: &str, join: bool) -> Result<(), RoomRefusal> {
        if room != self.socket.id().as_str() && room.parse::<Sid>().is_ok() {
            // A socket's own room is named by its id: joining it would receive that
            // socket's private messages — on any node of a cluster, where the id may not
            // even be known here. Every name shaped like a socket id is reserved.
            return Err(RoomRefusal::Reserved);
        }
        if room.len() > self.limits.room_name_bytes {
            return Err(RoomRefusal::TooLong);
        }
        if join
            && self.adapter.room_count(self.socket.id()) >= self.limits.rooms_per_socket
            && !self
                .adapter
                .rooms_of(self.socket.id())
                .iter()
                .any(|r| r == room)
        {
            return Err(RoomRefusal::TooMany);
        }
        Ok(())
    }

    fn refuse(&mut self, refusal: RoomRefusal, room: &str) {
        let (limit, what) = match refusal {
            RoomRefusal::TooMany => (Limit::RoomsPerSocket, "join over rooms_per_socket refused"),
            RoomRefusal::TooLong => (
                Limit::RoomNameBytes,
                "room name over room_name_bytes refused",
            ),
            RoomRefusal::Reserved => (
                Limit::ReservedRoom,
                "join or leave of a socket id's room refused",
            ),
        };
        let room: String = room.chars().take(64).collect();
        self.core.hits.hit(
            limit,
            &self.socket.handshake().client_ip,
            &format_args!("{what} (socket {}, room {:?})", self.socket.id(), room),
        );
        self.answer(refusal.ack(), no_attachments());
    }

    /// After the last action: an event that asked for an ack and got none gets an empty
    /// one (so `emitWithAck` never hangs); a disconnect decided along the way happens (what
    /// its route leaves to do is returned).
    pub(super) fn finish(mut self) -> Option<Pending> {
        self.answer(b"", no_attachments());
        if self.disconnect && self.socket.disconnect() {
            return self
                .core
                .disconnected(self.socket, DisconnectReason::ServerNamespaceDisconnect);
        }
        None
    }
}

/// The raw argument text and attachments of `args`. New values keep the incoming
/// attachments only if they still hold placeholders.
fn raw_args(args: &Args, event: Option<&Event>) -> (Bytes, Arc<[Bytes]>) {
    match (args, event) {
        (Args::Forward, Some(e)) => (e.args.clone(), e.attachments.clone()),
        (Args::Forward, None) => (Bytes::new(), no_attachments()),
        (Args::Binary(values, attachments), _) => {
            (join_values(values), Arc::from(attachments.as_slice()))
        }
        (Args::Values(values), _) => {
            let out = join_values(values);
            let attachments = match event {
                Some(e) if !e.attachments.is_empty() && contains(&out, b"\"_placeholder\"") => {
                    e.attachments.clone()
                }
                _ => no_attachments(),
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
    volatile: bool,
    metrics: &Metrics,
) {
    if let Recipients::Sender = to {
        let sent = if volatile {
            socket.send_volatile(packet)
        } else {
            socket.send(packet)
        };
        metrics.delivered(match sent {
            Ok(()) => (1, 0, 0, 0),
            Err(SendError::Full) => (0, 1, 0, 0),
            Err(SendError::Closed) => (0, 0, 1, 0),
            Err(SendError::Behind) => (0, 0, 0, 1),
        });
        return;
    }
    // `Elsewhere` is performed by the caller, with the other namespace's adapter.
    let Some(opts) = options(socket, to, volatile) else {
        return;
    };
    let delivery = adapter.broadcast(packet, &opts);
    count(metrics, delivery);
    if delivery.dropped > delivery.behind {
        tracing::debug!(
            ns = socket.nsp(),
            dropped = delivery.dropped,
            "Broadcast not queued for some sockets"
        );
    }
}

/// Who a broadcast to `to` reaches, in this namespace; `None` for the sender alone or
/// another namespace.
fn options(socket: &Socket, to: &Recipients, volatile: bool) -> Option<BroadcastOptions> {
    let except = |include_sender: bool| {
        if include_sender {
            vec![]
        } else {
            vec![socket.id().to_string()]
        }
    };
    match to {
        Recipients::Sender | Recipients::Elsewhere { .. } => None,
        Recipients::Namespace { include_sender } => Some(BroadcastOptions {
            rooms: vec![],
            except: except(*include_sender),
            volatile,
        }),
        Recipients::Room {
            room,
            include_sender,
        } => Some(BroadcastOptions {
            rooms: vec![room.clone()],
            except: except(*include_sender),
            volatile,
        }),
    }
}

/// Count what a broadcast did.
fn count(metrics: &Metrics, delivery: crate::adapter::Delivery) {
    metrics.delivered((
        delivery.queued,
        delivery.full,
        delivery.dropped - delivery.full - delivery.behind,
        delivery.behind,
    ));
}
