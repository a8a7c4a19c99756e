//! Ordering on one session, whatever thread serves which of its connections: a poll that
//! arrives while the client is leaving polling waits for (or meets) the upgrade's outcome
//! and is refused, never served the WebSocket's packets; a poll in flight when the client
//! closes gets its NOOP, once.

use crate::support::raw::{RawWs, text_frame};
use crate::support::{Polling, Ws, assert_error, start};

const CHAT: &str = r#"[namespaces."/".events]
"chat message" = "broadcast"
echo = "emit"
"#;

fn upgrade_target(p: &Polling) -> String {
    format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_sent_right_after_5_is_refused_even_when_it_arrives_first() {
    let server = start(CHAT).await;
    for _ in 0..20 {
        let p = Polling::open(server.addr).await;
        p.connect().await;
        let mut ws = RawWs::connect(server.addr, &upgrade_target(&p)).await;
        // The client does not wait for 3probe: probe and upgrade in one write, then a poll.
        let mut both = text_frame("2probe");
        both.extend_from_slice(&text_frame("5"));
        ws.write(&both).await;
        assert_error(&p.get().await, 400, 3, "Bad request");
        assert_eq!(ws.recv_text().await, "3probe");
        ws.send_text(r#"42["echo","over ws"]"#).await;
        assert_eq!(ws.recv_event().await, r#"42["echo","over ws"]"#);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_sent_after_5_takes_none_of_the_websockets_packets() {
    let server = start(CHAT).await;
    for _ in 0..20 {
        let p = Polling::open(server.addr).await;
        p.connect().await;
        let (mut other, _) = Ws::socket(server.addr).await;
        let mut ws = RawWs::connect(server.addr, &upgrade_target(&p)).await;
        ws.send_text("2probe").await;
        assert_eq!(ws.recv_text().await, "3probe");
        // A packet waits for the session while the client completes the upgrade, then (out
        // of order) polls: the poll may reach the server before the `5` is read.
        other
            .send(r#"42["chat message","for the websocket"]"#)
            .await;
        other.send("2").await;
        assert_eq!(other.recv_text().await, "3");
        ws.send_text("5").await;
        assert_error(&p.get().await, 400, 3, "Bad request");
        assert_eq!(
            ws.recv_event().await,
            r#"42["chat message","for the websocket"]"#
        );
    }
}

#[tokio::test]
async fn a_poll_once_probed_but_before_5_gets_noop_at_once() {
    let server = start(CHAT).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    let mut ws = RawWs::connect(server.addr, &upgrade_target(&p)).await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    assert_eq!(
        p.recv().await,
        "6",
        "as the reference server's upgrade check answers"
    );
    ws.send_text("5").await;
    ws.send_text(r#"42["echo","upgraded"]"#).await;
    assert_eq!(ws.recv_event().await, r#"42["echo","upgraded"]"#);
    assert_error(&p.get().await, 400, 3, "Bad request");
}

#[tokio::test]
async fn a_poll_in_flight_at_the_clients_close_gets_its_noop_once() {
    let server = start(CHAT).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    // The close is handled first; the poll sent alongside it comes second.
    p.send("1").await;
    let in_flight = p.get().await;
    assert_eq!((in_flight.status.as_u16(), in_flight.text()), (200, "6"));
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_sent_with_the_clients_close_gets_the_noop_and_no_later_one_does() {
    let server = start(CHAT).await;
    for _ in 0..20 {
        let p = Polling::open(server.addr).await;
        p.connect().await;
        // As the stock client closes: its poll and its close at once, on two connections;
        // whichever the server handles first, the poll gets NOOP.
        let (poll, close) = tokio::join!(p.get(), p.post("1"));
        assert_eq!((close.status.as_u16(), close.text()), (200, "ok"));
        assert_eq!((poll.status.as_u16(), poll.text()), (200, "6"));
        assert_error(&p.get().await, 400, 1, "Session ID unknown");
    }
}

#[tokio::test]
async fn a_poll_whose_connection_drops_ends_the_session() {
    // As engine.io ("poll connection closed prematurely"): a client gone while its poll was
    // pending is not kept until the heartbeat notices, 45 s later by default.
    let mut server =
        crate::support::start_engine(switchboard::engineio::EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /engine.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: x\r\n\r\n",
        p.sid
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    // The poll is pending once the server holds the session's reader: a second poll now
    // would be an overlap. Wait for that through the server's own state, then hang up.
    let waiting = || {
        server
            .engine
            .stats()
            .polls_waiting
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    crate::support::until("the poll to be waiting", || waiting() == 1).await;
    drop(stream);
    assert_eq!(
        server.closed(&p.sid).await,
        switchboard::engineio::CloseReason::TransportError
    );
}
