//! The Engine.IO path's own HTTP/1.1: long-polling requests (GET and POST, a body of a known
//! length) and WebSocket handshakes are read and answered here, without hyper, so that a poll
//! waiting for packets and a connection idle between requests hold no buffer (hyper keeps
//! 16 KiB per connection for its life, and a polling session has two), and so that a
//! WebSocket's `101` response goes out with its session's OPEN packet in one write.
//!
//! Whatever else comes — another path, another upgrade, a chunked body, `Expect`, HTTP/1.0, a
//! head httparse cannot read or that is too large — goes to hyper with every byte read of it,
//! at a request's first byte, and the connection stays with hyper: no request is ever framed
//! by both. The deadlines are hyper's: a request head within `header_timeout` (which bounds an
//! idle connection too), a POST body within `body_timeout` (the engine's).

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::rewind::Rewind;
use super::{MAX_REQUEST_HEAD, Role, Server};
use crate::engineio::{PeerHandle, Start, Takeover, block};

/// Headers of a request read here; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// A response body up to this size goes out in the same write as its head.
const COPY_BODY: usize = 16 * 1024;

/// Serve `io`'s requests while they are Engine.IO requests read here; from the first that is
/// not, hand the connection to hyper with every byte read of that request. A WebSocket
/// handshake the engine accepts hands the connection to the WebSocket.
pub(super) async fn serve<I>(server: Arc<Server>, mut io: I, peer: PeerHandle, remote: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    let mut buf = BytesMut::new();
    loop {
        let deadline = server.app.snapshot().routes.limits.header_timeout;
        let head = tokio::select! {
            head = tokio::time::timeout(deadline, read_head(&mut io, &mut buf, |path| server.is_engine_endpoint(path))) => head,
            () = server.stopping.cancelled() => return,
        };
        let head = match head {
            Ok(Ok(Read::Engine(head))) => head,
            Ok(Ok(Read::Other)) => break,
            // Closed, failed, or the head did not come in time: hyper too closes silently.
            Ok(Ok(Read::Closed) | Err(_)) | Err(_) => return,
        };
        buf.advance(head.len);
        if buf.is_empty() {
            // A poll waits holding nothing of the bytes its request came in.
            buf = BytesMut::new();
        }
        // Boxed: a connection holds the room a request takes only while one runs.
        match Box::pin(answer(&server, &mut io, &mut buf, head, &peer, remote)).await {
            After::Next => {}
            After::Close => return,
            After::WebSocket(start, response) => {
                start(Box::new(io), buf.split().freeze(), response);
                return;
            }
        }
        if buf.is_empty() {
            // Nothing held while the connection waits for its next request.
            buf = BytesMut::new();
        }
    }
    let io = Rewind::new(io, buf.freeze());
    // Boxed: a connection served here never carries hyper's future.
    Box::pin(server.hyper(io, peer, remote, Role::Public)).await;
}

/// What comes after a request's answer.
enum After {
    /// The connection's next request.
    Next,
    /// The connection's end.
    Close,
    /// The connection is a WebSocket's: what runs it, and the response head it sends first.
    WebSocket(Start, Vec<u8>),
}

