//! Engine.IO v4 on the wire: handshakes, polling payloads, the upgrade to WebSocket,
//! heartbeats and how sessions end.

use std::time::Duration;

use switchboard::engineio::{CloseReason, EngineConfig};

use crate::support::raw::{RawWs, client_frame, text_frame};
use crate::support::{Msg, Polling, Ws, assert_error, sid_of, start, start_engine, within};

const ECHO: &str = r#"[namespaces."/".events]
echo = "emit"
"#;

fn fast_heartbeat(ping_timeout_ms: u64) -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(50),
        ping_timeout: Duration::from_millis(ping_timeout_ms),
        ..EngineConfig::default()
    }
}

// --- Handshakes -------------------------------------------------------------------------

#[tokio::test]
async fn polling_handshake_announces_sid_upgrades_and_server_settings() {
    let server = start("[server]\nping_interval = \"7s\"\nping_timeout = \"3s\"\n").await;
    let p = Polling::open(server.addr).await;
    assert_eq!(
        p.open,
        format!(
            r#"0{{"sid":"{}","upgrades":["websocket"],"pingInterval":7000,"pingTimeout":3000,"maxPayload":1000000}}"#,
            p.sid
        )
    );
    assert!(
        p.sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe sid: {}",
        p.sid
    );
}

