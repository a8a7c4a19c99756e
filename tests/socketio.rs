//! Socket.IO v5 over real sessions: CONNECT and its refusals, route targets, acks both ways,
//! binary events, and what ends a session.
//!
//! "Nothing else arrived" is checked without waiting: after the packet under test the
//! sender emits `["all","end"]` to the whole namespace. Packets of one client are handled in
//! order and queued for every recipient before the next one is read, so each client's next
//! frames must be exactly what it should get, then `end`.

use std::sync::Arc;

use bytes::Bytes;

use crate::support::{Msg, Polling, Ws, assert_error, get, sid_of, start, within};

const ROUTES: &str = r#"
[namespaces."/".events]
echo = "emit"
shout = "broadcast"
all = "io"
join = { join = "{0}" }
leave = { leave = "{0}" }
to_room = { to = "room", room = "{0.room}" }
to_room_all = { to = "room", room = "{0.room}", include_sender = true }
with_args = { ack = "{args}" }
ack_ok = { ack = "ok" }
up = "broadcast"
renamed = { to = "emit", event = "renamed!" }

[namespaces."/chat".events]
echo = "emit"
all = "io"
with_args = { ack = "{args}" }
"#;

const END: &str = r#"42["all","end"]"#;

/// The next text frames of `ws` are exactly `frames`.
async fn expect(ws: &mut Ws, frames: &[&str]) {
    for frame in frames {
        assert_eq!(ws.recv_text().await, *frame);
    }
}

/// The next text frames of `ws` are exactly `frames`, then the `end` marker.
async fn expect_then_end(ws: &mut Ws, frames: &[&str]) {
    expect(ws, frames).await;
    assert_eq!(ws.recv_text().await, END, "nothing else before end");
}

