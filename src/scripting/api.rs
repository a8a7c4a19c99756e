//! What scripts see: `ctx` (the socket, the handshake, the event) and its functions. Every
//! function that acts records an action; nothing is sent until the handler has returned.
//! The room lookups read the namespace's rooms when called, through a [`RoomLookup`].
//!
//! ```text
//! ctx.socket.id   ctx.socket.data (a map kept for the socket's life)   ctx.socket.rooms
//! ctx.handshake (auth, query, headers, address)   ctx.event   ctx.jwt (the token's claims)
//! ctx.emit(event, data…)   ctx.broadcast(event, data…)   ctx.io(event, data…)
//! ctx.to(room).emit(event, data…)   ctx.join(room)   ctx.leave(room)
//! ctx.ack(value…)   ctx.disconnect()
//! ctx.room_size(room)   ctx.room_members(room)
//! ```
//! `data…` is zero to eight values. `now_ms()` is the wall clock in milliseconds since the
//! Unix epoch (for throttling). `ctx.room_size(room)` is how many sockets are in `room` of
//! the socket's namespace right now, on this node; `ctx.room_members(room)` their ids,
//! sorted, at most [`MAX_MEMBERS`] (as `{room.size}` and `{room.members}`, a socket id names
//! that socket's own room). One call makes at most [`MAX_ROOM_LOOKUPS`] of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Position};

use super::convert::{Budget, from_dynamic};
use crate::routing::template::MAX_MEMBERS;
use crate::routing::{Action, Args, Recipients};

/// Room lookups (`ctx.room_size`, `ctx.room_members`) one call may make; the next fails the
/// call. Each reads the namespace's rooms under their lock, and a member list walks its whole
/// room: work that Rhai's operation count does not see, so a loop of lookups is cut short here.
pub const MAX_ROOM_LOOKUPS: usize = 64;

/// The rooms of the socket's namespace, read when a script asks — on whichever thread it runs.
pub trait RoomLookup: Send + Sync + std::fmt::Debug {
    /// How many sockets are in `room` (a socket id names that socket's own room).
    fn size(&self, room: &str) -> usize;

    /// The first `max` socket ids in `room`, sorted.
    fn members(&self, room: &str, max: usize) -> Vec<String>;
}

/// What a `ctx` function returns: an error stops the handler.
type Done = Result<(), Box<EvalAltResult>>;

/// State shared by `ctx` and the views it hands out.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) actions: Mutex<Vec<Action>>,
    pub(crate) data: Mutex<Dynamic>,
    pub(crate) socket_id: ImmutableString,
    pub(crate) rooms: Array,
    pub(crate) handshake: Dynamic,
    pub(crate) jwt: Dynamic,
    pub(crate) event: ImmutableString,
    /// What the call may still send or keep, in bytes.
    pub(crate) budget: Mutex<Budget>,
    /// The namespace's rooms, for `ctx.room_size` and `ctx.room_members`.
    pub(crate) namespace_rooms: Arc<dyn RoomLookup>,
    /// Room lookups the call has made (or tried).
    pub(crate) room_lookups: AtomicUsize,
}

