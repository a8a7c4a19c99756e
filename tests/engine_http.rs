//! The server's own HTTP/1.1 path for long-polling requests and WebSocket handshakes, over
//! raw connections: kept alive, pipelined, handed to hyper for anything else at a request's
//! first byte, closed when a body is left unread, when asked, and when idle; a WebSocket's
//! frames sent behind its handshake are read.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::raw::{RawWs, handshake_request, text_frame};
use crate::support::{Polling, start, within};

/// One response read off `stream`: its head (status line and headers) and body, framed by
/// `content-length` or by the end of the connection.
async fn response(stream: &mut TcpStream, pending: &mut Vec<u8>) -> (String, String) {
    within("a response", async {
        let split = loop {
            if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "closed before a response: {:?}",
                String::from_utf8_lossy(pending)
            );
            pending.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(pending.drain(..split + 4).collect()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a content-length")
            .parse()
            .unwrap();
        while pending.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed inside a body");
            pending.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8(pending.drain(..length).collect()).unwrap();
        (head.trim_end().to_owned(), body)
    })
    .await
}

/// Whether the server closes `stream` (reading nothing more).
async fn closed(stream: &mut TcpStream) -> bool {
    within("the server to close the connection", async {
        let mut rest = Vec::new();
        matches!(stream.read_to_end(&mut rest).await, Ok(0) | Err(_)) && rest.is_empty()
    })
    .await
}

const CHAT: &str = r#"[namespaces."/".events]
echo = "emit"
"#;

fn post(p: &Polling, body: &str, extra: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        p.target(),
        body.len()
    )
}

fn poll(p: &Polling) -> String {
    format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", p.target())
}

fn status(head: &str) -> &str {
    head.lines().next().unwrap()
}

