//! A switchboard server running in the test's runtime, on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use switchboard::adapter::BroadcastOptions;
use switchboard::app::App;
use switchboard::routing::{self, Env, RouteTable};
use switchboard::server::{ClientBundle, Server};
use switchboard::socketio::Socket;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::within;

/// A running server. Dropping it asks the server to shut down; [`TestServer::stop`] also
/// waits until it has.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server itself, for reaching into the application (sockets, adapters).
    pub server: Arc<Server>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// Compile `routes_toml`; relative `[[static]]` folders are looked up under `base_dir`.
pub fn compile(routes_toml: &str, base_dir: &Path) -> RouteTable {
    let env = Env {
        base_dir,
        var: &|_| None,
    };
    routing::compile(routes_toml, "routes.toml", &env).unwrap_or_else(|report| panic!("{report}"))
}

/// Compile `routes_toml` with files under `base_dir` and environment variables `vars`.
pub fn compile_with_env(routes_toml: &str, base_dir: &Path, vars: &[(&str, &str)]) -> RouteTable {
    let var = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let env = Env {
        base_dir,
        var: &var,
    };
    routing::compile(routes_toml, "routes.toml", &env).unwrap_or_else(|report| panic!("{report}"))
}

/// Start a server for `routes_toml`, without a client bundle.
pub async fn start(routes_toml: &str) -> TestServer {
    start_with(compile(routes_toml, Path::new(".")), None).await
}

/// Start a server for compiled `routes`, serving `client` as the client bundle.
pub async fn start_with(routes: RouteTable, client: Option<ClientBundle>) -> TestServer {
    start_app(App::new(routes), client).await
}

/// Start a server for `app`.
pub async fn start_app(app: impl Into<Arc<App>>, client: Option<ClientBundle>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let server = Server::new(app, client);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(
        server
            .clone()
            .serve(listener, async move { token.cancelled().await }),
    );
    TestServer {
        addr,
        server,
        shutdown,
        task: Some(task),
    }
}

impl TestServer {
    /// The server-side socket `id` of namespace `nsp`, as the application sees it.
    pub fn socket(&self, nsp: &str, id: &str) -> Arc<Socket> {
        let snapshot = self.server.app().snapshot();
        let adapter = snapshot
            .adapters
            .get(nsp)
            .unwrap_or_else(|| panic!("namespace {nsp} is not declared"));
        adapter
            .sockets(&BroadcastOptions::all())
            .into_iter()
            .find(|s| s.id().as_str() == id)
            .unwrap_or_else(|| panic!("no socket {id} in {nsp}"))
    }

    /// Shut down and wait for the accept loop to finish (it closes every session first).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            within("the server to shut down", task)
                .await
                .expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
