//! Unit tests of the Engine.IO path's own HTTP: heads, bodies, answers.

use super::*;
use std::task::Context;
use std::time::Duration;
use tokio::io::ReadBuf;

const ENDPOINT: &str = "/socket.io/";

fn parse(head: &str) -> Parsed {
    Head::parse(head.as_bytes(), |path| path == ENDPOINT)
}

fn engine(head: &str) -> Head {
    match parse(head) {
        Parsed::Engine(head) => *head,
        other => panic!("not an Engine.IO request: {other:?} for {head:?}"),
    }
}

fn is_other(head: &str) -> bool {
    matches!(parse(head), Parsed::Other)
}

#[test]
fn a_poll_and_a_post_are_read_here() {
    let get = "GET /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = engine(get);
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.uri.query(), Some("EIO=4&transport=polling&sid=x"));
    assert_eq!((head.body_len, head.close, head.len), (0, false, get.len()));
    assert_eq!(head.headers["host"], "a");

    let post = "POST /socket.io/?sid=x HTTP/1.1\r\ncontent-length: 12\r\nConnection: keep-alive, Close\r\n\r\n4hello";
    let head = engine(post);
    assert_eq!((head.body_len, head.close), (12, true));
    assert_eq!(
        head.len,
        post.len() - "4hello".len(),
        "the body is not part of the head"
    );
}

#[test]
fn a_websocket_handshake_is_read_here() {
    let get = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\n\
        Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let head = engine(get);
    assert!(head.websocket);
    assert_eq!(
        (head.method, head.body_len, head.close),
        (Method::GET, 0, false)
    );
    assert_eq!(
        head.headers["upgrade"], "WebSocket",
        "the engine checks the rest"
    );
    assert!(!engine("GET /socket.io/ HTTP/1.1\r\nConnection: upgrade\r\n\r\n").websocket);
}

#[test]
fn a_head_not_whole_yet_is_partial() {
    assert!(matches!(
        parse("GET /socket.io/ HTTP/1.1\r\nHost: a\r\n"),
        Parsed::Partial
    ));
    assert!(matches!(parse("GE"), Parsed::Partial));
}

#[test]
fn everything_else_goes_to_hyper() {
    for head in [
        // Another path, another method, another version.
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /socket.io/socket.io.min.js HTTP/1.1\r\n\r\n",
        "OPTIONS /socket.io/ HTTP/1.1\r\n\r\n",
        "HEAD /socket.io/ HTTP/1.1\r\n\r\n",
        "GET /socket.io/ HTTP/1.0\r\n\r\n",
        "GET http://a/socket.io/ HTTP/1.1\r\n\r\n",
        // Upgrades but WebSocket handshakes, chunked bodies, expectations.
        "GET /socket.io/ HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\r\nUpgrade: websocket, h2c\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\r\nConnection: Upgrade, TE\r\nUpgrade: websocket\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        // Lengths that are not one plain number, a GET with a body.
        "POST /socket.io/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n",
        "POST /socket.io/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
        // Malformed.
        "GET /socket.io/ HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET /socket.io/ HTTP/1.1\nHost a\r\n\r\n",
        "\u{0}\u{0}\r\n\r\n",
    ] {
        assert!(is_other(head), "{head:?} is hyper's");
    }
    let many: String = (0..MAX_HEADERS + 1)
        .map(|i| format!("x-{i}: y\r\n"))
        .collect();
    assert!(is_other(&format!("GET /socket.io/ HTTP/1.1\r\n{many}\r\n")));
}

