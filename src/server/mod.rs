//! HTTP EDGE — the hyper service: the Engine.IO path, the client bundle, static mounts,
//! health and metrics; the accept loop and graceful shutdown.

mod client_bundle;
mod health;
mod metrics;
mod static_files;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::engineio::CloseReason;

pub use client_bundle::{BundleError, ClientBundle, FILES as CLIENT_FILES};

/// How long shutdown waits, by default, for connections to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Everything; `/metrics` only when there is no admin listener.
    Public,
    /// `/healthz`, `/readyz` and `/metrics` only.
    Admin,
}

/// The HTTP server of one [`App`].
#[derive(Debug)]
pub struct Server {
    app: Arc<App>,
    path: String,
    client: Option<ClientBundle>,
    /// False once shutdown has begun.
    ready: AtomicBool,
    /// Whether `/metrics` has its own listener.
    admin: AtomicBool,
    /// Cancelled when shutdown begins: HTTP connections finish their request and close.
    stopping: CancellationToken,
    /// Every HTTP connection task.
    connections: TaskTracker,
    admin_connections: TaskTracker,
    shutdown_timeout: Duration,
    admin_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Server {
    /// A server for `app`; `client` is the bundle served under the Engine.IO path when
    /// `serve_client` is on.
    pub fn new(app: impl Into<Arc<App>>, client: Option<ClientBundle>) -> Arc<Server> {
        Server::with_shutdown_timeout(app, client, DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// A server whose shutdown waits at most `shutdown_timeout` for connections.
    pub fn with_shutdown_timeout(
        app: impl Into<Arc<App>>,
        client: Option<ClientBundle>,
        shutdown_timeout: Duration,
    ) -> Arc<Server> {
        let app = app.into();
        let path = app.snapshot().routes.server.path.clone();
        Arc::new(Server {
            app,
            path,
            client,
            ready: AtomicBool::new(true),
            admin: AtomicBool::new(false),
            stopping: CancellationToken::new(),
            connections: TaskTracker::new(),
            admin_connections: TaskTracker::new(),
            shutdown_timeout,
            admin_task: std::sync::Mutex::new(None),
        })
    }

    /// The application served.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Whether the server takes traffic (false once shutdown has begun).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Accept connections on `listener` until `shutdown` resolves, then shut down
    /// gracefully: readiness goes false, no new connections, every session is closed with
    /// "server shutting down" (pending polls get a close packet, WebSockets a close frame,
    /// no namespace DISCONNECT so clients reconnect elsewhere), and every connection task,
    /// upgraded ones included, is awaited up to the shutdown timeout.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let accepting = tokio::spawn(self.clone().accept(listener, Role::Public));
        shutdown.await;
        self.shut_down().await;
        accepting.abort();
        if let Some(admin) = self.admin_task.lock().expect("admin lock").take() {
            admin.abort();
        }
    }

    /// Serve `/healthz`, `/readyz` and `/metrics` on their own listener, through shutdown
    /// (so probes see readiness go false) until [`Server::serve`] returns; `/metrics` is then
    /// no longer served on the public listener.
    pub fn serve_admin(self: &Arc<Self>, listener: TcpListener) {
        self.admin.store(true, Ordering::Release);
        let task = tokio::spawn(self.clone().accept(listener, Role::Admin));
        *self.admin_task.lock().expect("admin lock") = Some(task);
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, role: Role) {
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "Accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = self.stopping.cancelled(), if role == Role::Public => return,
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let tracker = match role {
                Role::Public => &self.connections,
                // Admin connections do not hold shutdown up.
                Role::Admin => &self.admin_connections,
            };
            tracker.spawn(async move {
                let handler = server.clone();
                let service = service_fn(move |req| {
                    let server = handler.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(server.handle(req, remote, role).await)
                    }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                tokio::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    _ = server.stopping.cancelled(), if role == Role::Public => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    tracing::trace!(error = %e, remote_addr = %remote, "Connection ended with an error");
                }
            });
        }
    }

    async fn shut_down(&self) {
        self.ready.store(false, Ordering::Release);
        let engine = self.app.engine();
        tracing::info!(sessions = engine.session_count(), "Shutting down");
        engine.close_all(CloseReason::ServerShuttingDown);
        self.stopping.cancel();
        self.connections.close();
        engine.tasks().close();
        let all_done = async {
            self.connections.wait().await;
            engine.tasks().wait().await;
        };
        if tokio::time::timeout(self.shutdown_timeout, all_done)
            .await
            .is_err()
        {
            tracing::warn!(
                connections = self.connections.len(),
                session_tasks = engine.tasks().len(),
                "Shutdown deadline passed; leaving the rest"
            );
        } else {
            tracing::info!("All connections closed");
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        remote: SocketAddr,
        role: Role,
    ) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        match path {
            "/healthz" => return health::healthz(&self.app),
            "/readyz" => return health::readyz(&self.app, self.is_ready()),
            "/metrics" if role == Role::Admin || !self.admin.load(Ordering::Acquire) => {
                return metrics::render(&self.app);
            }
            _ if role == Role::Admin => return static_files::status(StatusCode::NOT_FOUND),
            _ => {}
        }
        if let Some(rest) = path.strip_prefix(self.path.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            let name = rest.trim_start_matches('/');
            if let Some(bundle) = &self.client
                && self.app.snapshot().routes.server.serve_client
                && let Some(resp) = bundle.respond(name, req.headers())
            {
                return resp;
            }
            return self.app.engine().handle(req, remote).await;
        }
        let snapshot = self.app.snapshot();
        static_files::serve(&snapshot.routes.statics, req.method(), path, req.headers())
            .await
            .unwrap_or_else(|| static_files::status(StatusCode::NOT_FOUND))
    }
}
