//! Per event: load the snapshot once, find the route, resolve it to actions, perform them
//! through the socket and the adapter. The one place where routing meets sockets.
//!
//! Table routes are performed at once, on the task that read the event. A route that
//! reaches a script hands the rest of its work to a future: the script runs on the script
//! pool, and the transport awaits the future before it reads the socket's next event, so a
//! socket's events still take effect in the order it sent them while a slow script delays
//! nobody else.

mod auth;
mod expiry;
mod http;
mod run;
mod script;

pub(crate) use http::args_json;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytestring::ByteString;
use serde_json::value::RawValue;

use super::metrics::Metrics;
use super::scope::EventScope;
use super::snapshot::Snapshot;
use super::webhooks::Webhooks;
use crate::adapter::{Adapter, SavedSocket};
use crate::engineio::{Handshake, Pending};
use crate::limits::{Hits, Throttle};
use crate::routing::admin_ui::AdminUiSettings;
use crate::routing::{Action, Route};
use crate::scripting::ScriptPool;
use crate::socketio::{
    Authorization, DisconnectReason, Event, Restored, Restoring, Socket, SocketHandler,
    no_attachments,
};
use run::Run;
use script::{Attempted, Deferred};

/// How often a failing script may log.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What the dispatcher shares with the work it leaves pending.
#[derive(Debug)]
pub(crate) struct Core {
    snapshot: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    hits: Arc<Hits>,
    pool: Arc<ScriptPool>,
    webhooks: Arc<Webhooks>,
    /// What rooms with a `history` keep.
    history: Arc<super::history::History>,
    /// The admin UI's server side (`[admin_ui]`).
    admin: Arc<super::admin_ui::AdminUi>,
    /// The live trace of one event, when one runs.
    tracer: Arc<super::trace::Tracer>,
    /// One warning per script file and interval.
    failures: Throttle<String>,
}

/// What the dispatcher shares with the rest of the app: rooms' histories, the admin UI, the
/// live trace.
#[derive(Debug)]
pub(crate) struct Keepers {
    /// What rooms with a `history` keep.
    pub history: Arc<super::history::History>,
    /// The admin UI's server side.
    pub admin: Arc<super::admin_ui::AdminUi>,
    /// The live trace of one event.
    pub tracer: Arc<super::trace::Tracer>,
}

/// Routes events by the snapshot in force.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    core: Arc<Core>,
}

impl Dispatcher {
    /// A dispatcher reading `snapshot`, counting in `metrics` and `hits`, running scripts
    /// on `pool`, telling `webhooks` what happens, keeping rooms' messages in `history`.
    pub(crate) fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        metrics: Arc<Metrics>,
        hits: Arc<Hits>,
        pool: Arc<ScriptPool>,
        webhooks: Arc<Webhooks>,
        keepers: Keepers,
    ) -> Self {
        let Keepers {
            history,
            admin,
            tracer,
        } = keepers;
        Dispatcher {
            core: Arc::new(Core {
                snapshot,
                metrics,
                hits,
                pool,
                webhooks,
                history,
                admin,
                tracer,
                failures: Throttle::new(FAILURE_LOG_INTERVAL),
            }),
        }
    }
}

/// The admin UI's settings and the adapter of its namespace, when there is one.
fn admin_ui(snapshot: &Snapshot) -> Option<(&AdminUiSettings, &Arc<dyn Adapter>)> {
    let settings = snapshot.routes.admin_ui.as_ref()?;
    Some((settings, snapshot.adapters.get(&settings.namespace)?))
}