/// Answer one Engine.IO request (its head read, its body next in `buf` and `io`).
async fn answer<I>(
    server: &Server,
    io: &mut I,
    buf: &mut BytesMut,
    head: Box<Head>,
    peer: &PeerHandle,
    remote: SocketAddr,
) -> After
where
    I: AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let engine = server.app.engine();
    // A WebSocket handshake refused is answered and its connection closed, as by the
    // reference server: what the client sent behind it is frames, not requests.
    let asked_close = head.close || head.websocket;
    let (answer, unread) = if head.method == Method::GET {
        let takeover = head.websocket.then(Takeover::default);
        let mut req = head.into_request(Body::<I>::empty(), peer);
        if let Some(takeover) = &takeover {
            req.extensions_mut().insert(takeover.clone());
        }
        let mut handled = Box::pin(engine.handle(req, remote));
        let answer = if takeover.is_some() {
            // A WebSocket handshake is answered at once: there is no wait to watch.
            handled.await
        } else {
            // As hyper: a client that closes while its poll waits takes the poll with it.
            tokio::select! {
                answer = &mut handled => answer,
                () = watch(io, buf) => return After::Close,
            }
        };
        // An accepted WebSocket handshake: the WebSocket sends the response, with its first
        // frames.
        // (A `Start` not taken fails its handshake when dropped.)
        if let Some(start) = takeover.as_ref().and_then(Takeover::take)
            && answer.status() == StatusCode::SWITCHING_PROTOCOLS
        {
            let (parts, _) = answer.into_parts();
            return After::WebSocket(start, response_head(&parts, 0, false));
        }
        (answer, 0)
    } else {
        let mut unread = head.body_len;
        let body = Body::read(io, buf, &mut unread);
        let req = head.into_request(body, peer);
        let answer = Box::pin(engine.handle(req, remote)).await;
        // A body the engine did not read (an unknown session's, say) that is all here is
        // skipped; the connection goes on.
        if unread > 0 && buf.len() as u64 >= unread {
            buf.advance(unread as usize);
            unread = 0;
        }
        (answer, unread)
    };
    // A body not read to its end leaves no way to find the next request.
    let close = asked_close || unread > 0 || server.stopping.is_cancelled();
    // Boxed: a waiting poll does not carry the room its answer's writing takes.
    if Box::pin(respond(io, answer, close)).await.is_err() {
        return After::Close;
    }
    if close {
        let _ = io.shutdown().await;
        return After::Close;
    }
    After::Next
}

/// What came on the connection.
enum Read {
    /// A long-polling request or a WebSocket handshake.
    Engine(Box<Head>),
    /// A request for hyper (or bytes hyper will refuse).
    Other,
    /// The peer closed before a request began.
    Closed,
}

/// Read until `buf` holds a whole request head. The head is parsed once its blank line has
/// come, not at every read: a head sent a byte at a time costs one pass over it, not one per
/// byte.
/// `engine` says whether a path is the Engine.IO endpoint.
async fn read_head<I>(
    io: &mut I,
    buf: &mut BytesMut,
    engine: impl Fn(&str) -> bool,
) -> io::Result<Read>
where
    I: AsyncRead + Unpin,
{
    let mut searched: usize = 0;
    loop {
        // Empty lines before a request line are skipped (as httparse does), not taken for
        // the end of a head.
        let start = buf.iter().position(|b| !matches!(b, b'\r' | b'\n'));
        let ended =
            start.is_some_and(|start| ends_a_head(&buf[start.max(searched.saturating_sub(2))..]));
        if ended || buf.len() >= MAX_REQUEST_HEAD {
            match Head::parse(buf, &engine) {
                Parsed::Partial if buf.len() < MAX_REQUEST_HEAD => {}
                // Whole, but over the limit (its last read crossed it): hyper answers 431.
                Parsed::Engine(head) if head.len <= MAX_REQUEST_HEAD => {
                    return Ok(Read::Engine(head));
                }
                Parsed::Partial | Parsed::Other | Parsed::Engine(_) => return Ok(Read::Other),
            }
        }
        searched = buf.len();
        if std::future::poll_fn(|cx| fill(io, cx, buf)).await? == 0 {
            return Ok(Read::Closed);
        }
    }
}

