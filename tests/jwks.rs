//! `jwks_url`: keys from a JWK Set served here, picked by the token's `kid`; a rotation is
//! picked up by the first token naming the new key; an outage keeps the last keys and shows
//! in `/healthz` and `/metrics`; a start while the set is down does not fail.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::backend::Backend as JwksServer;
use crate::support::{TestServer, Ws, compile_with_env, get, start_with};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn set_of(files: &[&str]) -> String {
    let keys: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(fixture(f)).unwrap()).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

/// An RS256 token for `sub` signed by `private` under `kid`, valid for ten minutes.
fn token(private: &str, kid: &str, sub: &str) -> String {
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixture(private)).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    encode(&header, &json!({"sub": sub, "exp": exp}), &key).unwrap()
}

async fn server(jwks: &JwksServer) -> TestServer {
    let routes = format!(
        "[namespaces.\"/\".auth.jwt]\njwks_url = \"{}\"\nalgorithms = [\"RS256\"]\n\n[namespaces.\"/\".events]\nwho = {{ ack = \"{{jwt.sub}}\" }}\n",
        jwks.url("/jwks.json")
    );
    start_with(compile_with_env(&routes, &fixture(""), &[]), None).await
}

/// The CONNECT answer for `token`.
async fn connect(server: &TestServer, token: &str) -> String {
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send(&format!(r#"40{{"token":"{token}"}}"#)).await;
    ws.recv_text().await
}

async fn metrics(server: &TestServer) -> String {
    get(server.addr, "/metrics").await.text().to_owned()
}

/// Wait until the server holds the set as fetched (`up` is `1`).
async fn fetched(server: &TestServer, jwks: &JwksServer) {
    let (addr, line) = (
        server.addr,
        format!(
            "switchboard_jwks_up{{url=\"{}\"}} 1\n",
            jwks.url("/jwks.json")
        ),
    );
    crate::support::within("the set to be fetched", async {
        while !get(addr, "/metrics").await.text().contains(&line) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn health(server: &TestServer) -> Value {
    serde_json::from_str(get(server.addr, "/healthz").await.text()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_found_by_kid_and_a_rotation_is_picked_up() {
    let jwks = JwksServer::start(&set_of(&["rsa.jwk.json"])).await;
    let server = server(&jwks).await;
    fetched(&server, &jwks).await;
    let answer = connect(&server, &token("rsa-private.pem", "k1", "alice")).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");

    // The issuer rotates: k1 out, k2 in. The first token naming k2 fetches the set again.
    jwks.set_body(&set_of(&["rsa2.jwk.json"]));
    let before = jwks.fetches();
    let answer = connect(&server, &token("rsa2-private.pem", "k2", "bob")).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
    assert_eq!(jwks.fetches(), before + 1, "one fetch for the new kid");

    // k1 is gone; a token naming it is refused without another fetch so soon.
    let answer = connect(&server, &token("rsa-private.pem", "k1", "alice")).await;
    assert_eq!(answer, r#"44{"message":"invalid token"}"#);
    // A token signed by the wrong key under a known kid is refused too.
    let answer = connect(&server, &token("rsa-private.pem", "k2", "mallory")).await;
    assert_eq!(answer, r#"44{"message":"invalid token"}"#);
    assert_eq!(jwks.fetches(), before + 1);
    let m = metrics(&server).await;
    assert!(
        m.contains("switchboard_jwt_refusals_total{reason=\"unknown_key\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "switchboard_jwks_keys{{url=\"{}\"}} 1\n",
            jwks.url("/jwks.json")
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_last_keys_and_shows_in_health_and_metrics() {
    let jwks = JwksServer::start(&set_of(&["rsa.jwk.json"])).await;
    let server = server(&jwks).await;
    fetched(&server, &jwks).await;
    let answer = connect(&server, &token("rsa-private.pem", "k1", "alice")).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");

    // Down: a token naming an unknown kid asks for a fetch, which fails.
    jwks.set_status(503);
    let answer = connect(&server, &token("rsa2-private.pem", "k2", "bob")).await;
    assert_eq!(answer, r#"44{"message":"invalid token"}"#);
    let h = health(&server).await;
    assert_eq!(h["jwks"][0]["up"], false, "{h}");
    assert_eq!(h["jwks"][0]["keys"], 1, "{h}");
    assert_eq!(
        h["jwks"][0]["last_error"], "fetch failed",
        "the public port says no more: {h}"
    );
    assert!(metrics(&server).await.contains(&format!(
        "switchboard_jwks_up{{url=\"{}\"}} 0\n",
        jwks.url("/jwks.json")
    )));

    // The kept key still admits its tokens.
    let answer = connect(&server, &token("rsa-private.pem", "k1", "carol")).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_while_the_set_is_down_does_not_fail_and_recovers() {
    let jwks = JwksServer::start(&set_of(&["rsa.jwk.json"])).await;
    jwks.set_status(503);
    let server = server(&jwks).await;
    let answer = connect(&server, &token("rsa-private.pem", "k1", "alice")).await;
    assert_eq!(answer, r#"44{"message":"auth unavailable"}"#);
    let m = metrics(&server).await;
    assert!(
        m.contains("switchboard_jwt_refusals_total{reason=\"unavailable\"} 1\n"),
        "{m}"
    );

    // The set comes back; the background retry fetches it.
    jwks.set_status(200);
    fetched(&server, &jwks).await;
    let answer = connect(&server, &token("rsa-private.pem", "k1", "alice")).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_arriving_before_the_first_fetch_waits_for_it() {
    let jwks = JwksServer::start(&set_of(&["rsa.jwk.json"])).await;
    let server = server(&jwks).await;
    // No wait for the fetch: if it is not done, the CONNECT waits for it.
    let answer = connect(&server, &token("rsa-private.pem", "k1", "alice")).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
}
