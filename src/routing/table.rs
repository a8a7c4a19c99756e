//! The compiled configuration: server settings, static mounts, and per namespace its auth
//! rule and routes. `resolve` turns a route and an event into actions, purely.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bytestring::ByteString;

use super::action::{Action, Actions, Args, DataSpec, Recipients, Route, Target};
use super::template::Scope;

/// CORS settings of `[server].cors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    /// Allowed origins; `"*"` allows any.
    pub origins: Vec<String>,
    /// Whether credentials are allowed.
    pub credentials: bool,
}

/// `[server].cookie`, with engine.io's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// Defaults to `io`.
    pub name: String,
    /// Defaults to `/`; `false` in the file leaves `Path` out.
    pub path: Option<String>,
    /// Defaults to true when there is a path.
    pub http_only: bool,
    /// Defaults to `Lax`; `false` in the file leaves it out.
    pub same_site: Option<String>,
}

/// `[server]`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Address to listen on. Defaults to `0.0.0.0:3000`.
    pub listen: String,
    /// The Engine.IO path. Defaults to `/socket.io`.
    pub path: String,
    /// Whether to serve the client bundle. Defaults to true.
    pub serve_client: bool,
    /// `parser = "msgpack"`: clients speak `socket.io-msgpack-parser` instead of socket.io's
    /// default parser. Defaults to false.
    pub msgpack: bool,
    /// Whether long-polling is enabled. Defaults to true.
    pub polling: bool,
    /// Whether WebSocket is enabled. Defaults to true.
    pub websocket: bool,
    /// Defaults to 25 s.
    pub ping_interval: Duration,
    /// Defaults to 20 s.
    pub ping_timeout: Duration,
    /// Defaults to 1,000,000 bytes.
    pub max_payload: usize,
    /// Defaults to 45 s.
    pub connect_timeout: Duration,
    /// Defaults to none.
    pub cors: Option<CorsSettings>,
    /// The session cookie of socket.io's `cookie` option (sticky sessions). Defaults to none.
    pub cookie: Option<CookieSettings>,
    /// A separate address for `/metrics` (and health), so it need not be public. Defaults
    /// to none: `/metrics` is served on `listen`.
    pub admin_listen: Option<String>,
    /// `[server.recovery]`: connection state recovery, when on.
    pub recovery: Option<RecoverySettings>,
    /// `tls = { cert, key }`: HTTPS and WSS on `listen`. Defaults to none (plain HTTP).
    pub tls: Option<super::tls::TlsSettings>,
}

/// `[server.recovery]`: a client back within `max_disconnection` gets its socket back — id,
/// rooms, `socket.data` — and the broadcasts it missed, as socket.io's
/// `connectionStateRecovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverySettings {
    /// How long a disconnected socket can be recovered. Defaults to 2 minutes.
    pub max_disconnection: Duration,
    /// A recovered socket is not authorized again (socket.io's `skipMiddlewares`).
    /// Defaults to false.
    pub skip_auth: bool,
    /// Bytes of broadcasts kept for replay, per namespace. Defaults to 16 MB.
    pub buffer: usize,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            max_disconnection: Duration::from_secs(120),
            skip_auth: false,
            buffer: 16_000_000,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "0.0.0.0:3000".to_owned(),
            path: "/socket.io".to_owned(),
            serve_client: true,
            msgpack: false,
            polling: true,
            websocket: true,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(45),
            cors: None,
            cookie: None,
            admin_listen: None,
            recovery: None,
            tls: None,
        }
    }
}

/// `[cluster]`: the nodes this one shares rooms and broadcasts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The Redis URL (`url`, or read from the variable `url_env`).
    pub url: String,
    /// The channel prefix (`key`). Defaults to `socket.io`, as `@socket.io/redis-adapter`.
    pub key: String,
    /// How long a request to the other nodes may take. Defaults to 5 s.
    pub request_timeout: Duration,
    /// How often this node tells the others it lives (`heartbeat`, default 5 s); one silent
    /// for three heartbeats is dead and its sockets leave the rooms others count.
    pub heartbeat: Duration,
    /// `adapter = "redis-streams"`: the stream shared with `@socket.io/redis-streams-adapter`;
    /// `None` for the classic `redis` adapter.
    pub streams: Option<StreamSettings>,
}