#[test]
fn a_head_ends_at_its_empty_line() {
    assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(ends_a_head(b"GET / HTTP/1.1\nHost: a\n\n"));
    assert!(ends_a_head(b"\n\r\n"));
    assert!(!ends_a_head(b"GET / HTTP/1.1\r\nHost: a\r\n"));
    assert!(!ends_a_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r"));
    assert!(!ends_a_head(b""));
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_read() {
    let (mut near, mut far) = tokio::io::duplex(1);
    let head = "POST /socket.io/?sid=x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
    let sending = tokio::spawn(async move {
        for byte in head.bytes() {
            near.write_all(&[byte]).await.unwrap();
        }
        near
    });
    let mut buf = BytesMut::new();
    let read = read_head(&mut far, &mut buf, |path| path == ENDPOINT).await;
    let Read::Engine(parsed) = read.unwrap() else {
        panic!("a polling request");
    };
    assert_eq!((parsed.len, parsed.body_len), (head.len(), 2));
    let _near = sending.await.unwrap();
}

#[test]
fn content_length_is_digits_only() {
    assert_eq!(content_length(b"0"), Some(0));
    assert_eq!(content_length(b"1048576"), Some(1_048_576));
    for bad in [
        &b""[..],
        b" 1",
        b"1 ",
        b"-1",
        b"0x10",
        b"1e3",
        b"1234567890123456789",
    ] {
        assert_eq!(
            content_length(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[tokio::test]
async fn a_body_is_what_was_read_then_the_rest_and_no_more() {
    let (mut near, mut far) = tokio::io::duplex(64);
    near.write_all(b"lo, world\r\nGET /next").await.unwrap();
    let mut buf = BytesMut::from(&b"hel"[..]);
    let mut unread = 8;
    let collected = Body::read(&mut far, &mut buf, &mut unread)
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&collected[..], b"hello, w");
    assert_eq!(unread, 0);
    // What came after the body stays for the next request.
    assert_eq!(&buf[..], b"orld\r\nGET /next");
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_and_says_what_is_missing() {
    let (mut near, mut far) = tokio::io::duplex(64);
    near.write_all(b"abc").await.unwrap();
    drop(near);
    let mut buf = BytesMut::new();
    let mut unread = 10;
    let read = Body::read(&mut far, &mut buf, &mut unread).collect().await;
    assert_eq!(
        read.err().map(|e| e.kind()),
        Some(io::ErrorKind::UnexpectedEof)
    );
    assert_eq!(unread, 7);
}

async fn written(answer: Response<Full<Bytes>>, close: bool) -> String {
    let mut out = Vec::new();
    respond(&mut out, answer, close).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn an_answer_is_written_with_its_length_and_the_date() {
    let mut answer = Response::new(Full::new(Bytes::from_static(b"4hello")));
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let text = written(answer, false).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, "4hello");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        &rest[..2],
        ["content-type: text/plain", "content-length: 6"]
    );
    assert!(
        rest[2].starts_with("date: ") && rest[2].ends_with(" GMT"),
        "{rest:?}"
    );
    assert_eq!(rest.len(), 3);

    let mut refused = Response::new(Full::new(Bytes::new()));
    *refused.status_mut() = StatusCode::BAD_REQUEST;
    let text = written(refused, true).await;
    assert!(
        text.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n")
    );
    assert!(text.ends_with("\r\n\r\n"));
}

#[tokio::test]
async fn a_large_answer_is_written_whole() {
    let big = Bytes::from(vec![b'x'; COPY_BODY * 3]);
    let text = written(Response::new(Full::new(big.clone())), false).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("content-length: {}", big.len())));
    assert_eq!(body.as_bytes(), &big[..]);
}

#[tokio::test(start_paused = true)]
async fn what_comes_while_a_poll_waits_is_kept_up_to_a_head_s_worth() {
    let (mut near, mut far) = tokio::io::duplex(1 << 20);
    near.write_all(&vec![b'x'; 4 * MAX_REQUEST_HEAD])
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    // The peer keeps its connection open and sends more than a head: watching reads a
    // head's worth, then waits (the clock is paused: the deadline passes once it does).
    let watched = tokio::time::timeout(Duration::from_secs(60), watch(&mut far, &mut buf)).await;
    assert!(watched.is_err(), "still watching");
    assert!(
        (MAX_REQUEST_HEAD..MAX_REQUEST_HEAD + block::BLOCK).contains(&buf.len()),
        "{} bytes kept",
        buf.len()
    );
    // A peer that sends a little and closes: watching ends.
    let (mut near, mut far) = tokio::io::duplex(1 << 20);
    near.write_all(b"GET /next").await.unwrap();
    drop(near);
    let mut buf = BytesMut::new();
    tokio::time::timeout(Duration::from_secs(60), watch(&mut far, &mut buf))
        .await
        .expect("the close is seen");
    assert_eq!(&buf[..], b"GET /next");
}

/// A peer whose reads return these chunks, one per read (split where a read takes less),
/// then the end.
struct Script(std::collections::VecDeque<Vec<u8>>);

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut chunk) = self.0.pop_front() {
            if chunk.len() > buf.remaining() {
                let rest = chunk.split_off(buf.remaining());
                self.0.push_front(rest);
            }
            buf.put_slice(&chunk);
        }
        Poll::Ready(Ok(()))
    }
}

async fn read_script(chunks: Vec<Vec<u8>>) -> (Read, BytesMut) {
    let mut buf = BytesMut::new();
    let mut peer = Script(chunks.into());
    let read = read_head(&mut peer, &mut buf, |path| path == ENDPOINT);
    (read.await.unwrap(), buf)
}

#[tokio::test]
async fn a_head_over_the_limit_is_hyper_s_even_when_its_last_read_ends_it() {
    let line = format!("x-pad: {}\r\n", "p".repeat(1000));
    let mut head = b"GET /socket.io/?sid=x HTTP/1.1\r\n".to_vec();
    while head.len() < MAX_REQUEST_HEAD - 1024 {
        head.extend_from_slice(line.as_bytes());
    }
    // The last read brings the empty line and crosses the limit.
    let mut last = line.repeat(3).into_bytes();
    last.extend_from_slice(b"\r\n");
    assert!(head.len() + last.len() > MAX_REQUEST_HEAD);
    let (read, buf) = read_script(vec![head.clone(), last]).await;
    assert!(matches!(read, Read::Other));
    assert!(
        buf.len() > MAX_REQUEST_HEAD,
        "every byte read goes to hyper"
    );
    // Under the limit, the same head is read here.
    let mut under = head;
    under.extend_from_slice(b"\r\n");
    assert!(matches!(read_script(vec![under]).await.0, Read::Engine(_)));
}

#[tokio::test]
async fn empty_lines_before_a_request_are_not_its_end() {
    let request = b"GET /socket.io/?sid=x HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut chunks: Vec<Vec<u8>> = (0..100).map(|_| b"\r\n".to_vec()).collect();
    chunks.push(request.to_vec());
    let (read, _) = read_script(chunks).await;
    let Read::Engine(head) = read else {
        panic!("a polling request after the empty lines");
    };
    assert_eq!(head.len, 200 + request.len());
}
