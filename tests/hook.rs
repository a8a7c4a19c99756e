//! `[namespaces."/".auth.hook]` against a backend served here: what it is sent (signed),
//! its answer as `socket.data` and rooms, its refusals with their message, and fail-closed
//! on timeouts, errors and garbage — while other clients carry on; JWT first when both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::backend::Backend;
use crate::support::{TestServer, Ws, compile_with_env, get, start_with};

const SECRET: &str = "hook-signing-secret-for-tests";
const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef-hook-tests";

async fn server(backend: &Backend, extra_auth: &str) -> TestServer {
    let routes = format!(
        r#"[namespaces."/".auth.hook]
url = "{}"
timeout = "1s"
secret_env = "HOOK_SECRET"
headers = ["user-agent", "x-team"]
{extra_auth}
[namespaces."/".events]
who = {{ ack = "{{socket.data.name}}" }}
team = {{ to = "room", room = "team:{{0}}", include_sender = true }}

[namespaces."/open".events]
echo = {{ ack = "{{args}}" }}
"#,
        backend.url("/socket-auth")
    );
    let vars = [("HOOK_SECRET", SECRET), ("JWT_SECRET", JWT_SECRET)];
    start_with(
        compile_with_env(&routes, std::path::Path::new("."), &vars),
        None,
    )
    .await
}

/// A session that CONNECTs to `/` with `auth`; returns it and the answer.
async fn connect(server: &TestServer, target: &str, auth: &Value) -> (Ws, String) {
    let request = crate::support::ws::handshake_request_with(
        server.addr,
        target,
        &[
            ("User-Agent", "hook-test/1"),
            ("X-Team", "blue"),
            ("Cookie", "secret=1"),
        ],
    );
    let mut ws = Ws::connect_request(server.addr, request).await;
    ws.recv_text().await;
    ws.send(&format!("40{auth}")).await;
    let answer = ws.recv_text().await;
    (ws, answer)
}

const WS: &str = "/socket.io/?EIO=4&transport=websocket";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_is_asked_and_its_answer_becomes_data_and_rooms() {
    let backend = Backend::start(r#"{"name":"ann","rooms":["team:blue"]}"#).await;
    let server = server(&backend, "").await;
    let (mut ann, answer) = connect(&server, &format!("{WS}&v=2"), &json!({"token": "abc"})).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
    ann.send(r#"420["who"]"#).await;
    assert_eq!(ann.recv_text().await, r#"430["ann"]"#);
    // Already in the room the answer named.
    ann.send(r#"42["team","blue","hi"]"#).await;
    assert_eq!(ann.recv_text().await, r#"42["team","blue","hi"]"#);

    let received = backend.received();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(
        body,
        json!({
            "namespace": "/",
            "auth": {"token": "abc"},
            "query": {"EIO": "4", "transport": "websocket", "v": "2"},
            // The allow-list only: no cookie.
            "headers": {"user-agent": "hook-test/1", "x-team": "blue"},
            "address": "127.0.0.1",
            "jwt": null,
        })
    );
    // Signed: t=<seconds>,v1=<HMAC-SHA256 of "<t>.<body>">.
    let t = received[0].assert_signed(SECRET);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(t) <= 5, "a current timestamp: {t} vs {now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_backends_message_and_failures_close_the_door() {
    let backend = Backend::start("{}").await;
    let server = server(&backend, "").await;
    for (status, body, expected) in [
        (
            403,
            r#"{"message":"banned until tomorrow"}"#,
            "banned until tomorrow",
        ),
        (401, "", "unauthorized"),
        (500, r#"{"name":"x"}"#, "auth unavailable"),
        (200, "not json", "auth unavailable"),
        (200, "[1,2]", "auth unavailable"),
    ] {
        backend.answer(status, body);
        let (_, answer) = connect(&server, WS, &json!({})).await;
        assert_eq!(
            answer,
            format!(r#"44{{"message":"{expected}"}}"#),
            "for {status} {body}"
        );
    }
    let metrics = get(server.addr, "/metrics").await.text().to_owned();
    for line in [
        "switchboard_auth_hook_calls_total{outcome=\"refused\"} 2\n",
        "switchboard_auth_hook_calls_total{outcome=\"unavailable\"} 3\n",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_times_out_while_other_clients_carry_on() {
    let backend = Backend::start("{}").await;
    backend.set_delay(Duration::from_secs(3));
    let server = server(&backend, "").await;
    let request = crate::support::ws::handshake_request_with(server.addr, WS, &[]);
    let mut waiting = Ws::connect_request(server.addr, request).await;
    waiting.recv_text().await;
    waiting.send("40{}").await;

    // Meanwhile another client is served: a namespace without auth, a round trip.
    let (mut other, _) = Ws::open(server.addr).await;
    other.connect_nsp("/open").await;
    other.send(r#"42/open,1["echo","still served"]"#).await;
    assert_eq!(other.recv_text().await, r#"43/open,1["still served"]"#);

    // The hook's timeout (1 s) refuses the first, fail closed.
    assert_eq!(
        waiting.recv_text().await,
        r#"44{"message":"auth unavailable"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jwt_the_token_is_checked_first_and_its_claims_are_sent() {
    let backend = Backend::start(r#"{"name":"from the backend"}"#).await;
    let jwt =
        "[namespaces.\"/\".auth.jwt]\nsecret_env = \"JWT_SECRET\"\nalgorithms = [\"HS256\"]\n";
    let server = server(&backend, jwt).await;
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "gina", "exp": exp}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();

    // A bad token never reaches the backend.
    let (_, answer) = connect(&server, WS, &json!({"token": "forged"})).await;
    assert_eq!(answer, r#"44{"message":"invalid token"}"#);
    assert_eq!(backend.fetches(), 0);

    let (mut gina, answer) = connect(&server, WS, &json!({ "token": token })).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
    gina.send(r#"420["who"]"#).await;
    assert_eq!(gina.recv_text().await, r#"430["from the backend"]"#);
    let body: Value = serde_json::from_slice(&backend.received()[0].body).unwrap();
    assert_eq!(body["jwt"]["sub"], "gina");
}