impl Core {
    /// Run `route` for `socket`; `event` is `None` for connect and disconnect routes.
    /// Returns the work left when the route reaches a script.
    fn run(
        self: &Arc<Self>,
        snapshot: &Arc<Snapshot>,
        adapter: &Arc<dyn Adapter>,
        socket: &Arc<Socket>,
        route: &Route,
        name: &ByteString,
        event: Option<&Event>,
    ) -> Option<Pending> {
        let scope = EventScope::new(socket, adapter.as_ref(), event.map(|e| &e.args[..]));
        let resolved = route.resolve(name, &scope);
        if resolved.skipped > 0 {
            tracing::debug!(
                ns = socket.nsp(),
                event = &**name,
                skipped = resolved.skipped,
                "A template resolved to nothing; route step skipped"
            );
        }
        let mut run = Run::new(
            self,
            &snapshot.routes.limits,
            adapter.as_ref(),
            socket,
            name,
            event,
        );
        let mut actions = resolved.actions.into_iter().peekable();
        while let Some(action) = actions.next() {
            let deferred = match action {
                Action::Script(script) => {
                    match self.first_attempt(snapshot, adapter, socket, name, event, &script) {
                        Attempted::Done(Some(out)) => {
                            run.apply(out);
                            continue;
                        }
                        // A failed script loses the rest of the event: no ack.
                        Attempted::Done(None) => return None,
                        Attempted::Moved(input) => Deferred::Script(script, Box::new(input)),
                    }
                }
                Action::Http(call) => Deferred::Http(call),
                other => {
                    run.perform_next(other, &mut actions);
                    continue;
                }
            };
            let acked = run.acked();
            return Some(self.clone().continue_later(
                snapshot.clone(),
                adapter.clone(),
                socket.clone(),
                name.to_string(),
                event.cloned(),
                deferred,
                actions.collect(),
                acked,
            ));
        }
        run.finish()
    }

    /// A socket left its namespace: leave its rooms, run the `disconnect` route (what a
    /// script in it leaves to do is returned).
    fn disconnected(
        self: &Arc<Self>,
        socket: &Arc<Socket>,
        reason: DisconnectReason,
    ) -> Option<Pending> {
        let snapshot = self.snapshot.load_full();
        super::metrics::add(&self.metrics.disconnections, 1);
        tracing::info!(
            ns = socket.nsp(),
            socket = %socket.id(),
            remote_addr = %socket.handshake().remote_addr,
            reason = reason.as_str(),
            "Socket disconnected"
        );
        let adapter = snapshot.adapters.get(socket.nsp())?;
        if let Some(pid) = socket.pid()
            && reason.is_recoverable()
        {
            let own = socket.id();
            adapter.save_socket(SavedSocket {
                sid: own,
                pid: pid.to_owned(),
                rooms: adapter
                    .rooms_of(own)
                    .into_iter()
                    .filter(|r| r != own.as_str())
                    .collect(),
                data: socket.data(),
                missed: Vec::new(),
            });
        }
        adapter.remove(socket.id());
        self.webhooks.disconnected(socket, reason);
        if let Some((settings, admin)) = admin_ui(&snapshot) {
            self.admin
                .socket_disconnected(admin.as_ref(), settings, socket, reason.as_str());
        }
        let route = snapshot
            .routes
            .namespace(socket.nsp())
            .and_then(|ns| ns.on_disconnect.as_ref())?;
        let name = ByteString::from_static("disconnect");
        self.run(&snapshot, adapter, socket, route, &name, None)
    }
}

/// Whether `event`'s arguments, as an array, satisfy `schema`; why not.
fn check_arguments(
    schema: &crate::routing::schema::EventSchema,
    event: &Event,
) -> Result<(), String> {
    let mut items: Vec<serde_json::Value> =
        serde_json::from_slice(&event.data).map_err(|e| e.to_string())?;
    if !items.is_empty() {
        items.remove(0); // the event's name
    }
    schema.check(&serde_json::Value::Array(items))
}

impl Dispatcher {
    /// Disconnect `socket` from its namespace from the server side, as a route's
    /// `disconnect` does: the client is told, its rooms left, the `disconnect` route run.
    pub fn disconnect(&self, socket: &Arc<Socket>) {
        if socket.disconnect()
            && let Some(pending) = self
                .core
                .disconnected(socket, DisconnectReason::ServerNamespaceDisconnect)
        {
            tokio::spawn(pending);
        }
    }
}