/// The Redis stream of `adapter = "redis-streams"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's key (`stream`, default `socket.io`, as the Node adapter's `streamName`).
    pub name: String,
    /// About how many entries it keeps (`max_len`, default 10,000: `XADD … MAXLEN ~`).
    pub max_len: u64,
}

/// One `[[static]]` mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticMount {
    /// URL prefix, starting and not ending with `/` (except `/` itself).
    pub mount: String,
    /// The folder served, absolute or relative to the working directory.
    pub dir: PathBuf,
    /// File served for folder URLs.
    pub index: Option<String>,
}

/// `[namespaces."X".auth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRule {
    /// Accepted `handshake.auth.token` values.
    pub tokens: Vec<String>,
    /// The `connect_error` message. Defaults to "unauthorized".
    pub message: String,
    /// A Rhai `authorize(handshake)` that decides instead of the tokens.
    pub script: Option<super::action::ScriptRef>,
    /// Signed tokens decide instead of the tokens.
    pub jwt: Option<super::jwt::JwtRule>,
    /// The app's backend decides (after `jwt`, when both are set).
    pub hook: Option<super::jwt::HookRule>,
}

/// Routes of one namespace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NamespaceRoutes {
    /// Who may connect; everyone when `None`.
    pub auth: Option<AuthRule>,
    /// Routes by event name.
    pub events: HashMap<String, Route>,
    /// The `"*"` route.
    pub catch_all: Option<Route>,
    /// Run when a socket joins.
    pub on_connect: Option<Route>,
    /// Run when a socket leaves.
    pub on_disconnect: Option<Route>,
    /// `presence = { event, data }`: joins and leaves announced to the room.
    pub presence: Option<PresenceSettings>,
}

/// `presence = { event = "presence", data = ["name"] }` on a namespace: each room is told
/// who joins and leaves it, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceSettings {
    /// The event the room receives.
    pub event: String,
    /// Keys of `socket.data` sent along.
    pub data: Vec<String>,
}

impl NamespaceRoutes {
    /// The route of `event`: its own, else the catch-all.
    pub fn route(&self, event: &str) -> Option<&Route> {
        self.events.get(event).or(self.catch_all.as_ref())
    }
}

/// The whole compiled file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteTable {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[[static]]`, in file order.
    pub statics: Vec<StaticMount>,
    /// Namespaces by name.
    pub namespaces: BTreeMap<String, NamespaceRoutes>,
    /// `[cluster]`; `None` runs this node alone.
    pub cluster: Option<ClusterSettings>,
    /// `[limits]`.
    pub limits: super::limits::LimitSettings,
    /// `[backend]`.
    pub backend: super::backend::BackendSettings,
    /// `[api]`; `None`: no server API.
    pub api: Option<super::api::ApiSettings>,
    /// `[admin_ui]`; `None`: no admin UI.
    pub admin_ui: Option<super::admin_ui::AdminUiSettings>,
    /// `[[webhooks]]`, in file order.
    pub webhooks: Vec<super::webhooks::WebhookSettings>,
    /// What is valid but likely a mistake (`check` prints them), located, in file order.
    pub warnings: Option<super::diag::Report>,
}

impl RouteTable {
    /// A declared namespace.
    pub fn namespace(&self, name: &str) -> Option<&NamespaceRoutes> {
        self.namespaces.get(name)
    }