#[tokio::test]
async fn handshake_announces_max_payload_from_routes() {
    let server = start("[server]\nmax_payload = \"64KB\"\n").await;
    let p = Polling::open(server.addr).await;
    assert!(p.open.ends_with(r#","maxPayload":64000}"#), "{}", p.open);
}

#[tokio::test]
async fn every_handshake_gets_its_own_sid() {
    let server = start(ECHO).await;
    let a = Polling::open(server.addr).await;
    let b = Polling::open(server.addr).await;
    assert_ne!(a.sid, b.sid);
}

#[tokio::test]
async fn websocket_handshake_sends_open_first_with_no_upgrades() {
    let server = start("[server]\nping_interval = \"7s\"\nping_timeout = \"3s\"\n").await;
    let (_ws, open) = Ws::open(server.addr).await;
    assert_eq!(
        open,
        format!(
            r#"0{{"sid":"{}","upgrades":[],"pingInterval":7000,"pingTimeout":3000,"maxPayload":1000000}}"#,
            sid_of(&open)
        )
    );
}

// --- Polling payloads -------------------------------------------------------------------

#[tokio::test]
async fn several_packets_in_one_post_come_back_in_one_payload() {
    let server = start_engine(EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    p.send("4hello\x1e4\x1e4wörld").await;
    assert_eq!(p.recv().await, "4hello\x1e4\x1e4wörld");
}

#[tokio::test]
async fn several_packets_in_one_post_are_routed_in_order() {
    let server = start(ECHO).await;
    let p = Polling::open(server.addr).await;
    p.send("40\x1e42[\"echo\",1]\x1e42[\"echo\",2]").await;
    let payload = p.recv().await;
    let records: Vec<&str> = payload.split('\x1e').collect();
    assert_eq!(records.len(), 3, "{payload:?}");
    assert_eq!(
        records[0],
        format!(r#"40{{"sid":"{}"}}"#, sid_of(records[0]))
    );
    assert_eq!(&records[1..], [r#"42["echo",1]"#, r#"42["echo",2]"#]);
}

#[tokio::test]
async fn binary_records_travel_as_base64() {
    let server = start_engine(EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    p.send("bAQID\x1eb\x1e4text\x1eb/wA=").await;
    assert_eq!(p.recv().await, "bAQID\x1eb\x1e4text\x1eb/wA=");
}

#[tokio::test]
async fn client_ping_is_answered_with_pong_on_both_transports() {
    let server = start_engine(EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    p.send("2x").await;
    assert_eq!(p.recv().await, "3x");
    let (mut ws, _) = Ws::open_at(server.addr, "/engine.io/").await;
    ws.send("2").await;
    assert_eq!(ws.recv_text().await, "3");
}

#[tokio::test]
async fn second_concurrent_get_returns_400_and_releases_the_first_with_close() {
    let mut server = start_engine(EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    // Whichever of the two GETs reaches the session second is the overlap: it gets a bare
    // 400, and the one left waiting is released with CLOSE.
    let (a, b) = tokio::join!(p.get(), p.get());
    let mut answers = [
        (a.status.as_u16(), a.text().to_owned()),
        (b.status.as_u16(), b.text().to_owned()),
    ];
    answers.sort();
    assert_eq!(answers, [(200, "1".to_owned()), (400, String::new())]);
    assert_eq!(server.closed(&p.sid).await, CloseReason::TransportError);
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn server_packets_queued_between_polls_come_in_one_payload() {
    let server = start(ECHO).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    p.send(r#"42["echo","a"]"#).await;
    p.send(r#"42["echo","b"]"#).await;
    assert_eq!(p.recv().await, "42[\"echo\",\"a\"]\x1e42[\"echo\",\"b\"]");
}

// --- WebSocket --------------------------------------------------------------------------

#[tokio::test]
async fn websocket_text_and_binary_messages_round_trip() {
    let server = start_engine(EngineConfig::default()).await;
    let (mut ws, _) = Ws::open_at(server.addr, "/engine.io/").await;
    ws.send("4hello").await;
    ws.send_binary(&[0, 255, 1]).await;
    ws.send("4").await;
    assert_eq!(ws.recv().await, Msg::Text("4hello".into()));
    assert_eq!(ws.recv().await, Msg::Binary(vec![0, 255, 1]));
    assert_eq!(ws.recv().await, Msg::Text("4".into()));
}

#[tokio::test]
async fn websocket_message_over_max_payload_closes_with_1009() {
    let mut server = start_engine(EngineConfig {
        max_payload: 100,
        ..EngineConfig::default()
    })
    .await;
    let (mut ws, open) = Ws::open_at(server.addr, "/engine.io/").await;
    let other = Polling::open_at(server.addr, "/engine.io/").await;
    ws.send(&format!("4{}", "x".repeat(200))).await;
    ws.expect_close(1009).await;
    assert_eq!(
        server.closed(&sid_of(&open)).await,
        CloseReason::TransportError
    );
    other.send("4fine").await;
    assert_eq!(other.recv().await, "4fine");
}

#[tokio::test]
async fn malformed_websocket_packet_closes_the_session_with_parse_error() {
    let mut server = start_engine(EngineConfig::default()).await;
    let (mut ws, open) = Ws::open_at(server.addr, "/engine.io/").await;
    ws.send("9garbage").await;
    ws.expect_close(1000).await;
    assert_eq!(server.closed(&sid_of(&open)).await, CloseReason::ParseError);
}

#[tokio::test]
async fn close_packet_ends_the_session_as_transport_close() {
    let mut server = start_engine(EngineConfig::default()).await;
    let (mut ws, open) = Ws::open_at(server.addr, "/engine.io/").await;
    ws.send("1").await;
    ws.expect_close(1000).await;
    assert_eq!(
        server.closed(&sid_of(&open)).await,
        CloseReason::TransportClose
    );

    let p = Polling::open_at(server.addr, "/engine.io/").await;
    p.send("1").await;
    assert_eq!(server.closed(&p.sid).await, CloseReason::TransportClose);
    // The poll a closing client sends alongside its close gets NOOP; later ones, 400.
    assert_eq!(p.recv().await, "6");
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn dropping_the_websocket_ends_the_session_as_transport_close() {
    let mut server = start_engine(EngineConfig::default()).await;
    let (ws, open) = Ws::open_at(server.addr, "/engine.io/").await;
    drop(ws);
    assert_eq!(
        server.closed(&sid_of(&open)).await,
        CloseReason::TransportClose
    );
    assert_eq!(server.engine.session_count(), 0);
}

// --- Upgrade ----------------------------------------------------------------------------

#[tokio::test]
async fn polling_session_upgrades_to_websocket() {
    let server = start(ECHO).await;
    let p = Polling::open(server.addr).await;
    let socket_id = p.connect().await;

    let pending = tokio::spawn({
        let p = p.clone();
        async move { p.recv().await }
    });
    let mut ws = Ws::connect(
        server.addr,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid),
    )
    .await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    let released = within("the pending poll", pending).await.unwrap();
    assert_eq!(released, "6", "the pending GET is released with NOOP");
    ws.send("5").await;

    ws.send(r#"42["echo","over ws"]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo","over ws"]"#);
    // Same socket: still in the namespace it joined over polling.
    assert_eq!(
        server.socket("/", &socket_id).session().sid().as_str(),
        p.sid
    );
    assert_error(&p.get().await, 400, 3, "Bad request");
    assert_error(&p.post("40").await, 400, 3, "Bad request");
}

#[tokio::test]
async fn failed_probe_leaves_the_polling_session_working() {
    let server = start(ECHO).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    let target = format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid);
    let mut ws = Ws::connect(server.addr, &target).await;
    ws.send("4not a probe").await;
    ws.expect_close(1000).await;

    p.send(r#"42["echo","still polling"]"#).await;
    assert_eq!(p.recv().await, r#"42["echo","still polling"]"#);

    // And a later upgrade succeeds.
    let mut ws = Ws::connect(server.addr, &target).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    assert_eq!(p.recv().await, "6");
    ws.send("5").await;
    ws.send(r#"42["echo","upgraded"]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo","upgraded"]"#);
}

#[tokio::test]
async fn second_websocket_on_an_upgraded_session_is_closed_at_once() {
    let server = start(ECHO).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    let target = format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid);
    let mut ws = Ws::connect(server.addr, &target).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    assert_eq!(p.recv().await, "6");
    ws.send("5").await;

    let mut second = Ws::connect(server.addr, &target).await;
    second.expect_close(1000).await;

    ws.send(r#"42["echo","first still works"]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo","first still works"]"#);
}

#[tokio::test]
async fn websocket_with_sid_of_a_direct_websocket_session_is_closed_at_once() {
    let server = start(ECHO).await;
    let (mut ws, open) = Ws::open(server.addr).await;
    ws.connect_nsp("/").await;
    let target = format!(
        "/socket.io/?EIO=4&transport=websocket&sid={}",
        sid_of(&open)
    );
    let mut second = Ws::connect(server.addr, &target).await;
    second.expect_close(1000).await;
    ws.send(r#"42["echo",1]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo",1]"#);
}

#[tokio::test]
async fn polling_request_on_a_websocket_session_returns_400_code_3() {
    let server = start(ECHO).await;
    let (mut ws, open) = Ws::open(server.addr).await;
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={}", sid_of(&open));
    assert_error(
        &crate::support::get(server.addr, &target).await,
        400,
        3,
        "Bad request",
    );
    ws.connect_nsp("/").await;
}

#[tokio::test]
async fn upgrade_that_never_completes_times_out_and_polling_continues() {
    let server = start_engine(EngineConfig {
        upgrade_timeout: Duration::from_millis(50),
        ..EngineConfig::default()
    })
    .await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    let target = format!("/engine.io/?EIO=4&transport=websocket&sid={}", p.sid);
    let mut ws = Ws::connect(server.addr, &target).await;
    ws.expect_close(1000).await;
    p.send("4after").await;
    assert_eq!(p.recv().await, "4after");
}

#[tokio::test]
async fn full_outbound_queue_closes_the_session_as_slow() {
    let mut server = start_engine(EngineConfig {
        // Room for two messages `4a` (each costs its 2 bytes and 32 of overhead).
        queue_bytes: 2 * 34,
        ..EngineConfig::default()
    })
    .await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    p.send("4a\x1e4b").await;
    assert_eq!(p.recv().await, "4a\x1e4b");
    p.send("4a\x1e4b\x1e4c").await;
    assert_eq!(server.closed(&p.sid).await, CloseReason::SlowClient);
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

// --- Heartbeat --------------------------------------------------------------------------

#[tokio::test]
async fn websocket_client_that_never_pongs_is_closed() {
    let server = start("[server]\nping_interval = \"50ms\"\nping_timeout = \"50ms\"\n").await;
    let (mut ws, open) = Ws::open(server.addr).await;
    assert_eq!(ws.recv_text().await, "2");
    ws.expect_close(1000).await;
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={}", sid_of(&open));
    assert_error(
        &crate::support::get(server.addr, &target).await,
        400,
        1,
        "Session ID unknown",
    );
}

#[tokio::test]
async fn missing_pong_closes_with_ping_timeout() {
    let mut server = start_engine(fast_heartbeat(50)).await;
    let (mut ws, open) = Ws::open_at(server.addr, "/engine.io/").await;
    assert_eq!(ws.recv_text().await, "2");
    assert_eq!(
        server.closed(&sid_of(&open)).await,
        CloseReason::PingTimeout
    );
}

#[tokio::test]
async fn polling_client_that_never_pongs_is_closed() {
    // The timeout leaves the client ample time to have its next GET waiting when the
    // session ends; the point is what that GET receives.
    let server = start("[server]\nping_interval = \"50ms\"\nping_timeout = \"1s\"\n").await;
    let p = Polling::open(server.addr).await;
    assert_eq!(p.recv().await, "2");
    assert_eq!(
        p.recv().await,
        "1",
        "the pending GET is released with CLOSE"
    );
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

// A ping is only sent once the previous one was answered, so receiving several pings proves
// every pong was counted. The timeout is generous so a slow machine cannot fail the test.

#[tokio::test]
async fn websocket_client_that_pongs_survives_several_pings() {
    let server = start(&format!(
        "[server]\nping_interval = \"50ms\"\nping_timeout = \"2s\"\n\n{ECHO}"
    ))
    .await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.connect_nsp("/").await;
    for _ in 0..5 {
        assert_eq!(ws.recv_text().await, "2");
        ws.send("3").await;
    }
    ws.send(r#"42["echo","alive"]"#).await;
    loop {
        match ws.recv_text().await.as_str() {
            "2" => ws.send("3").await,
            text => break assert_eq!(text, r#"42["echo","alive"]"#),
        }
    }
}

#[tokio::test]
async fn websocket_pings_get_their_pongs_and_a_flood_of_them_is_bounded() {
    use switchboard::engineio::frame::OpCode;
    let server = start(ECHO).await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    ws.write(&client_frame(true, OpCode::Ping, b"hello")).await;
    assert_eq!(
        ws.recv_frame().await,
        Some((OpCode::Pong, b"hello".to_vec()))
    );

    // A thousand pings in one write, then an event: some pongs (each carrying one of the
    // pings' data), never more than the pings, and the session goes on.
    let mut burst = Vec::new();
    for i in 0..1000 {
        burst.extend_from_slice(&client_frame(true, OpCode::Ping, format!("{i}").as_bytes()));
    }
    burst.extend_from_slice(&text_frame(r#"42["echo","after"]"#));
    ws.write(&burst).await;
    let mut pongs = 0;
    loop {
        match ws.recv_frame().await {
            Some((OpCode::Pong, data)) => {
                let n: usize = String::from_utf8(data).unwrap().parse().unwrap();
                assert!(n < 1000);
                pongs += 1;
            }
            Some((OpCode::Text, text)) if text == b"2" => {}
            Some((OpCode::Text, text)) => {
                assert_eq!(text, br#"42["echo","after"]"#);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((1..=1000).contains(&pongs), "{pongs} pongs");
}

#[tokio::test]
async fn polling_client_that_pongs_survives_several_pings() {
    let server = start(&format!(
        "[server]\nping_interval = \"50ms\"\nping_timeout = \"2s\"\n\n{ECHO}"
    ))
    .await;
    let p = Polling::open(server.addr).await;
    for _ in 0..3 {
        assert_eq!(p.recv().await, "2");
        p.send("3").await;
    }
    p.send("40").await;
    loop {
        let payload = p.recv().await;
        let rest = match payload.strip_prefix("2") {
            Some(rest) => {
                p.send("3").await;
                rest.trim_start_matches('\x1e')
            }
            None => &payload,
        };
        if !rest.is_empty() {
            assert!(rest.starts_with("40{\"sid\":"), "{payload:?}");
            break;
        }
    }
}

// --- Shutdown ---------------------------------------------------------------------------

#[tokio::test]
async fn stopping_the_server_closes_websocket_sessions() {
    let server = start(ECHO).await;
    let (mut ws, _) = Ws::socket(server.addr).await;
    server.stop().await;
    ws.expect_close(1000).await;
}
