//! A soak client's connection: WebSocket, long-polling (a GET task and a keep-alive POST
//! connection), or long-polling upgraded to WebSocket, behind one `next`/`send` interface
//! of Engine.IO packets. Pings are answered here; every wait has a deadline.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::spawn_local;

use switchboard::engineio::frame::OpCode;

use crate::{Http, find, parse_frame, put_frame, source_ip, write_all};

/// Longest wait for anything from the server.
pub const WAIT: Duration = Duration::from_secs(10);

/// Connections opened per source address before the next address is used.
const PER_SOURCE: usize = 64;

/// An Engine.IO packet from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A text packet (`42[…]`, `40{…}`, `3probe`).
    Text(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The server closed it: a close frame (with its code), an Engine.IO close, a refused
    /// request (with its status) or the TCP connection.
    Closed(String),
    /// Nothing came within `WAIT`.
    Timeout,
}

/// Where the soak connects, and the next source address to use.
#[derive(Debug)]
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    /// The Engine.IO path.
    pub path: String,
    next: Cell<usize>,
}

impl Target {
    /// A target at `addr`/`path`; source addresses start at `offset` × 64 connections.
    pub fn new(addr: SocketAddr, path: &str, offset: usize) -> Target {
        Target {
            addr,
            path: path.to_owned(),
            next: Cell::new(offset * PER_SOURCE),
        }
    }

