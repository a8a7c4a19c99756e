//! `[admin_ui]`: the server side of `@socket.io/admin-ui`, as its `instrument()` does for a
//! Node server — a namespace (`/admin`) that the dashboard logs into with basic auth
//! (bcrypt), told the server's stats every 2 s, every socket at login and then each
//! connection, disconnection, room change and received event; and, unless read-only, the
//! UI's actions: emit, join, leave, disconnect (on every node of a cluster).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::snapshot::Snapshot;
use crate::adapter::{Adapter, BroadcastOptions};
use crate::engineio::{Handshake, Pending};
use crate::routing::admin_ui::AdminUiSettings;
use crate::socketio::packet::Args;
use crate::socketio::{Admission, Authorization, ConnectRefusal, Encoded, Event, Socket};

/// Sessions remembered (a UI reconnecting with its `sessionId`); the oldest go first.
const SESSIONS: usize = 1_000;
/// Password checks at once (bcrypt is slow on purpose); more logins are refused meanwhile.
const CHECKS: usize = 2;
/// How often the UI is told the server's stats, as `instrument()` does.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// The key of `socket.data` that carries a new session id to the connect.
const NEW_SESSION: &str = "_adminSession";

/// The dashboard's server side, shared by the dispatcher and the room observers.
#[derive(Debug)]
pub struct AdminUi {
    sessions: Mutex<VecDeque<String>>,
    checks: Arc<Semaphore>,
    started: Instant,
    /// Totals at the last stats, for the per-interval counts.
    last: Mutex<Totals>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    bytes_in: u64,
    bytes_out: u64,
    connections: u64,
    disconnections: u64,
}

impl Default for AdminUi {
    fn default() -> Self {
        AdminUi {
            sessions: Mutex::new(VecDeque::new()),
            checks: Arc::new(Semaphore::new(CHECKS)),
            started: Instant::now(),
            last: Mutex::default(),
        }
    }
}

/// The time as the UI reads it (a JavaScript `Date` in JSON: RFC 3339, UTC).
fn now() -> Value {
    let now = time::OffsetDateTime::now_utc();
    Value::String(
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    )
}

