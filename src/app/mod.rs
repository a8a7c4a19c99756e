//! COMPOSITION — the only layer that sees all others: loads routes.toml into a
//! [`Snapshot`], and wires the Engine.IO endpoint, the Socket.IO layer and the dispatcher.

mod dispatch;
mod scope;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::engineio::{Cors, Engine, EngineConfig};
use crate::routing::{self, Report, RouteTable, ServerSettings};
use crate::socketio::{SocketIo, SocketIoConfig};

pub use dispatch::Dispatcher;
pub use snapshot::Snapshot;

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
}

/// Read and compile the routes file at `path`.
pub fn load_routes(path: &Path) -> Result<RouteTable, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let env = routing::Env {
        base_dir,
        var: &|name| std::env::var(name).ok(),
    };
    routing::compile(&source, &path.display().to_string(), &env).map_err(LoadError::Invalid)
}

/// The running application: the snapshot in force and the endpoint serving it.
#[derive(Debug)]
pub struct App {
    snapshot: Arc<ArcSwap<Snapshot>>,
    engine: Arc<SwitchboardEngine>,
}

impl App {
    /// An application serving `routes`.
    pub fn new(routes: RouteTable) -> App {
        let engine_config = engine_config(&routes.server);
        let socketio_config = socketio_config(&routes.server);
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::new(routes, None)));
        let dispatcher = Dispatcher::new(snapshot.clone());
        let engine = Engine::new(SocketIo::new(dispatcher, socketio_config), engine_config);
        App { snapshot, engine }
    }

    /// The Engine.IO endpoint.
    pub fn engine(&self) -> &Arc<SwitchboardEngine> {
        &self.engine
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

/// Engine.IO settings from `[server]`.
pub fn engine_config(server: &ServerSettings) -> EngineConfig {
    EngineConfig {
        ping_interval: server.ping_interval,
        ping_timeout: server.ping_timeout,
        max_payload: server.max_payload,
        polling: server.polling,
        websocket: server.websocket,
        cors: server.cors.as_ref().map(|c| Cors {
            origins: c.origins.clone(),
            credentials: c.credentials,
        }),
        ..EngineConfig::default()
    }
}

/// Socket.IO settings from `[server]`.
pub fn socketio_config(server: &ServerSettings) -> SocketIoConfig {
    SocketIoConfig {
        connect_timeout: server.connect_timeout,
        ..SocketIoConfig::default()
    }
}
