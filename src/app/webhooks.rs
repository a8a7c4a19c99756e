//! What happened, told to `[[webhooks]]`: sockets connecting and disconnecting, joining and
//! leaving rooms, rooms getting their first member or losing their last, client events.
//! Each happening becomes one JSON object, encoded once, queued on every webhook that asked
//! for it; `backend::Webhook` delivers. Nothing here waits on the backend.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::backend::{Webhook, now_ms};
use crate::engineio::Sid;
use crate::routing::webhooks::{HookEvent, WebhookSettings};
use crate::socketio::{DisconnectReason, Event, Socket};

/// The webhooks in force; a reload keeps the queue of a URL that stays.
#[derive(Debug)]
pub struct Webhooks {
    hooks: ArcSwap<Vec<Arc<Webhook>>>,
    /// Whether any webhook wants room changes (the adapters skip reporting otherwise).
    rooms: AtomicBool,
    /// Names this process in event ids: `<node>-<n>`.
    node: String,
    next: AtomicU64,
}

impl Webhooks {
    /// None yet: [`Webhooks::configure`] starts them.
    pub fn new() -> Arc<Webhooks> {
        let node = Sid::random().to_string();
        Arc::new(Webhooks {
            hooks: ArcSwap::from_pointee(Vec::new()),
            rooms: AtomicBool::new(false),
            node,
            next: AtomicU64::new(0),
        })
    }

    /// Put `settings` in force: a URL that stays keeps its queue and task, a new one
    /// starts, one gone stops (what waited for it is dropped).
    pub fn configure(&self, settings: &[WebhookSettings]) {
        let old: HashMap<String, Arc<Webhook>> = self
            .hooks
            .load()
            .iter()
            .map(|h| (h.settings().url.clone(), h.clone()))
            .collect();
        let mut hooks = Vec::with_capacity(settings.len());
        for s in settings {
            let hook = match old.get(&s.url) {
                Some(h) => {
                    h.update(s.clone());
                    h.clone()
                }
                None => Webhook::start(s.clone()),
            };
            hooks.push(hook);
        }
        for (url, hook) in &old {
            if !settings.iter().any(|s| &s.url == url) {
                hook.stop();
            }
        }
        let rooms = settings.iter().any(|s| {
            [
                HookEvent::Join,
                HookEvent::Leave,
                HookEvent::RoomOccupied,
                HookEvent::RoomVacated,
            ]
            .iter()
            .any(|k| s.wants(k))
        });
        self.rooms.store(rooms, Ordering::Relaxed);
        self.hooks.store(Arc::new(hooks));
    }

    /// The webhooks in force.
    pub fn all(&self) -> Arc<Vec<Arc<Webhook>>> {
        self.hooks.load_full()
    }

    /// Queue, on each webhook `wants` accepts, the event `fields` make (built only if one
    /// does), with `name`, an id and the time added.
    fn tell(
        &self,
        name: &str,
        wants: impl Fn(&WebhookSettings) -> bool,
        fields: impl FnOnce() -> Value,
    ) {
        let hooks = self.hooks.load();
        let mut encoded: Option<Bytes> = None;
        let mut fields = Some(fields);
        for hook in hooks.iter() {
            if !wants(&hook.settings()) {
                continue;
            }
            let event = encoded.get_or_insert_with(|| {
                let mut value = fields.take().map_or(Value::Null, |f| f());
                if let Value::Object(map) = &mut value {
                    let n = self.next.fetch_add(1, Ordering::Relaxed);
                    map.insert("id".to_owned(), json!(format!("{}-{n}", self.node)));
                    map.insert("name".to_owned(), json!(name));
                    map.insert("time_ms".to_owned(), json!(now_ms()));
                }
                Bytes::from(value.to_string())
            });
            hook.push(event.clone());
        }
    }

    /// `socket` joined its namespace.
    pub fn connected(&self, socket: &Socket) {
        self.tell(
            "connect",
            |s| s.wants(&HookEvent::Connect),
            || {
                let handshake = socket.handshake_value();
                json!({
                    "namespace": socket.nsp(),
                    "socket_id": socket.id().as_str(),
                    "address": handshake["address"],
                    "query": handshake["query"],
                    "data": socket.data(),
                })
            },
        );
    }

    /// `socket` left its namespace.
    pub fn disconnected(&self, socket: &Socket, reason: DisconnectReason) {
        self.tell(
            "disconnect",
            |s| s.wants(&HookEvent::Disconnect),
            || {
                json!({
                    "namespace": socket.nsp(),
                    "socket_id": socket.id().as_str(),
                    "reason": reason.as_str(),
                    "data": socket.data(),
                })
            },
        );
    }

    /// `socket` sent `event`.
    pub fn event(&self, socket: &Socket, event: &Event) {
        self.tell(
            "event",
            |s| s.wants_event(&event.name),
            || {
                json!({
                    "namespace": socket.nsp(),
                    "socket_id": socket.id().as_str(),
                    "event": event.name,
                    "args": super::dispatch::args_json(event),
                })
            },
        );
    }
}

impl Webhooks {
    /// Whether any webhook wants room changes.
    pub fn listening(&self) -> bool {
        self.rooms.load(Ordering::Relaxed)
    }

    /// `socket` joined or left `room`.
    pub fn member_changed(
        &self,
        nsp: &str,
        socket: &Arc<Socket>,
        room: &str,
        joined: bool,
        _size: usize,
    ) {
        let sid = socket.id();
        let (name, kind) = if joined {
            ("join", HookEvent::Join)
        } else {
            ("leave", HookEvent::Leave)
        };
        self.tell(
            name,
            |s| s.wants(&kind),
            || json!({ "namespace": nsp, "socket_id": sid.as_str(), "room": room }),
        );
    }

    /// `room` got its first member or lost its last.
    pub fn room_changed(&self, nsp: &str, room: &str, occupied: bool) {
        let (name, kind) = if occupied {
            ("room_occupied", HookEvent::RoomOccupied)
        } else {
            ("room_vacated", HookEvent::RoomVacated)
        };
        self.tell(
            name,
            |s| s.wants(&kind),
            || json!({ "namespace": nsp, "room": room }),
        );
    }
}