/// Whether `bytes` hold an empty line (`\n\n` or `\n\r\n`), which ends a request head.
fn ends_a_head(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .any(|(at, _)| matches!(&bytes[at + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
}

/// Read once from `io` into `buf`: how many bytes came (0 at the end). The read goes into
/// the thread's read block (as a WebSocket's does) and is copied out at once, so a
/// connection waiting to read holds no buffer and the block is free again.
fn fill<I: AsyncRead + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let read = ready!(block::poll_read(Pin::new(io), cx))?;
    buf.extend_from_slice(&read);
    Poll::Ready(Ok(read.len()))
}

/// Returns when the peer closes the connection (or it fails). What the peer sends meanwhile
/// (a pipelined request) is kept in `buf`, up to a request head's worth.
async fn watch<I: AsyncRead + Unpin>(io: &mut I, buf: &mut BytesMut) {
    loop {
        if buf.len() >= MAX_REQUEST_HEAD {
            // Read no more until the answer is out: the peer waits.
            return std::future::pending().await;
        }
        match std::future::poll_fn(|cx| fill(io, cx, buf)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The head of a long-polling request, parsed.
#[derive(Debug)]
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// Its body's length (0 for a GET).
    body_len: u64,
    /// Whether the client asked for the connection to close after the answer.
    close: bool,
    /// Whether it asks for a WebSocket (`Upgrade: websocket`).
    websocket: bool,
    /// Bytes of the head.
    len: usize,
}

/// What a buffer's first bytes are.
#[derive(Debug)]
enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A long-polling request or a WebSocket handshake for this path (boxed: a request's
    /// future keeps it).
    Engine(Box<Head>),
    /// Anything else.
    Other,
}

impl Head {
    /// Parse `buf`'s request head; `engine` says whether a path is the Engine.IO endpoint.
    fn parse(buf: &[u8], engine: impl Fn(&str) -> bool) -> Parsed {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::Other,
        };
        let method = match req.method {
            Some("GET") => Method::GET,
            Some("POST") => Method::POST,
            _ => return Parsed::Other,
        };
        let Some(path) = req.path.filter(|p| p.starts_with('/')) else {
            return Parsed::Other;
        };
        let Ok(uri) = Uri::try_from(path) else {
            return Parsed::Other;
        };
        if req.version != Some(1) || !engine(uri.path()) {
            return Parsed::Other;
        }
        let mut map = HeaderMap::with_capacity(req.headers.len());
        let (mut body_len, mut close, mut websocket, mut upgrade) = (None, false, false, false);
        for h in req.headers.iter() {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) else {
                return Parsed::Other;
            };
            match name {
                header::TRANSFER_ENCODING | header::EXPECT => return Parsed::Other,
                // A WebSocket's handshake is answered here too; any other upgrade is hyper's.
                header::UPGRADE if !websocket && h.value.eq_ignore_ascii_case(b"websocket") => {
                    websocket = true;
                }
                header::UPGRADE => return Parsed::Other,
                header::CONTENT_LENGTH => match (body_len, content_length(h.value)) {
                    (None, Some(n)) => body_len = Some(n),
                    _ => return Parsed::Other,
                },
                header::CONNECTION => match connection_tokens(h.value) {
                    Some(tokens) => {
                        close |= tokens.close;
                        upgrade |= tokens.upgrade;
                    }
                    None => return Parsed::Other,
                },
                _ => {}
            }
            map.append(name, value);
        }
        let body_len = body_len.unwrap_or(0);
        // A WebSocket handshake is a GET without a body whose `Connection` names the upgrade;
        // anything else with `Upgrade` is hyper's.
        if method == Method::GET && body_len != 0
            || websocket && (method != Method::GET || !upgrade)
        {
            return Parsed::Other;
        }
        Parsed::Engine(Box::new(Head {
            method,
            uri,
            headers: map,
            body_len,
            close,
            websocket,
            len,
        }))
    }

    /// The request, with `body`.
    fn into_request<B>(self, body: B, peer: &PeerHandle) -> Request<B> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.headers;
        req.extensions_mut().insert(peer.clone());
        req
    }
}

/// A `Content-Length` value: digits only.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// What a `Connection` header says.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConnectionTokens {
    /// `close`: the connection closes after the answer.
    close: bool,
    /// `upgrade`: the request asks for the protocol its `Upgrade` names.
    upgrade: bool,
}