/// Emit with an ack id and wait for the (empty) answer: the route has run by then.
async fn emit_acked(ws: &mut Ws, id: u64, event: &str, arg: &str) {
    ws.send(&format!(r#"42{id}["{event}","{arg}"]"#)).await;
    assert_eq!(ws.recv_text().await, format!("43{id}[]"));
}

// --- CONNECT ----------------------------------------------------------------------------

#[tokio::test]
async fn connect_to_the_default_namespace_answers_with_a_socket_id() {
    let server = start(ROUTES).await;
    let (mut ws, open) = Ws::open(server.addr).await;
    ws.send("40").await;
    let answer = ws.recv_text().await;
    let id = sid_of(&answer);
    assert_eq!(answer, format!(r#"40{{"sid":"{id}"}}"#));
    assert_ne!(id, sid_of(&open), "the socket id is not the session id");
}

#[tokio::test]
async fn connect_to_a_custom_namespace_answers_in_that_namespace() {
    let server = start(ROUTES).await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send("40/chat,").await;
    let answer = ws.recv_text().await;
    assert_eq!(
        answer,
        format!(r#"40/chat,{{"sid":"{}"}}"#, sid_of(&answer))
    );
}

#[tokio::test]
async fn connect_over_polling_answers_in_the_next_poll() {
    let server = start(ROUTES).await;
    let p = Polling::open(server.addr).await;
    p.send("40").await;
    let answer = p.recv().await;
    assert_eq!(answer, format!(r#"40{{"sid":"{}"}}"#, sid_of(&answer)));
}

#[tokio::test]
async fn connect_to_an_undeclared_namespace_is_refused_and_the_session_stays() {
    let server = start(ROUTES).await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send("40/x,").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/x,{"message":"Invalid namespace"}"#
    );
    ws.connect_nsp("/").await;
}

#[tokio::test]
async fn connect_to_the_default_namespace_is_refused_when_it_is_not_declared() {
    let server = start("[namespaces.\"/only\".events]\necho = \"emit\"\n").await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send("40").await;
    assert_eq!(ws.recv_text().await, r#"44{"message":"Invalid namespace"}"#);
    ws.connect_nsp("/only").await;
}

#[tokio::test]
async fn auth_token_refuses_wrong_or_missing_tokens_and_accepts_a_listed_one() {
    let server = start(
        r#"
[namespaces."/".auth]
token = ["123"]

[namespaces."/".events]
echo = "emit"
"#,
    )
    .await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send(r#"40{"token":"no"}"#).await;
    assert_eq!(ws.recv_text().await, r#"44{"message":"unauthorized"}"#);
    ws.send("40").await;
    assert_eq!(ws.recv_text().await, r#"44{"message":"unauthorized"}"#);
    ws.send(r#"40{"token":123}"#).await;
    assert_eq!(ws.recv_text().await, r#"44{"message":"unauthorized"}"#);
    // Refused CONNECTs leave no socket behind: events are dropped until one is accepted.
    ws.send(r#"42["echo","dropped"]"#).await;
    ws.send(r#"40{"token":"123"}"#).await;
    let answer = ws.recv_text().await;
    assert_eq!(answer, format!(r#"40{{"sid":"{}"}}"#, sid_of(&answer)));
    ws.send(r#"42["echo","in"]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo","in"]"#);
}

#[tokio::test]
async fn auth_refusal_uses_the_configured_message_in_its_namespace() {
    let server = start(
        r#"
[namespaces."/admin".auth]
token = "s3cret"
message = "go away"
"#,
    )
    .await;
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send(r#"40/admin,{"token":"guess"}"#).await;
    assert_eq!(ws.recv_text().await, r#"44/admin,{"message":"go away"}"#);
    ws.send(r#"40/admin,{"token":"s3cret"}"#).await;
    assert!(ws.recv_text().await.starts_with("40/admin,{\"sid\":"));
}

#[tokio::test]
async fn a_second_connect_to_a_joined_namespace_is_ignored() {
    let server = start(ROUTES).await;
    let (mut ws, id) = Ws::socket(server.addr).await;
    ws.send("40").await;
    ws.send(r#"42["echo",1]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["echo",1]"#);
    assert!(
        server.socket("/", &id).is_connected(),
        "the first socket stays"
    );
}

#[tokio::test]
async fn connect_timeout_closes_a_session_that_joins_no_namespace() {
    let server = start("[server]\nconnect_timeout = \"100ms\"\n").await;
    let (mut ws, open) = Ws::open(server.addr).await;
    ws.expect_close(1000).await;
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={}", sid_of(&open));
    assert_error(
        &get(server.addr, &target).await,
        400,
        1,
        "Session ID unknown",
    );
}

// --- Routing ----------------------------------------------------------------------------

#[tokio::test]
async fn emit_broadcast_and_io_reach_exactly_the_right_sockets() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;
    let (mut c, _) = Ws::socket(server.addr).await;

    a.send(r#"42["echo",1]"#).await;
    a.send(END).await;
    expect_then_end(&mut a, &[r#"42["echo",1]"#]).await;
    expect_then_end(&mut b, &[]).await;
    expect_then_end(&mut c, &[]).await;

    a.send(r#"42["shout",{"x":[1,2]}]"#).await;
    a.send(END).await;
    expect_then_end(&mut a, &[]).await;
    expect_then_end(&mut b, &[r#"42["shout",{"x":[1,2]}]"#]).await;
    expect_then_end(&mut c, &[r#"42["shout",{"x":[1,2]}]"#]).await;

    b.send(r#"42["all","from b"]"#).await;
    b.send(END).await;
    for ws in [&mut a, &mut b, &mut c] {
        expect_then_end(ws, &[r#"42["all","from b"]"#]).await;
    }
}

#[tokio::test]
async fn rooms_reach_their_members_with_or_without_the_sender() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;
    let (mut c, _) = Ws::socket(server.addr).await;
    let to_room = r#"42["to_room",{"room":"r1"}]"#;
    let to_room_all = r#"42["to_room_all",{"room":"r1"}]"#;

    // Nobody in r1 yet.
    a.send(to_room).await;
    a.send(END).await;
    for ws in [&mut a, &mut b, &mut c] {
        expect_then_end(ws, &[]).await;
    }

    emit_acked(&mut b, 1, "join", "r1").await;
    a.send(to_room).await;
    a.send(END).await;
    expect_then_end(&mut a, &[]).await;
    expect_then_end(&mut b, &[to_room]).await;
    expect_then_end(&mut c, &[]).await;

    // A member sending to its room: `to_room` skips it, `include_sender` does not.
    emit_acked(&mut a, 2, "join", "r1").await;
    a.send(to_room).await;
    a.send(to_room_all).await;
    a.send(END).await;
    expect_then_end(&mut a, &[to_room_all]).await;
    expect_then_end(&mut b, &[to_room, to_room_all]).await;
    expect_then_end(&mut c, &[]).await;

    emit_acked(&mut b, 3, "leave", "r1").await;
    a.send(to_room_all).await;
    a.send(END).await;
    expect_then_end(&mut a, &[to_room_all]).await;
    expect_then_end(&mut b, &[]).await;
    expect_then_end(&mut c, &[]).await;
}

#[tokio::test]
async fn a_socket_id_names_its_own_room() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, b_id) = Ws::socket(server.addr).await;
    let whisper = format!(r#"42["to_room",{{"room":"{b_id}"}}]"#);
    a.send(&whisper).await;
    a.send(END).await;
    expect_then_end(&mut a, &[]).await;
    expect_then_end(&mut b, &[&whisper]).await;
}

#[tokio::test]
async fn namespaces_are_isolated_on_one_session() {
    let server = start(ROUTES).await;
    let (mut x, _) = Ws::socket(server.addr).await;
    x.connect_nsp("/chat").await;
    let (mut y, _) = Ws::socket(server.addr).await;

    x.send(r#"42/chat,["all",1]"#).await;
    x.send(END).await;
    expect_then_end(&mut x, &[r#"42/chat,["all",1]"#]).await;
    expect_then_end(&mut y, &[]).await;

    // Y never joined /chat: its /chat events are dropped.
    y.send(r#"42/chat,["all",2]"#).await;
    y.send(END).await;
    expect_then_end(&mut x, &[]).await;
    expect_then_end(&mut y, &[]).await;
}

#[tokio::test]
async fn unrouted_events_are_dropped_and_the_catch_all_takes_the_rest() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(r#"42["nobody_listens",1]"#).await;
    a.send(END).await;
    expect_then_end(&mut a, &[]).await;

    let server = start(
        r#"
[namespaces."/".events]
echo = "emit"
"*" = { to = "emit", event = "caught" }
"#,
    )
    .await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(r#"42["anything",1,"two"]"#).await;
    a.send(r#"42["echo",3]"#).await;
    expect(&mut a, &[r#"42["caught",1,"two"]"#, r#"42["echo",3]"#]).await;
}

#[tokio::test]
async fn connect_and_disconnect_routes_run_with_the_socket_and_its_auth() {
    let server = start(
        r#"
[namespaces."/".events]
connect = [
  { to = "emit", event = "welcome", data = "{handshake.auth.name}" },
  { to = "broadcast", event = "joined", data = "{socket.id}" },
]
disconnect = { to = "broadcast", event = "left", data = "{socket.id}" }
"#,
    )
    .await;
    let (mut a, _) = Ws::open(server.addr).await;
    a.send(r#"40{"name":"ann"}"#).await;
    let a_id = sid_of(&a.recv_text().await);
    assert_eq!(a.recv_text().await, r#"42["welcome","ann"]"#);

    let (mut b, _) = Ws::open(server.addr).await;
    b.send(r#"40{"name":"bob"}"#).await;
    let b_id = sid_of(&b.recv_text().await);
    assert_eq!(b.recv_text().await, r#"42["welcome","bob"]"#);
    assert_eq!(a.recv_text().await, format!(r#"42["joined","{b_id}"]"#));

    // Leaving the namespace…
    b.send("41").await;
    assert_eq!(a.recv_text().await, format!(r#"42["left","{b_id}"]"#));
    // …and losing the connection both run the disconnect route.
    let (mut c, _) = Ws::open(server.addr).await;
    c.send(r#"40{"name":"cy"}"#).await;
    let c_id = sid_of(&c.recv_text().await);
    assert_eq!(c.recv_text().await, r#"42["welcome","cy"]"#);
    assert_eq!(a.recv_text().await, format!(r#"42["joined","{c_id}"]"#));
    drop(a);
    assert_eq!(c.recv_text().await, format!(r#"42["left","{a_id}"]"#));
}

#[tokio::test]
async fn route_data_templates_fill_in_arguments_socket_and_handshake() {
    let server = start(
        r#"
[namespaces."/".events]
tpl = { to = "emit", event = "filled", data = ["{0.name}", "lit", "{socket.id}", "{handshake.query.team}", "hi {0.name}!"] }
whole = { to = "emit", event = "whole", data = "{args}" }
"#,
    )
    .await;
    let mut ws = Ws::connect(
        server.addr,
        "/socket.io/?EIO=4&transport=websocket&team=blue",
    )
    .await;
    assert!(ws.recv_text().await.starts_with("0{"));
    let id = ws.connect_nsp("/").await;
    ws.send(r#"42["tpl",{"name":"ann"}]"#).await;
    assert_eq!(
        ws.recv_text().await,
        format!(r#"42["filled","ann","lit","{id}","blue","hi ann!"]"#)
    );
    ws.send(r#"42["whole",1,[2]]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["whole",1,[2]]"#);
}

// --- Acks -------------------------------------------------------------------------------

#[tokio::test]
async fn a_route_without_ack_still_answers_with_no_arguments() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(r#"423["echo","x"]"#).await;
    expect(&mut a, &[r#"42["echo","x"]"#, "433[]"]).await;
}

#[tokio::test]
async fn ack_args_answers_with_the_event_arguments() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.connect_nsp("/chat").await;
    a.send(r#"427["with_args",1,"a",{"b":[null]}]"#).await;
    assert_eq!(a.recv_text().await, r#"437[1,"a",{"b":[null]}]"#);
    a.send(r#"428["with_args"]"#).await;
    assert_eq!(a.recv_text().await, "438[]");
    a.send(r#"42/chat,12["with_args",true]"#).await;
    assert_eq!(a.recv_text().await, "43/chat,12[true]");
    a.send(r#"429["ack_ok",1]"#).await;
    assert_eq!(a.recv_text().await, r#"439["ok"]"#);
    // A step whose template finds nothing is skipped; the ack is still answered.
    a.send(r#"4210["to_room",{"no":"room"}]"#).await;
    assert_eq!(a.recv_text().await, "4310[]");
}

#[tokio::test]
async fn acks_answer_over_polling_too() {
    let server = start(ROUTES).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    p.send("421[\"with_args\",\"p\"]\x1e422[\"echo\"]").await;
    assert_eq!(p.recv().await, "431[\"p\"]\x1e42[\"echo\"]\x1e432[]");
}

#[tokio::test]
async fn server_emit_with_ack_gets_the_client_answer() {
    let server = start(ROUTES).await;
    let (mut a, id) = Ws::socket(server.addr).await;
    let socket = server.socket("/", &id);

    let answer = socket
        .emit_with_ack("question", b"1", Arc::from([]))
        .expect("queued");
    assert_eq!(a.recv_text().await, r#"420["question",1]"#);
    a.send(r#"430["answer",2]"#).await;
    let response = within("the ack", answer).await.expect("answered");
    assert_eq!(response.args, r#""answer",2"#);
    assert!(response.attachments.is_empty());

    // Ids count up; a binary answer brings its attachments.
    let answer = socket
        .emit_with_ack("again", b"", Arc::from([]))
        .expect("queued");
    assert_eq!(a.recv_text().await, r#"421["again"]"#);
    a.send(r#"461-1[{"_placeholder":true,"num":0}]"#).await;
    a.send_binary(&[9, 8]).await;
    let response = within("the binary ack", answer).await.expect("answered");
    assert_eq!(response.args, r#"{"_placeholder":true,"num":0}"#);
    assert_eq!(&response.attachments[..], [Bytes::from_static(&[9, 8])]);
}

#[tokio::test]
async fn server_emit_with_ack_in_a_namespace_and_with_attachments() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::open(server.addr).await;
    let id = a.connect_nsp("/chat").await;
    let socket = server.socket("/chat", &id);
    let answer = socket
        .emit_with_ack(
            "file",
            br#"{"_placeholder":true,"num":0}"#,
            Arc::from([Bytes::from_static(b"\x00\x01")]),
        )
        .expect("queued");
    assert_eq!(
        a.recv_text().await,
        r#"451-/chat,0["file",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(a.recv_binary().await, [0, 1]);
    a.send("43/chat,0[]").await;
    let response = within("the ack", answer).await.expect("answered");
    assert_eq!(response.args, "");
}

#[tokio::test]
async fn server_emit_with_ack_fails_when_the_client_goes_away() {
    let server = start(ROUTES).await;
    let (mut a, id) = Ws::socket(server.addr).await;
    let answer = server
        .socket("/", &id)
        .emit_with_ack("question", b"", Arc::from([]))
        .expect("queued");
    assert_eq!(a.recv_text().await, r#"420["question"]"#);
    drop(a);
    assert!(within("the ack to fail", answer).await.is_none());
}

#[tokio::test]
async fn server_emit_reaches_the_client() {
    let server = start(ROUTES).await;
    let (mut a, id) = Ws::socket(server.addr).await;
    server
        .socket("/", &id)
        .emit("news", br#"{"n":1},"x""#, Arc::from([]))
        .expect("queued");
    assert_eq!(a.recv_text().await, r#"42["news",{"n":1},"x"]"#);
}

// --- Binary -----------------------------------------------------------------------------

const UP: &str = r#"452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;

#[tokio::test]
async fn binary_event_with_two_attachments_is_forwarded_intact() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;
    a.send(UP).await;
    a.send_binary(&[1, 2, 3]).await;
    a.send_binary(&[4, 5]).await;
    a.send(END).await;

    assert_eq!(b.recv().await, Msg::Text(UP.into()));
    assert_eq!(b.recv().await, Msg::Binary(vec![1, 2, 3]));
    assert_eq!(b.recv().await, Msg::Binary(vec![4, 5]));
    expect_then_end(&mut b, &[]).await;
    expect_then_end(&mut a, &[]).await;
}

#[tokio::test]
async fn binary_event_reaches_a_polling_client_as_base64_records() {
    let server = start(ROUTES).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(UP).await;
    a.send_binary(&[1, 2, 3]).await;
    a.send_binary(&[4, 5]).await;
    a.send(END).await;
    expect_then_end(&mut a, &[]).await;
    assert_eq!(p.recv().await, format!("{UP}\x1ebAQID\x1ebBAU=\x1e{END}"));
}

#[tokio::test]
async fn binary_event_sent_over_polling_is_forwarded_intact() {
    let server = start(ROUTES).await;
    let (mut b, _) = Ws::socket(server.addr).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    p.send(format!("{UP}\x1ebAQID\x1ebBAU=\x1e{END}")).await;
    assert_eq!(b.recv().await, Msg::Text(UP.into()));
    assert_eq!(b.recv().await, Msg::Binary(vec![1, 2, 3]));
    assert_eq!(b.recv().await, Msg::Binary(vec![4, 5]));
    expect_then_end(&mut b, &[]).await;
}

#[tokio::test]
async fn renamed_binary_event_keeps_its_attachments() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(r#"451-["renamed",{"_placeholder":true,"num":0}]"#)
        .await;
    a.send_binary(&[7]).await;
    assert_eq!(
        a.recv_text().await,
        r#"451-["renamed!",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(a.recv_binary().await, [7]);
}

#[tokio::test]
async fn binary_ack_answers_with_the_attachments() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(r#"452-3["with_args",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    a.send_binary(&[1]).await;
    a.send_binary(&[2]).await;
    assert_eq!(
        a.recv_text().await,
        r#"462-3[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(a.recv_binary().await, [1]);
    assert_eq!(a.recv_binary().await, [2]);
}

// --- Malformed packets ------------------------------------------------------------------

/// `bad` sent by one client closes its session; another client is unaffected.
async fn malformed_closes_only_that_session(bad: Msg) {
    let server = start(ROUTES).await;
    let (mut a, a_open) = Ws::open(server.addr).await;
    a.connect_nsp("/").await;
    let (mut b, _) = Ws::socket(server.addr).await;
    match bad {
        Msg::Text(text) => a.send(&text).await,
        Msg::Binary(data) => a.send_binary(&data).await,
        other => unreachable!("{other:?}"),
    }
    a.expect_close(1000).await;
    let target = format!(
        "/socket.io/?EIO=4&transport=polling&sid={}",
        sid_of(&a_open)
    );
    assert_error(
        &get(server.addr, &target).await,
        400,
        1,
        "Session ID unknown",
    );

    b.send(r#"42["all","b is fine"]"#).await;
    assert_eq!(b.recv_text().await, r#"42["all","b is fine"]"#);
}

#[tokio::test]
async fn event_with_an_object_payload_closes_only_that_session() {
    malformed_closes_only_that_session(Msg::Text("42{}".into())).await;
}

#[tokio::test]
async fn event_named_like_a_reserved_event_closes_only_that_session() {
    malformed_closes_only_that_session(Msg::Text(r#"42["disconnect"]"#.into())).await;
}

#[tokio::test]
async fn unknown_socketio_packet_type_closes_only_that_session() {
    malformed_closes_only_that_session(Msg::Text("49".into())).await;
}

#[tokio::test]
async fn placeholder_past_the_attachments_closes_only_that_session() {
    malformed_closes_only_that_session(Msg::Text(
        r#"451-["up",{"_placeholder":true,"num":1}]"#.into(),
    ))
    .await;
}

#[tokio::test]
async fn binary_frame_outside_a_binary_packet_closes_only_that_session() {
    malformed_closes_only_that_session(Msg::Binary(vec![1, 2])).await;
}

#[tokio::test]
async fn text_while_waiting_for_attachments_closes_the_session() {
    let server = start(ROUTES).await;
    let (mut a, _) = Ws::socket(server.addr).await;
    a.send(UP).await;
    a.send_binary(&[1]).await;
    a.send(r#"42["echo",1]"#).await;
    a.expect_close(1000).await;
}

#[tokio::test]
async fn server_side_disconnect_sends_disconnect_and_the_client_may_rejoin() {
    let server = start(ROUTES).await;
    let (mut a, id) = Ws::socket(server.addr).await;
    a.connect_nsp("/chat").await;
    assert!(server.socket("/", &id).disconnect());
    assert_eq!(a.recv_text().await, "41");
    // Events to "/" are dropped now; "/chat" still works.
    a.send(r#"42["echo","dropped"]"#).await;
    a.send(r#"42/chat,["echo","chat"]"#).await;
    assert_eq!(a.recv_text().await, r#"42/chat,["echo","chat"]"#);
    let again = a.connect_nsp("/").await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn malformed_packet_over_polling_ends_the_session() {
    let server = start(ROUTES).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;
    // The Engine.IO payload is fine, so the POST is accepted; the Socket.IO packet is not.
    p.send("42{}").await;
    assert_error(&p.get().await, 400, 1, "Session ID unknown");
}
