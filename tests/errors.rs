//! Every refusal of the Engine.IO endpoint: exact status and JSON body, and what it does to
//! the session.

use bytes::Bytes;
use http::Method;
use switchboard::engineio::{CloseReason, EngineConfig};

use crate::support::ws::handshake_request;
use crate::support::{Polling, Ws, assert_error, get, request, start, start_engine};

const EMPTY: &str = r#"[namespaces."/".events]
echo = "emit"
"#;

/// A well-formed sid no session has.
const NO_SUCH_SID: &str = "AAAAAAAAAAAAAAAAAAAA";

#[tokio::test]
async fn unknown_transport_returns_400_code_0() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.io/?EIO=4&transport=tobi").await;
    assert_error(&reply, 400, 0, "Transport unknown");
}

#[tokio::test]
async fn missing_transport_returns_400_code_0() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.io/?EIO=4").await;
    assert_error(&reply, 400, 0, "Transport unknown");
}

#[tokio::test]
async fn get_with_unknown_sid_returns_400_code_1() {
    let server = start(EMPTY).await;
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={NO_SUCH_SID}");
    assert_error(
        &get(server.addr, &target).await,
        400,
        1,
        "Session ID unknown",
    );
}

#[tokio::test]
async fn post_with_unknown_sid_returns_400_code_1() {
    let server = start(EMPTY).await;
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={NO_SUCH_SID}");
    let reply = request(server.addr, Method::POST, &target, &[], "40").await;
    assert_error(&reply, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn malformed_sid_returns_400_code_1() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.io/?EIO=4&transport=polling&sid=nope").await;
    assert_error(&reply, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn websocket_with_unknown_sid_returns_400_code_1() {
    let server = start(EMPTY).await;
    let target = format!("/socket.io/?EIO=4&transport=websocket&sid={NO_SUCH_SID}");
    let upgrade = handshake_request(server.addr, &target);
    let headers: Vec<(&str, &str)> = upgrade
        .headers()
        .iter()
        .filter(|(name, _)| *name != "host")
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
        .collect();
    let reply = request(server.addr, Method::GET, &target, &headers, Bytes::new()).await;
    assert_error(&reply, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn post_handshake_returns_400_code_2() {
    let server = start(EMPTY).await;
    let reply = request(
        server.addr,
        Method::POST,
        "/socket.io/?EIO=4&transport=polling",
        &[],
        "40",
    )
    .await;
    assert_error(&reply, 400, 2, "Bad handshake method");
}

#[tokio::test]
async fn websocket_handshake_without_upgrade_headers_returns_400_code_3() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert_error(&reply, 400, 3, "Bad request");
}

#[tokio::test]
async fn put_on_a_session_returns_400_code_3_and_keeps_the_session() {
    let server = start(EMPTY).await;
    let p = Polling::open(server.addr).await;
    let reply = request(server.addr, Method::PUT, &p.target(), &[], "40").await;
    assert_error(&reply, 400, 3, "Bad request");
    p.connect().await;
}

#[tokio::test]
async fn eio_3_returns_400_code_5() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.io/?EIO=3&transport=polling").await;
    assert_error(&reply, 400, 5, "Unsupported protocol version");
}

#[tokio::test]
async fn missing_eio_returns_400_code_5() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.io/?transport=polling").await;
    assert_error(&reply, 400, 5, "Unsupported protocol version");
}

#[tokio::test]
async fn polling_disabled_by_transports_returns_400_code_0() {
    let server = start("[server]\ntransports = [\"websocket\"]\n").await;
    let reply = get(server.addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_error(&reply, 400, 0, "Transport unknown");
    // WebSocket still works, and has nothing to upgrade to.
    let (_ws, open) = Ws::open(server.addr).await;
    assert!(open.contains(r#""upgrades":[]"#), "{open}");
}

#[tokio::test]
async fn websocket_disabled_by_transports_returns_400_code_0() {
    let server = start("[server]\ntransports = [\"polling\"]\n").await;
    let err = Ws::try_connect(server.addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .unwrap_err();
    assert!(
        matches!(err, fastwebsockets::WebSocketError::InvalidStatusCode(400)),
        "{err:?}"
    );
    let reply = get(server.addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert_error(&reply, 400, 0, "Transport unknown");
    // Polling still works, and announces no upgrade.
    let p = Polling::open(server.addr).await;
    assert!(p.open.contains(r#""upgrades":[]"#), "{}", p.open);
}

#[tokio::test]
async fn handshake_refused_by_allow_request_returns_403_code_4() {
    let mut server = start_engine(EngineConfig::default()).await;
    let reply = get(server.addr, "/engine.io/?EIO=4&transport=polling&deny=1").await;
    assert_error(&reply, 403, 4, "Forbidden");
    let err = Ws::try_connect(server.addr, "/engine.io/?EIO=4&transport=websocket&deny=1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, fastwebsockets::WebSocketError::InvalidStatusCode(403)),
        "{err:?}"
    );
    assert_eq!(server.engine.session_count(), 0, "no session was opened");
    // The same handler accepts what it does not refuse.
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    assert_eq!(
        server.next_event().await,
        crate::support::EngineEvent::Open(p.sid.clone())
    );
}

#[tokio::test]
async fn post_over_max_payload_returns_413_and_ends_only_that_session() {
    let server =
        start("[server]\nmax_payload = 100\n\n[namespaces.\"/\".events]\necho = \"emit\"\n").await;
    let big = Polling::open(server.addr).await;
    let other = Polling::open(server.addr).await;
    assert!(big.open.contains(r#""maxPayload":100"#), "{}", big.open);

    let reply = big.post(format!("4{}", "x".repeat(100))).await;
    assert_eq!((reply.status.as_u16(), reply.text()), (413, ""));
    assert_error(&big.get().await, 400, 1, "Session ID unknown");

    other.connect().await;
    other.send(r#"42["echo","still here"]"#).await;
    assert_eq!(other.recv().await, r#"42["echo","still here"]"#);
}

#[tokio::test]
async fn post_of_exactly_max_payload_is_accepted() {
    let mut server = start_engine(EngineConfig {
        max_payload: 100,
        ..EngineConfig::default()
    })
    .await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    let body = format!("4{}", "x".repeat(99));
    p.send(body.clone()).await;
    assert_eq!(p.recv().await, body);
    let reply = p.post(format!("{body}x")).await;
    assert_eq!(reply.status.as_u16(), 413);
    assert_eq!(server.closed(&p.sid).await, CloseReason::TransportError);
}

#[tokio::test]
async fn websocket_message_of_exactly_max_payload_is_accepted() {
    let server = start_engine(EngineConfig {
        max_payload: 100,
        ..EngineConfig::default()
    })
    .await;
    let (mut ws, _) = Ws::open_at(server.addr, "/engine.io/").await;
    let message = format!("4{}", "x".repeat(99));
    ws.send(&message).await;
    assert_eq!(ws.recv().await, crate::support::ws::Msg::Text(message));
}

#[tokio::test]
async fn malformed_post_payload_returns_400_code_3_and_ends_the_session() {
    let mut server = start_engine(EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    assert_error(&p.post("4ok\x1e9nope").await, 400, 3, "Bad request");
    assert_eq!(server.closed(&p.sid).await, CloseReason::ParseError);
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}

#[tokio::test]
async fn invalid_base64_record_returns_400_code_3_and_ends_the_session() {
    let mut server = start_engine(EngineConfig::default()).await;
    let p = Polling::open_at(server.addr, "/engine.io/").await;
    assert_error(&p.post("b!!!").await, 400, 3, "Bad request");
    assert_eq!(server.closed(&p.sid).await, CloseReason::ParseError);
}

#[tokio::test]
async fn unknown_paths_outside_the_engine_path_are_404() {
    let server = start(EMPTY).await;
    let reply = get(server.addr, "/socket.iox/?EIO=4&transport=polling").await;
    assert_eq!((reply.status.as_u16(), reply.text()), (404, ""));
}
