//! A raw Engine.IO echo endpoint at `/engine.io/`, using the `engineio` layer on its own:
//! the server the official engine.io-protocol test suite expects (pings every 300 ms,
//! 200 ms timeout).
//!
//! Run with: `cargo run --example engineio_echo [ADDR]` (default `127.0.0.1:3000`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use switchboard::engineio::{
    CloseReason, Conn, Engine, EngineConfig, EngineHandler, Packet, Pending, Session,
};

/// Sends every message back to its sender.
struct Echo;

impl EngineHandler for Echo {
    type Data = ();

    fn on_open(&self, _session: &Arc<Session>) {}

    fn on_message(&self, conn: &Arc<Conn<()>>, text: Bytes) -> Option<Pending> {
        let _ = conn.session.send(Packet::Message(text));
        None
    }

    fn on_binary(&self, conn: &Arc<Conn<()>>, data: Bytes) -> Option<Pending> {
        let _ = conn.session.send(Packet::Binary(data));
        None
    }

    fn on_close(&self, _conn: &Arc<Conn<()>>, _reason: CloseReason) -> Option<Pending> {
        None
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let config = EngineConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let engine = Engine::new(Echo, config);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "engine.io echo listening on http://{}/engine.io/",
        listener.local_addr()?
    );
    loop {
        let (stream, remote) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let engine = engine.clone();
                async move {
                    let resp = if req.uri().path().starts_with("/engine.io") {
                        engine.handle(req, remote).await
                    } else {
                        let mut r = hyper::Response::new(http_body_util::Full::new(Bytes::new()));
                        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                        r
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
