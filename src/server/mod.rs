//! HTTP EDGE — the hyper service: the Engine.IO path, the client bundle, static mounts; the
//! accept loop and shutdown.

mod client_bundle;
mod health;
mod static_files;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::app::App;
use crate::engineio::CloseReason;

pub use client_bundle::{BundleError, ClientBundle};

/// How long shutdown waits for sessions to send their close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The HTTP server of one [`App`].
#[derive(Debug)]
pub struct Server {
    app: Arc<App>,
    path: String,
    client: Option<ClientBundle>,
}

impl Server {
    /// A server for `app`; `client` is the bundle served under the Engine.IO path when
    /// `serve_client` is on.
    pub fn new(app: impl Into<Arc<App>>, client: Option<ClientBundle>) -> Arc<Server> {
        let app = app.into();
        let path = app.snapshot().routes.server.path.clone();
        Arc::new(Server { app, path, client })
    }

    /// The application served.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Accept connections on `listener` until `shutdown` resolves, then close every session
    /// with "server shutting down" and wait briefly for them to flush.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
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
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.handle(req, remote).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
                {
                    tracing::trace!(error = %e, remote_addr = %remote, "Connection ended with an error");
                }
            });
        }
        drop(listener);
        let engine = self.app.engine();
        engine.close_all(CloseReason::ServerShuttingDown);
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while engine.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn handle(&self, req: Request<Incoming>, remote: SocketAddr) -> Response<Full<Bytes>> {
        let path = req.uri().path();
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
        if path == "/healthz" {
            return health::healthz(&self.app);
        }
        let snapshot = self.app.snapshot();
        static_files::serve(&snapshot.routes.statics, req.method(), path, req.headers())
            .await
            .unwrap_or_else(|| static_files::status(StatusCode::NOT_FOUND))
    }
}
