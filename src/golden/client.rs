//! A minimal Socket.IO client for golden cases, over WebSocket or long-polling: it sends
//! what the steps say and records every Socket.IO packet it receives, answering heartbeats
//! on its own.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::link::{Link, Packet, Read, WebSocketLink};

pub use super::link::ClientError;

/// One client of a case.
pub struct Client {
    link: Option<Link>,
    /// What it received since the last `take`.
    received: Vec<String>,
    next_ack: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("open", &self.link.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with no connection yet.
    pub fn new() -> Client {
        Client {
            link: None,
            received: Vec::new(),
            next_ack: 0,
        }
    }

    /// Whether the session is open.
    pub fn is_open(&self) -> bool {
        self.link.is_some()
    }

    /// Open the Engine.IO session at `path`, over long-polling or WebSocket, with `query`
    /// appended to the handshake.
    pub async fn open(
        &mut self,
        addr: SocketAddr,
        path: &str,
        query: Option<&str>,
        polling: bool,
    ) -> Result<(), ClientError> {
        let (link, early) = Link::open(addr, path, query, polling).await?;
        self.link = Some(link);
        self.record(early).await.map(drop)
    }

    /// Move a polling session to WebSocket as the stock client does: probe (`2probe`,
    /// `3probe`), then upgrade (`5`).
    pub async fn upgrade(&mut self, addr: SocketAddr, path: &str) -> Result<(), ClientError> {
        let Some(Link::Polling(polling)) = &self.link else {
            return Err(ClientError("only a polling session can upgrade".to_owned()));
        };
        let uri = format!("{path}/?EIO=4&transport=websocket&sid={}", polling.sid());
        let mut ws = WebSocketLink::connect(addr, &uri).await?;
        if !ws.send(&[text("2probe")]).await? {
            return Err(ClientError("the probe was refused".to_owned()));
        }
        match ws.read().await? {
            Read::Packets(p) if p == [text("3probe")] => {}
            other => return Err(ClientError(format!("the probe was answered {other:?}"))),
        }
        if !ws.send(&[text("5")]).await? {
            return Err(ClientError("the upgrade was refused".to_owned()));
        }
        self.link = Some(Link::WebSocket(ws));
        Ok(())
    }

    /// Send a text packet.
    pub async fn send_text(&mut self, packet: &str) -> Result<(), ClientError> {
        self.send(&[text(packet)]).await
    }

    async fn send(&mut self, packets: &[Packet]) -> Result<(), ClientError> {
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| ClientError("not connected".to_owned()))?;
        if !link.send(packets).await? {
            self.closed();
        }
        Ok(())
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
        let mut packets = vec![Packet::Text(packet)];
        packets.extend(attachments.into_iter().map(Packet::Binary));
        self.send(&packets).await
    }

    /// Close the session and wait until the server has handled it.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| ClientError("not connected".to_owned()))?;
        link.close().await?;
        self.link = None;
        Ok(())
    }

    /// Ping the server and read until its pong, recording what arrives before it. Because
    /// the server handles a session's packets in order and queues deliveries before it
    /// reads the next packet, everything a step caused has arrived once this returns.
    pub async fn barrier(&mut self) -> Result<(), ClientError> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        if !link.send(&[text("2")]).await? {
            self.closed();
            return Ok(());
        }
        loop {
            let Some(link) = self.link.as_mut() else {
                return Ok(());
            };
            match link.read().await? {
                Read::Closed => {
                    self.closed();
                    return Ok(());
                }
                Read::Packets(packets) => {
                    if self.record(packets).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Record what arrived, answering pings; whether it held the pong.
    async fn record(&mut self, packets: Vec<Packet>) -> Result<bool, ClientError> {
        let mut pong = false;
        for packet in packets {
            match packet {
                Packet::Text(t) if t == "3" => pong = true,
                Packet::Text(t) if t == "2" => self.send(&[text("3")]).await?,
                Packet::Text(t) if t == "6" => {}
                Packet::Text(t) if t == "1" => {
                    self.closed();
                    return Ok(true);
                }
                Packet::Text(t) => self.received.push(t),
                Packet::Binary(bytes) => self
                    .received
                    .push(format!("<binary {}>", STANDARD.encode(bytes))),
            }
        }
        Ok(pong)
    }

    fn closed(&mut self) {
        self.received.push("(closed)".to_owned());
        self.link = None;
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

fn text(packet: &str) -> Packet {
    Packet::Text(packet.to_owned())
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
