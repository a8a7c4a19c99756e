//! Presence (`presence = { event, data }` on a namespace): what a room is told carries only
//! the named keys of `socket.data`. (The golden case `presence` pins joins, leaves and sizes.)

use serde_json::{Value, json};

use crate::support::{Ws, start};

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
