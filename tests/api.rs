//! The server API (`[api]`) on one node: its keys, its errors and limits, what each endpoint
//! does to connected sockets, the OpenAPI document, and its own listener.

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::support::client::Reply;
use crate::support::process::{Process, binary};
use crate::support::{TempDir, TestServer, Ws, compile_with_env, request, start_with};

const KEY: &str = "an-api-key-for-the-tests-0123";

const ROUTES: &str = r#"
[api]
keys_env = "API_KEYS"
rate = { rate = "1000/s", burst = 1000 }
max_body = "2KB"

[namespaces."/".events]
disconnect = { to = "broadcast", event = "left", data = "{socket.id}" }

[namespaces."/chat".events]
"#;

async fn server(routes: &str) -> TestServer {
    let table = compile_with_env(
        routes,
        std::path::Path::new("."),
        &[(
            "API_KEYS",
            &format!("{KEY}, another-key-of-sixteen-or-more"),
        )],
    );
    start_with(table, None).await
}

async fn call(server: &TestServer, method: Method, path: &str, body: &str) -> Reply {
    let auth = format!("Bearer {KEY}");
    request(
        server.addr,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Bytes::from(body.to_owned()),
    )
    .await
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|_| panic!("JSON: {}", reply.text()))
}

#[tokio::test]
async fn keys_are_required_and_errors_are_json() {
    let server = server(ROUTES).await;
    let emit = r#"{"namespace":"/","event":"news","args":[1]}"#;
    for headers in [
        vec![],
        vec![("authorization", "Bearer not-a-key-not-a-key")],
        vec![("authorization", "Basic x")],
    ] {
        let reply = request(server.addr, Method::POST, "/api/emit", &headers, emit).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            json_of(&reply),
            json!({"error": "missing or unknown API key"})
        );
    }
    // The second key of the list works too.
    let reply = request(
        server.addr,
        Method::POST,
        "/api/emit",
        &[("authorization", "Bearer another-key-of-sixteen-or-more")],
        emit,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    for (method, path, body, status) in [
        (Method::POST, "/api/emit", "{not json", 400),
        (
            Method::POST,
            "/api/emit",
            r#"{"namespace":"/","event":"x","colour":1}"#,
            400,
        ),
        (
            Method::POST,
            "/api/emit",
            r#"{"namespace":"/nope","event":"x"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/emit",
            r#"{"namespace":"/","event":"connect"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/join",
            r#"{"namespace":"/","room":[]}"#,
            400,
        ),
        (Method::GET, "/api/sockets", "", 400),
        (Method::GET, "/api/sockets?namespace=/&limit=5000", "", 400),
        (Method::GET, "/api/emit", "", 405),
        (Method::POST, "/api/nothing", "{}", 404),
    ] {
        let reply = call(&server, method.clone(), path, body).await;
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {body}: {}",
            reply.text()
        );
        assert!(json_of(&reply)["error"].is_string());
    }
    let big = format!(
        r#"{{"namespace":"/","event":"x","args":["{}"]}}"#,
        "x".repeat(3000)
    );
    assert_eq!(
        call(&server, Method::POST, "/api/emit", &big).await.status,
        413
    );
    let metrics = crate::support::get(server.addr, "/metrics")
        .await
        .text()
        .to_owned();
    for line in [
        r#"switchboard_api_requests_total{endpoint="/api/emit",status="401"} 3"#,
        r#"switchboard_api_requests_total{endpoint="/api/emit",status="200"} 1"#,
        r#"switchboard_api_requests_total{endpoint="/api/emit",status="413"} 1"#,
        r#"switchboard_api_requests_total{endpoint="/api/emit",status="405"} 1"#,
        r#"switchboard_api_requests_total{endpoint="other",status="404"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn past_the_rate_the_api_answers_429() {
    let server = server(&ROUTES.replace(
        r#"rate = { rate = "1000/s", burst = 1000 }"#,
        r#"rate = { rate = "1/m", burst = 2 }"#,
    ))
    .await;
    let body = r#"{"namespace":"/","event":"news"}"#;
    assert_eq!(
        call(&server, Method::POST, "/api/emit", body).await.status,
        200
    );
    assert_eq!(
        call(&server, Method::POST, "/api/emit", body).await.status,
        200
    );
    let third = call(&server, Method::POST, "/api/emit", body).await;
    assert_eq!(third.status, 429);
    assert_eq!(json_of(&third), json!({"error": "too many API requests"}));
}

