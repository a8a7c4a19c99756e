//! A raw WebSocket peer over a bare TCP stream, for playing a hostile client: it writes
//! frames exactly as told (fragments, unmasked frames, many messages in one write) and reads
//! only when asked, so it can also just stop reading.

use std::net::SocketAddr;

use switchboard::engineio::frame::{self, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Msg, within};

/// One WebSocket connection, frame by frame.
#[derive(Debug)]
pub struct RawWs {
    /// The TCP stream, for tests that need it bare.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    frame::put_frame(
        &mut out,
        fin,
        opcode,
        payload,
        Some([0x37, 0xFA, 0x21, 0x3D]),
    );
    out
}

/// A masked, final text frame.
pub fn text_frame(text: &str) -> Vec<u8> {
    client_frame(true, OpCode::Text, text.as_bytes())
}

/// `n` events `echo` asking for acks 0..n (`42{i}["echo",{i}]`), framed, for one write.
pub fn echo_burst(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(&text_frame(&format!(r#"42{i}["echo",{i}]"#)));
    }
    out
}

/// The text frames in `bytes` (a server's output, read raw), and how many bytes they took.
pub fn text_frames(bytes: &[u8]) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(h)) = frame::parse_header(&bytes[at..], false) {
        let end = at + h.header_len + h.len as usize;
        if end > bytes.len() {
            break;
        }
        if h.opcode == OpCode::Text {
            out.push(String::from_utf8_lossy(&bytes[at + h.header_len..end]).into_owned());
        }
        at = end;
    }
    (out, at)
}

/// A client's WebSocket handshake request for `target` (as a browser sends it).
pub fn handshake_request(target: &str, host: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

impl RawWs {
    /// Open a WebSocket to `target` and check the 101 answer.
    pub async fn connect(addr: SocketAddr, target: &str) -> RawWs {
        let stream = within("a TCP connection", TcpStream::connect(addr))
            .await
            .expect("connect");
        RawWs::over(stream, addr, target).await
    }

    /// A direct session joined to `/` over a connection whose receive buffer is small: a
    /// client that stops reading stops the server's writes soon.
    pub async fn socket_with_small_buffer(addr: SocketAddr) -> (RawWs, String) {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = within("a TCP connection", socket.connect(addr))
            .await
            .expect("connect");
        let mut ws = RawWs::over(stream, addr, "/socket.io/?EIO=4&transport=websocket").await;
        let open = ws.recv_text().await;
        assert!(open.starts_with("0{"), "an OPEN packet: {open:?}");
        ws.send_text("40").await;
        let answer = ws.recv_text().await;
        (ws, super::sid_of(&answer))
    }

    /// The WebSocket handshake for `target` over `stream`.
    pub async fn over(stream: TcpStream, addr: SocketAddr, target: &str) -> RawWs {
        RawWs::over_with(stream, addr, target, &[]).await
    }

    /// The WebSocket handshake for `target` over `stream`, with `behind` (frames) sent in the
    /// same write as the request, before any answer.
    pub async fn over_with(
        mut stream: TcpStream,
        addr: SocketAddr,
        target: &str,
        behind: &[u8],
    ) -> RawWs {
        let mut request = handshake_request(target, &addr.to_string()).into_bytes();
        request.extend_from_slice(behind);
        stream.write_all(&request).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = within("the upgrade answer", stream.read(&mut chunk))
                .await
                .expect("read");
            assert!(n > 0, "connection closed before the upgrade answer");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "upgrade refused: {head:?}"
        );
        buf.drain(..end);
        RawWs { stream, buf }
    }

    /// A direct WebSocket session at `/socket.io/`; returns it with its OPEN packet.
    pub async fn open(addr: SocketAddr) -> (RawWs, String) {
        let mut ws = RawWs::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
        let open = ws.recv_text().await;
        assert!(open.starts_with("0{"), "an OPEN packet: {open:?}");
        (ws, open)
    }

    /// A direct session joined to `/`; returns it with the socket id.
    pub async fn socket(addr: SocketAddr) -> (RawWs, String) {
        let (mut ws, _) = RawWs::open(addr).await;
        ws.send_text("40").await;
        let answer = ws.recv_text().await;
        assert!(answer.starts_with("40{"), "CONNECT answer: {answer:?}");
        (ws, super::sid_of(&answer))
    }

    /// Write raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        within("bytes to be written", self.stream.write_all(bytes))
            .await
            .expect("write");
    }

    /// Write bytes, tolerating a connection the server has already closed.
    pub async fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        within("bytes to be written", self.stream.write_all(bytes)).await
    }

    /// End the client's side of the connection (TCP half-close), without a close frame.
    pub async fn shut_write(&mut self) {
        within("the client's side to close", self.stream.shutdown())
            .await
            .expect("shutdown");
    }

    /// Send one masked text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.write(&text_frame(text)).await;
    }

    async fn fill(&mut self, want: usize) -> bool {
        while self.buf.len() < want {
            let mut chunk = vec![0u8; 64 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// The next message from the server (pings skipped).
    pub async fn recv(&mut self) -> Msg {
        within("a frame from the server", self.next()).await
    }

    /// The next frame of any type, pongs included: `None` at the end of the stream.
    pub async fn recv_frame(&mut self) -> Option<(OpCode, Vec<u8>)> {
        within("a frame from the server", self.next_frame()).await
    }

    async fn next_frame(&mut self) -> Option<(OpCode, Vec<u8>)> {
        let header = loop {
            match frame::parse_header(&self.buf, false).expect("a valid server frame") {
                Some(h) => break h,
                None => {
                    let want = self.buf.len() + 1;
                    if !self.fill(want).await {
                        return None;
                    }
                }
            }
        };
        assert!(header.mask.is_none(), "a server never masks");
        let total = header.header_len + header.len as usize;
        if !self.fill(total).await {
            return None;
        }
        let payload: Vec<u8> = self.buf[header.header_len..total].to_vec();
        self.buf.drain(..total);
        Some((header.opcode, payload))
    }

    async fn next(&mut self) -> Msg {
        loop {
            let Some((opcode, payload)) = self.next_frame().await else {
                return Msg::Eof;
            };
            return match opcode {
                OpCode::Text => Msg::Text(String::from_utf8(payload).expect("UTF-8")),
                OpCode::Binary => Msg::Binary(payload),
                OpCode::Close => Msg::Close(
                    payload
                        .get(..2)
                        .map_or(1005, |b| u16::from_be_bytes([b[0], b[1]])),
                ),
                _ => continue,
            };
        }
    }

    /// The next message, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Msg::Text(text) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next message that is not a heartbeat ping (`2`), which is answered.
    pub async fn recv_event(&mut self) -> String {
        loop {
            let text = self.recv_text().await;
            if text == "2" {
                self.send_text("3").await;
                continue;
            }
            return text;
        }
    }

    /// Read until the server closes: the close code, if a close frame came first.
    pub async fn closed(&mut self) -> Option<u16> {
        within("the server to close", async {
            let mut code = None;
            loop {
                match self.next().await {
                    Msg::Close(c) => code = Some(c),
                    Msg::Eof => return code,
                    _ => {}
                }
            }
        })
        .await
    }
}
