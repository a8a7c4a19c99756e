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