#[tokio::test]
async fn a_post_and_a_poll_pipelined_on_one_connection_are_answered_in_order() {
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let both = format!("{}{}", post(&p, "2one", ""), poll(&p));
    stream.write_all(both.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let (head, body) = response(&mut stream, &mut pending).await;
    assert_eq!((status(&head), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    assert!(head.contains("\r\ndate: "), "{head}");
    let (head, body) = response(&mut stream, &mut pending).await;
    assert_eq!((status(&head), body.as_str()), ("HTTP/1.1 200 OK", "3one"));
    assert!(
        head.contains("content-type: text/plain; charset=UTF-8"),
        "{head}"
    );
    // Kept alive: the next round on the same connection.
    stream
        .write_all(post(&p, "2two", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(response(&mut stream, &mut pending).await.1, "ok");
    stream.write_all(poll(&p).as_bytes()).await.unwrap();
    assert_eq!(response(&mut stream, &mut pending).await.1, "3two");
}

#[tokio::test]
async fn another_request_on_a_polling_connection_is_hyper_s_and_so_is_the_rest() {
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut pending = Vec::new();
    stream
        .write_all(post(&p, "2a", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(response(&mut stream, &mut pending).await.1, "ok");
    let rounds = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n{}", poll(&p));
    stream.write_all(rounds.as_bytes()).await.unwrap();
    let (head, _) = response(&mut stream, &mut pending).await;
    assert_eq!(
        status(&head),
        "HTTP/1.1 200 OK",
        "health answered on the same connection"
    );
    assert_eq!(response(&mut stream, &mut pending).await.1, "3a");
    // A chunked body is hyper's to read.
    let chunked = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n2b\r\n0\r\n\r\n",
        p.target()
    );
    stream.write_all(chunked.as_bytes()).await.unwrap();
    assert_eq!(response(&mut stream, &mut pending).await.1, "ok");
    assert_eq!(p.recv().await, "3b");
}

#[tokio::test]
async fn a_chunked_post_on_a_fresh_connection_is_read() {
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let chunked = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n2ch\r\n0\r\n\r\n",
        p.target()
    );
    stream.write_all(chunked.as_bytes()).await.unwrap();
    assert_eq!(response(&mut stream, &mut Vec::new()).await.1, "ok");
    assert_eq!(p.recv().await, "3ch");
}

#[tokio::test]
async fn a_post_over_max_payload_is_refused_and_its_connection_closed() {
    let server = start("[server]\nmax_payload = 1000\n").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // More than max_payload comes, and more is announced: the server stops reading, and
    // what the client sends after could not be told from a request.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n4",
        p.target()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all("x".repeat(4000).as_bytes()).await.unwrap();
    let (head, _) = response(&mut stream, &mut Vec::new()).await;
    assert_eq!(status(&head), "HTTP/1.1 413 Payload Too Large");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(closed(&mut stream).await);
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = post(&p, "2bye", "Connection: close\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = response(&mut stream, &mut Vec::new()).await;
    assert_eq!(body, "ok");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(closed(&mut stream).await);
    assert_eq!(p.recv().await, "3bye");
}

#[tokio::test]
async fn a_polling_connection_idle_past_the_header_timeout_is_closed() {
    let server = start("[limits]\nheader_timeout = \"200ms\"\n").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(post(&p, "2x", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(response(&mut stream, &mut Vec::new()).await.1, "ok");
    assert!(closed(&mut stream).await, "closed once idle");
    // A head begun and never finished is cut off too.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let half = format!("GET {} HTTP/1.1\r\nHost: x\r\nX-Slow: ", p.target());
    slow.write_all(half.as_bytes()).await.unwrap();
    assert!(closed(&mut slow).await);
    assert_eq!(p.recv().await, "3x", "the session is untouched");
}

#[tokio::test]
async fn a_client_gone_while_its_poll_waits_ends_the_session() {
    // As engine.io ("poll connection closed prematurely"), and as hyper did here: the
    // session is not kept until the heartbeat notices.
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(poll(&p).as_bytes()).await.unwrap();
    let engine = server.server.app().engine().clone();
    let waiting = || {
        engine
            .stats()
            .polls_waiting
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    crate::support::until("the poll to be waiting", || waiting() == 1).await;
    drop(stream);
    crate::support::until("the session to end", || engine.session_count() == 0).await;
    crate::support::assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn a_post_for_an_unknown_session_leaves_its_connection_usable() {
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let stray = "POST /socket.io/?EIO=4&transport=polling&sid=unknown HTTP/1.1\r\n\
                 Host: x\r\nContent-Length: 6\r\n\r\n2stray";
    let both = format!("{stray}{}", post(&p, "2next", ""));
    stream.write_all(both.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let (head, body) = response(&mut stream, &mut pending).await;
    assert_eq!(status(&head), "HTTP/1.1 400 Bad Request");
    assert_eq!(body, r#"{"code":1,"message":"Session ID unknown"}"#);
    // The body the engine did not want was skipped: the next request is read.
    assert_eq!(response(&mut stream, &mut pending).await.1, "ok");
    assert_eq!(p.recv().await, "3next");
}

#[tokio::test]
async fn frames_sent_behind_a_websocket_handshake_are_read() {
    let server = start(CHAT).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    // The client does not wait for the 101: its CONNECT and an event ride with the request.
    let mut behind = text_frame("40");
    behind.extend_from_slice(&text_frame(r#"42["echo","early"]"#));
    let mut ws = RawWs::over_with(
        stream,
        server.addr,
        "/socket.io/?EIO=4&transport=websocket",
        &behind,
    )
    .await;
    assert!(ws.recv_text().await.starts_with("0{"), "OPEN first");
    assert!(
        ws.recv_text().await.starts_with("40{"),
        "then the CONNECT's answer"
    );
    assert_eq!(ws.recv_event().await, r#"42["echo","early"]"#);
}

#[tokio::test]
async fn a_refused_websocket_handshake_is_answered_and_its_connection_closed() {
    let server = start(CHAT).await;
    let (mut other, _) = RawWs::socket(server.addr).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // As the reference server: what follows a handshake is taken for frames, so after a
    // refusal none of it is read as a request.
    let refused = handshake_request(
        "/socket.io/?EIO=4&transport=websocket&sid=nosuchsession",
        "x",
    ) + "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(refused.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let (head, body) = response(&mut stream, &mut pending).await;
    assert_eq!(status(&head), "HTTP/1.1 400 Bad Request");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert_eq!(body, r#"{"code":1,"message":"Session ID unknown"}"#);
    assert!(pending.is_empty(), "nothing more");
    assert!(
        closed(&mut stream).await,
        "closed, the second request unanswered"
    );
    // Only its sender paid: another client's WebSocket goes on.
    other.send_text(r#"42["echo","still here"]"#).await;
    assert_eq!(other.recv_event().await, r#"42["echo","still here"]"#);
}

#[tokio::test]
async fn a_websocket_ended_without_a_close_frame_gets_none() {
    let server = start(CHAT).await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    ws.shut_write().await;
    // As ws: the connection ends, no close frame is sent to a peer that sent none.
    assert_eq!(ws.closed().await, None);
}