/// The tokens of a `Connection` header; `None` for any but `close`, `keep-alive` and
/// `upgrade` (hyper's business).
fn connection_tokens(value: &[u8]) -> Option<ConnectionTokens> {
    let mut tokens = ConnectionTokens::default();
    for token in value.split(|&b| b == b',') {
        let token = token.trim_ascii();
        if token.eq_ignore_ascii_case(b"close") {
            tokens.close = true;
        } else if token.eq_ignore_ascii_case(b"upgrade") {
            tokens.upgrade = true;
        } else if !token.eq_ignore_ascii_case(b"keep-alive") {
            return None;
        }
    }
    Some(tokens)
}

/// A request's body, read from the connection: the bytes of it already read, then at most
/// `unread` more. A GET's is empty.
struct Body<'a, I> {
    from: Option<(&'a mut I, &'a mut BytesMut, &'a mut u64)>,
}

impl<'a, I> Body<'a, I> {
    fn empty() -> Self {
        Body { from: None }
    }

    fn read(io: &'a mut I, buf: &'a mut BytesMut, unread: &'a mut u64) -> Self {
        Body {
            from: Some((io, buf, unread)),
        }
    }

    fn unread(&self) -> u64 {
        self.from.as_ref().map_or(0, |(_, _, unread)| **unread)
    }
}

impl<I: AsyncRead + Unpin> hyper::body::Body for Body<'_, I> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some((io, buf, unread)) = &mut self.from else {
            return Poll::Ready(None);
        };
        if **unread == 0 {
            return Poll::Ready(None);
        }
        if buf.is_empty() && ready!(fill(*io, cx, buf))? == 0 {
            return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())));
        }
        let n = buf
            .len()
            .min(usize::try_from(**unread).unwrap_or(usize::MAX));
        **unread -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(buf.split_to(n).freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.unread() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.unread())
    }
}

/// Write `answer`; with `close`, it says the connection closes after it.
async fn respond<I: AsyncWrite + Unpin>(
    io: &mut I,
    answer: Response<Full<Bytes>>,
    close: bool,
) -> io::Result<()> {
    let (parts, mut body) = answer.into_parts();
    // A whole body is one frame (none when empty): taken as it is, nothing collected.
    let body = match body.frame().await {
        Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
        Some(Err(never)) => match never {},
        None => Bytes::new(),
    };
    let mut out = response_head(&parts, body.len(), close);
    let with_body = has_body(parts.status);
    if with_body && body.len() <= COPY_BODY {
        out.extend_from_slice(&body);
    }
    io.write_all(&out).await?;
    if with_body && body.len() > COPY_BODY {
        io.write_all(&body).await?;
    }
    io.flush().await
}

/// Whether a response with `status` has a body (and a `content-length`).
fn has_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// A response's head (status line, headers, the empty line) for a body of `body_len` bytes,
/// with room for that body behind it when it goes in the same write. With `close`, it says
/// the connection closes after it.
fn response_head(parts: &http::response::Parts, body_len: usize, close: bool) -> Vec<u8> {
    let with_body = has_body(parts.status);
    let room = if with_body && body_len <= COPY_BODY {
        body_len
    } else {
        0
    };
    let mut out = Vec::with_capacity(256 + room);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        line(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if with_body && !parts.headers.contains_key(header::CONTENT_LENGTH) {
        out.extend_from_slice(b"content-length: ");
        let _ = write!(out, "{body_len}");
        out.extend_from_slice(b"\r\n");
    }
    if close {
        line(&mut out, b"connection", b"close");
    }
    DATE.with_borrow_mut(|date| line(&mut out, b"date", date.now().as_bytes()));
    out.extend_from_slice(b"\r\n");
    out
}

/// `name: value\r\n` onto `out`.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    static DATE: RefCell<Date> = const { RefCell::new(Date { second: 0, text: String::new() }) };
}

/// The `Date` header's value, formatted once a second per thread.
struct Date {
    second: u64,
    text: String,
}

impl Date {
    fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests;