impl SocketHandler for Dispatcher {
    fn authorize(
        &self,
        nsp: &str,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Authorization {
        let snapshot = self.core.snapshot.load();
        if let Some(settings) = &snapshot.routes.admin_ui
            && settings.namespace == nsp
        {
            return self.core.admin.authorize(settings, auth);
        }
        self.core.authorize(nsp, auth, handshake)
    }

    fn on_connect(&self, socket: &Arc<Socket>) -> Option<Pending> {
        let snapshot = self.core.snapshot.load_full();
        let Some(adapter) = snapshot.adapters.get(socket.nsp()) else {
            socket.disconnect();
            return None;
        };
        adapter.add(socket.clone());
        if let Some((settings, admin)) = admin_ui(&snapshot) {
            if settings.namespace == socket.nsp() {
                self.core.admin.connected(socket, &snapshot, settings);
                return None;
            }
            self.core
                .admin
                .socket_connected(admin.as_ref(), settings, socket, adapter.as_ref());
        }
        self.core.webhooks.connected(socket);
        super::metrics::add(&self.core.metrics.connections, 1);
        tracing::info!(
            ns = socket.nsp(),
            socket = %socket.id(),
            remote_addr = %socket.handshake().remote_addr,
            "Socket connected"
        );
        let ns = snapshot.routes.namespace(socket.nsp())?;
        if let Some(jwt) = ns.auth.as_ref().and_then(|a| a.jwt.as_ref()) {
            self.core.watch_expiry(socket, jwt);
        }
        // Rooms an auth hook named, within the same limits as a route's joins.
        let rooms = socket.take_rooms_to_join();
        if !rooms.is_empty() {
            let mut run = Run::new(
                &self.core,
                &snapshot.routes.limits,
                adapter.as_ref(),
                socket,
                "connect",
                None,
            );
            for room in rooms {
                run.perform(Action::Join(room));
            }
        }
        let route = ns.on_connect.as_ref()?;
        let name = ByteString::from_static("connect");
        self.core
            .run(&snapshot, adapter, socket, route, &name, None)
    }

    fn on_event(&self, socket: &Arc<Socket>, event: Event) -> Option<Pending> {
        // A guard, not a clone: the message path takes no reference count.
        let snapshot = self.core.snapshot.load();
        if let Some((settings, admin)) = admin_ui(&snapshot) {
            if settings.namespace == socket.nsp() {
                let dispatcher = self.clone();
                return self
                    .core
                    .admin
                    .action(&event, &snapshot, settings, move |s| {
                        dispatcher.disconnect(s)
                    });
            }
            self.core
                .admin
                .event_received(admin.as_ref(), settings, socket, &event);
        }
        let (Some(ns), Some(adapter)) = (
            snapshot.routes.namespace(socket.nsp()),
            snapshot.adapters.get(socket.nsp()),
        ) else {
            return None;
        };
        let refresh = ns
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.refresh_event.as_deref());
        self.core.metrics.event(
            socket.nsp(),
            &event.name,
            ns.events.contains_key(&*event.name) || refresh == Some(&*event.name),
        );
        if refresh == Some(&*event.name) {
            return self.core.refresh(&snapshot, socket, &event);
        }
        self.core.webhooks.event(socket, &event);
        self.core
            .tracer
            .on_event(&snapshot.routes, socket, adapter.as_ref(), &event);
        let Some(route) = ns.route(&event.name) else {
            tracing::debug!(ns = socket.nsp(), event = %event.name.escape_debug(), "No route; event dropped");
            return None;
        };
        if let Some(schema) = &route.schema
            && let Err(why) = check_arguments(schema, &event)
        {
            super::metrics::add(&self.core.metrics.invalid_events, 1);
            tracing::debug!(ns = socket.nsp(), event = %event.name.escape_debug(), why = %why, "Arguments refused by the event's schema");
            if let Some(id) = event.id {
                let body = serde_json::json!({ "error": "invalid arguments", "detail": why });
                let _ = socket.ack(id, body.to_string().as_bytes(), no_attachments());
            }
            return None;
        }
        self.core
            .run(&snapshot, adapter, socket, route, &event.name, Some(&event))
    }

    fn on_disconnect(&self, socket: &Arc<Socket>, reason: DisconnectReason) -> Option<Pending> {
        self.core.disconnected(socket, reason)
    }

    fn restore(&self, nsp: String, pid: String, offset: String) -> Restoring {
        let adapter = self.core.snapshot.load().adapters.get(&nsp).cloned();
        Box::pin(async move {
            let saved = adapter?.take_socket(&pid, &offset).await?;
            Some(Restored {
                sid: saved.sid,
                pid: saved.pid,
                rooms: saved.rooms,
                data: saved.data,
                offset,
                missed: saved.missed,
            })
        })
    }

    fn on_recover(&self, socket: &Arc<Socket>, restored: &Restored) {
        let snapshot = self.core.snapshot.load();
        if let Some(adapter) = snapshot.adapters.get(socket.nsp()) {
            adapter.recover(
                socket.clone(),
                &restored.rooms,
                &restored.offset,
                &restored.missed,
            );
            tracing::info!(ns = socket.nsp(), socket = %socket.id(), "Socket recovered");
        }
    }
}
