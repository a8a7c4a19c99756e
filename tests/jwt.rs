//! `[namespaces."/".auth.jwt]` with tokens minted here: an HMAC secret from the environment,
//! RSA, EC and Ed25519 public keys from `tests/fixtures/jwt/`; every kind of bad token
//! refused with its reason; claims in templates; the expiry disconnect and the refresh.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::{TestServer, Ws, compile_with_env, get, start_with};

const SECRET: &str = "0123456789abcdef0123456789abcdef-for-tests";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn private_key(alg: Algorithm, file: &str) -> EncodingKey {
    let pem = std::fs::read(fixtures().join(file)).unwrap();
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap()
}

fn mint(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(alg), claims, key).unwrap()
}

/// An HS256 token for `sub`, valid for ten minutes, with `extra` claims over the defaults.
fn hs(sub: &str, extra: Value) -> String {
    let mut claims =
        json!({"sub": sub, "iss": "https://login.test", "aud": "chat", "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    mint(Algorithm::HS256, &key, &claims)
}

const HS_RULE: &str = r#"secret_env = "JWT_SECRET"
algorithms = ["HS256"]
issuer = "https://login.test"
audience = "chat"
leeway = "0s"
refresh_event = "auth:refresh"
"#;

const EVENTS: &str = r#"connect = { join = "user:{jwt.sub}" }
whoami = { ack = ["{jwt.sub}", "{jwt.org.id}", "{jwt}"] }
dm = { to = "room", room = "user:{0}", event = "dm", data = "{1}" }
echo = { ack = "{args}" }
"#;

async fn server(rule: &str, events: &str) -> TestServer {
    let routes =
        format!("[namespaces.\"/\".auth.jwt]\n{rule}\n[namespaces.\"/\".events]\n{events}");
    let table = compile_with_env(&routes, &fixtures(), &[("JWT_SECRET", SECRET)]);
    start_with(table, None).await
}

/// A session that CONNECTs to `/` with `auth`; returns it and the answer.
async fn connect_with(server: &TestServer, auth: &Value) -> (Ws, String) {
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send(&format!("40{auth}")).await;
    let answer = ws.recv_text().await;
    (ws, answer)
}

async fn admitted(server: &TestServer, token: &str) -> Ws {
    let (ws, answer) = connect_with(server, &json!({ "token": token })).await;
    assert!(answer.starts_with("40{\"sid\""), "admitted: {answer}");
    ws
}

#[tokio::test]
async fn claims_fill_templates_and_each_user_has_a_private_room() {
    let server = server(HS_RULE, EVENTS).await;
    let mut alice = admitted(&server, &hs("alice", json!({"org": {"id": 7}}))).await;
    let mut bob = admitted(&server, &hs("bob", json!({}))).await;

    alice.send(r#"420["whoami"]"#).await;
    let answer = alice.recv_text().await;
    let args: Value = serde_json::from_str(answer.strip_prefix("430").unwrap()).unwrap();
    assert_eq!(args[0], json!(["alice", 7, args[0][2].clone()]));
    assert_eq!(args[0][2]["sub"], "alice");
    assert_eq!(args[0][2]["aud"], "chat");

    // bob writes to alice's room, named by her token's `sub`.
    bob.send(r#"42["dm","alice","hi alice"]"#).await;
    assert_eq!(alice.recv_text().await, r#"42["dm","hi alice"]"#);
}

#[tokio::test]
async fn every_bad_token_is_refused_with_a_short_reason() {
    let server = server(HS_RULE, EVENTS).await;
    let rsa = private_key(Algorithm::RS256, "rsa-private.pem");
    let other_secret = EncodingKey::from_secret(b"another-secret-of-thirty-two-bytes!!").unwrap();
    let good = hs("alice", json!({}));
    let (head_payload, _) = good.rsplit_once('.').unwrap();
    let tampered = format!("{head_payload}.AAAA{}", &good[head_payload.len() + 5..]);
    let (_, payload) = head_payload.split_once('.').unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"token": hs("a", json!({"exp": now() - 5}))}),
            "token expired",
        ),
        (
            json!({"token": hs("a", json!({"nbf": now() + 600}))}),
            "token not yet valid",
        ),
        (
            json!({"token": hs("a", json!({"iss": "https://evil.test"}))}),
            "invalid token",
        ),
        (
            json!({"token": hs("a", json!({"aud": "billing"}))}),
            "invalid token",
        ),
        // {"alg":"none","typ":"JWT"}
        (
            json!({"token": format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")}),
            "invalid token",
        ),
        (json!({"token": tampered}), "invalid token"),
        (
            json!({"token": mint(Algorithm::HS256, &other_secret, &json!({"sub": "a", "iss": "https://login.test", "aud": "chat", "exp": now() + 600}))}),
            "invalid token",
        ),
        (
            json!({"token": mint(Algorithm::RS256, &rsa, &json!({"sub": "a", "iss": "https://login.test", "aud": "chat", "exp": now() + 600}))}),
            "invalid token",
        ),
        (json!({"token": "x".repeat(9000)}), "invalid token"),
        (json!({"token": "garbage"}), "invalid token"),
        (json!({"token": 12}), "token missing"),
        (json!({}), "token missing"),
    ];
    for (auth, reason) in &cases {
        let (_, answer) = connect_with(&server, auth).await;
        assert_eq!(
            answer,
            format!(r#"44{{"message":"{reason}"}}"#),
            "for {auth}"
        );
    }
    let metrics = get(server.addr, "/metrics").await.text().to_owned();
    for (label, n) in [
        ("expired", 1),
        ("not_yet_valid", 1),
        ("invalid", 7),
        ("too_large", 1),
        ("missing", 2),
    ] {
        let line = format!("switchboard_jwt_refusals_total{{reason=\"{label}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    // Nothing about the key is ever told: every message is one of the short reasons.
    assert!(!metrics.contains(SECRET));
}

#[tokio::test]
async fn public_keys_verify_rsa_ec_and_ed25519_and_refuse_hs_rs_confusion() {
    for (alg, name, private, public) in [
        (
            Algorithm::RS256,
            "RS256",
            "rsa-private.pem",
            "rsa-public.pem",
        ),
        (
            Algorithm::PS256,
            "PS256",
            "rsa-private.pem",
            "rsa-public.pem",
        ),
        (Algorithm::ES256, "ES256", "ec-private.pem", "ec-public.pem"),
        (Algorithm::EdDSA, "EdDSA", "ed-private.pem", "ed-public.pem"),
    ] {
        let rule = format!("public_key = \"{public}\"\nalgorithms = [\"{name}\"]\n");
        let server = server(&rule, "echo = { ack = \"{jwt.sub}\" }\n").await;
        let claims = json!({"sub": "carol", "exp": now() + 600});
        let mut ws = admitted(&server, &mint(alg, &private_key(alg, private), &claims)).await;
        ws.send(r#"421["echo"]"#).await;
        assert_eq!(ws.recv_text().await, r#"431["carol"]"#, "{name}");

        // The classic confusion: HS256 "signed" with the public key's bytes as the secret.
        let public_pem = std::fs::read(fixtures().join(public)).unwrap();
        let forged = mint(
            Algorithm::HS256,
            &EncodingKey::from_secret(&public_pem).unwrap(),
            &claims,
        );
        let (_, answer) = connect_with(&server, &json!({ "token": forged })).await;
        assert_eq!(answer, r#"44{"message":"invalid token"}"#, "{name}");
        // A key of the same family that is not the namespace's.
        if alg == Algorithm::RS256 {
            let other = mint(alg, &private_key(alg, "rsa2-private.pem"), &claims);
            let (_, answer) = connect_with(&server, &json!({ "token": other })).await;
            assert_eq!(answer, r#"44{"message":"invalid token"}"#);
        }
    }
}

#[tokio::test]
async fn the_token_may_come_from_the_query_or_a_bearer_header() {
    let rule = format!("{HS_RULE}from = \"query.access_token\"\n");
    let query_server = server(&rule, "echo = { ack = \"{jwt.sub}\" }\n").await;
    let target = format!(
        "/socket.io/?EIO=4&transport=websocket&access_token={}",
        hs("dave", json!({}))
    );
    let mut ws = Ws::connect(query_server.addr, &target).await;
    ws.recv_text().await;
    let id = ws.connect_nsp("/").await;
    assert!(!id.is_empty());

    let rule = format!("{HS_RULE}from = \"header.authorization\"\n");
    let header_server = server(&rule, "echo = { ack = \"{jwt.sub}\" }\n").await;
    let request = crate::support::ws::handshake_request_with(
        header_server.addr,
        "/socket.io/?EIO=4&transport=websocket",
        &[(
            "Authorization",
            &format!("Bearer {}", hs("erin", json!({}))),
        )],
    );
    let mut ws = Ws::connect_request(header_server.addr, request).await;
    ws.recv_text().await;
    ws.connect_nsp("/").await;
    ws.send(r#"420["echo"]"#).await;
    assert_eq!(ws.recv_text().await, r#"430["erin"]"#);
}

#[tokio::test]
async fn an_expired_socket_is_told_then_disconnected_and_a_refreshed_one_stays() {
    let server = server(HS_RULE, EVENTS).await;
    let soon = now() + 2;
    // `a` refreshes its token at once; `b`'s expires a second after `a`'s would have.
    let mut a = admitted(&server, &hs("alice", json!({"exp": soon}))).await;
    let mut b = admitted(&server, &hs("bob", json!({"exp": soon + 1}))).await;

    let later = now() + 600;
    a.send(&format!(
        r#"420["auth:refresh","{}"]"#,
        hs("alice", json!({"exp": later}))
    ))
    .await;
    assert_eq!(
        a.recv_text().await,
        format!(r#"430[{{"exp":{later},"ok":true}}]"#)
    );
    // Another identity, or an expired token, is not taken.
    a.send(&format!(
        r#"421["auth:refresh","{}"]"#,
        hs("mallory", json!({}))
    ))
    .await;
    assert_eq!(
        a.recv_text().await,
        r#"431[{"error":"invalid token","ok":false}]"#
    );
    a.send(&format!(
        r#"422["auth:refresh",{{"token":"{}"}}]"#,
        hs("alice", json!({"exp": now() - 1}))
    ))
    .await;
    assert_eq!(
        a.recv_text().await,
        r#"432[{"error":"token expired","ok":false}]"#
    );

    // b is told, then disconnected from the namespace; the session stays open.
    assert_eq!(
        b.recv_text().await,
        r#"42["auth:expired",{"message":"token expired"}]"#
    );
    assert_eq!(b.recv_text().await, "41");
    // By then a's first token has expired too; a is still in, on its refreshed token.
    a.send(r#"423["echo","still here"]"#).await;
    assert_eq!(a.recv_text().await, r#"433["still here"]"#);
    // b reconnects with a fresh token on the same session, as the stock client does.
    b.send(&format!(r#"40{{"token":"{}"}}"#, hs("bob", json!({}))))
        .await;
    assert!(b.recv_text().await.starts_with("40{\"sid\""));
    let metrics = get(server.addr, "/metrics").await.text().to_owned();
    assert!(
        metrics.contains("switchboard_jwt_expired_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_jwt_refreshes_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn scripts_read_the_claims_as_ctx_jwt() {
    let server = server(HS_RULE, "who = { script = \"claims.rhai\" }\n").await;
    let mut ws = admitted(&server, &hs("frank", json!({"org": {"id": 3}}))).await;
    ws.send(r#"420["who"]"#).await;
    assert_eq!(ws.recv_text().await, r#"430["frank of org 3"]"#);
}
