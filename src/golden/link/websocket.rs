//! The WebSocket transport of a golden client.

use std::net::SocketAddr;

use bytes::Bytes;
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{ClientError, Packet, Read, WAIT};

/// A WebSocket to the Engine.IO endpoint.
pub struct WebSocketLink {
    ws: FragmentCollector<TokioIo<Upgraded>>,
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

impl WebSocketLink {
    /// Connect to `uri` (path and query).
    pub async fn connect(addr: SocketAddr, uri: &str) -> Result<WebSocketLink, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError(format!("connect: {e}")))?;
        let request = hyper::Request::get(uri)
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
        Ok(WebSocketLink {
            ws: FragmentCollector::new(ws),
        })
    }

    /// Send each packet as a frame; `Ok(false)` when the connection is gone.
    pub async fn send(&mut self, packets: &[Packet]) -> Result<bool, ClientError> {
        for packet in packets {
            let frame = match packet {
                Packet::Text(text) => Frame::text(Payload::Borrowed(text.as_bytes())),
                Packet::Binary(bytes) => Frame::binary(Payload::Borrowed(bytes)),
            };
            if self.ws.write_frame(frame).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next message.
    pub async fn read(&mut self) -> Result<Read, ClientError> {
        loop {
            let frame = match tokio::time::timeout(WAIT, self.ws.read_frame()).await {
                Err(_) => {
                    return Err(ClientError(
                        "no answer from the server within 5 s".to_owned(),
                    ));
                }
                Ok(Err(_)) => return Ok(Read::Closed),
                Ok(Ok(frame)) => frame,
            };
            let packet = match frame.opcode {
                OpCode::Text => Packet::Text(String::from_utf8_lossy(&frame.payload).into_owned()),
                OpCode::Binary => Packet::Binary(frame.payload.to_vec()),
                OpCode::Close => return Ok(Read::Closed),
                _ => continue,
            };
            return Ok(Read::Packets(vec![packet]));
        }
    }

    /// Close the connection and wait for the server's close, which it sends once the
    /// disconnection has taken effect.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        if self.ws.write_frame(Frame::close(1000, b"")).await.is_err() {
            return Ok(());
        }
        loop {
            match tokio::time::timeout(WAIT, self.ws.read_frame()).await {
                Err(_) => {
                    return Err(ClientError(
                        "the server did not close within 5 s".to_owned(),
                    ));
                }
                Ok(Ok(frame)) if frame.opcode != OpCode::Close => {}
                Ok(_) => return Ok(()),
            }
        }
    }
}
