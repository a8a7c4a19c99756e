//! COMPOSITION — the only layer that sees all others: loads routes.toml into a
//! [`Snapshot`], wires the Engine.IO endpoint, the Socket.IO layer and the dispatcher, and
//! swaps in new snapshots when the file changes.

mod admin_ui;
pub use admin_ui::STATS_INTERVAL as ADMIN_UI_STATS_INTERVAL;
mod api;
mod dispatch;
mod history;
mod metrics;
mod plan;
mod presence;
mod reload;
mod scope;
mod snapshot;
mod trace;
mod watch;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use crate::engineio::{Admission, Cookie, Cors, Engine, EngineConfig};
use crate::limits::Hits;
use crate::routing::{self, Report, RouteTable};
use crate::scripting::{CompileError, ScriptLimits, ScriptPool, ScriptSet};
use crate::socketio::{SocketIo, SocketIoConfig};

pub use api::{ApiError, Selector, SocketInfo};
pub use dispatch::Dispatcher;
pub use metrics::{Metrics, OTHER_EVENT};
pub use plan::{Plan, plan};
pub use reload::{ReloadOutcome, ReloadStatus};
pub use snapshot::Snapshot;
pub use watch::{WatchError, Watcher, watch};
pub use webhooks::Webhooks;

/// The Engine.IO endpoint with switchboard's Socket.IO layer on top.
pub type SwitchboardEngine = Engine<SocketIo<Dispatcher>>;

/// Why routes.toml could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has problems; each is in the report.
    #[error("{0}")]
    Invalid(Report),
    /// Scripts it names do not compile.
    #[error("{}", .0.iter().map(|e| format!("{e}\n")).collect::<String>())]
    Scripts(Vec<CompileError>),
}

/// A compiled routes file and the hash of what it was compiled from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The compiled routes.
    pub routes: RouteTable,
    /// The scripts they name, compiled.
    pub scripts: ScriptSet,
    /// SHA-256 of the file's bytes and of every file it names (scripts, keys, TLS), in hex.
    pub hash: String,
    /// Each file it names, with the SHA-256 of its bytes: what a reload compares to say
    /// which of them changed.
    pub files: Vec<(PathBuf, String)>,
}

/// Compile the scripts `routes` names, with the limits of its `[limits]`.
pub fn compile_scripts(routes: &RouteTable) -> Result<ScriptSet, LoadError> {
    let limits = ScriptLimits {
        operations: routes.limits.script_operations,
        output_bytes: routes.limits.script_output_bytes,
        time: routes.limits.script_timeout,
    };
    ScriptSet::compile(&routes.scripts(), limits).map_err(LoadError::Scripts)
}

/// Read and compile the routes file at `path`.
pub fn load_routes(path: &Path) -> Result<RouteTable, LoadError> {
    load(path).map(|l| l.routes)
}

/// Read and compile the routes file at `path`, hashing what was read.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// [`load`], with environment variables (`token_env`, `secret_env`) read by `var`.
pub fn load_with_env(
    path: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_text(source, &path.display().to_string(), routes_dir(path), var)
}

/// The folder the paths a routes file names are read from: the file's own (`.` for a bare
/// file name).
pub fn routes_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Compile the routes `source` (named `name`, its paths relative to `base_dir`), hashing it
/// and what it names.
fn load_text(
    source: String,
    name: &str,
    base_dir: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    let env = routing::Env { base_dir, var };
    let routes = routing::compile(&source, name, &env).map_err(LoadError::Invalid)?;
    let scripts = compile_scripts(&routes)?;
    // A script or key change is a config change: the hash covers every file in force.
    let mut bytes = source.into_bytes();
    let mut files = Vec::new();
    for file in routes.files() {
        let content = std::fs::read(file).unwrap_or_default();
        files.push((file.to_owned(), content_hash(&content)));
        bytes.extend_from_slice(&content);
    }
    Ok(Loaded {
        routes,
        scripts,
        hash: content_hash(&bytes),
        files,
    })
}

/// SHA-256 of `bytes` in hex: the config hash `/healthz` shows.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the running configuration came from, for reloads.
#[derive(Debug)]
struct Source {
    /// The routes file.
    path: PathBuf,
    /// `[server].listen` as the file had it when the server started (before any override).
    file_listen: String,
}