impl AdminUi {
    /// Whether a CONNECT to the UI's namespace may join: a known `sessionId`, or the user
    /// name and a password that matches the hash (checked off the reactor, a few at once).
    pub fn authorize(
        self: &Arc<Self>,
        settings: &AdminUiSettings,
        auth: Option<&serde_json::value::RawValue>,
    ) -> Authorization {
        let auth: Value = auth
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null);
        if let Some(id) = auth["sessionId"].as_str()
            && self
                .sessions
                .lock()
                .expect("sessions lock")
                .iter()
                .any(|s| s == id)
        {
            return Authorization::Ready(Ok(Admission::default()));
        }
        let refused = || {
            Err(ConnectRefusal {
                message: "invalid credentials".to_owned(),
                data: None,
            })
        };
        let (Some(user), Some(password)) = (auth["username"].as_str(), auth["password"].as_str())
        else {
            return Authorization::Ready(refused());
        };
        if user != settings.username {
            return Authorization::Ready(refused());
        }
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            return Authorization::Ready(refused());
        };
        let (password, hash, ui) = (
            password.to_owned(),
            settings.password_hash.clone(),
            self.clone(),
        );
        Authorization::Pending(Box::pin(async move {
            let verified = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                bcrypt::verify(password, &hash).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if !verified {
                return refused();
            }
            let id = crate::engineio::Sid::random().to_string();
            let mut sessions = ui.sessions.lock().expect("sessions lock");
            if sessions.len() == SESSIONS {
                sessions.pop_front();
            }
            sessions.push_back(id.clone());
            Ok(Admission {
                data: Some(json!({ NEW_SESSION: id })),
                ..Admission::default()
            })
        }))
    }

    /// A dashboard joined: its session id (a new login), the features it may use, and every
    /// socket of every namespace (walked off the reactor).
    pub fn connected(
        &self,
        socket: &Arc<Socket>,
        snapshot: &Arc<Snapshot>,
        settings: &AdminUiSettings,
    ) {
        let mut data = socket.data();
        if let Some(id) = data.as_object_mut().and_then(|d| d.remove(NEW_SESSION)) {
            socket.set_data(data);
            emit(socket, "session", &[id]);
        }
        let mut features = if settings.readonly {
            vec![]
        } else {
            vec![
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]
        };
        features.extend(["AGGREGATED_EVENTS", "ALL_EVENTS"]);
        emit(
            socket,
            "config",
            &[json!({ "supportedFeatures": features })],
        );
        let (socket, snapshot) = (socket.clone(), snapshot.clone());
        tokio::task::spawn_blocking(move || {
            let all: Vec<Value> = snapshot
                .adapters
                .iter()
                .flat_map(|(nsp, adapter)| {
                    adapter
                        .sockets(&BroadcastOptions::all())
                        .iter()
                        .map(|s| serialize(s, nsp, adapter.as_ref()))
                        .collect::<Vec<_>>()
                })
                .collect();
            emit(&socket, "all_sockets", &[Value::Array(all)]);
        });
    }

    /// What the dashboard asks: `emit`, `join`, `leave`, `_disconnect`, each on the sockets
    /// of a namespace (or of one room or socket of it), on every node. Nothing when
    /// read-only. `disconnect` disconnects one socket as a server-side disconnect does. A walk
    /// over sockets is returned, to run off the reactor before the dashboard's next packet.
    pub fn action(
        &self,
        event: &Event,
        snapshot: &Arc<Snapshot>,
        settings: &AdminUiSettings,
        disconnect: impl Fn(&Arc<Socket>) + Send + 'static,
    ) -> Option<Pending> {
        if settings.readonly {
            return None;
        }
        let args = serde_json::from_slice::<Vec<Value>>(&event.data).ok()?;
        let nsp = args.get(1).and_then(Value::as_str)?.to_owned();
        let adapter = snapshot.adapters.get(&nsp)?.clone();
        // The filter: a room (or a socket's id); none for the whole namespace.
        let filter = |i: usize| BroadcastOptions {
            rooms: args
                .get(i)
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty())
                .map(|f| vec![f.to_owned()])
                .unwrap_or_default(),
            ..BroadcastOptions::default()
        };
        match args.first().and_then(Value::as_str) {
            Some("emit") => {
                let name = args.get(3).and_then(Value::as_str)?;
                let rest: Vec<String> = args[4..].iter().map(Value::to_string).collect();
                let packet = Encoded::event(
                    &nsp,
                    name,
                    Args::Raw(rest.join(",").as_bytes()),
                    Arc::from([]),
                    None,
                );
                adapter.broadcast(&packet, &filter(2));
                None
            }
            Some(kind @ ("join" | "leave")) => {
                let room = args.get(2).and_then(Value::as_str).map(str::to_owned)?;
                let (opts, join) = (filter(3), kind == "join");
                off_reactor(move || {
                    for s in adapter.sockets(&opts) {
                        if join {
                            adapter.join(s.id(), &room);
                        } else {
                            adapter.leave(s.id(), &room);
                        }
                    }
                    if join {
                        adapter.remote_join(&opts, &[room]);
                    } else {
                        adapter.remote_leave(&opts, &[room]);
                    }
                })
            }
            Some("_disconnect") => {
                let close = args.get(2).and_then(Value::as_bool).unwrap_or(false);
                let opts = filter(3);
                off_reactor(move || {
                    for s in adapter.sockets(&opts) {
                        disconnect(&s);
                        if close {
                            s.session().close(crate::engineio::CloseReason::ForcedClose);
                        }
                    }
                    adapter.remote_disconnect(&opts, close);
                })
            }
            _ => None,
        }
    }

    /// The server's stats, for every dashboard (on every node).
    pub fn stats(
        &self,
        snapshot: &Snapshot,
        engine: &crate::engineio::Stats,
        sessions: impl FnOnce() -> (usize, usize),
        metrics: &super::metrics::Metrics,
        settings: &AdminUiSettings,
    ) {
        let Some(admin) = snapshot.adapters.get(&settings.namespace) else {
            return;
        };
        let totals = Totals {
            bytes_in: engine.bytes_in.load(Ordering::Relaxed),
            bytes_out: engine.bytes_out.load(Ordering::Relaxed),
            connections: load(&metrics.connections),
            disconnections: load(&metrics.disconnections),
        };
        let last = std::mem::replace(&mut *self.last.lock().expect("stats lock"), totals);
        if admin.socket_count() == 0 {
            return;
        }
        let second = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            * 1000;
        let events: Vec<Value> = [
            ("rawConnection", totals.connections - last.connections),
            (
                "rawDisconnection",
                totals.disconnections - last.disconnections,
            ),
            ("bytesIn", totals.bytes_in - last.bytes_in),
            ("bytesOut", totals.bytes_out - last.bytes_out),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, count)| json!({ "timestamp": second, "type": kind, "count": count }))
        .collect();
        let sessions = sessions();
        let hostname = hostname();
        let namespaces: Vec<Value> = snapshot
            .adapters
            .iter()
            .map(|(name, a)| json!({ "name": name, "socketsCount": a.socket_count() }))
            .collect();
        let stats = json!({
            "serverId": format!("{hostname}#{}", std::process::id()),
            "hostname": hostname,
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": sessions.0,
            "pollingClientsCount": sessions.1,
            "aggregatedEvents": events,
            "namespaces": namespaces,
        });
        tell(
            admin.as_ref(),
            &settings.namespace,
            "server_stats",
            &[stats],
        );
    }

    /// A socket joined its namespace.
    pub fn socket_connected(
        &self,
        admin: &dyn Adapter,
        settings: &AdminUiSettings,
        socket: &Socket,
        adapter: &dyn Adapter,
    ) {
        if admin.socket_count() > 0 {
            let info = serialize(socket, socket.nsp(), adapter);
            tell(
                admin,
                &settings.namespace,
                "socket_connected",
                &[info, now()],
            );
        }
    }

    /// A socket left its namespace.
    pub fn socket_disconnected(
        &self,
        admin: &dyn Adapter,
        settings: &AdminUiSettings,
        socket: &Socket,
        reason: &str,
    ) {
        if admin.socket_count() > 0 {
            let args = [
                json!(socket.nsp()),
                json!(socket.id().as_str()),
                json!(reason),
                now(),
            ];
            tell(admin, &settings.namespace, "socket_disconnected", &args);
        }
    }

    /// A socket joined or left a room.
    pub fn room_changed(
        &self,
        admin: &dyn Adapter,
        settings: &AdminUiSettings,
        nsp: &str,
        room: &str,
        sid: &str,
        joined: bool,
    ) {
        if admin.socket_count() > 0 {
            let event = if joined { "room_joined" } else { "room_left" };
            tell(
                admin,
                &settings.namespace,
                event,
                &[json!(nsp), json!(room), json!(sid), now()],
            );
        }
    }

    /// A socket sent an event (its arguments; binary ones as the placeholders they are).
    pub fn event_received(
        &self,
        admin: &dyn Adapter,
        settings: &AdminUiSettings,
        socket: &Socket,
        event: &Event,
    ) {
        if admin.socket_count() > 0 {
            let args: Value = serde_json::from_slice(&event.data).unwrap_or(Value::Null);
            let at = [
                json!(socket.nsp()),
                json!(socket.id().as_str()),
                args,
                now(),
            ];
            tell(admin, &settings.namespace, "event_received", &at);
        }
    }
}

