//! What the adapters' room changes become: webhooks (`[[webhooks]]`) and presence
//! announcements (`presence = { event, data }` on a namespace) — each room told who joined or
//! left it and its size on this node, as `{room, size, joined|left, data}`.

use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwap;
use serde_json::{Map, Value, json};

use super::snapshot::Snapshot;
use super::webhooks::Webhooks;
use crate::adapter::{BroadcastOptions, RoomObserver};
use crate::socketio::{Encoded, Socket};

/// The application's room observer.
#[derive(Debug)]
pub struct Observers {
    webhooks: Arc<Webhooks>,
    /// The snapshot in force, once there is one (presence reads its namespaces).
    snapshot: OnceLock<Weak<ArcSwap<Snapshot>>>,
}

impl Observers {
    /// Observers telling `webhooks`; presence starts once [`Observers::watch`] is called.
    pub fn new(webhooks: Arc<Webhooks>) -> Arc<Observers> {
        Arc::new(Observers {
            webhooks,
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
            || self
                .snapshot()
                .is_some_and(|s| s.routes.namespaces.values().any(|ns| ns.presence.is_some()))
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
        let (Some(settings), Some(adapter)) = (
            snapshot
                .routes
                .namespace(nsp)
                .and_then(|ns| ns.presence.as_ref()),
            snapshot.adapters.get(nsp),
        ) else {
            return;
        };
        let data = socket.data();
        let subset: Map<String, Value> = settings
            .data
            .iter()
            .filter_map(|k| Some((k.clone(), data.get(k)?.clone())))
            .collect();
        let change = if joined { "joined" } else { "left" };
        let body = json!({
            "room": room,
            "size": size,
            change: socket.id().as_str(),
            "data": subset,
        });
        let raw = serde_json::to_vec(&body).expect("JSON values serialize");
        let packet = Encoded::event(
            nsp,
            &settings.event,
            crate::socketio::packet::Args::Raw(&raw),
            Arc::from([]),
            None,
        );
        adapter.broadcast(
            &packet,
            &BroadcastOptions {
                rooms: vec![room.to_owned()],
                except: Vec::new(),
                volatile: false,
            },
        );
    }

    fn room_changed(&self, nsp: &str, room: &str, occupied: bool) {
        self.webhooks.room_changed(nsp, room, occupied);
    }
}