#[tokio::test]
async fn with_rate_off_the_api_has_no_limit() {
    let server = server(&ROUTES.replace(
        r#"rate = { rate = "1000/s", burst = 1000 }"#,
        r#"rate = "off""#,
    ))
    .await;
    let body = r#"{"namespace":"/","event":"news"}"#;
    // Past the default burst of 200.
    for _ in 0..250 {
        assert_eq!(
            call(&server, Method::POST, "/api/emit", body).await.status,
            200
        );
    }
}

#[tokio::test]
async fn emit_join_leave_disconnect_and_listings() {
    let server = server(ROUTES).await;
    let (mut a, a_id) = Ws::socket(server.addr).await;
    let (mut b, b_id) = Ws::socket(server.addr).await;

    // To everyone, with a binary argument.
    let reply = call(
        &server,
        Method::POST,
        "/api/emit",
        r#"{"namespace":"/","event":"news","args":["hello",{"$binary":"AQID"}]}"#,
    )
    .await;
    assert_eq!(json_of(&reply), json!({"delivered": 2}));
    for ws in [&mut a, &mut b] {
        assert_eq!(
            ws.recv_text().await,
            r#"451-["news","hello",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(ws.recv_binary().await, vec![1, 2, 3]);
    }

    // a joins "vip" by its id; a message to "vip" but not b.
    let join = format!(r#"{{"namespace":"/","socket_id":"{a_id}","room":"vip"}}"#);
    assert_eq!(
        json_of(&call(&server, Method::POST, "/api/join", &join).await),
        json!({"sockets": 1})
    );
    let reply = call(
        &server,
        Method::POST,
        "/api/emit",
        r#"{"namespace":"/","rooms":["vip"],"event":"perk"}"#,
    )
    .await;
    assert_eq!(json_of(&reply), json!({"delivered": 1}));
    assert_eq!(a.recv_text().await, r#"42["perk"]"#);
    // Everyone but vip.
    let reply = call(
        &server,
        Method::POST,
        "/api/emit",
        r#"{"namespace":"/","except":["vip"],"event":"plain"}"#,
    )
    .await;
    assert_eq!(json_of(&reply), json!({"delivered": 1}));
    assert_eq!(b.recv_text().await, r#"42["plain"]"#);

    // Listings.
    let rooms = json_of(&call(&server, Method::GET, "/api/rooms?namespace=/", "").await);
    assert_eq!(
        rooms,
        json!({"rooms": ["vip"], "total": 1, "offset": 0, "limit": 100})
    );
    let vip = json_of(
        &call(
            &server,
            Method::GET,
            "/api/sockets?namespace=/&room=vip",
            "",
        )
        .await,
    );
    assert_eq!(vip["total"], 1);
    assert_eq!(vip["sockets"][0]["id"], a_id.as_str());
    let mut rooms_of_a: Vec<String> =
        serde_json::from_value(vip["sockets"][0]["rooms"].clone()).unwrap();
    rooms_of_a.sort();
    let mut expected = vec![a_id.clone(), "vip".to_owned()];
    expected.sort();
    assert_eq!(rooms_of_a, expected);
    let page = json_of(
        &call(
            &server,
            Method::GET,
            "/api/sockets?namespace=/&limit=1&offset=1",
            "",
        )
        .await,
    );
    assert_eq!(page["total"], 2);
    assert_eq!(page["sockets"].as_array().unwrap().len(), 1);

    // a leaves vip.
    let leave = format!(r#"{{"namespace":"/","socket_id":"{a_id}","room":["vip"]}}"#);
    assert_eq!(
        json_of(&call(&server, Method::POST, "/api/leave", &leave).await),
        json!({"sockets": 1})
    );
    let reply = call(
        &server,
        Method::POST,
        "/api/emit",
        r#"{"namespace":"/","rooms":["vip"],"event":"perk"}"#,
    )
    .await;
    assert_eq!(json_of(&reply), json!({"delivered": 0}));

    // b is disconnected from the namespace: its disconnect route runs for the others.
    let off = format!(r#"{{"namespace":"/","socket_id":"{b_id}"}}"#);
    assert_eq!(
        json_of(&call(&server, Method::POST, "/api/disconnect", &off).await),
        json!({"sockets": 1})
    );
    assert_eq!(b.recv_text().await, "41");
    assert_eq!(a.recv_text().await, format!(r#"42["left","{b_id}"]"#));
}

#[tokio::test]
async fn a_disconnect_with_close_ends_the_connection() {
    let server = server(ROUTES).await;
    let (mut a, a_id) = Ws::socket(server.addr).await;
    a.connect_nsp("/chat").await;
    let off = format!(r#"{{"namespace":"/","socket_id":"{a_id}","close":true}}"#);
    assert_eq!(
        json_of(&call(&server, Method::POST, "/api/disconnect", &off).await),
        json!({"sockets": 1})
    );
    // As socket.io's disconnect(true): every namespace is told (so the client does not
    // reconnect), then the connection closes.
    let mut told = vec![a.recv_text().await, a.recv_text().await];
    told.sort();
    assert_eq!(told, ["41", "41/chat,"]);
    a.expect_close(1000).await;
}

#[tokio::test]
async fn a_reload_brings_new_keys_and_removing_api_turns_it_off() {
    let server = server(ROUTES).await;
    let body = r#"{"namespace":"/","event":"news"}"#;
    let rotated = "a-rotated-api-key-0123456789";
    let reload = |routes: &str, hash: &str| {
        let table = compile_with_env(routes, std::path::Path::new("."), &[("API_KEYS", rotated)]);
        let outcome = server.server.app().apply(table, hash.to_owned());
        assert!(
            matches!(outcome, switchboard::app::ReloadOutcome::Applied { .. }),
            "{outcome:?}"
        );
    };
    reload(ROUTES, "rotated");
    assert_eq!(
        call(&server, Method::POST, "/api/emit", body).await.status,
        401,
        "the old key is gone"
    );
    let auth = format!("Bearer {rotated}");
    let headers = [("authorization", auth.as_str())];
    let reply = request(server.addr, Method::POST, "/api/emit", &headers, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    reload("[namespaces.\"/\".events]\n", "no-api");
    let reply = request(server.addr, Method::POST, "/api/emit", &headers, body).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key() {
    let server = server(ROUTES).await;
    let reply = request(
        server.addr,
        Method::GET,
        "/api/openapi.json",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(json_of(&reply)["openapi"], "3.1.0");
}

#[test]
fn with_its_own_listener_the_api_leaves_the_main_port() {
    let dir = TempDir::new("api-listen");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.write(
        "routes.toml",
        format!("[api]\nkeys_env = \"API_KEYS\"\nlisten = \"127.0.0.1:{port}\"\n[namespaces.\"/\".events]\n"),
    );
    let mut command = binary(&config);
    command.env("API_KEYS", KEY);
    let process = Process::spawn(command);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let api: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let auth = format!("Bearer {KEY}");
        let headers = [("authorization", auth.as_str())];
        let body = r#"{"namespace":"/","event":"news"}"#;
        let on_api = request(api, Method::POST, "/api/emit", &headers, body).await;
        assert_eq!(on_api.status, 200, "{}", on_api.text());
        let on_main = request(process.addr, Method::POST, "/api/emit", &headers, body).await;
        assert_eq!(on_main.status, 404);
        assert_eq!(
            request(api, Method::GET, "/healthz", &[], Bytes::new())
                .await
                .status,
            404
        );
    });
}