    /// Every file the routes read besides routes.toml — scripts, public keys, the TLS
    /// certificate and key — each once: a change to one is a change of the configuration.
    pub fn files(&self) -> Vec<&std::path::Path> {
        let mut out: Vec<&std::path::Path> = self
            .scripts()
            .into_iter()
            .map(|s| s.path.as_path())
            .collect();
        if let Some(tls) = &self.server.tls {
            out.push(&tls.cert_path);
            out.push(&tls.key_path);
        }
        for ns in self.namespaces.values() {
            let routes = ns.events.values().chain(&ns.catch_all);
            for schema in routes.filter_map(|r| r.schema.as_ref()) {
                if !out.contains(&schema.path.as_path()) {
                    out.push(&schema.path);
                }
            }
            if let Some(super::jwt::JwtKey::PublicKey { path, .. }) = ns
                .auth
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|j| &j.key)
                && !out.contains(&path.as_path())
            {
                out.push(path);
            }
        }
        out
    }

    /// Every script the routes name (routes and auth), each once, in a stable order.
    pub fn scripts(&self) -> Vec<&super::action::ScriptRef> {
        let mut out: Vec<&super::action::ScriptRef> = Vec::new();
        for ns in self.namespaces.values() {
            let routes = ns
                .events
                .values()
                .chain(&ns.catch_all)
                .chain(&ns.on_connect)
                .chain(&ns.on_disconnect);
            let steps = routes
                .flat_map(|r| &r.steps)
                .filter_map(|s| s.script.as_ref());
            out.extend(steps.chain(ns.auth.as_ref().and_then(|a| a.script.as_ref())));
        }
        out.sort_by(|a, b| (&a.path, &a.function).cmp(&(&b.path, &b.function)));
        out.dedup();
        out
    }
}

/// Actions for one event, and how many steps were skipped because a template resolved to
/// nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    /// What to do, in order.
    pub actions: Actions,
    /// Steps that did nothing.
    pub skipped: usize,
}

impl Route {
    /// Whether any template of the route reads the event's arguments.
    pub fn reads_args(&self) -> bool {
        let data_reads = |d: &DataSpec| match d {
            DataSpec::Forward => false,
            DataSpec::List(t) => t.reads_args(),
            DataSpec::Values(vs) => vs.iter().any(|v| v.reads_args()),
        };
        self.steps.iter().any(|s| {
            s.join.as_ref().is_some_and(|t| t.reads_args())
                || s.leave.as_ref().is_some_and(|t| t.reads_args())
                || s.ack.as_ref().is_some_and(data_reads)
                || s.script.is_some()
                || s.deliver.as_ref().is_some_and(|d| {
                    data_reads(&d.data)
                        || matches!(&d.target, Target::Room { room, .. } if room.reads_args())
                })
        })
    }

    /// The actions for `event`. The first step with an `ack` answers the ack.
    pub fn resolve(&self, event: &ByteString, scope: &dyn Scope) -> Resolved {
        let mut out = Resolved::default();
        self.walk(event, scope, |step| match step {
            StepOutcome::WhenFalse => {}
            StepOutcome::Unresolved => out.skipped += 1,
            StepOutcome::Ran {
                actions,
                ack_unresolved,
            } => {
                out.skipped += usize::from(ack_unresolved);
                if out.actions.is_empty() {
                    out.actions = actions;
                } else {
                    out.actions.extend(actions);
                }
            }
        });
        out
    }

    /// What each step does for `event`, in order (`switchboard explain` shows it; `resolve`
    /// is its sum). The first step with an `ack` answers the ack.
    pub fn trace(&self, event: &ByteString, scope: &dyn Scope) -> Vec<StepOutcome> {
        let mut out = Vec::with_capacity(self.steps.len());
        self.walk(event, scope, |step| out.push(step));
        out
    }

    /// What each step does for `event`, in order, told to `each` as it is known.
    fn walk(&self, event: &ByteString, scope: &dyn Scope, mut each: impl FnMut(StepOutcome)) {
        let named = super::template::Named {
            scope,
            event,
            room: None,
        };
        let base: &dyn Scope = &named;
        let mut acked = false;
        for step in &self.steps {
            if step.when.as_ref().is_some_and(|w| !w.holds(base)) {
                each(StepOutcome::WhenFalse);
                continue;
            }
            // `{room.*}` reads the room the step names.
            let with_room = step.reads_room.then(|| super::template::Named {
                scope,
                event,
                room: step_room(step, base),
            });
            let scope: &dyn Scope = with_room.as_ref().map_or(base, |s| s as &dyn Scope);
            let Some(mut actions) = resolve_step(step, event, scope) else {
                each(StepOutcome::Unresolved);
                continue;
            };
            let mut ack_unresolved = false;
            if let Some(ack) = &step.ack
                && !acked
            {
                acked = true;
                match resolve_data(ack, scope) {
                    Some(args) => actions.push(Action::Ack(args)),
                    None => ack_unresolved = true,
                }
            }
            each(StepOutcome::Ran {
                actions,
                ack_unresolved,
            });
        }
    }
}

