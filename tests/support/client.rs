//! A raw HTTP/1.1 client (one connection per request, so a pending long-poll never blocks
//! the next request) and a long-polling Engine.IO session on top of it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::within;

/// A response, body read in full.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }
}

/// Send one request over a fresh connection and read the whole response.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let what = format!("{method} {target}");
    within(&what, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(target)
            .header("host", addr.to_string());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let req = builder.body(Full::new(body.into())).expect("valid request");
        let resp = sender.send_request(req).await.expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
    .await
}

/// `GET target`.
pub async fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, Method::GET, target, &[], Bytes::new()).await
}

/// Assert an Engine.IO error answer: `status` and exactly `{"code":code,"message":message}`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: u8, message: &str) {
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (
            status,
            format!(r#"{{"code":{code},"message":"{message}"}}"#).as_str()
        ),
        "error response"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

/// One long-polling Engine.IO session.
#[derive(Debug, Clone)]
pub struct Polling {
    addr: SocketAddr,
    path: String,
    /// The session id.
    pub sid: String,
    /// The OPEN packet the handshake answered with.
    pub open: String,
}

impl Polling {
    /// Handshake at `/socket.io/`.
    pub async fn open(addr: SocketAddr) -> Polling {
        Polling::open_at(addr, "/socket.io/").await
    }

    /// Handshake at `path` (ending in `/`).
    pub async fn open_at(addr: SocketAddr, path: &str) -> Polling {
        let reply = get(addr, &format!("{path}?EIO=4&transport=polling")).await;
        Polling::from_handshake(addr, path, &reply)
    }

    /// The session a handshake at `path` answered with `reply` opened.
    pub fn from_handshake(addr: SocketAddr, path: &str, reply: &Reply) -> Polling {
        assert_eq!(reply.status, StatusCode::OK, "handshake: {}", reply.text());
        let open = reply.text().to_owned();
        assert!(open.starts_with("0{"), "an OPEN packet: {open:?}");
        Polling {
            addr,
            path: path.to_owned(),
            sid: super::sid_of(&open),
            open,
        }
    }

    /// The request target of this session.
    pub fn target(&self) -> String {
        format!("{}?EIO=4&transport=polling&sid={}", self.path, self.sid)
    }

    /// A long-poll GET, whatever it answers.
    pub async fn get(&self) -> Reply {
        get(self.addr, &self.target()).await
    }

    /// A POST of `body`, whatever it answers.
    pub async fn post(&self, body: impl Into<Bytes>) -> Reply {
        request(self.addr, Method::POST, &self.target(), &[], body).await
    }

    /// A long-poll GET that must succeed; its payload.
    pub async fn recv(&self) -> String {
        let reply = self.get().await;
        assert_eq!(reply.status, StatusCode::OK, "poll: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=UTF-8")
        );
        reply.text().to_owned()
    }

    /// A POST that must be accepted (`200 ok`).
    pub async fn send(&self, body: impl Into<Bytes>) {
        let reply = self.post(body).await;
        assert_eq!(
            (reply.status, reply.text()),
            (StatusCode::OK, "ok"),
            "POST accepted"
        );
    }

    /// Join the default namespace; returns the socket id.
    pub async fn connect(&self) -> String {
        self.send("40").await;
        let answer = self.recv().await;
        assert!(answer.starts_with("40{"), "CONNECT answer: {answer:?}");
        super::sid_of(&answer)
    }
}
