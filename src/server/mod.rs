//! HTTP EDGE — the Engine.IO path (its own HTTP/1.1, [`engine_http`], and hyper), the client
//! bundle, static mounts, health and metrics; the accept loop, its caps and timeouts, and
//! graceful shutdown.
//!
//! Every connection is HTTP/1.1 (there is no TLS here to negotiate HTTP/2). On the public
//! listener a connection's Engine.IO long-polling requests and WebSocket handshakes are read
//! and answered by [`engine_http`], which holds no buffer while a poll waits or the connection
//! idles; the first request of any other kind hands the connection to hyper, with its timer,
//! for good.
//! Both hold a request head to `header_timeout`, which also bounds how long a keep-alive
//! connection may sit idle; writes that stall past `write_timeout` fail. Connections count
//! against `max_connections` (by default the file limit less a reserve) and
//! `max_connections_per_ip`; one over a cap still gets an answer — 503, with the Engine.IO
//! error body on the Engine.IO path — from the reserve, and is closed.

mod admin_tools;
mod admin_ui;
mod api;
mod body;
mod client_bundle;
mod engine_http;
mod health;
mod metrics;
mod peer;
mod rewind;
mod static_files;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::engineio::{CloseReason, PeerHandle};
use peer::{Counts, PeerStream};
use rewind::Rewind;

pub use body::Body;
pub use client_bundle::{BundleError, ClientBundle, FILES as CLIENT_FILES};
pub use metrics::count_dropped_log_lines;

/// The answer for the msgpack client bundle: it speaks a parser this server does not.
const MSGPACK_BUNDLE: &str = "switchboard: socket.io.msgpack.min.js speaks the msgpack parser; \
this server speaks socket.io's default parser. Load socket.io.min.js instead \
(or set [server] parser = \"msgpack\").\n";

/// The answer for the default bundles when the server speaks the msgpack parser.
const DEFAULT_BUNDLE: &str = "switchboard: this server speaks the msgpack parser \
([server] parser = \"msgpack\"); socket.io.min.js speaks socket.io's default parser. \
Load socket.io.msgpack.min.js instead.\n";

/// 404 with `why` as a text body.
fn not_found(why: &'static str) -> Response<Body> {
    body::whole(
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                why.as_bytes(),
            )))
            .expect("a valid response"),
    )
}

/// The answer for a client bundle file when the npm package `socket.io-client` was not found.
const MISSING_BUNDLE: &str = "switchboard: the socket.io client bundle is not installed. \
Run `npm ci` in the folder of package.json (or start switchboard with --client-dir).\n";

/// 404 on the API's own listener for anything but `/api/…`.
fn api_not_here() -> Response<http_body_util::Full<bytes::Bytes>> {
    let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
        br#"{"error":"only the server API is served here"}"#,
    )));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// How long shutdown waits, by default, for connections to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted; as Node's default, 16 KiB of
/// headers, with room for the rest of hyper's buffer.
const MAX_REQUEST_HEAD: usize = 32 * 1024;
/// Connections over a cap answered at once (from the reserve of descriptors); beyond this,
/// more are closed unanswered.
const MAX_REFUSING: usize = 32;
/// Deadline for the request of a connection that is being refused.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections to the admin listener at once.
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Everything; `/healthz`, `/readyz` and `/metrics` only when there is no admin listener.
    Public,
    /// `/healthz`, `/readyz` and `/metrics` only.
    Admin,
    /// The server API (`[api] listen`) only.
    Api,
    /// A connection over a cap: 503 to everything (health and readiness excepted).
    Refusing,
}

/// The HTTP server of one [`App`].
#[derive(Debug)]
pub struct Server {
    app: Arc<App>,
    path: String,
    client: Option<ClientBundle>,
    /// False once shutdown has begun.
    ready: AtomicBool,
    /// Whether `/metrics`, `/healthz` and `/readyz` have their own listener.
    admin: AtomicBool,
    /// Cancelled when shutdown begins: HTTP connections finish their request and close.
    stopping: CancellationToken,
    /// Every HTTP connection task.
    connections: TaskTracker,
    admin_connections: TaskTracker,
    shutdown_timeout: Duration,
    admin_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether the server API has its own listener.
    api: AtomicBool,
    api_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    api_rate: api::ApiRate,
    /// Open public connections, in all and per address.
    counts: Arc<Counts>,
    /// Connections being refused, and admin connections, at this moment.
    refusing: Arc<AtomicUsize>,
    admin_open: Arc<AtomicUsize>,
    /// One "Accept failed" line per interval: out of descriptors, it would repeat 20 times
    /// a second.
    accept_errors: crate::limits::Throttle<&'static str>,
    /// The admin UI's files (`@socket.io/admin-ui`'s `ui/dist`), once found.
    admin_ui_dir: std::sync::OnceLock<std::path::PathBuf>,
}