impl Shared {
    /// The namespace's rooms for one more lookup; an error past [`MAX_ROOM_LOOKUPS`].
    fn lookup(&self) -> Result<&dyn RoomLookup, Box<EvalAltResult>> {
        if self.room_lookups.fetch_add(1, Ordering::Relaxed) >= MAX_ROOM_LOOKUPS {
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("too many room lookups (at most {MAX_ROOM_LOOKUPS} per call)").into(),
                Position::NONE,
            )));
        }
        Ok(self.namespace_rooms.as_ref())
    }

    fn push(&self, action: Action) {
        self.actions.lock().expect("actions lock").push(action);
    }

    /// A room name kept for an action (`join`, `leave`, `to`): its bytes are charged to the
    /// call's budget, as what it sends is — a loop of joins cannot pile up copies.
    fn room(&self, room: &str) -> Result<String, Box<EvalAltResult>> {
        self.budget
            .lock()
            .expect("budget lock")
            .take(room.len())
            .map_err(|e| {
                Box::new(EvalAltResult::ErrorRuntime(
                    e.to_string().into(),
                    Position::NONE,
                ))
            })?;
        Ok(room.to_owned())
    }

    /// Arguments for an action: JSON values, with blobs as attachments; an error when the
    /// call has sent too much or a value is nested too deeply.
    fn args(&self, values: &[Dynamic]) -> Result<Args, Box<EvalAltResult>> {
        let mut budget = self.budget.lock().expect("budget lock");
        let mut attachments: Vec<Bytes> = Vec::new();
        let values = values
            .iter()
            .map(|v| from_dynamic(v, &mut attachments, &mut budget))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Box::new(EvalAltResult::ErrorRuntime(
                    e.to_string().into(),
                    Position::NONE,
                ))
            })?;
        Ok(if attachments.is_empty() {
            Args::Values(values)
        } else {
            Args::Binary(values, attachments)
        })
    }
}

/// `ctx`.
#[derive(Debug, Clone)]
pub(crate) struct Ctx(pub(crate) Arc<Shared>);

/// `ctx.socket`.
#[derive(Debug, Clone)]
pub(crate) struct SocketView(Arc<Shared>);

/// `ctx.to(room)`.
#[derive(Debug, Clone)]
pub(crate) struct RoomView(Arc<Shared>, String);

fn deliver(shared: &Shared, to: Recipients, event: &str, data: &[Dynamic]) -> Done {
    let args = shared.args(data)?;
    shared.push(Action::Deliver {
        to,
        event: event.into(),
        args,
        volatile: false,
    });
    Ok(())
}

fn emit(ctx: &mut Ctx, event: ImmutableString, data: &[Dynamic]) -> Done {
    deliver(&ctx.0, Recipients::Sender, &event, data)
}

fn broadcast(ctx: &mut Ctx, event: ImmutableString, data: &[Dynamic]) -> Done {
    deliver(
        &ctx.0,
        Recipients::Namespace {
            include_sender: false,
        },
        &event,
        data,
    )
}

fn io(ctx: &mut Ctx, event: ImmutableString, data: &[Dynamic]) -> Done {
    deliver(
        &ctx.0,
        Recipients::Namespace {
            include_sender: true,
        },
        &event,
        data,
    )
}

fn room_emit(view: &mut RoomView, event: ImmutableString, data: &[Dynamic]) -> Done {
    let to = Recipients::Room {
        room: view.1.clone(),
        include_sender: false,
    };
    deliver(&view.0, to, &event, data)
}

fn room_size(ctx: &mut Ctx, room: ImmutableString) -> Result<INT, Box<EvalAltResult>> {
    let size = ctx.0.lookup()?.size(&room);
    Ok(INT::try_from(size).unwrap_or(INT::MAX))
}

fn room_members(ctx: &mut Ctx, room: ImmutableString) -> Result<Array, Box<EvalAltResult>> {
    let members = ctx.0.lookup()?.members(&room, MAX_MEMBERS);
    Ok(members.into_iter().map(Dynamic::from).collect())
}

fn ack(ctx: &mut Ctx, data: &[Dynamic]) -> Done {
    let args = ctx.0.args(data)?;
    ctx.0.push(Action::Ack(args));
    Ok(())
}

