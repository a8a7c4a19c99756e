//! `[[webhooks]]` against a backend served here: what each happening looks like and in
//! which order, signed batches, batches cut at `max`, a failed batch retried until taken
//! (the same events, at least once), a full queue dropping its oldest events, and what
//! `/metrics` and `/healthz` show.

use serde_json::{Value, json};

use crate::support::backend::{Backend, Received};
use crate::support::{TestServer, Ws, compile_with_env, get, start_with, until};

const SECRET: &str = "webhook-signing-secret-for-tests";

async fn server(backend: &Backend, hook: &str) -> TestServer {
    let routes = format!(
        r#"
[[webhooks]]
url = "{}"
secret_env = "HOOK_SECRET"
{hook}

[namespaces."/".events]
enter = {{ join = "{{0}}" }}
exit = {{ leave = "{{0}}" }}
"chat message" = "broadcast"
"#,
        backend.url("/hooks")
    );
    let table = compile_with_env(
        &routes,
        std::path::Path::new("."),
        &[("HOOK_SECRET", SECRET)],
    );
    start_with(table, None).await
}

/// Every event of every batch the backend answered 2xx, in order.
fn delivered(backend: &Backend, ok: impl Fn(usize) -> bool) -> Vec<Value> {
    backend
        .received()
        .iter()
        .enumerate()
        .filter(|(i, _)| ok(*i))
        .flat_map(|(_, r)| events_of(r))
        .collect()
}

