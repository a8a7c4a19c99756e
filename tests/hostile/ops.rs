//! The operations endpoints: with `admin_listen`, health, readiness and metrics leave the
//! public port; whatever the public port answers never quotes the routes file.

use std::sync::Arc;

use switchboard::app::App;
use tokio::net::TcpListener;

use crate::support::{TempDir, get, start_app};

#[tokio::test]
async fn the_admin_port_takes_health_readiness_and_metrics_and_alone_shows_errors() {
    let dir = TempDir::new("admin");
    let file = dir.write(
        "routes.toml",
        "[namespaces.\"/\".auth]\ntoken = [\"s3cret\"]\n[namespaces.\"/\".events]\nx = \"io\"\n",
    );
    let app = Arc::new(App::load(&file, Some("127.0.0.1:0".to_owned())).unwrap());
    // A refused reload whose error quotes the file (and its token).
    std::fs::write(
        &file,
        "[namespaces.\"/\".auth]\ntoken = [\"s3cret\"]\n[namespaces.\"/\".events]\nx = \"nowhere\"\n",
    )
    .unwrap();
    app.reload();
    let server = start_app(app, None).await;
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    server.server.serve_admin(admin);

    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(server.addr, path).await.status, 404, "public {path}");
        assert_eq!(get(admin_addr, path).await.status, 200, "admin {path}");
    }
    let detailed = get(admin_addr, "/healthz").await;
    assert!(detailed.text().contains("unknown target `nowhere`"));
    // The public port still serves the app.
    assert_eq!(
        get(server.addr, "/socket.io/?EIO=4&transport=polling")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn without_an_admin_port_health_says_a_reload_failed_but_not_why() {
    let dir = TempDir::new("no-admin");
    let file = dir.write("routes.toml", "[namespaces.\"/\".events]\nx = \"io\"\n");
    let app = Arc::new(App::load(&file, Some("127.0.0.1:0".to_owned())).unwrap());
    std::fs::write(
        &file,
        "token = \"s3cret\"\n[namespaces.\"/\".events]\nx = \"nowhere\"\n",
    )
    .unwrap();
    app.reload();
    let server = start_app(app, None).await;
    for path in ["/healthz", "/readyz"] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, 200);
        assert!(!reply.text().contains("s3cret"), "{path}: {}", reply.text());
        assert!(
            !reply.text().contains("nowhere"),
            "{path}: {}",
            reply.text()
        );
        assert!(
            reply.text().contains("reload refused"),
            "{path}: {}",
            reply.text()
        );
    }
}

/// The whole process's log: a client's text printed by a script stays on one escaped line,
/// and a script failing on every event warns once per interval, not once per event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_forge_or_flood_log_lines() {
    use crate::support::process::{Process, binary};
    use crate::support::raw::RawWs;
    let dir = TempDir::new("logs");
    dir.write(
        "s.rhai",
        "fn show(ctx, args) { print(args[0]); }\nfn fail(ctx, args) { throw \"no\"; }\n",
    );
    let config = dir.write(
        "routes.toml",
        r#"[namespaces."/".events]
show = { script = "s.rhai", function = "show" }
fail = { script = "s.rhai", function = "fail" }
echo = { ack = "{args}" }
"#,
    );
    let process = Process::spawn(binary(&config));
    let (mut ws, _) = RawWs::socket(process.addr).await;
    ws.send_text(r#"42["show","one\nINFO forged line \u001b[31m"]"#)
        .await;
    let printed = process.log_line("forged");
    assert!(
        printed.contains(r"one\nINFO forged line \u{1b}[31m"),
        "{printed}"
    );
    for _ in 0..20 {
        ws.send_text(r#"42["fail"]"#).await;
    }
    ws.send_text(r#"421["echo","done"]"#).await;
    assert_eq!(ws.recv_event().await, r#"431["done"]"#);
    // A marker after every failure: a new connection's log line.
    let (_other, other_id) = RawWs::socket(process.addr).await;
    let mut warnings = 0;
    loop {
        let line = process.log_line("");
        if line.contains("Script failed") {
            warnings += 1;
        }
        if line.contains(&other_id) {
            break;
        }
    }
    assert_eq!(warnings, 1, "20 failures, one warning");
}