/// Register `name(this, event, data…)` for zero to eight data values.
macro_rules! with_data {
    ($engine:expr, $name:literal, $this:ty, $f:expr) => {{
        let e: &mut Engine = $engine;
        e.register_fn($name, |t: &mut $this, ev: ImmutableString| $f(t, ev, &[]));
        e.register_fn($name, |t: &mut $this, ev: ImmutableString, a: Dynamic| {
            $f(t, ev, &[a])
        });
        e.register_fn(
            $name,
            |t: &mut $this, ev: ImmutableString, a: Dynamic, b: Dynamic| $f(t, ev, &[a, b]),
        );
        e.register_fn(
            $name,
            |t: &mut $this, ev: ImmutableString, a: Dynamic, b: Dynamic, c: Dynamic| {
                $f(t, ev, &[a, b, c])
            },
        );
        e.register_fn(
            $name,
            |t: &mut $this, ev: ImmutableString, a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic| {
                $f(t, ev, &[a, b, c, d])
            },
        );
        e.register_fn(
            $name,
            |t: &mut $this,
             ev: ImmutableString,
             a: Dynamic,
             b: Dynamic,
             c: Dynamic,
             d: Dynamic,
             f: Dynamic| $f(t, ev, &[a, b, c, d, f]),
        );
        e.register_fn(
            $name,
            |t: &mut $this,
             ev: ImmutableString,
             a: Dynamic,
             b: Dynamic,
             c: Dynamic,
             d: Dynamic,
             f: Dynamic,
             g: Dynamic| $f(t, ev, &[a, b, c, d, f, g]),
        );
        e.register_fn(
            $name,
            |t: &mut $this,
             ev: ImmutableString,
             a: Dynamic,
             b: Dynamic,
             c: Dynamic,
             d: Dynamic,
             f: Dynamic,
             g: Dynamic,
             h: Dynamic| $f(t, ev, &[a, b, c, d, f, g, h]),
        );
    }};
}

/// Make `ctx` and its functions known to `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<Ctx>("Context")
        .register_type_with_name::<SocketView>("Socket")
        .register_type_with_name::<RoomView>("Room")
        .register_get("socket", |ctx: &mut Ctx| SocketView(ctx.0.clone()))
        // Lets `ctx.socket.data.x = …` write through: the view shares the socket's state.
        .register_set("socket", |_ctx: &mut Ctx, _view: SocketView| {})
        .register_get("handshake", |ctx: &mut Ctx| ctx.0.handshake.clone())
        .register_get("jwt", |ctx: &mut Ctx| ctx.0.jwt.clone())
        .register_get("event", |ctx: &mut Ctx| ctx.0.event.clone())
        .register_get("id", |s: &mut SocketView| s.0.socket_id.clone())
        .register_get("rooms", |s: &mut SocketView| s.0.rooms.clone())
        .register_get("data", |s: &mut SocketView| {
            s.0.data.lock().expect("data lock").clone()
        })
        .register_set("data", |s: &mut SocketView, value: Dynamic| {
            *s.0.data.lock().expect("data lock") = value;
        })
        .register_fn(
            "to",
            |ctx: &mut Ctx, room: ImmutableString| -> Result<RoomView, Box<EvalAltResult>> {
                Ok(RoomView(ctx.0.clone(), ctx.0.room(&room)?))
            },
        )
        .register_fn("join", |ctx: &mut Ctx, room: ImmutableString| -> Done {
            let room = ctx.0.room(&room)?;
            ctx.0.push(Action::Join(room));
            Ok(())
        })
        .register_fn("leave", |ctx: &mut Ctx, room: ImmutableString| -> Done {
            let room = ctx.0.room(&room)?;
            ctx.0.push(Action::Leave(room));
            Ok(())
        })
        .register_fn("disconnect", |ctx: &mut Ctx| ctx.0.push(Action::Disconnect))
        .register_fn("room_size", room_size)
        .register_fn("room_members", room_members)
        .register_fn("now_ms", || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        })
        .register_fn("ack", |ctx: &mut Ctx| ack(ctx, &[]))
        .register_fn("ack", |ctx: &mut Ctx, a: Dynamic| ack(ctx, &[a]))
        .register_fn("ack", |ctx: &mut Ctx, a: Dynamic, b: Dynamic| {
            ack(ctx, &[a, b])
        })
        .register_fn(
            "ack",
            |ctx: &mut Ctx, a: Dynamic, b: Dynamic, c: Dynamic| ack(ctx, &[a, b, c]),
        );
    with_data!(engine, "emit", Ctx, emit);
    with_data!(engine, "broadcast", Ctx, broadcast);
    with_data!(engine, "io", Ctx, io);
    with_data!(engine, "emit", RoomView, room_emit);
}
