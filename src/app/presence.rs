//! What the adapters' room changes become: webhooks (`[[webhooks]]`), other nodes' kept
//! messages in this node's history, and presence
//! announcements (`presence = { event, data }` on a namespace) — each room told who joined or
//! left it and its size (across the cluster, as this node knows it), as
//! `{room, size, joined|left, data}`.

use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwap;
use serde_json::{Map, Value, json};

use super::history::History;
use super::snapshot::Snapshot;
use super::webhooks::Webhooks;
use crate::adapter::{Adapter, BroadcastOptions, KeptMessage, RoomObserver};
use crate::routing::{HistorySpec, PresenceSettings};
use crate::socketio::{Encoded, Socket};

/// The application's room observer.
#[derive(Debug)]
pub struct Observers {
    webhooks: Arc<Webhooks>,
    /// Rooms' histories, to which other nodes' kept messages are added.
    history: Arc<History>,
    /// The admin UI, told of room changes.
    admin: Arc<super::admin_ui::AdminUi>,
    /// The snapshot in force, once there is one (presence reads its namespaces).
    snapshot: OnceLock<Weak<ArcSwap<Snapshot>>>,
}

impl Observers {
    /// Observers telling `webhooks` and keeping other nodes' kept messages in `history`;
    /// presence starts once [`Observers::watch`] is called.
    pub fn new(
        webhooks: Arc<Webhooks>,
        history: Arc<History>,
        admin: Arc<super::admin_ui::AdminUi>,
    ) -> Arc<Observers> {
        Arc::new(Observers {
            webhooks,
            history,
            admin,
            snapshot: OnceLock::new(),
        })
    }

    /// Read presence settings (and adapters) from `snapshot`.
    pub fn watch(&self, snapshot: &Arc<ArcSwap<Snapshot>>) {
        let _ = self.snapshot.set(Arc::downgrade(snapshot));
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        Some(self.snapshot.get()?.upgrade()?.load_full())
    }
}

impl RoomObserver for Observers {
    fn listening(&self) -> bool {
        self.webhooks.listening()
            || self.snapshot().is_some_and(|s| {
                s.routes.admin_ui.is_some()
                    || s.routes.namespaces.values().any(|ns| ns.presence.is_some())
            })
    }

    fn member_changed(
        &self,
        nsp: &str,
        socket: &Arc<Socket>,
        room: &str,
        joined: bool,
        size: usize,
    ) {
        self.webhooks
            .member_changed(nsp, socket, room, joined, size);
        let Some(snapshot) = self.snapshot() else {
            return;
        };
        if let Some(ui) = &snapshot.routes.admin_ui
            && let Some(admin) = snapshot.adapters.get(&ui.namespace)
        {
            self.admin
                .room_changed(admin.as_ref(), ui, nsp, room, socket.id().as_str(), joined);
        }
        let (Some(settings), Some(adapter)) =
            (presence(&snapshot, nsp), snapshot.adapters.get(nsp))
        else {
            return;
        };
        let data = socket.data();
        let subset: Map<String, Value> = settings
            .data
            .iter()
            .filter_map(|k| Some((k.clone(), data.get(k)?.clone())))
            .collect();
        let change = if joined { "joined" } else { "left" };
        announce(
            adapter.as_ref(),
            nsp,
            &settings.event,
            json!({ "room": room, "size": size, change: socket.id().as_str(), "data": subset }),
        );
    }

    fn member_vanished(&self, nsp: &str, room: &str, sid: &str, size: usize, local: &dyn Adapter) {
        let Some(snapshot) = self.snapshot() else {
            return;
        };
        if let Some(settings) = presence(&snapshot, nsp) {
            // Its data went with its node.
            let body = json!({ "room": room, "size": size, "left": sid, "data": {} });
            announce(local, nsp, &settings.event, body);
        }
    }

    fn kept(&self, nsp: &str, m: KeptMessage, deliver: &mut dyn FnMut()) {
        // One step for a socket joining the room with replay (see `History::order`).
        let _order = self.history.order(nsp, &m.keep.room);
        deliver();
        self.history
            .remember_aged(nsp, &m.keep.room, spec(&m), &m.packet, m.age);
    }

    fn history_read(&self, nsp: &str, room: &str, messages: Vec<KeptMessage>) {
        let messages: Vec<_> = messages
            .into_iter()
            .map(|m| (spec(&m), m.packet, m.age))
            .collect();
        self.history.replace(nsp, room, &messages);
    }

    fn room_changed(&self, nsp: &str, room: &str, occupied: bool) {
        self.webhooks.room_changed(nsp, room, occupied);
    }
}

fn presence<'a>(snapshot: &'a Snapshot, nsp: &str) -> Option<&'a PresenceSettings> {
    snapshot.routes.namespace(nsp)?.presence.as_ref()
}

/// Tell `body` to the sockets of its room, as event `event`.
fn announce(adapter: &dyn Adapter, nsp: &str, event: &str, body: Value) {
    let room = body["room"].as_str().unwrap_or_default().to_owned();
    let raw = serde_json::to_vec(&body).expect("JSON values serialize");
    let packet = Encoded::event(
        nsp,
        event,
        crate::socketio::packet::Args::Raw(&raw),
        Arc::from([]),
        None,
    );
    adapter.broadcast(
        &packet,
        &BroadcastOptions {
            rooms: vec![room],
            except: Vec::new(),
            volatile: false,
        },
    );
}

fn spec(m: &KeptMessage) -> HistorySpec {
    HistorySpec {
        size: m.keep.size,
        ttl: m.keep.ttl,
    }
}
