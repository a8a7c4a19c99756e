//! Connection state recovery (`[server.recovery]`) on the wire: the CONNECT answer's `pid`,
//! offsets on broadcasts only, a recovered socket's missed packets before its CONNECT
//! answer, and when there is no recovery — a socket that meant to leave, an offset past the
//! buffer, a refused token unless `skip_auth`.

use crate::support::{TestServer, Ws, start, until};

const ROUTES: &str = r#"
[server.recovery]
max_disconnection = "2m"

[namespaces."/".events]
news = [ { to = "io" }, { ack = "ok" } ]
quiet = { to = "io", volatile = true }
"#;

/// `(sid, pid)` of a CONNECT answer.
fn ids(answer: &str) -> (String, String) {
    let json: serde_json::Value =
        serde_json::from_str(answer.trim_start_matches(|c: char| c.is_ascii_digit())).unwrap();
    (
        json["sid"].as_str().unwrap().to_owned(),
        json["pid"].as_str().expect("a pid").to_owned(),
    )
}

/// The last argument of an event packet: its offset.
fn offset(packet: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(&packet[2..]).unwrap();
    json.as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn sockets(server: &TestServer) -> usize {
    server.server.app().snapshot().adapters["/"].socket_count()
}

/// Join `/` with `auth`; the CONNECT answer and what came before it.
async fn join(server: &TestServer, auth: &str) -> (Ws, Vec<String>, String) {
    let (mut ws, _) = Ws::open(server.addr).await;
    ws.send(&format!("40{auth}")).await;
    let mut before = Vec::new();
    loop {
        let text = ws.recv_text().await;
        if text.starts_with("40") || text.starts_with("44") {
            return (ws, before, text);
        }
        before.push(text);
    }
}

#[tokio::test]
async fn a_dropped_socket_comes_back_with_what_it_missed_before_its_connect_answer() {
    let server = start(ROUTES).await;
    let (mut ann, _, answer) = join(&server, "").await;
    let (sid, pid) = ids(&answer);
    let (mut bob, _) = Ws::socket(server.addr).await;

    bob.send(r#"421["news","n0"]"#).await;
    let first = ann.recv_text().await;
    assert!(first.starts_with(r#"42["news","n0","#), "{first}");
    let seen = offset(&first);
    assert_eq!(
        bob.recv_text().await,
        format!(r#"42["news","n0","{seen}"]"#)
    );
    assert_eq!(bob.recv_text().await, r#"431["ok"]"#);
    // Volatile and direct packets carry no offset.
    bob.send(r#"42["quiet","q"]"#).await;
    assert_eq!(ann.recv_text().await, r#"42["quiet","q"]"#);

    drop(ann);
    until("ann's socket gone", || sockets(&server) == 1).await;
    for (n, text) in ["n1", "n2"].iter().enumerate() {
        bob.send(&format!(r#"42{}["news","{text}"]"#, n + 2)).await;
        bob.recv_text().await;
        bob.recv_text().await;
    }
    let (_ann, missed, answer) =
        join(&server, &format!(r#"{{"pid":"{pid}","offset":"{seen}"}}"#)).await;
    let missed: Vec<String> = missed
        .iter()
        .map(|m| serde_json::from_str::<serde_json::Value>(&m[2..]).unwrap()[1].to_string())
        .collect();
    assert_eq!(missed, [r#""n1""#, r#""n2""#]);
    assert_eq!(ids(&answer), (sid, pid));
    assert_eq!(sockets(&server), 2);
}

#[tokio::test]
async fn routes_tell_a_recovered_socket_from_a_new_one() {
    let server = start(&ROUTES.replace(
        "[namespaces.\"/\".events]\n",
        "[namespaces.\"/\".events]\nconnect = { to = \"emit\", event = \"hello\", data = \"{socket.recovered}\" }\n",
    ))
    .await;
    let (mut ann, _, answer) = join(&server, "").await;
    let (_, pid) = ids(&answer);
    assert_eq!(ann.recv_text().await, r#"42["hello",false]"#);
    let (mut bob, _) = Ws::socket(server.addr).await;
    assert_eq!(bob.recv_text().await, r#"42["hello",false]"#);
    bob.send(r#"42["news","n0"]"#).await;
    let seen = offset(&ann.recv_text().await);
    drop(ann);
    until("ann's socket gone", || sockets(&server) == 1).await;
    let (mut again, _, _) = join(&server, &format!(r#"{{"pid":"{pid}","offset":"{seen}"}}"#)).await;
    assert_eq!(again.recv_text().await, r#"42["hello",true]"#);
}

#[tokio::test]
async fn a_socket_that_left_on_purpose_is_not_recovered() {
    let server = start(ROUTES).await;
    let (mut ann, _, answer) = join(&server, "").await;
    let (sid, pid) = ids(&answer);
    let (mut bob, _) = Ws::socket(server.addr).await;
    bob.send(r#"421["news","n0"]"#).await;
    let seen = offset(&ann.recv_text().await);
    ann.send("41").await;
    until("ann's socket gone", || sockets(&server) == 1).await;
    let (_again, missed, answer) =
        join(&server, &format!(r#"{{"pid":"{pid}","offset":"{seen}"}}"#)).await;
    assert!(missed.is_empty());
    let (new_sid, new_pid) = ids(&answer);
    assert_ne!((new_sid, new_pid), (sid, pid));
}

#[tokio::test]
async fn past_the_buffer_the_client_gets_a_fresh_session() {
    let server = start(&ROUTES.replace(
        "max_disconnection = \"2m\"",
        "max_disconnection = \"2m\"\nbuffer = \"200B\"",
    ))
    .await;
    let (mut ann, _, answer) = join(&server, "").await;
    let (sid, pid) = ids(&answer);
    let (mut bob, _) = Ws::socket(server.addr).await;
    bob.send(r#"42["news","n0"]"#).await;
    let seen = offset(&ann.recv_text().await);
    drop(ann);
    until("ann's socket gone", || sockets(&server) == 1).await;
    // Ten broadcasts of 30-odd bytes: the first falls out of 200 bytes.
    for n in 0..10 {
        bob.send(&format!(r#"42{}["news","later {n}"]"#, n + 1))
            .await;
        bob.recv_text().await;
        bob.recv_text().await;
    }
    let (_again, missed, answer) =
        join(&server, &format!(r#"{{"pid":"{pid}","offset":"{seen}"}}"#)).await;
    assert!(missed.is_empty());
    assert_ne!(ids(&answer).0, sid);
}

#[tokio::test]
async fn a_recovered_socket_is_authorized_again_unless_skip_auth() {
    for skip in [false, true] {
        let routes = format!(
            r#"
[server.recovery]
skip_auth = {skip}

[namespaces."/".auth]
token = ["t1"]

[namespaces."/".events]
news = "io"
"#
        );
        let server = start(&routes).await;
        let (mut ann, _, answer) = join(&server, r#"{"token":"t1"}"#).await;
        let (sid, pid) = ids(&answer);
        let (mut bob, _, _) = join(&server, r#"{"token":"t1"}"#).await;
        bob.send(r#"42["news","n0"]"#).await;
        let seen = offset(&ann.recv_text().await);
        drop(ann);
        until("ann's socket gone", || sockets(&server) == 1).await;
        let (_again, _, answer) =
            join(&server, &format!(r#"{{"pid":"{pid}","offset":"{seen}"}}"#)).await;
        if skip {
            assert_eq!(ids(&answer), (sid, pid), "recovered without its token");
        } else {
            assert!(
                answer.starts_with("44{"),
                "refused without its token: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn a_made_up_pid_or_offset_gets_a_fresh_socket_and_costs_nobody_else() {
    let server = start(ROUTES).await;
    let (mut ann, _, _) = join(&server, "").await;
    for auth in [
        r#"{"pid":"not-a-pid","offset":"0"}"#,
        r#"{"pid":"not-a-pid","offset":"not hex"}"#,
        r#"{"pid":7,"offset":[]}"#,
    ] {
        let (_, missed, answer) = join(&server, auth).await;
        assert!(missed.is_empty());
        assert!(answer.starts_with("40{"), "{answer}");
    }
    // The others' broadcasts go on.
    let (mut bob, _) = Ws::socket(server.addr).await;
    bob.send(r#"42["news","still here"]"#).await;
    assert!(
        ann.recv_text()
            .await
            .starts_with(r#"42["news","still here","#)
    );
}
