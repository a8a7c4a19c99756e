//! The HTTP edge: caps on connections and sessions answer 503 and recover, deadlines cut off
//! peers that send nothing, request heads and kept headers are bounded.

use bytes::Bytes;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Polling, assert_error, get, request, start, until, within};

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

/// Read until the server closes the connection; what it sent.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    within("the server to close the connection", async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let server = start("[limits]\nheader_timeout = \"200ms\"\n").await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    read_to_end(&mut slow).await;
    // Everyone else is served meanwhile and after.
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start("[limits]\nheader_timeout = \"200ms\"\n").await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = read_to_end(&mut idle).await;
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "answered, then closed once idle: {:?}",
        String::from_utf8_lossy(&answered[..answered.len().min(40)])
    );
}

#[tokio::test]
async fn a_post_body_that_never_ends_is_cut_off_and_costs_only_its_session() {
    let server = start("[limits]\nbody_timeout = \"200ms\"\n").await;
    let victim = Polling::open(server.addr).await;
    let other = Polling::open(server.addr).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n4partial",
        victim.target()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_end(&mut slow).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_error(&victim.get().await, 400, 1, "Session ID unknown");
    other.send("2alive").await;
    assert_eq!(
        other.recv().await,
        "3alive",
        "the other session is untouched"
    );
    let hits = server.server.app().hits();
    assert_eq!(hits.count(switchboard::limits::Limit::BodyTimeout), 1);
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_places_come_back() {
    let server = start("[limits]\nmax_connections = 3\n").await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    until("the server to count three connections", || {
        server.server.open_connections() == 3
    })
    .await;
    let refused = get(server.addr, HANDSHAKE).await;
    assert_error(&refused, 503, 4, "Too many connections");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(get(server.addr, "/other").await.status, 503);
    // Health and readiness stay reachable at the cap.
    assert_eq!(get(server.addr, "/healthz").await.status, 200);

    drop(idle.pop());
    until("the server to notice a closed connection", || {
        server.server.open_connections() < 3
    })
    .await;
    assert_eq!(get(server.addr, HANDSHAKE).await.status, 200);
    assert!(
        server
            .server
            .app()
            .hits()
            .count(switchboard::limits::Limit::MaxConnections)
            >= 2
    );
}

#[tokio::test]
async fn connections_and_sessions_per_address_are_capped() {
    let server = start("[limits]\nmax_connections_per_ip = 2\n").await;
    let a = Polling::open(server.addr).await;
    let _b = Polling::open(server.addr).await;
    // Two sessions from 127.0.0.1: a third handshake is refused, whatever its connection.
    assert_error(
        &get(server.addr, HANDSHAKE).await,
        503,
        4,
        "Too many connections from this address",
    );
    a.send("1").await;
    until("the closed session to be forgotten", || {
        server.server.app().engine().session_count() < 2
    })
    .await;
    assert_eq!(get(server.addr, HANDSHAKE).await.status, 200);
}

#[tokio::test]
async fn an_address_may_hold_twice_as_many_connections_as_sessions() {
    let server = start("[limits]\nmax_connections_per_ip = 2\n").await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    until("the server to count four connections", || {
        server.server.open_connections() == 4
    })
    .await;
    assert_eq!(get(server.addr, "/other").await.status, 503, "a fifth");
    drop(idle.pop());
    until("the server to notice a closed connection", || {
        server.server.open_connections() < 4
    })
    .await;
    assert_eq!(get(server.addr, "/other").await.status, 404, "room again");
}

#[tokio::test]
async fn handshakes_per_address_are_rate_limited() {
    let server = start("[limits]\nhandshakes_per_ip = \"3/m\"\n").await;
    for _ in 0..3 {
        assert_eq!(get(server.addr, HANDSHAKE).await.status, 200);
    }
    assert_error(
        &get(server.addr, HANDSHAKE).await,
        503,
        4,
        "Too many new connections from this address",
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let server =
        start("[limits]\nmax_connections_per_ip = 1\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let from = |ip: &'static str| async move {
        request(
            server.addr,
            Method::GET,
            HANDSHAKE,
            &[("x-forwarded-for", ip)],
            Bytes::new(),
        )
        .await
    };
    assert_eq!(from("203.0.113.1").await.status, 200);
    assert_error(
        &from("203.0.113.1").await,
        503,
        4,
        "Too many connections from this address",
    );
    assert_eq!(from("203.0.113.2").await.status, 200, "another client");
    // A forged header from an untrusted peer would not help: here the proxy is the peer,
    // and connections from it are not capped per address.
    assert_eq!(from("203.0.113.3").await.status, 200);
}

#[tokio::test]
async fn huge_request_heads_are_refused_and_kept_headers_are_bounded() {
    let server = start("[namespaces.\"/\".events]\nx = \"io\"\n").await;
    let huge = "h".repeat(40_000);
    let reply = request(
        server.addr,
        Method::GET,
        HANDSHAKE,
        &[("x-huge", huge.as_str())],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 431, "request head over the limit");

    let big = "v".repeat(3000);
    let headers: Vec<(String, &str)> = (0..5)
        .map(|i| (format!("x-big-{i}"), big.as_str()))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let reply = request(server.addr, Method::GET, HANDSHAKE, &headers, Bytes::new()).await;
    let p = Polling::from_handshake(server.addr, "/socket.io/", &reply);
    let id = p.connect().await;
    let kept = server.socket("/", &id).handshake().headers.clone();
    let bytes: usize = kept.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(bytes <= 8_000, "kept {bytes} bytes of headers");
    assert!(kept.contains("host"), "the first headers are kept");
    assert!(!kept.contains("x-big-4"), "the rest are not");
}

/// The whole process under a file limit of 256: idle connections take the places below the
/// automatic cap (256 less 64 kept back), and then new clients get a 503 instead of a hung
/// accept, `/healthz` still answers, and places come back as idle connections go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_never_take_the_last_file_descriptors() {
    use crate::support::process::{Process, binary};
    let dir = crate::support::TempDir::new("nofile");
    let config = dir.write(
        "routes.toml",
        "[limits]\nheader_timeout = \"60s\"\n[namespaces.\"/\".events]\nx = \"io\"\n",
    );
    let inner = binary(&config);
    let mut command = std::process::Command::new("bash");
    command
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args());
    let process = Process::spawn(command);
    let addr = process.addr;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    assert_error(&get(addr, HANDSHAKE).await, 503, 4, "Too many connections");
    assert_eq!(get(addr, "/healthz").await.status, 200);
    idle.truncate(150);
    within("places to come back", async {
        while get(addr, HANDSHAKE).await.status != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_second_post_while_one_is_read_is_a_bad_request() {
    let server = start("").await;
    let p = Polling::open(server.addr).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4",
        p.target()
    );
    first.write_all(head.as_bytes()).await.unwrap();
    // The second POST is refused as engine.io refuses it: a bare 400, the session ends.
    let second = within("the second POST to be refused", async {
        loop {
            let reply = p.post("4second").await;
            if reply.status != 200 {
                return reply;
            }
        }
    })
    .await;
    assert_eq!((second.status.as_u16(), second.text()), (400, ""));
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}