fn events_of(r: &Received) -> Vec<Value> {
    let body: Value = serde_json::from_slice(&r.body).expect("a JSON batch");
    assert!(body["time_ms"].as_u64().is_some(), "{body}");
    body["events"].as_array().expect("events").clone()
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_happening_is_told_in_order_in_signed_batches() {
    let backend = Backend::start("").await;
    let server = server(
        &backend,
        r#"events = ["connect", "disconnect", "join", "leave", "room_occupied", "room_vacated", "chat message", "unrouted"]
batch = { max = 100, interval = "20ms" }"#,
    )
    .await;
    let (mut a, a_id) = Ws::socket(server.addr).await;
    let (mut b, b_id) = Ws::socket(server.addr).await;
    a.send(r#"42["enter","r"]"#).await;
    let told = |name: &str| {
        delivered(&backend, |_| true)
            .iter()
            .any(|e| e["name"] == name)
    };
    until("the room told occupied", || told("room_occupied")).await;
    b.send(r#"42["enter","r"]"#).await;
    a.send(r#"451-["chat message",{"file":{"_placeholder":true,"num":0}}]"#)
        .await;
    a.send_binary(&[1, 2, 3]).await;
    b.recv_text().await;
    b.recv_binary().await;
    a.send(r#"42["exit","r"]"#).await;
    a.send(r#"42["not told"]"#).await;
    a.send(r#"42["unrouted",1]"#).await;
    drop(a);
    let a_gone = || {
        delivered(&backend, |_| true)
            .iter()
            .any(|e| e["name"] == "disconnect" && e["socket_id"] == a_id.as_str())
    };
    until("a's disconnect told", a_gone).await;
    // b leaves the room by disconnecting: it was the last member.
    b.send("41").await;

    let all = || delivered(&backend, |_| true);
    until("12 events delivered", || all().len() >= 12).await;
    let events = all();
    let mine = |id: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["socket_id"] == id)
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        mine(&a_id),
        ["connect", "join", "event", "leave", "event", "disconnect"]
    );
    assert_eq!(mine(&b_id), ["connect", "join", "leave", "disconnect"]);
    let rooms: Vec<_> = events
        .iter()
        .filter(|e| e.get("socket_id").is_none())
        .map(|e| (e["name"].as_str().unwrap(), e["room"].as_str().unwrap()))
        .collect();
    assert_eq!(rooms, [("room_occupied", "r"), ("room_vacated", "r")]);
    // The room is occupied right after its first member joined, vacated right after its
    // last left.
    let at = |name: &str, id: Option<&str>| {
        events
            .iter()
            .position(|e| e["name"] == name && id.is_none_or(|id| e["socket_id"] == id))
            .unwrap()
    };
    let first_join = at("join", None);
    assert_eq!(at("room_occupied", None), first_join + 1);
    assert_eq!(at("room_vacated", None), at("leave", Some(&b_id)) + 1);

    let connect = &events[at("connect", Some(&a_id))];
    assert_eq!(connect["namespace"], "/");
    assert_eq!(connect["address"], "127.0.0.1");
    assert_eq!(connect["data"], json!({}));
    let told: Vec<_> = events
        .iter()
        .filter(|e| e["name"] == "event")
        .map(|e| (e["event"].clone(), e["args"].clone()))
        .collect();
    assert_eq!(
        told,
        [
            (
                json!("chat message"),
                json!([{"file": {"$binary": "AQID"}}])
            ),
            (json!("unrouted"), json!([1])),
        ],
        "events with and without a route; not those the webhook did not name"
    );
    assert_eq!(events[at("join", Some(&a_id))]["room"], "r");
    assert_eq!(
        events[at("disconnect", Some(&b_id))]["reason"],
        "client namespace disconnect"
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "every event has its own id");

    for r in backend.received() {
        r.assert_signed(SECRET);
        assert_eq!(r.headers["content-type"], "application/json");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_when_full_without_waiting_for_its_interval() {
    let backend = Backend::start("").await;
    // An interval no test waits for: only full batches go.
    let server = server(
        &backend,
        r#"events = ["chat message"]
batch = { max = 3, interval = "60s" }"#,
    )
    .await;
    let (mut a, _) = Ws::socket(server.addr).await;
    for n in 0..7 {
        a.send(&format!(r#"42["chat message",{n}]"#)).await;
    }
    until("two batches", || backend.fetches() == 2).await;
    let batches: Vec<Vec<Value>> = backend.received().iter().map(events_of).collect();
    let args: Vec<Vec<Value>> = batches
        .iter()
        .map(|b| b.iter().map(|e| e["args"][0].clone()).collect())
        .collect();
    assert_eq!(
        args,
        [
            vec![json!(0), json!(1), json!(2)],
            vec![json!(3), json!(4), json!(5)]
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_retried_until_taken_and_the_outage_shows() {
    let (backend, server, _a, a_id) = failing_after_a_connect().await;
    let metrics = || async { get(server.addr, "/metrics").await.text().to_owned() };
    let url = backend.url("/hooks");
    let up = format!("switchboard_webhook_up{{url=\"{url}\"}}");
    until_async(|| async { metrics().await.contains(&format!("{up} 0")) }).await;
    let healthz = health(&server).await;
    assert_eq!(healthz["webhooks"][0]["up"], false);
    assert_eq!(healthz["webhooks"][0]["last_error"], "delivery failing");
    assert_eq!(healthz["webhooks"][0]["queued"], 1);

    backend.set_status(200);
    until_async(|| async { metrics().await.contains(&format!("{up} 1")) }).await;
    let tries = backend.received();
    assert!(tries.len() >= 2);
    // Every try carried the same event; the last one was taken.
    for t in &tries {
        let events = events_of(t);
        assert_eq!(names(&events), ["connect"]);
        assert_eq!(events[0]["socket_id"], a_id.as_str());
        assert_eq!(events[0]["id"], events_of(&tries[0])[0]["id"]);
    }
    let text = metrics().await;
    assert!(
        text.contains(&format!(
            "switchboard_webhook_events_total{{url=\"{url}\",outcome=\"delivered\"}} 1"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "switchboard_webhook_failures_total{{url=\"{url}\"}} {}",
        tries.len() - 1
    )));
    let healthz = health(&server).await;
    assert_eq!(healthz["webhooks"][0]["up"], true);
    assert_eq!(healthz["webhooks"][0]["queued"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_its_oldest_events_and_counts_them() {
    let backend = Backend::start("").await;
    backend.hold();
    let server = server(
        &backend,
        r#"events = ["chat message"]
batch = { max = 1, interval = "10ms" }
queue = "2KB""#,
    )
    .await;
    let (mut a, _) = Ws::socket(server.addr).await;
    // The first event goes out and waits for its answer; the others fill the queue.
    a.send(r#"42["chat message",0]"#).await;
    until("the first batch in flight", || backend.fetches() == 1).await;
    let pad = "x".repeat(200);
    for n in 1..=40 {
        a.send(&format!(r#"42["chat message",{n},"{pad}"]"#)).await;
    }
    let url = backend.url("/hooks");
    let dropped_line = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "switchboard_webhook_events_total{{url=\"{url}\",outcome=\"dropped\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    until_async(|| async {
        // The last event is in the queue once 40 have been counted in or out.
        let text = get(server.addr, "/metrics").await.text().to_owned();
        dropped_line(&text) > 0
            && text.contains(
                r#"switchboard_events_received_total{namespace="/",event="chat message"} 41"#,
            )
    })
    .await;
    backend.release();
    until("the newest event delivered", || {
        delivered(&backend, |_| true)
            .last()
            .is_some_and(|e| e["args"][0] == 40)
    })
    .await;
    let got: Vec<u64> = delivered(&backend, |_| true)
        .iter()
        .map(|e| e["args"][0].as_u64().unwrap())
        .collect();
    let text = get(server.addr, "/metrics").await.text().to_owned();
    let dropped = dropped_line(&text);
    // The oldest went: what arrived after the first is the newest, in order.
    assert!(
        dropped >= 20,
        "{dropped} dropped of 40 events of ~250 bytes in 2 KB"
    );
    let mut expected = vec![0];
    expected.extend((1..=40).skip(dropped as usize));
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_queue_of_a_url_that_stays() {
    let (backend, server, _a, a_id) = failing_after_a_connect().await;
    let reload = |hook: &str| {
        let table = if hook.is_empty() {
            String::new()
        } else {
            format!(
                "[[webhooks]]\nurl = \"{}\"\n{hook}\n",
                backend.url("/hooks")
            )
        };
        let routes = format!("{table}[namespaces.\"/\".events]\n");
        let table = compile_with_env(&routes, std::path::Path::new("."), &[]);
        let outcome = server.server.app().apply(table, hook.to_owned());
        assert!(
            matches!(outcome, switchboard::app::ReloadOutcome::Applied { .. }),
            "{outcome:?}"
        );
    };
    reload("events = [\"connect\", \"disconnect\"]\nbatch = { max = 10, interval = \"10ms\" }");
    backend.set_status(200);
    until("the event queued before the reload delivered", || {
        backend.received().last().is_some_and(|r| {
            events_of(r)
                .iter()
                .any(|e| e["name"] == "connect" && e["socket_id"] == a_id.as_str())
        })
    })
    .await;
    // The new settings apply: disconnects are told now, unsigned (no secret any more).
    let (b, b_id) = Ws::socket(server.addr).await;
    drop(b);
    until("b's disconnect told", || {
        delivered(&backend, |_| true)
            .iter()
            .any(|e| e["name"] == "disconnect" && e["socket_id"] == b_id.as_str())
    })
    .await;
    assert!(
        !backend
            .received()
            .last()
            .unwrap()
            .headers
            .contains_key("x-switchboard-signature")
    );
    // Removed: it stops, and /healthz no longer lists it.
    reload("");
    let healthz = health(&server).await;
    assert!(healthz.get("webhooks").is_none(), "{healthz}");
}

/// A backend answering 503, a server telling it of connects, one socket connected: its
/// connect has failed once.
async fn failing_after_a_connect() -> (Backend, TestServer, Ws, String) {
    let backend = Backend::start("").await;
    backend.set_status(503);
    let server = server(
        &backend,
        r#"events = ["connect"]
batch = { max = 10, interval = "10ms" }"#,
    )
    .await;
    let (a, a_id) = Ws::socket(server.addr).await;
    until("a failed try", || backend.fetches() >= 1).await;
    (backend, server, a, a_id)
}

/// `/healthz`, parsed.
async fn health(server: &TestServer) -> Value {
    serde_json::from_slice(&get(server.addr, "/healthz").await.body).unwrap()
}

/// Wait for an async condition (a request), as [`until`] does for a plain one.
async fn until_async<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::support::within("the condition", async {
        while !condition().await {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}
