//! Scripts that loop, nest data deeply, send too much or get unreadable arguments: each
//! costs only its own event, and never the other clients' service.

use std::sync::atomic::Ordering;

use crate::support::server::compile;
use crate::support::{TempDir, TestServer, Ws, start_with, until};

async fn with_script(routes: &str, script: &str) -> (TempDir, TestServer) {
    let dir = TempDir::new("hostile-script");
    dir.write("s.rhai", script);
    let server = start_with(compile(routes, dir.path()), None).await;
    (dir, server)
}

fn running(server: &TestServer) -> u64 {
    server
        .server
        .app()
        .metrics()
        .scripts_running
        .load(Ordering::Relaxed)
}

fn errors(server: &TestServer) -> u64 {
    server
        .server
        .app()
        .metrics()
        .script_errors
        .load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_looping_script_does_not_stop_others_from_being_served() {
    let (_dir, server) = with_script(
        r#"[limits]
script_operations = 1_000_000_000
script_timeout = "2s"
[namespaces."/".events]
spin = { script = "s.rhai" }
echo = { ack = "{args}" }
"#,
        "fn on_event(ctx, args) { loop { } }",
    )
    .await;
    let (mut a, _) = Ws::socket(server.addr).await;
    let (mut b, _) = Ws::socket(server.addr).await;
    a.send(r#"421["spin"]"#).await;
    until("the script to be running", || running(&server) == 1).await;
    b.send(r#"427["echo","still served"]"#).await;
    assert_eq!(b.recv_text().await, r#"437["still served"]"#);
    assert_eq!(running(&server), 1, "answered while the script still runs");
    // The loop ends at its time limit; the event is lost, the socket stays.
    until("the script to be stopped", || errors(&server) == 1).await;
    a.send(r#"422["echo",2]"#).await;
    assert_eq!(a.recv_text().await, "432[2]");
}

#[tokio::test]
async fn deeply_nested_script_data_costs_only_its_event() {
    let (_dir, server) = with_script(
        r#"[namespaces."/".events]
arrays = { script = "s.rhai", function = "arrays" }
maps = { script = "s.rhai", function = "maps" }
echo = { ack = "{args}" }
"#,
        "fn arrays(ctx, args) { let a = []; loop { a = [a]; } }\n\
         fn maps(ctx, args) { let m = #{}; loop { m = #{ m: m }; } }",
    )
    .await;
    let (mut ws, _) = Ws::socket(server.addr).await;
    ws.send(r#"42["arrays"]"#).await;
    ws.send(r#"42["maps"]"#).await;
    ws.send(r#"429["echo","alive"]"#).await;
    assert_eq!(ws.recv_text().await, r#"439["alive"]"#);
    assert_eq!(errors(&server), 2);
}

#[tokio::test]
async fn a_script_sending_too_much_fails_and_sends_nothing() {
    let (_dir, server) = with_script(
        r#"[limits]
script_output_bytes = "100KB"
[namespaces."/".events]
big = { script = "s.rhai" }
echo = { ack = "{args}" }
"#,
        "fn on_event(ctx, args) { let s = \"\"; s.pad(60000, \"y\"); for i in 0..1000 { ctx.emit(\"big\", s); } }",
    )
    .await;
    let (mut ws, _) = Ws::socket(server.addr).await;
    ws.send(r#"421["big"]"#).await;
    ws.send(r#"422["echo","after"]"#).await;
    assert_eq!(
        ws.recv_text().await,
        r#"432["after"]"#,
        "nothing of the failed event was sent, not even its ack"
    );
    assert_eq!(errors(&server), 1);
}

#[tokio::test]
async fn arguments_too_deep_to_read_fail_the_script_event_visibly() {
    let (_dir, server) = with_script(
        r#"[namespaces."/".events]
count = { script = "s.rhai" }
echo = { ack = "{args}" }
"#,
        "fn on_event(ctx, args) { ctx.emit(\"count\", args.len()); }",
    )
    .await;
    let (mut ws, _) = Ws::socket(server.addr).await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    ws.send(&format!(r#"42["count",{deep}]"#)).await;
    ws.send(r#"42["count","flat"]"#).await;
    assert_eq!(
        ws.recv_text().await,
        r#"42["count",1]"#,
        "the deep event never reached the script as an empty list"
    );
    assert_eq!(errors(&server), 1);
}
