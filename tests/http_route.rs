//! HTTP route steps against a backend served here: the request (signed), every action an
//! answer may hold, failures that lose one event with an error ack, the order of one
//! socket's events kept while its call waits, other sockets unaffected, the in-flight cap.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::backend::Backend;
use crate::support::{TestServer, Ws, compile_with_env, get, start_with};

const SECRET: &str = "backend-signing-secret-for-tests";

async fn server(backend: &Backend, events: &str, backend_table: &str) -> TestServer {
    let routes = format!(
        "[backend]\nsecret_env = \"BACKEND_SECRET\"\n{backend_table}\n[namespaces.\"/\".events]\n{}",
        events.replace("URL", &backend.url("/route"))
    );
    let table = compile_with_env(
        &routes,
        std::path::Path::new("."),
        &[("BACKEND_SECRET", SECRET)],
    );
    start_with(table, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_goes_out_signed_and_the_answer_is_performed() {
    let backend =
        Backend::start(r#"{"to":"io","event":"chat message","data":["ann: hi"],"ack":"stored"}"#)
            .await;
    let server = server(
        &backend,
        "\"chat message\" = { http = \"URL\", timeout = \"2s\" }\n",
        "",
    )
    .await;
    let (mut ann, ann_id) = Ws::socket(server.addr).await;
    let (mut bob, _) = Ws::socket(server.addr).await;

    ann.send(r#"451-0["chat message",{"text":"hi","file":{"_placeholder":true,"num":0}}]"#)
        .await;
    ann.send_binary(&[1, 2, 3]).await;
    assert_eq!(ann.recv_text().await, r#"42["chat message","ann: hi"]"#);
    assert_eq!(ann.recv_text().await, r#"430["stored"]"#);
    assert_eq!(bob.recv_text().await, r#"42["chat message","ann: hi"]"#);

    let received = backend.received();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["namespace"], "/");
    assert_eq!(body["event"], "chat message");
    assert_eq!(
        body["args"],
        json!([{"text": "hi", "file": {"$binary": "AQID"}}])
    );
    assert_eq!(body["socket"]["id"], ann_id.as_str());
    assert_eq!(body["socket"]["rooms"], json!([ann_id]));
    assert_eq!(body["socket"]["data"], json!({}));
    assert_eq!(body["socket"]["handshake"]["address"], "127.0.0.1");
    received[0].assert_signed(SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_an_answer_and_the_list_around_it() {
    let backend = Backend::start("").await;
    let events = r#"
move = [ { http = "URL" }, { to = "emit", event = "after", data = "{0}" } ]
score = { ack = "{socket.data.score}" }
"#;
    let server = server(&backend, events, "").await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;

    // Join a room, deliver to it (the incoming arguments forwarded), keep data, ack; then
    // the routes.toml step after the call runs.
    backend.answer(
        200,
        r#"[{"join":"game:1"},{"to":"room","room":"game:1","include_sender":true,"event":"moved"},{"set_data":{"score":3},"ack":{"ok":true}}]"#,
    );
    a.send(r#"420["move","e4"]"#).await;
    assert_eq!(a.recv_text().await, r#"42["moved","e4"]"#);
    assert_eq!(a.recv_text().await, r#"430[{"ok":true}]"#);
    assert_eq!(a.recv_text().await, r#"42["after","e4"]"#);
    a.send(r#"421["score"]"#).await;
    assert_eq!(a.recv_text().await, r#"431[3]"#);

    // 204: nothing from the backend, the rest of the list still runs.
    backend.answer(204, "");
    a.send(r#"42["move","d4"]"#).await;
    assert_eq!(a.recv_text().await, r#"42["after","d4"]"#);

    // continue: false skips the rest of the list; leave; broadcast.
    backend.answer(
        200,
        r#"{"leave":"game:1","to":"broadcast","event":"left","data":[],"continue":false}"#,
    );
    a.send(r#"42["move","resign"]"#).await;
    assert_eq!(b.recv_text().await, r#"42["left"]"#);

    // disconnect: the sender is removed from the namespace once the route is done.
    backend.answer(200, r#"{"disconnect":true,"ack":"bye"}"#);
    a.send(r#"422["move","flip the board"]"#).await;
    assert_eq!(a.recv_text().await, r#"432["bye"]"#);
    assert_eq!(a.recv_text().await, r#"42["after","flip the board"]"#);
    assert_eq!(a.recv_text().await, "41");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_loses_that_event_with_an_error_ack() {
    let backend = Backend::start("{}").await;
    let events = r#"
save = [ { http = "URL", timeout = "300ms" }, { to = "emit", event = "saved" } ]
echo = { ack = "{args}" }
"#;
    let server = server(&backend, events, "").await;
    let (mut ws, _) = Ws::socket(server.addr).await;
    for (i, (status, body, delay)) in [
        (500, "{}", 0),
        (200, "not a route", 0),
        (200, r#"{"to":"everyone"}"#, 0),
        (200, "{}", 2_000),
    ]
    .into_iter()
    .enumerate()
    {
        backend.answer(status, body);
        backend.set_delay(Duration::from_millis(delay));
        ws.send(&format!(r#"42{i}["save","x"]"#)).await;
        assert_eq!(
            ws.recv_text().await,
            format!(r#"43{i}[{{"error":"backend unavailable"}}]"#),
            "{status} {body} after {delay} ms"
        );
    }
    // The session carries on; nothing of the lost events was done.
    ws.send(r#"429["echo","alive"]"#).await;
    assert_eq!(ws.recv_text().await, r#"439["alive"]"#);
    let metrics = get(server.addr, "/metrics").await.text().to_owned();
    for (outcome, n) in [("status", 1), ("invalid", 2), ("timeout", 1)] {
        let line = format!(
            "switchboard_http_route_calls_total{{namespace=\"/\",event=\"save\",outcome=\"{outcome}\"}} {n}\n"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_holds_back_only_its_own_sockets_later_events() {
    let backend = Backend::start(r#"{"ack":"slow done"}"#).await;
    backend.hold();
    let events = "slow = { http = \"URL\" }\necho = { ack = \"{args}\" }\n";
    let server = server(&backend, events, "").await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;

    a.send(r#"420["slow"]"#).await;
    a.send(r#"421["echo","after slow"]"#).await;
    let seen = backend.clone();
    crate::support::until("a's call to reach the backend", || seen.fetches() == 1).await;
    // a's call is held at the backend: b is served meanwhile.
    b.send(r#"420["echo","b meanwhile"]"#).await;
    assert_eq!(b.recv_text().await, r#"430["b meanwhile"]"#);
    backend.release();
    // a's events take effect in the order it sent them.
    assert_eq!(a.recv_text().await, r#"430["slow done"]"#);
    assert_eq!(a.recv_text().await, r#"431["after slow"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_max_in_flight_are_refused_at_once() {
    let backend = Backend::start(r#"{"ack":"done"}"#).await;
    backend.hold();
    let server = server(
        &backend,
        "slow = { http = \"URL\" }\n",
        "max_in_flight = 1\n",
    )
    .await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;
    a.send(r#"420["slow"]"#).await;
    // Wait until a's call has reached the backend, then b's finds no room.
    let addr = backend.clone();
    crate::support::until("a's call to reach the backend", || addr.fetches() == 1).await;
    b.send(r#"420["slow"]"#).await;
    assert_eq!(
        b.recv_text().await,
        r#"430[{"error":"backend unavailable"}]"#
    );
    backend.release();
    assert_eq!(a.recv_text().await, r#"430["done"]"#);
    let metrics = get(server.addr, "/metrics").await.text().to_owned();
    assert!(metrics.contains(
        "switchboard_http_route_calls_total{namespace=\"/\",event=\"slow\",outcome=\"busy\"} 1\n"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_under_way_at_a_reload_finishes_on_the_old_routes() {
    let backend = Backend::start("{}").await;
    backend.hold();
    let events = "go = [ { http = \"URL\" }, { to = \"emit\", event = \"old\" } ]\n";
    let server = server(&backend, events, "").await;
    let (mut ws, _) = Ws::socket(server.addr).await;
    ws.send(r#"42["go"]"#).await;
    let seen = backend.clone();
    crate::support::until("the call to reach the backend", || seen.fetches() == 1).await;

    let new = format!(
        "[namespaces.\"/\".events]\ngo = [ {{ http = \"{}\" }}, {{ to = \"emit\", event = \"new\" }} ]\n",
        backend.url("/route")
    );
    let outcome = server.server.app().apply(
        compile_with_env(&new, std::path::Path::new("."), &[]),
        "new".to_owned(),
    );
    assert!(
        matches!(outcome, switchboard::app::ReloadOutcome::Applied { .. }),
        "{outcome:?}"
    );
    backend.release();
    assert_eq!(ws.recv_text().await, r#"42["old"]"#);
    // The next event takes the new routes.
    ws.send(r#"42["go"]"#).await;
    assert_eq!(ws.recv_text().await, r#"42["new"]"#);
}
