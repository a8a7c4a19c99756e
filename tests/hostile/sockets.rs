//! What one socket can make the server hold or do: events per second, namespaces, rooms
//! (and other sockets' rooms), attachments, acks awaited, volatile messages.

use std::sync::Arc;

use switchboard::limits::Limit;
use switchboard::socketio::AckError;

use crate::support::raw::{RawWs, client_frame, echo_burst, text_frame};
use crate::support::{Polling, Ws, start, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_the_rate_are_dropped_and_a_flood_is_disconnected() {
    let server = start(
        r#"[limits]
events_per_socket = { rate = "5/s", burst = 5 }
events_excess_disconnect = "1s"
[namespaces."/".events]
echo = { ack = "{args}" }
"#,
    )
    .await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    let burst = echo_burst(8);
    ws.write(&burst).await;
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(ws.recv_event().await);
    }
    assert_eq!(
        answers,
        [
            "430[0]",
            "431[1]",
            "432[2]",
            "433[3]",
            "434[4]",
            r#"435[{"error":"rate limit exceeded"}]"#,
            r#"436[{"error":"rate limit exceeded"}]"#,
            r#"437[{"error":"rate limit exceeded"}]"#,
        ]
    );
    // Keep flooding: after a second over the rate the socket is disconnected by the server.
    let disconnected = async {
        loop {
            let frame = text_frame(r#"42["echo","flood"]"#);
            let _ = ws.try_write(&frame).await;
            tokio::task::yield_now().await;
            if let Ok(text) =
                tokio::time::timeout(std::time::Duration::from_millis(1), ws.recv_event()).await
                && text == "41"
            {
                return;
            }
        }
    };
    within("the flooding socket to be disconnected", disconnected).await;
    let hits = server.server.app().hits();
    assert!(hits.count(Limit::EventsPerSocket) >= 3);
    assert_eq!(hits.count(Limit::EventsSustained), 1);
}

#[tokio::test]
async fn namespaces_per_session_are_capped() {
    let server = start(
        r#"[limits]
namespaces_per_session = 2
[namespaces."/a".events]
x = "io"
[namespaces."/b".events]
x = "io"
[namespaces."/c".events]
x = "io"
"#,
    )
    .await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.connect_nsp("/a").await;
    ws.connect_nsp("/b").await;
    ws.send("40/c,").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/c,{"message":"Too many namespaces"}"#
    );
}

const ROOMS: &str = r#"[limits]
rooms_per_socket = 3
room_name_bytes = 16
[namespaces."/".events]
join = { join = "{0}", ack = "joined" }
leave = { leave = "{0}", ack = "left" }
dm = { to = "room", room = "{0.to}", data = "{0.text}" }
"#;

