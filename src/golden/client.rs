//! A minimal Socket.IO client over WebSocket for golden cases: it sends what the steps say
//! and records every Socket.IO packet it receives, answering heartbeats on its own.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long any single wait may take before the case fails.
const WAIT: Duration = Duration::from_secs(5);

/// A client that could not do what a step asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

type Ws = FragmentCollector<TokioIo<Upgraded>>;

/// One client of a case.
pub struct Client {
    ws: Option<Ws>,
    /// What it received since the last `take`.
    received: Vec<String>,
    next_ack: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("open", &self.ws.is_some())
            .finish_non_exhaustive()
    }
}

struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

impl Client {
    /// A client with no connection yet.
    pub fn new() -> Client {
        Client {
            ws: None,
            received: Vec::new(),
            next_ack: 0,
        }
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.ws.is_some()
    }

    /// Open the Engine.IO session over WebSocket at `path`, with `query` appended.
    pub async fn open(
        &mut self,
        addr: SocketAddr,
        path: &str,
        query: Option<&str>,
    ) -> Result<(), ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError(format!("connect: {e}")))?;
        let extra = query.map(|q| format!("&{q}")).unwrap_or_default();
        let uri = format!("{path}/?EIO=4&transport=websocket{extra}");
        let request = hyper::Request::get(&uri)
            .header("Host", addr.to_string())
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header(
                "Sec-WebSocket-Key",
                fastwebsockets::handshake::generate_key(),
            )
            .header("Sec-WebSocket-Version", "13")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ClientError(format!("request: {e}")))?;
        let (ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
            .await
            .map_err(|e| ClientError(format!("WebSocket handshake: {e}")))?;
        let mut ws = FragmentCollector::new(ws);
        let open = tokio::time::timeout(WAIT, ws.read_frame())
            .await
            .map_err(|_| ClientError("no OPEN packet".to_owned()))?
            .map_err(|e| ClientError(format!("reading OPEN: {e}")))?;
        if open.opcode != OpCode::Text || open.payload.first() != Some(&b'0') {
            return Err(ClientError("the first packet is not OPEN".to_owned()));
        }
        self.ws = Some(ws);
        Ok(())
    }

    /// Send a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.write(Frame::text(Payload::Borrowed(text.as_bytes())))
            .await
    }

    async fn write(&mut self, frame: Frame<'_>) -> Result<(), ClientError> {
        let ws = self
            .ws
            .as_mut()
            .ok_or_else(|| ClientError("not connected".to_owned()))?;
        ws.write_frame(frame)
            .await
            .map_err(|e| ClientError(format!("send: {e}")))
    }

    /// Emit `data` (a JSON array) in `nsp`; `{"$binary":"<base64>"}` values become
    /// attachments.
    pub async fn emit(
        &mut self,
        nsp: &str,
        data: &serde_json::Value,
        ack: bool,
    ) -> Result<(), ClientError> {
        let mut attachments = Vec::new();
        let data = extract_binary(data, &mut attachments)?;
        let mut packet = if attachments.is_empty() {
            "42".to_owned()
        } else {
            format!("45{}-", attachments.len())
        };
        if nsp != "/" {
            packet.push_str(nsp);
            packet.push(',');
        }
        if ack {
            packet.push_str(&self.next_ack.to_string());
            self.next_ack += 1;
        }
        packet.push_str(&data.to_string());
        self.send_text(&packet).await?;
        for attachment in attachments {
            self.write(Frame::binary(Payload::Owned(attachment)))
                .await?;
        }
        Ok(())
    }

    /// Close the connection and wait for the server's close, which it sends once the
    /// disconnection has taken effect.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        self.write(Frame::close(1000, b"")).await?;
        let ws = self.ws.as_mut().expect("written above");
        loop {
            match tokio::time::timeout(WAIT, ws.read_frame()).await {
                Err(_) => {
                    return Err(ClientError(
                        "the server did not close within 5 s".to_owned(),
                    ));
                }
                Ok(Ok(frame)) if frame.opcode != OpCode::Close => {}
                Ok(_) => break,
            }
        }
        self.ws = None;
        Ok(())
    }

    /// Ping the server and read until its pong, recording what arrives before it. Because
    /// the server handles a connection's packets in order and queues deliveries before it
    /// reads the next packet, everything a step caused has arrived once this returns.
    pub async fn barrier(&mut self) -> Result<(), ClientError> {
        if self.ws.is_none() {
            return Ok(());
        }
        if self.send_text("2").await.is_err() {
            self.closed();
            return Ok(());
        }
        loop {
            let ws = self.ws.as_mut().expect("checked above");
            let frame = match tokio::time::timeout(WAIT, ws.read_frame()).await {
                Err(_) => {
                    return Err(ClientError(
                        "no answer from the server within 5 s".to_owned(),
                    ));
                }
                Ok(Err(_)) => {
                    self.closed();
                    return Ok(());
                }
                Ok(Ok(frame)) => frame,
            };
            match frame.opcode {
                OpCode::Text => {
                    let text = String::from_utf8_lossy(&frame.payload).into_owned();
                    match text.as_bytes().first() {
                        Some(b'3') => return Ok(()),
                        Some(b'2') => self.send_text("3").await?,
                        Some(b'1') => {
                            self.closed();
                            return Ok(());
                        }
                        _ => self.received.push(text),
                    }
                }
                OpCode::Binary => self
                    .received
                    .push(format!("<binary {}>", STANDARD.encode(&frame.payload[..]))),
                OpCode::Close => {
                    self.closed();
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    fn closed(&mut self) {
        self.received.push("(closed)".to_owned());
        self.ws = None;
    }

    /// What arrived since the last call.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.received)
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// Replace `{"$binary":"…"}` objects by placeholders, collecting the bytes.
fn extract_binary(
    value: &serde_json::Value,
    out: &mut Vec<Vec<u8>>,
) -> Result<serde_json::Value, ClientError> {
    use serde_json::Value;
    Ok(match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("$binary") => {
            let b64 = map["$binary"]
                .as_str()
                .ok_or_else(|| ClientError("$binary must be a base64 string".to_owned()))?;
            let bytes = STANDARD
                .decode(b64)
                .map_err(|e| ClientError(format!("$binary: {e}")))?;
            out.push(bytes);
            serde_json::json!({ "_placeholder": true, "num": out.len() - 1 })
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), extract_binary(v, out)?)))
                .collect::<Result<_, ClientError>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| extract_binary(v, out))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}
