//! Presence (`presence = { event, data }` on a namespace): what a room is told carries only
//! the named keys of `socket.data`. (The golden case `presence` pins joins, leaves and sizes.)
//! Scripts ask who is in a room with `ctx.room_size(room)` and `ctx.room_members(room)`.

use serde_json::{Value, json};

use crate::support::server::compile;
use crate::support::{TempDir, Ws, start, start_with, until};

#[tokio::test]
async fn only_the_named_keys_of_socket_data_are_told() {
    let server = start(
        r#"
[namespaces."/"]
presence = { event = "here", data = ["name"] }

[namespaces."/".events]
enter = { join = "{0}" }
"#,
    )
    .await;
    let (mut ann, id) = Ws::socket(server.addr).await;
    server
        .socket("/", &id)
        .set_data(json!({"name": "Ann", "token": "not for others"}));
    ann.send(r#"42["enter","lobby"]"#).await;
    let told: Value = serde_json::from_str(&ann.recv_text().await[2..]).unwrap();
    assert_eq!(
        told,
        json!(["here", {"room": "lobby", "size": 1, "joined": id, "data": {"name": "Ann"}}])
    );
}

#[tokio::test]
async fn scripts_read_a_rooms_size_and_members_as_they_are_now() {
    let dir = TempDir::new("room-lookup");
    dir.write(
        "s.rhai",
        "fn on_event(ctx, args) { ctx.ack(ctx.room_size(args[0]), ctx.room_members(args[0])); }",
    );
    let server = start_with(
        compile(
            r#"
[namespaces."/".events]
enter = { join = "{0}" }
exit = { leave = "{0}" }
who = { script = "s.rhai" }
"#,
            dir.path(),
        ),
        None,
    )
    .await;
    let (mut ann, ann_id) = Ws::socket(server.addr).await;
    let (mut bob, bob_id) = Ws::socket(server.addr).await;
    let (mut cid, cid_id) = Ws::socket(server.addr).await;
    for ws in [&mut ann, &mut bob, &mut cid] {
        ws.send(r#"421["enter","lobby"]"#).await;
        assert_eq!(ws.recv_text().await, "431[]");
    }
    let who = async |ws: &mut Ws, room: &str| -> Value {
        ws.send(&format!(r#"429["who","{room}"]"#)).await;
        let answer = ws.recv_text().await;
        let args = answer
            .strip_prefix("439")
            .unwrap_or_else(|| panic!("an ack: {answer:?}"));
        serde_json::from_str(args).unwrap()
    };
    let sorted = |ids: &[&String]| {
        let mut ids: Vec<&String> = ids.to_vec();
        ids.sort();
        json!(ids)
    };

    assert_eq!(
        who(&mut ann, "lobby").await,
        json!([3, sorted(&[&ann_id, &bob_id, &cid_id])])
    );
    assert_eq!(who(&mut ann, "nowhere").await, json!([0, []]));
    // A socket's own room is a room like any other.
    assert_eq!(who(&mut ann, &bob_id).await, json!([1, [bob_id]]));

    bob.send(r#"422["exit","lobby"]"#).await;
    assert_eq!(bob.recv_text().await, "432[]");
    assert_eq!(
        who(&mut ann, "lobby").await,
        json!([2, sorted(&[&ann_id, &cid_id])])
    );

    cid.send("41").await;
    let adapter = server.server.app().snapshot().adapters["/"].clone();
    until("cid to have left the namespace", || {
        adapter.socket_count() == 2
    })
    .await;
    assert_eq!(who(&mut ann, "lobby").await, json!([1, [ann_id]]));
    assert_eq!(who(&mut bob, "lobby").await, json!([1, [ann_id]]));
}
