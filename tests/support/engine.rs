//! The Engine.IO layer on its own, under `/engine.io/`, with a handler that echoes every
//! message, refuses handshakes whose query holds `deny`, and reports opens and closes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use switchboard::engineio::{
    CloseReason, Conn, Engine, EngineConfig, EngineHandler, Packet, Pending, Session,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::within;

/// What the handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// A session opened.
    Open(String),
    /// A session closed, with the reason.
    Close(String, CloseReason),
}

/// Echoes messages back, refuses `?deny` handshakes, records opens and closes.
#[derive(Debug)]
pub struct Recorder {
    events: mpsc::UnboundedSender<EngineEvent>,
}

impl EngineHandler for Recorder {
    type Data = ();

    fn allow_request(&self, parts: &http::request::Parts) -> bool {
        !parts.uri.query().unwrap_or("").contains("deny")
    }

    fn on_open(&self, session: &Arc<Session>) {
        let _ = self
            .events
            .send(EngineEvent::Open(session.sid().to_string()));
    }

    fn on_message(&self, conn: &Arc<Conn<()>>, text: Bytes) -> Option<Pending> {
        let _ = conn.session.send(Packet::Message(text));
        None
    }

    fn on_binary(&self, conn: &Arc<Conn<()>>, data: Bytes) -> Option<Pending> {
        let _ = conn.session.send(Packet::Binary(data));
        None
    }

    fn on_close(&self, conn: &Arc<Conn<()>>, reason: CloseReason) -> Option<Pending> {
        let _ = self
            .events
            .send(EngineEvent::Close(conn.session.sid().to_string(), reason));
        None
    }
}

/// An Engine.IO endpoint at `/engine.io/`; everything else is 404.
#[derive(Debug)]
pub struct EngineServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The endpoint.
    pub engine: Arc<Engine<Recorder>>,
    events: mpsc::UnboundedReceiver<EngineEvent>,
    task: JoinHandle<()>,
}

/// Start an endpoint with `config`.
pub async fn start_engine(config: EngineConfig) -> EngineServer {
    let (tx, events) = mpsc::unbounded_channel();
    let engine = Engine::new(Recorder { events: tx }, config);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let accept = engine.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, remote)) = listener.accept().await {
            let engine = accept.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let engine = engine.clone();
                    async move {
                        let resp = if req.uri().path().starts_with("/engine.io/") {
                            engine.handle(req, remote).await
                        } else {
                            let mut r = http::Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = http::StatusCode::NOT_FOUND;
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
    });
    EngineServer {
        addr,
        engine,
        events,
        task,
    }
}

impl EngineServer {
    /// The next thing the handler saw.
    pub async fn next_event(&mut self) -> EngineEvent {
        within("an Engine.IO handler event", self.events.recv())
            .await
            .expect("the endpoint is alive")
    }

    /// Wait for session `sid` to close; its reason. Opens and closes of other sessions are
    /// skipped.
    pub async fn closed(&mut self, sid: &str) -> CloseReason {
        loop {
            if let EngineEvent::Close(closed, reason) = self.next_event().await
                && closed == sid
            {
                return reason;
            }
        }
    }
}

impl Drop for EngineServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