/// The running application: the snapshot in force and the endpoint serving it.
#[derive(Debug)]
pub struct App {
    /// The admin UI's server side (`[admin_ui]`).
    admin: Arc<admin_ui::AdminUi>,
    /// The live trace of one event (`switchboard trace`), when one runs.
    tracer: Arc<trace::Tracer>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// Routes events; the server API disconnects sockets through it.
    dispatcher: Dispatcher,
    /// `[[webhooks]]` in force.
    webhooks: Arc<Webhooks>,
    /// What adapters tell of room changes: webhooks and presence.
    observers: Arc<presence::Observers>,
    engine: Arc<SwitchboardEngine>,
    metrics: Arc<Metrics>,
    hits: Arc<Hits>,
    source: Option<Source>,
    status: Mutex<ReloadStatus>,
    /// Counts reload attempts that read new content (applied or refused).
    attempts: tokio::sync::watch::Sender<u64>,
    started: Instant,
}

impl App {
    /// The live trace of one event (`switchboard trace`).
    pub fn tracer(&self) -> &trace::Tracer {
        &self.tracer
    }

    /// What a reload to the routes file `source` (read as if it were the one in force, from
    /// the same folder) would do to the routes in force.
    pub fn plan_text(&self, source: &str) -> Result<plan::Plan, LoadError> {
        let path = self
            .source
            .as_ref()
            .map_or_else(|| PathBuf::from("routes.toml"), |s| s.path.clone());
        let after = load_text(
            source.to_owned(),
            &path.display().to_string(),
            routes_dir(&path),
            &|name| std::env::var(name).ok(),
        )?;
        let snapshot = self.snapshot.load();
        let files = self.status.lock().expect("status lock").files.clone();
        Ok(plan::between(&snapshot.routes, &files, after))
    }

    /// Tell the admin UI's dashboards the server's stats (every
    /// [`admin_ui::STATS_INTERVAL`]; nothing without `[admin_ui]` or a dashboard).
    pub fn admin_ui_tick(&self) {
        let snapshot = self.snapshot.load();
        let Some(settings) = &snapshot.routes.admin_ui else {
            return;
        };
        let engine = self.engine();
        self.admin.stats(
            &snapshot,
            engine.stats(),
            || {
                let (polling, websocket) = engine.sessions_by_transport();
                (polling + websocket, polling)
            },
            &self.metrics,
            settings,
        );
    }
}

impl App {
    /// An application serving `routes`, with no file behind it (it cannot reload). Scripts
    /// that do not compile are logged and left out; [`compile_scripts`] checks them first.
    pub fn new(routes: RouteTable) -> App {
        let scripts = compile_scripts(&routes).unwrap_or_else(|e| {
            tracing::error!("Scripts left out:\n{e}");
            ScriptSet::default()
        });
        App::build(routes, scripts, None, String::new())
    }

    /// An application serving the routes file at `path`; `listen` overrides
    /// `[server].listen`. Reloads re-read the same file.
    pub fn load(path: &Path, listen: Option<String>) -> Result<App, LoadError> {
        let Loaded {
            mut routes,
            scripts,
            hash,
            files,
        } = load(path)?;
        if let Some(report) = &routes.warnings {
            for d in &report.diagnostics {
                tracing::warn!("{}: {}", report.location(d), d.message);
            }
        }
        let file_listen = routes.server.listen.clone();
        if let Some(listen) = listen {
            routes.server.listen = listen;
        }
        let source = Source {
            path: path.to_owned(),
            file_listen,
        };
        let app = App::build(routes, scripts, Some(source), hash);
        app.status.lock().expect("status lock").files = files;
        Ok(app)
    }