/// Decrements a counter when dropped.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Take one of `max` places of `counter`.
fn hold(counter: &Arc<AtomicUsize>, max: usize) -> Option<Held> {
    if counter.fetch_add(1, Ordering::AcqRel) >= max {
        counter.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    Some(Held(counter.clone()))
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
        let server = Arc::new(Server {
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
            api: AtomicBool::new(false),
            api_task: std::sync::Mutex::new(None),
            api_rate: api::ApiRate::default(),
            counts: Arc::new(Counts::default()),
            refusing: Arc::new(AtomicUsize::new(0)),
            admin_open: Arc::new(AtomicUsize::new(0)),
            accept_errors: crate::limits::Throttle::new(Duration::from_secs(10)),
            admin_ui_dir: std::sync::OnceLock::new(),
        });
        admin_ui::start_ticks(Arc::downgrade(&server.app));
        server
    }

    /// Serve the admin UI's files from the first of `node_modules` folders that holds the
    /// npm package `@socket.io/admin-ui` (when `[admin_ui]` has a `mount`). Whether found.
    pub fn find_admin_ui(&self, node_modules: &[std::path::PathBuf]) -> bool {
        let found = node_modules
            .iter()
            .map(|dir| dir.join(admin_ui::UI_DIST))
            .find(|dir| dir.join("index.html").is_file());
        match found {
            Some(dir) => {
                let _ = self.admin_ui_dir.set(dir);
                true
            }
            None => false,
        }
    }

    /// The application served.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Whether the server takes traffic (false once shutdown has begun).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Public connections open now.
    pub fn open_connections(&self) -> usize {
        self.counts.open.load(Ordering::Acquire)
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
        if let Some(api) = self.api_task.lock().expect("api lock").take() {
            api.abort();
        }
    }

    /// Serve `/healthz`, `/readyz` and `/metrics` on their own listener, through shutdown
    /// (so probes see readiness go false) until [`Server::serve`] returns; the public
    /// listener then no longer answers them.
    pub fn serve_admin(self: &Arc<Self>, listener: TcpListener) {
        self.admin.store(true, Ordering::Release);
        let task = tokio::spawn(self.clone().accept(listener, Role::Admin));
        *self.admin_task.lock().expect("admin lock") = Some(task);
    }

    /// Serve the server API (`[api] listen`) on its own listener until [`Server::serve`]
    /// returns; the public listener then no longer answers it.
    pub fn serve_api(self: &Arc<Self>, listener: TcpListener) {
        self.api.store(true, Ordering::Release);
        let task = tokio::spawn(self.clone().accept(listener, Role::Api));
        *self.api_task.lock().expect("api lock") = Some(task);
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, role: Role) {
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        if let Some(held) = self.accept_errors.allow("accept", std::time::Instant::now()) {
                            tracing::warn!(error = %e, suppressed = held, "Accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = self.stopping.cancelled(), if role == Role::Public => return,
            };
            let _ = stream.set_nodelay(true);
            if role == Role::Admin || role == Role::Api {
                // Admin and API connections do not hold shutdown up, nor take public places.
                let Some(held) = hold(&self.admin_open, MAX_ADMIN_CONNECTIONS) else {
                    continue;
                };
                let server = self.clone();
                self.admin_connections.spawn(async move {
                    server.connection(stream, remote, role, None).await;
                    drop(held);
                });
                continue;
            }
            self.admit(stream, remote);
        }
    }

    /// A public connection: take its place under the caps, or refuse it.
    fn admit(self: &Arc<Self>, stream: TcpStream, remote: SocketAddr) {
        let snapshot = self.app.snapshot();
        let limits = &snapshot.routes.limits;
        let max = limits
            .max_connections
            .unwrap_or_else(crate::limits::auto_connection_cap);
        // Behind a trusted proxy every client shares its address: the cap per address is
        // applied to sessions, where X-Forwarded-For is read, not to connections.
        let trusted = limits
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&remote.ip()));
        let ip = (!trusted).then_some(remote.ip());
        // A long-polling session holds up to two connections at once (its pending GET and
        // a POST): an address may have twice as many connections as sessions.
        let per_ip = limits.max_connections_per_ip.map(|n| n.saturating_mul(2));
        let server = self.clone();
        match self.counts.take(ip, max, per_ip) {
            Ok(slot) => {
                self.connections
                    .spawn(server.connection(stream, remote, Role::Public, Some(slot)));
            }
            Err(limit) => {
                self.app
                    .hits()
                    .hit(limit, &remote.ip(), &"connection refused: over the cap");
                if let Some(held) = hold(&self.refusing, MAX_REFUSING) {
                    self.connections.spawn(async move {
                        server
                            .connection(stream, remote, Role::Refusing, None)
                            .await;
                        drop(held);
                    });
                }
            }
        }
    }

    /// Serve one connection until it ends (or, at shutdown, finishes its request) — over
    /// TLS when `[server] tls` is set and it came to the public listener. Not `async`: what
    /// it returns is the connection's task, and every `async` layer around it would keep its
    /// own copy of the connection's parts for the connection's whole life.
    fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        remote: SocketAddr,
        role: Role,
        slot: Option<peer::Slot>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let snapshot = self.app.snapshot();
        let limits = &snapshot.routes.limits;
        let handle = PeerHandle::new();
        let io = PeerStream::new(stream, handle.clone(), slot, limits.write_timeout);
        let tls = match role {
            Role::Public | Role::Refusing => snapshot.routes.server.tls.as_ref(),
            Role::Admin | Role::Api => None,
        };
        let Some(tls) = tls else {
            return Either::Left(self.http(io, handle, remote, role));
        };
        // The handshake is a wait on the peer: as long as a request head may take. Boxed:
        // every plain connection's task would otherwise carry the size of this path.
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let deadline = limits.header_timeout;
        Either::Right(Box::pin(
            self.tls(acceptor, deadline, io, handle, remote, role),
        ))
    }

    /// The TLS handshake, then HTTP/1.1 over it.
    async fn tls(
        self: Arc<Self>,
        acceptor: tokio_rustls::TlsAcceptor,
        deadline: std::time::Duration,
        io: PeerStream,
        handle: PeerHandle,
        remote: SocketAddr,
        role: Role,
    ) {
        match tokio::time::timeout(deadline, acceptor.accept(io)).await {
            Ok(Ok(io)) => self.http(io, handle, remote, role).await,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, remote_addr = %remote, "TLS handshake failed");
            }
            Err(_) => tracing::debug!(remote_addr = %remote, "TLS handshake timed out"),
        }
    }

    /// HTTP/1.1 on `io` until the connection ends: on the public listener, Engine.IO
    /// requests answered by [`engine_http`] until another comes, then hyper for the rest.
    fn http<I>(
        self: Arc<Self>,
        io: I,
        handle: PeerHandle,
        remote: SocketAddr,
        role: Role,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync + 'static,
    {
        if role == Role::Public {
            return Either::Left(engine_http::serve(self, io, handle, remote));
        }
        let io = Rewind::new(io, bytes::Bytes::new());
        Either::Right(Box::pin(self.hyper(io, handle, remote, role)))
    }

    /// hyper serves `io` until the connection ends.
    async fn hyper<I>(self: Arc<Self>, io: I, handle: PeerHandle, remote: SocketAddr, role: Role)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let snapshot = self.app.snapshot();
        let limits = &snapshot.routes.limits;
        let server = self.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(handle.clone());
            let server = server.clone();
            // Boxed: hyper keeps room for a request's future for the connection's whole life,
            // an idle keep-alive connection's too; a box costs room only while a request runs.
            Box::pin(async move {
                Ok::<_, std::convert::Infallible>(server.handle(req, remote, role).await)
            })
        });
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_header_size(MAX_REQUEST_HEAD)
            .max_buf_size(MAX_REQUEST_HEAD * 2);
        if role == Role::Refusing {
            http.keep_alive(false)
                .header_read_timeout(limits.header_timeout.min(REFUSAL_TIMEOUT));
        }
        drop(snapshot);
        let conn = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            _ = self.stopping.cancelled(), if role != Role::Admin && role != Role::Api => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::trace!(error = %e, remote_addr = %remote, "Connection ended with an error");
        }
    }

    /// What follows the Engine.IO path in `path`, when `path` is under it.
    fn engine_rest<'a>(&self, path: &'a str) -> Option<&'a str> {
        path.strip_prefix(self.path.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Whether a public request for `path` is one for the engine itself (not the client
    /// bundle, the API, health or metrics), as [`Server::handle`] routes it.
    fn is_engine_endpoint(&self, path: &str) -> bool {
        let ops = matches!(path, "/healthz" | "/readyz" | "/metrics");
        let api = path == "/api" || path.starts_with("/api/");
        !ops && !api
            && self
                .engine_rest(path)
                .is_some_and(|rest| rest.trim_start_matches('/').is_empty())
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

    /// Answer one request. Each branch's future is boxed: unboxed, every request — a
    /// long-poll waiting for its packets too — would carry the size of the largest (5 KiB).
    async fn handle(
        &self,
        req: Request<Incoming>,
        remote: SocketAddr,
        role: Role,
    ) -> Response<Body> {
        let req = if role == Role::Admin {
            match Box::pin(admin_tools::handle(&self.app, req)).await {
                Ok(response) => return body::whole(response),
                Err(req) => req,
            }
        } else {
            req
        };
        let path = req.uri().path();
        let api = path == "/api" || path.starts_with("/api/");
        if role == Role::Api {
            return body::whole(if api {
                Box::pin(api::handle(&self.app, &self.api_rate, req)).await
            } else {
                api_not_here()
            });
        }
        if api
            && role == Role::Public
            && !self.api.load(Ordering::Acquire)
            && self.app.snapshot().routes.api.is_some()
        {
            return body::whole(Box::pin(api::handle(&self.app, &self.api_rate, req)).await);
        }
        let ops = role == Role::Admin || !self.admin.load(Ordering::Acquire);
        match path {
            // The admin port tells everything; the public port never shows config text or
            // errors.
            "/healthz" if ops => {
                return body::whole(health::healthz(&self.app, role == Role::Admin));
            }
            "/readyz" if ops => {
                return body::whole(health::readyz(
                    &self.app,
                    self.is_ready(),
                    role == Role::Admin,
                ));
            }
            "/metrics" if ops => return body::whole(metrics::render(&self.app)),
            _ if role == Role::Admin => return body::status(StatusCode::NOT_FOUND),
            _ => {}
        }
        let engine_path = self.engine_rest(path);
        if role == Role::Refusing {
            return match engine_path {
                Some(_) => body::whole(
                    crate::engineio::Error::Busy("Too many connections").into_response(),
                ),
                None => body::status(StatusCode::SERVICE_UNAVAILABLE),
            };
        }
        if let Some(rest) = engine_path {
            let name = rest.trim_start_matches('/');
            if self.app.snapshot().routes.server.serve_client && CLIENT_FILES.contains(&name) {
                // A bundle that cannot work, or none: say why, to whoever opens it (the
                // browser's console shows the body).
                let msgpack = self.app.snapshot().routes.server.msgpack;
                if name.starts_with("socket.io.msgpack") != msgpack {
                    return not_found(if msgpack {
                        DEFAULT_BUNDLE
                    } else {
                        MSGPACK_BUNDLE
                    });
                }
                return match &self.client {
                    Some(bundle) => match bundle.respond(name, req.headers()) {
                        Some(resp) => body::whole(resp),
                        None => body::status(StatusCode::NOT_FOUND),
                    },
                    None => not_found(MISSING_BUNDLE),
                };
            }
            return body::whole(Box::pin(self.app.engine().handle(req, remote)).await);
        }
        if let Some(response) = Box::pin(admin_ui::serve(
            &self.app,
            self.admin_ui_dir.get(),
            req.method(),
            path,
            req.headers(),
        ))
        .await
        {
            return response;
        }
        let snapshot = self.app.snapshot();
        Box::pin(static_files::serve(
            &snapshot.routes.statics,
            req.method(),
            path,
            req.headers(),
        ))
        .await
        .unwrap_or_else(|| body::status(StatusCode::NOT_FOUND))
    }
}
