//! The long-polling transport of a golden client: a GET for what the server sends, a POST
//! for what the client sends, each on a connection of its own, payloads framed with `\x1e`
//! and binary packets in base64 (`b…`), as socket.io-client does. Written apart from the
//! server's codec, so that a case checks the server against a separate reading of the spec.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{ClientError, Packet, Read, WAIT};

/// A polling session.
pub struct PollingLink {
    addr: SocketAddr,
    path: String,
    sid: String,
}

const SEPARATOR: char = '\x1e';

impl PollingLink {
    /// Handshake (`GET …&transport=polling`); returns the link and any packets that came
    /// with the OPEN packet.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        extra_query: &str,
    ) -> Result<(PollingLink, Vec<Packet>), ClientError> {
        let uri = format!("{path}/?EIO=4&transport=polling{extra_query}");
        let (status, body) = request(addr, Method::GET, &uri, None).await?;
        if status != StatusCode::OK {
            return Err(ClientError(format!("handshake answered {status}: {body}")));
        }
        let mut packets = decode(&body)?;
        let open = match packets.first() {
            Some(Packet::Text(t)) if t.starts_with('0') => t[1..].to_owned(),
            _ => return Err(ClientError("the first packet is not OPEN".to_owned())),
        };
        packets.remove(0);
        #[derive(serde::Deserialize)]
        struct Open {
            sid: String,
        }
        let Open { sid } = serde_json::from_str(&open)
            .map_err(|e| ClientError(format!("OPEN packet {open}: {e}")))?;
        let link = PollingLink {
            addr,
            path: path.to_owned(),
            sid,
        };
        Ok((link, packets))
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    fn uri(&self) -> String {
        format!("{}/?EIO=4&transport=polling&sid={}", self.path, self.sid)
    }

    /// POST the packets as one payload; `Ok(false)` when the session is gone.
    pub async fn send(&mut self, packets: &[Packet]) -> Result<bool, ClientError> {
        let (status, _) =
            request(self.addr, Method::POST, &self.uri(), Some(encode(packets))).await?;
        Ok(status == StatusCode::OK)
    }

    /// One long-poll.
    pub async fn read(&mut self) -> Result<Read, ClientError> {
        let (status, body) = request(self.addr, Method::GET, &self.uri(), None).await?;
        if status != StatusCode::OK {
            return Ok(Read::Closed);
        }
        Ok(Read::Packets(decode(&body)?))
    }

    /// POST the close packet, then poll as the stock client still does: the server answers
    /// that poll once the disconnection has taken effect.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        if !self.send(&[Packet::Text("1".to_owned())]).await? {
            return Ok(());
        }
        let _ = self.read().await?;
        Ok(())
    }
}

/// A payload: packets joined by `\x1e`, binary ones as `b<base64>`.
fn encode(packets: &[Packet]) -> String {
    let mut out = String::new();
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        match packet {
            Packet::Text(text) => out.push_str(text),
            Packet::Binary(bytes) => {
                out.push('b');
                out.push_str(&STANDARD.encode(bytes));
            }
        }
    }
    out
}

fn decode(payload: &str) -> Result<Vec<Packet>, ClientError> {
    payload
        .split(SEPARATOR)
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('b') {
            Some(b64) => STANDARD
                .decode(b64)
                .map(Packet::Binary)
                .map_err(|e| ClientError(format!("binary packet {p}: {e}"))),
            None => Ok(Packet::Text(p.to_owned())),
        })
        .collect()
}

/// One HTTP/1.1 request on a connection of its own: its status and body.
async fn request(
    addr: SocketAddr,
    method: Method,
    uri: &str,
    body: Option<String>,
) -> Result<(StatusCode, String), ClientError> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError(format!("connect: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError(format!("HTTP handshake: {e}")))?;
        tokio::spawn(conn);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", addr.to_string());
        if body.is_some() {
            builder = builder.header("Content-Type", "text/plain;charset=UTF-8");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError(format!("request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ClientError(format!("{uri}: {e}")))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError(format!("{uri}: reading the body: {e}")))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .map_err(|_| ClientError(format!("no answer to {uri} within 5 s")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_frame_text_and_base64_binary() {
        let packets = vec![
            Packet::Text("451-[\"up\",{\"_placeholder\":true,\"num\":0}]".to_owned()),
            Packet::Binary(vec![1, 2, 3]),
            Packet::Text("2".to_owned()),
        ];
        let payload = encode(&packets);
        assert_eq!(
            payload,
            "451-[\"up\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID\x1e2"
        );
        assert_eq!(decode(&payload).unwrap(), packets);
        assert!(decode("b!!").is_err());
    }
}