    fn build(routes: RouteTable, scripts: ScriptSet, source: Option<Source>, hash: String) -> App {
        let engine_config = engine_config(&routes);
        let socketio_config = socketio_config(&routes);
        let metrics = Arc::new(Metrics::default());
        let hits = Arc::new(Hits::default());
        let webhooks = Webhooks::new();
        webhooks.configure(&routes.webhooks);
        let history = Arc::new(history::History::default());
        let admin = Arc::new(admin_ui::AdminUi::default());
        let tracer = Arc::new(trace::Tracer::default());
        let observers = presence::Observers::new(webhooks.clone(), history.clone(), admin.clone());
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::new(
            routes,
            scripts,
            None,
            &metrics.cluster,
            &(observers.clone() as Arc<dyn crate::adapter::RoomObserver>),
        )));
        observers.watch(&snapshot);
        let pool = Arc::new(ScriptPool::per_core());
        let dispatcher = Dispatcher::new(
            snapshot.clone(),
            metrics.clone(),
            hits.clone(),
            pool,
            webhooks.clone(),
            dispatch::Keepers {
                history,
                admin: admin.clone(),
                tracer: tracer.clone(),
            },
        );
        let engine = Engine::with_hits(
            SocketIo::new(dispatcher.clone(), socketio_config, hits.clone()),
            engine_config,
            hits.clone(),
        );
        App {
            admin,
            tracer,
            snapshot,
            dispatcher,
            webhooks,
            observers,
            engine,
            metrics,
            hits,
            source,
            status: Mutex::new(ReloadStatus::new(hash)),
            attempts: tokio::sync::watch::Sender::new(0),
            started: Instant::now(),
        }
    }

    /// The webhooks in force.
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// Application counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Limits hit by peers, counted by limit.
    pub fn hits(&self) -> &Hits {
        &self.hits
    }

    /// The Engine.IO endpoint.
    pub fn engine(&self) -> &Arc<SwitchboardEngine> {
        &self.engine
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The routes file, if the app was loaded from one.
    pub fn source_path(&self) -> Option<&Path> {
        self.source.as_ref().map(|s| s.path.as_path())
    }

    /// Changes each time a reload applies or refuses new content: a way to await reloads.
    pub fn reload_attempts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.attempts.subscribe()
    }

    /// When the app started.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// Engine.IO settings from `[server]` and `[limits]`. `max_connections` caps sessions here
/// (and TCP connections at the HTTP edge); when unset, the edge's automatic cap applies.
pub fn engine_config(routes: &RouteTable) -> EngineConfig {
    let (server, limits) = (&routes.server, &routes.limits);
    EngineConfig {
        ping_interval: server.ping_interval,
        ping_timeout: server.ping_timeout,
        max_payload: server.max_payload,
        polling: server.polling,
        websocket: server.websocket,
        upgrade_timeout: limits.upgrade_timeout,
        queue_bytes: limits.queue_bytes,
        volatile_bytes: limits.volatile_bytes,
        write_timeout: limits.write_timeout,
        body_timeout: limits.body_timeout,
        claim_timeout: Some(server.connect_timeout),
        handshake_headers_bytes: limits.handshake_headers_bytes,
        admission: Admission {
            max_sessions: Some(
                limits
                    .max_connections
                    .unwrap_or_else(crate::limits::auto_connection_cap),
            ),
            max_sessions_per_ip: limits.max_connections_per_ip,
            handshakes_per_ip: limits.handshakes_per_ip,
            trusted_proxies: limits.trusted_proxies.clone(),
        },
        cors: server.cors.as_ref().map(|c| Cors {
            origins: c.origins.clone(),
            credentials: c.credentials,
        }),
        cookie: server.cookie.as_ref().map(|c| Cookie {
            name: c.name.clone(),
            path: c.path.clone(),
            http_only: c.http_only,
            same_site: c.same_site.clone(),
        }),
    }
}

/// Socket.IO settings from `[server]` and `[limits]`.
pub fn socketio_config(routes: &RouteTable) -> SocketIoConfig {
    let (server, limits) = (&routes.server, &routes.limits);
    SocketIoConfig {
        max_payload: server.max_payload,
        namespaces_per_session: limits.namespaces_per_session,
        events_per_socket: limits.events_per_socket,
        events_excess_disconnect: limits.events_excess_disconnect,
        pending_acks: limits.pending_acks,
        recovery: server.recovery.map(|r| crate::socketio::RecoveryMode {
            skip_auth: r.skip_auth,
        }),
        parser: if server.msgpack {
            crate::socketio::Parser::Msgpack
        } else {
            crate::socketio::Parser::Default
        },
        ..SocketIoConfig::default()
    }
}