/// `walk` on the blocking pool, as work the dashboard's connection awaits.
fn off_reactor(walk: impl FnOnce() + Send + 'static) -> Option<Pending> {
    let handle = tokio::task::spawn_blocking(walk);
    Some(Box::pin(async move {
        let _ = handle.await;
    }))
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "switchboard".to_owned())
}

/// A socket as the dashboard lists it (`serialize()` of `instrument()`).
fn serialize(socket: &Socket, nsp: &str, adapter: &dyn Adapter) -> Value {
    let handshake: &Handshake = socket.handshake();
    let value = socket.handshake_value();
    let session = socket.session();
    let mut data = socket.data();
    if let Some(d) = data.as_object_mut() {
        d.remove(NEW_SESSION);
    }
    json!({
        "id": socket.id().as_str(),
        "clientId": session.sid().as_str().chars().take(12).collect::<String>(),
        "transport": session.transport().as_str(),
        "nsp": nsp,
        "data": data,
        "handshake": {
            "address": handshake.client_ip.to_string(),
            "headers": value["headers"],
            "query": value["query"],
        },
        "rooms": adapter.rooms_of(socket.id()),
    })
}

/// `event` with `args` to one socket.
fn emit(socket: &Socket, event: &str, args: &[Value]) {
    let raw = args
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let _ = socket.emit(event, raw.as_bytes(), Arc::from([] as [Bytes; 0]));
}

/// `event` with `args` to every dashboard.
fn tell(admin: &dyn Adapter, nsp: &str, event: &str, args: &[Value]) {
    let raw = args
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let packet = Encoded::event(nsp, event, Args::Raw(raw.as_bytes()), Arc::from([]), None);
    admin.broadcast(&packet, &BroadcastOptions::all());
}
