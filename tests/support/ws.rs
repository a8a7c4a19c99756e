//! A raw WebSocket client speaking Engine.IO frames: text frames are Engine.IO packets
//! (`4…`), binary frames are binary messages.

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket, WebSocketError};
use http::Request;
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::within;

/// What the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame with its status code.
    Close(u16),
    /// The connection ended.
    Eof,
}

/// One WebSocket connection.
pub struct Ws {
    ws: WebSocket<TokioIo<Upgraded>>,
}

impl std::fmt::Debug for Ws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ws")
    }
}

struct Spawn;

impl<F> hyper::rt::Executor<F> for Spawn
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

/// The WebSocket handshake request for `target`.
pub fn handshake_request(addr: SocketAddr, target: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .method("GET")
        .uri(target)
        .header("host", addr.to_string())
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header(
            "sec-websocket-key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .expect("valid request")
}

/// The WebSocket handshake request for `target`, with extra `headers`.
pub fn handshake_request_with(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Request<Empty<Bytes>> {
    let mut request = handshake_request(addr, target);
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    request
}

impl Ws {
    /// Open a WebSocket to `target`; the handshake's error if it is refused.
    pub async fn try_connect(addr: SocketAddr, target: &str) -> Result<Ws, WebSocketError> {
        Ws::try_connect_request(addr, handshake_request(addr, target)).await
    }

    /// Open a WebSocket with `request`; the handshake's error if it is refused.
    pub async fn try_connect_request(
        addr: SocketAddr,
        request: Request<Empty<Bytes>>,
    ) -> Result<Ws, WebSocketError> {
        within("a WebSocket handshake", async {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (ws, _) = fastwebsockets::handshake::client(&Spawn, request, stream).await?;
            Ok(Ws { ws })
        })
        .await
    }

    /// Open a WebSocket with `request`.
    pub async fn connect_request(addr: SocketAddr, request: Request<Empty<Bytes>>) -> Ws {
        Ws::try_connect_request(addr, request)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake: {e}"))
    }

    /// Open a WebSocket to `target`.
    pub async fn connect(addr: SocketAddr, target: &str) -> Ws {
        Ws::try_connect(addr, target)
            .await
            .unwrap_or_else(|e| panic!("WebSocket to {target}: {e}"))
    }

    /// A direct WebSocket session at `/socket.io/`; returns it with its OPEN packet.
    pub async fn open(addr: SocketAddr) -> (Ws, String) {
        Ws::open_at(addr, "/socket.io/").await
    }

    /// A direct WebSocket session at `path`; returns it with its OPEN packet.
    pub async fn open_at(addr: SocketAddr, path: &str) -> (Ws, String) {
        let mut ws = Ws::connect(addr, &format!("{path}?EIO=4&transport=websocket")).await;
        let open = ws.recv_text().await;
        assert!(open.starts_with("0{"), "an OPEN packet: {open:?}");
        (ws, open)
    }

    /// A direct WebSocket session joined to the default namespace; returns it with the
    /// socket id.
    pub async fn socket(addr: SocketAddr) -> (Ws, String) {
        let (mut ws, _) = Ws::open(addr).await;
        let id = ws.connect_nsp("/").await;
        (ws, id)
    }

    /// Join `nsp` (sends CONNECT, expects its answer); returns the socket id.
    pub async fn connect_nsp(&mut self, nsp: &str) -> String {
        let prefix = if nsp == "/" {
            String::new()
        } else {
            format!("{nsp},")
        };
        self.send(&format!("40{prefix}")).await;
        let answer = self.recv_text().await;
        assert!(
            answer.starts_with(&format!("40{prefix}{{")),
            "CONNECT answer for {nsp}: {answer:?}"
        );
        super::sid_of(&answer)
    }

    /// Send a text frame.
    pub async fn send(&mut self, text: &str) {
        let frame = Frame::text(Payload::Owned(text.as_bytes().to_vec()));
        within("a text frame to be written", self.ws.write_frame(frame))
            .await
            .expect("write text frame");
    }

    /// Send a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        let frame = Frame::binary(Payload::Owned(data.to_vec()));
        within("a binary frame to be written", self.ws.write_frame(frame))
            .await
            .expect("write binary frame");
    }

    /// The next message (WebSocket pings are answered and skipped).
    pub async fn recv(&mut self) -> Msg {
        loop {
            let frame = match within("a WebSocket frame", self.ws.read_frame()).await {
                Ok(frame) => frame,
                Err(
                    WebSocketError::UnexpectedEOF
                    | WebSocketError::ConnectionClosed
                    | WebSocketError::IoError(_),
                ) => return Msg::Eof,
                Err(e) => panic!("reading a frame: {e}"),
            };
            return match frame.opcode {
                OpCode::Text => {
                    Msg::Text(String::from_utf8(frame.payload.to_vec()).expect("UTF-8 text frame"))
                }
                OpCode::Binary => Msg::Binary(frame.payload.to_vec()),
                OpCode::Close => {
                    let code = frame
                        .payload
                        .get(..2)
                        .map_or(1005, |b| u16::from_be_bytes([b[0], b[1]]));
                    Msg::Close(code)
                }
                _ => continue,
            };
        }
    }

    /// The next message, which must be a text frame.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Msg::Text(text) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next message, which must be a binary frame.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match self.recv().await {
            Msg::Binary(data) => data,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// The server closes: a close frame with `code`, then the end of the connection.
    pub async fn expect_close(&mut self, code: u16) {
        assert_eq!(self.recv().await, Msg::Close(code), "close frame");
        assert_eq!(self.recv().await, Msg::Eof, "connection ends after close");
    }
}