#[tokio::test]
async fn rooms_per_socket_and_room_names_are_bounded() {
    let server = start(ROOMS).await;
    let (mut ws, id) = Ws::socket(server.addr).await;
    let join = |n: u32, room: &str| format!(r#"42{n}["join","{room}"]"#);
    ws.send(&join(1, "r1")).await;
    assert_eq!(ws.recv_text().await, r#"431["joined"]"#);
    ws.send(&join(2, "r2")).await;
    assert_eq!(ws.recv_text().await, r#"432["joined"]"#);
    ws.send(&join(3, "r3")).await;
    assert_eq!(ws.recv_text().await, r#"433[{"error":"too many rooms"}]"#);
    ws.send(&join(4, "r1")).await;
    assert_eq!(
        ws.recv_text().await,
        r#"434["joined"]"#,
        "a room already in"
    );
    ws.send(&join(5, &"x".repeat(17))).await;
    assert_eq!(
        ws.recv_text().await,
        r#"435[{"error":"room name too long"}]"#
    );
    let rooms = server.server.app().snapshot().adapters["/"].rooms_of(id.parse().unwrap());
    assert_eq!(rooms.len(), 3, "own room, r1, r2: {rooms:?}");
    let hits = server.server.app().hits();
    assert_eq!(hits.count(Limit::RoomsPerSocket), 1);
    assert_eq!(hits.count(Limit::RoomNameBytes), 1);
}

#[tokio::test]
async fn nobody_can_join_the_room_of_another_socket() {
    let server = start(ROOMS).await;
    let (mut victim, victim_id) = Ws::socket(server.addr).await;
    let (mut attacker, _) = Ws::socket(server.addr).await;
    let (mut sender, _) = Ws::socket(server.addr).await;
    attacker
        .send(&format!(r#"421["join","{victim_id}"]"#))
        .await;
    assert_eq!(
        attacker.recv_text().await,
        r#"431[{"error":"reserved room"}]"#
    );
    attacker
        .send(&format!(r#"422["leave","{victim_id}"]"#))
        .await;
    assert_eq!(
        attacker.recv_text().await,
        r#"432[{"error":"reserved room"}]"#
    );

    sender
        .send(&format!(
            r#"42["dm",{{"to":"{victim_id}","text":"secret"}}]"#
        ))
        .await;
    assert_eq!(victim.recv_text().await, r#"42["dm","secret"]"#);
    // A round trip through the attacker after the message: it got nothing before it.
    attacker.send("2").await;
    assert_eq!(attacker.recv_text().await, "3");
    assert_eq!(server.server.app().hits().count(Limit::ReservedRoom), 2);
}

#[tokio::test]
async fn attachments_count_against_max_payload_together() {
    let server =
        start("[server]\nmax_payload = \"1KB\"\n[namespaces.\"/\".events]\nbin = \"emit\"\n").await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    let placeholders = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}"#;
    ws.send_text(&format!(r#"453-["bin",{placeholders}]"#))
        .await;
    for _ in 0..3 {
        let frame = client_frame(
            true,
            switchboard::engineio::frame::OpCode::Binary,
            &[7u8; 600],
        );
        let _ = ws.try_write(&frame).await;
    }
    assert_eq!(ws.closed().await, Some(1009));
}

#[tokio::test]
async fn acks_awaited_from_one_socket_are_capped_and_forgotten_at_their_timeout() {
    let server = start("[limits]\npending_acks = 2\n[namespaces.\"/\".events]\nx = \"io\"\n").await;
    let (mut ws, id) = Ws::socket(server.addr).await;
    let socket = server.socket("/", &id);
    let first = socket.emit_with_ack("q", b"", Arc::from([])).unwrap();
    let _second = socket.emit_with_ack("q", b"", Arc::from([])).unwrap();
    assert_eq!(
        socket.emit_with_ack("q", b"", Arc::from([])).unwrap_err(),
        AckError::TooMany
    );
    assert_eq!(socket.pending_acks(), 2);
    // A caller that gives up (its timeout) forgets the ack: the place comes back.
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(1), first).await;
    assert!(gave_up.is_err());
    assert_eq!(socket.pending_acks(), 1);
    assert!(socket.emit_with_ack("q", b"", Arc::from([])).is_ok());
    for n in 0..3 {
        assert_eq!(
            ws.recv_text().await,
            format!(r#"42{n}["q"]"#),
            "a refused emit uses no ack id"
        );
    }
}

#[tokio::test]
async fn volatile_messages_skip_a_client_that_is_behind() {
    let server = start(
        r#"[limits]
volatile_bytes = 1
[namespaces."/".events]
tick = { to = "broadcast", volatile = true }
chat = "broadcast"
"#,
    )
    .await;
    // A polling client with no GET pending is behind as soon as one packet waits for it.
    let behind = Polling::open(server.addr).await;
    behind.connect().await;
    let (mut sender, _) = Ws::socket(server.addr).await;
    sender.send(r#"42["tick",1]"#).await;
    sender.send(r#"42["tick",2]"#).await;
    sender.send(r#"42["chat","kept"]"#).await;
    sender.send("2").await;
    assert_eq!(sender.recv_text().await, "3");
    assert_eq!(
        behind.recv().await,
        "42[\"tick\",1]\u{1e}42[\"chat\",\"kept\"]",
        "the second tick was dropped; chat never is"
    );
}

#[tokio::test]
async fn connects_over_and_over_are_held_to_the_event_rate() {
    let server = start(
        r#"[limits]
events_per_socket = { rate = "1/m", burst = 3 }
[namespaces."/chat".events]
x = "io"
"#,
    )
    .await;
    let (mut ws, _) = Ws::open(server.addr).await;
    for _ in 0..3 {
        ws.connect_nsp("/chat").await;
        ws.send("41/chat,").await;
    }
    ws.send("40/chat,").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/chat,{"message":"Too many connection attempts"}"#
    );
}