    /// A TCP connection from the next source address.
    pub async fn connect(&self) -> io::Result<TcpStream> {
        let idx = self.next.get();
        self.next.set(idx + 1);
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(IpAddr::V4(source_ip(idx / PER_SOURCE)), 0))?;
        let stream = tokio::time::timeout(WAIT, sock.connect(self.addr))
            .await
            .map_err(|_| io::Error::other("connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Send `request` on a new connection and read the response head: its status line.
    pub async fn raw_request(&self, request: &[u8]) -> io::Result<String> {
        let stream = self.connect().await?;
        write_all(&stream, request).await?;
        let mut buf = Vec::new();
        let read = async {
            loop {
                stream.readable().await?;
                match stream.try_read_buf(&mut buf) {
                    Ok(0) => return Ok::<_, io::Error>(()),
                    Ok(_) if find(&buf, b"\r\n").is_some() => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .map_err(|_| io::Error::other("no response"))??;
        let end = find(&buf, b"\r\n").unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}

/// A WebSocket with its read buffer.
struct WsLink {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A polling session: polls run on a task of their own, as a browser's do.
struct PollingLink {
    target: Rc<Target>,
    sid: String,
    /// `POST <path>?…&sid=… HTTP/1.1` and the Host header: every POST's head but its length.
    post_head: String,
    post: Http,
    polls: mpsc::Receiver<Result<Vec<Packet>, End>>,
    /// Set while upgrading: the poll task stops at the NOOP that releases its poll.
    pausing: Rc<Cell<bool>>,
    /// The poll task, stopped with the session's client: a client that goes away takes
    /// its pending poll's connection with it, as a closing browser tab does.
    poller: tokio::task::AbortHandle,
}

impl Drop for PollingLink {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

enum Link {
    Ws(WsLink),
    Polling(PollingLink),
}

/// One client's session.
pub struct Conn {
    link: Link,
    inbox: VecDeque<Packet>,
}

impl Conn {
    /// Open a session over WebSocket; the OPEN packet is consumed.
    pub async fn websocket(target: &Target) -> Result<Conn, End> {
        let query = "EIO=4&transport=websocket";
        let link = ws_connect(target, query).await?;
        let mut conn = Conn {
            link: Link::Ws(link),
            inbox: VecDeque::new(),
        };
        match conn.next().await? {
            Packet::Text(t) if t.first() == Some(&b'0') => Ok(conn),
            other => Err(End::Closed(format!("expected OPEN, got {other:?}"))),
        }
    }

    /// Open a session over long-polling; the OPEN packet is consumed.
    pub async fn polling(target: &Rc<Target>) -> Result<Conn, End> {
        let mut get = Http {
            stream: target.connect().await.map_err(closed)?,
            buf: Vec::new(),
        };
        let handshake = format!(
            "GET {}/?EIO=4&transport=polling HTTP/1.1\r\nHost: {}\r\n\r\n",
            target.path, target.addr
        );
        let (status, body) = timed(get.request(handshake.as_bytes())).await?;
        let text = String::from_utf8_lossy(&body);
        let sid = text
            .split_once("\"sid\":\"")
            .and_then(|(_, rest)| rest.split('"').next())
            .filter(|_| status == 200 && text.starts_with('0'))
            .ok_or_else(|| End::Closed(format!("handshake {status}: {text}")))?
            .to_owned();
        let post = Http {
            stream: target.connect().await.map_err(closed)?,
            buf: Vec::new(),
        };
        let (tx, polls) = mpsc::channel(64);
        let pausing = Rc::new(Cell::new(false));
        let poll = format!(
            "GET {}/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
            target.path, target.addr
        );
        let poller =
            spawn_local(poll_loop(target.clone(), get, poll, tx, pausing.clone())).abort_handle();
        Ok(Conn {
            link: Link::Polling(PollingLink {
                target: target.clone(),
                post_head: format!(
                    "POST {}/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\
                     Content-Type: text/plain;charset=UTF-8\r\n",
                    target.path, target.addr
                ),
                sid,
                post,
                polls,
                pausing,
                poller,
            }),
            inbox: VecDeque::new(),
        })
    }

    /// Move a polling session to WebSocket as socket.io-client does: probe, wait for the
    /// pending poll to be released, then upgrade.
    pub async fn upgrade(&mut self, target: &Target) -> Result<(), End> {
        let Link::Polling(polling) = &mut self.link else {
            return Err(End::Closed("only a polling session upgrades".to_owned()));
        };
        let query = format!("EIO=4&transport=websocket&sid={}", polling.sid);
        let mut ws = ws_connect(target, &query).await?;
        ws_send(&mut ws, &[Packet::Text(b"2probe".to_vec())]).await?;
        match ws_read(&mut ws).await? {
            Packet::Text(t) if t == b"3probe" => {}
            other => return Err(End::Closed(format!("probe answered {other:?}"))),
        }
        polling.pausing.set(true);
        // What the polls brought until the NOOP that released the last one comes first.
        loop {
            match tokio::time::timeout(WAIT, polling.polls.recv()).await {
                Err(_) => return Err(End::Timeout),
                Ok(None) => break,
                Ok(Some(Ok(packets))) => self.inbox.extend(packets),
                Ok(Some(Err(end))) => return Err(end),
            }
        }
        ws_send(&mut ws, &[Packet::Text(b"5".to_vec())]).await?;
        self.link = Link::Ws(ws);
        Ok(())
    }

    /// Send packets in order (over polling, as one payload).
    pub async fn send(&mut self, packets: &[Packet]) -> Result<(), End> {
        match &mut self.link {
            Link::Ws(ws) => ws_send(ws, packets).await,
            Link::Polling(p) => {
                let mut body = Vec::new();
                for (i, packet) in packets.iter().enumerate() {
                    if i > 0 {
                        body.push(0x1e);
                    }
                    match packet {
                        Packet::Text(t) => body.extend_from_slice(t),
                        Packet::Binary(b) => {
                            body.push(b'b');
                            body.extend_from_slice(STANDARD.encode(b).as_bytes());
                        }
                    }
                }
                post(p, &body).await
            }
        }
    }

    /// Send one text packet.
    pub async fn send_text(&mut self, text: &[u8]) -> Result<(), End> {
        self.send(&[Packet::Text(text.to_vec())]).await
    }

    /// The next packet that is neither a ping (answered here) nor a NOOP.
    pub async fn next(&mut self) -> Result<Packet, End> {
        loop {
            let Some(packet) = self.inbox.pop_front() else {
                let packets = match &mut self.link {
                    Link::Ws(ws) => vec![ws_read(ws).await?],
                    Link::Polling(p) => match tokio::time::timeout(WAIT, p.polls.recv()).await {
                        Err(_) => return Err(End::Timeout),
                        Ok(None) => return Err(End::Closed("polling ended".to_owned())),
                        Ok(Some(Err(end))) => return Err(end),
                        Ok(Some(Ok(packets))) => packets,
                    },
                };
                self.inbox.extend(packets);
                continue;
            };
            match &packet {
                Packet::Text(t) if t == b"2" => self.send_text(b"3").await?,
                Packet::Text(t) if t == b"6" => {}
                Packet::Text(t) if t == b"1" => {
                    return Err(End::Closed("Engine.IO close".to_owned()));
                }
                _ => return Ok(packet),
            }
        }
    }

    /// Close the way the stock client does: a close frame, or `1` in a POST.
    pub async fn close(mut self) {
        match &mut self.link {
            Link::Ws(ws) => {
                let mut frame = Vec::new();
                put_frame(&mut frame, OpCode::Close, &1000u16.to_be_bytes());
                let _ = write_all(&ws.stream, &frame).await;
                // Wait for the server's close (it comes once the disconnect took effect).
                while ws_read(ws).await.is_ok() {}
            }
            Link::Polling(p) => {
                let _ = post(p, b"1").await;
            }
        }
    }

    /// The session id (polling only).
    pub fn sid(&self) -> Option<&str> {
        match &self.link {
            Link::Polling(p) => Some(&p.sid),
            Link::Ws(_) => None,
        }
    }

    /// Write raw bytes on the WebSocket (for malformed frames).
    pub async fn ws_raw(&mut self, bytes: &[u8]) -> Result<(), End> {
        match &mut self.link {
            Link::Ws(ws) => write_all(&ws.stream, bytes).await.map_err(closed),
            Link::Polling(_) => Err(End::Closed("not a WebSocket".to_owned())),
        }
    }
}

fn closed(e: io::Error) -> End {
    End::Closed(format!("connection: {e}"))
}

async fn timed<T>(f: impl Future<Output = io::Result<T>>) -> Result<T, End> {
    match tokio::time::timeout(WAIT, f).await {
        Err(_) => Err(End::Timeout),
        Ok(r) => r.map_err(closed),
    }
}

/// A request on a keep-alive connection. The server may have closed it while idle (its
/// header timeout): then, as browsers do, the request goes again on a new connection.
async fn keep_alive(
    target: &Target,
    http: &mut Http,
    request: &[u8],
) -> Result<(u16, Vec<u8>), End> {
    match tokio::time::timeout(WAIT, http.request(request)).await {
        Err(_) => Err(End::Timeout),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) if http.buf.is_empty() && is_idle_close(&e) => {
            *http = Http {
                stream: target.connect().await.map_err(closed)?,
                buf: Vec::new(),
            };
            timed(http.request(request)).await
        }
        Ok(Err(e)) => Err(closed(e)),
    }
}

fn is_idle_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// POST `body` (a payload) on the session's POST connection.
async fn post(p: &mut PollingLink, body: &[u8]) -> Result<(), End> {
    let mut request = format!("{}Content-Length: {}\r\n\r\n", p.post_head, body.len()).into_bytes();
    request.extend_from_slice(body);
    let (status, answer) = keep_alive(&p.target, &mut p.post, &request).await?;
    if status == 200 {
        Ok(())
    } else {
        Err(End::Closed(format!(
            "POST answered {status} {}",
            String::from_utf8_lossy(&answer)
        )))
    }
}

/// Poll until the session ends, or until a NOOP while pausing for an upgrade.
async fn poll_loop(
    target: Rc<Target>,
    mut get: Http,
    request: String,
    tx: mpsc::Sender<Result<Vec<Packet>, End>>,
    pausing: Rc<Cell<bool>>,
) {
    loop {
        let (status, body) = match keep_alive(&target, &mut get, request.as_bytes()).await {
            Ok(r) => r,
            Err(End::Timeout) => {
                let _ = tx.send(Err(End::Timeout)).await;
                return;
            }
            Err(end) => {
                let _ = tx.send(Err(end)).await;
                return;
            }
        };
        if status != 200 {
            let text = String::from_utf8_lossy(&body).into_owned();
            let _ = tx
                .send(Err(End::Closed(format!("poll answered {status} {text}"))))
                .await;
            return;
        }
        let mut packets = Vec::new();
        let mut noop = false;
        for record in body.split(|b| *b == 0x1e) {
            match record.strip_prefix(b"b") {
                Some(b64) => match STANDARD.decode(b64) {
                    Ok(bytes) => packets.push(Packet::Binary(bytes)),
                    Err(_) => {
                        let _ = tx.send(Err(End::Closed("bad base64".to_owned()))).await;
                        return;
                    }
                },
                None => {
                    noop |= record == b"6";
                    packets.push(Packet::Text(record.to_vec()));
                }
            }
        }
        let ended = packets.iter().any(|p| *p == Packet::Text(b"1".to_vec()));
        if tx.send(Ok(packets)).await.is_err() || ended || (noop && pausing.get()) {
            return;
        }
    }
}

async fn ws_connect(target: &Target, query: &str) -> Result<WsLink, End> {
    let stream = target.connect().await.map_err(closed)?;
    let request = format!(
        "GET {}/?{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.addr
    );
    write_all(&stream, request.as_bytes())
        .await
        .map_err(closed)?;
    let mut buf = Vec::new();
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                let line = &buf[..find(&buf, b"\r\n").unwrap_or(0)];
                return Err(End::Closed(format!(
                    "upgrade refused: {}",
                    String::from_utf8_lossy(line)
                )));
            }
            buf.drain(..end + 4);
            return Ok(WsLink { stream, buf });
        }
        timed(read_more(&stream, &mut buf)).await?;
    }
}

async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    loop {
        stream.readable().await?;
        buf.reserve(16 * 1024);
        match stream.try_read_buf(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

async fn ws_send(ws: &mut WsLink, packets: &[Packet]) -> Result<(), End> {
    let mut out = Vec::new();
    for packet in packets {
        match packet {
            Packet::Text(t) => put_frame(&mut out, OpCode::Text, t),
            Packet::Binary(b) => put_frame(&mut out, OpCode::Binary, b),
        }
    }
    write_all(&ws.stream, &out).await.map_err(closed)
}

async fn ws_read(ws: &mut WsLink) -> Result<Packet, End> {
    loop {
        if let Some((opcode, start, end)) = parse_frame(&ws.buf) {
            let payload = ws.buf[start..end].to_vec();
            ws.buf.drain(..end);
            match opcode {
                OpCode::Text => return Ok(Packet::Text(payload)),
                OpCode::Binary => return Ok(Packet::Binary(payload)),
                OpCode::Close => {
                    let code = payload
                        .get(..2)
                        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
                    return Err(End::Closed(format!("close frame {code}")));
                }
                OpCode::Ping => {
                    let mut pong = Vec::new();
                    put_frame(&mut pong, OpCode::Pong, &payload);
                    write_all(&ws.stream, &pong).await.map_err(closed)?;
                }
                _ => {}
            }
            continue;
        }
        timed(read_more(&ws.stream, &mut ws.buf)).await?;
    }
}