/// What one step of a route did.
// Made and taken apart at once, on the stack: boxing the actions would allocate per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Its `when` did not hold: skipped.
    WhenFalse,
    /// A template it needs resolved to nothing (an argument or field missing): skipped.
    Unresolved,
    /// It ran: these actions; `ack_unresolved` when its ack's template resolved to nothing.
    Ran {
        /// What it does, in order.
        actions: Actions,
        /// Its ack could not be built.
        ack_unresolved: bool,
    },
}

/// The room `step` names — its target room, else the room it joins, else the one it leaves.
fn step_room(step: &super::action::Step, scope: &dyn Scope) -> Option<super::template::StepRoom> {
    let joined = step.join.as_ref().and_then(|t| t.resolve_text(scope));
    let left = step.leave.as_ref().and_then(|t| t.resolve_text(scope));
    let target = match step.deliver.as_ref().map(|d| &d.target) {
        Some(Target::Room { room, .. }) => room.resolve_text(scope),
        _ => None,
    };
    let name = target.or_else(|| joined.clone()).or_else(|| left.clone())?;
    Some(super::template::StepRoom {
        joins: joined.as_deref() == Some(name.as_str()),
        leaves: left.as_deref() == Some(name.as_str()),
        name,
    })
}

fn resolve_step(
    step: &super::action::Step,
    event: &ByteString,
    scope: &dyn Scope,
) -> Option<Actions> {
    if let Some(script) = &step.script {
        return Some(smallvec::smallvec![Action::Script(script.clone())]);
    }
    if let Some(call) = &step.http {
        return Some(smallvec::smallvec![Action::Http(call.clone())]);
    }
    let mut actions = Actions::new();
    if let Some(join) = &step.join {
        let room = join.resolve_text(scope)?;
        actions.push(Action::Join(room.clone()));
        if step.replay {
            actions.push(Action::Replay(room));
        }
    }
    if let Some(leave) = &step.leave {
        actions.push(Action::Leave(leave.resolve_text(scope)?));
    }
    if let Some(deliver) = &step.deliver {
        let to = match (&deliver.namespace, &deliver.target) {
            (Some(namespace), Target::Room { room, .. }) => Recipients::Elsewhere {
                namespace: namespace.clone(),
                room: Some(room.resolve_text(scope)?),
            },
            (Some(namespace), _) => Recipients::Elsewhere {
                namespace: namespace.clone(),
                room: None,
            },
            (None, target) => match target {
                Target::Emit => Recipients::Sender,
                Target::Broadcast => Recipients::Namespace {
                    include_sender: false,
                },
                Target::Io => Recipients::Namespace {
                    include_sender: true,
                },
                Target::Room {
                    room,
                    include_sender,
                } => Recipients::Room {
                    room: room.resolve_text(scope)?,
                    include_sender: *include_sender,
                },
            },
        };
        let remember = match (&to, deliver.history) {
            (Recipients::Room { room, .. }, Some(spec)) => Some(Action::Remember {
                room: room.clone(),
                spec,
            }),
            _ => None,
        };
        actions.push(Action::Deliver {
            to,
            event: deliver.event.clone().unwrap_or_else(|| event.clone()),
            args: resolve_data(&deliver.data, scope)?,
            volatile: deliver.volatile,
        });
        actions.extend(remember);
    }
    Some(actions)
}

fn resolve_data(data: &DataSpec, scope: &dyn Scope) -> Option<Args> {
    match data {
        DataSpec::Forward => Some(Args::Forward),
        DataSpec::List(t) if t.is_args() => Some(Args::Forward),
        DataSpec::List(t) => Some(match t.resolve(scope)? {
            serde_json::Value::Array(items) => Args::Values(items),
            other => Args::Values(vec![other]),
        }),
        DataSpec::Values(vs) => Some(Args::Values(
            vs.iter()
                .map(|v| v.resolve(scope))
                .collect::<Option<Vec<_>>>()?,
        )),
    }
}
